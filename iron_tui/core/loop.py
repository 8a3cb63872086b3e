"""The event loop the engine runs on: uvloop where available (it roughly halves the proxy's per-call
CPU on the relay path), the standard asyncio loop otherwise or when IRON_UVLOOP=0."""

from __future__ import annotations

import asyncio
import os


def new_event_loop() -> asyncio.AbstractEventLoop:
    if os.environ.get("IRON_UVLOOP", "1") != "0":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


# The young generation's threshold for the iron-tui process (Python's default is 700 allocations).
# Every proxied call allocates a few thousand short-lived objects (parsed JSON, the record, its
# summaries, headers) that reference counting frees: at 700 the collector ran several times per call
# for nothing. Measured with bench/run.py: 190 → 170 µs of proxy CPU per call; memory stays bounded
# (20,000 young objects at most between collections).
GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    """For the `iron-tui` process only (`cli.run`): `LlmRouter` runs in its caller's process, whose
    collector is the caller's business."""
    import gc

    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)

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

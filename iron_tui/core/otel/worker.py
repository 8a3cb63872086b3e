"""The span exporter process: `python -m iron_tui.core.otel.worker`, started by iron-tui when it traces.

Reads frames from stdin (`wire.py`: the configuration, then batches of finished calls), encodes each
batch as an OTLP request (`spans.py`) and POSTs it (`exporter.py`); after each frame it writes one
JSON line to stdout: {"exported": spans, "failed": spans, "cpu": its CPU seconds} (with "lost": true
when the frame could not be encoded), and {"notice": [level, message]} for the user. It runs at a lower
priority (nice 5). It ends when stdin ends (iron-tui stopped or died),
after the batches already read. It costs ~4 µs of CPU per span, reading, encoding (~2.8 µs,
`spans.py`) and sending included; here that is off iron-tui's event loop and its core, which only
pays ~0.5 µs per call (~1.5 µs on a busy machine) to hand the call over.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any, TextIO


def _emit(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve(src: Any, out: TextIO) -> None:
    from iron_tui.core.otel.exporter import OtlpSender
    from iron_tui.core.otel.spans import SpanEncoder
    from iron_tui.core.otel.wire import read_frame, unpack_config, unpack_rows

    first = read_frame(src)
    if first is None:
        return
    cfg, instance_id = unpack_config(first)
    encoder = SpanEncoder(cfg, instance_id)
    sender = OtlpSender(cfg, lambda level, message: _emit(out, {"notice": [level, message]}))
    try:
        while (frame := read_frame(src)) is not None:
            report: dict[str, Any] = {"exported": 0, "failed": 0}
            try:
                body, n = encoder.encode_rows(unpack_rows(frame))
                if n:
                    report["exported" if sender.send(body) else "failed"] = n
            except Exception as exc:  # a bug here must not end tracing for the rest of the run
                report["lost"] = True  # iron-tui counts the frame's calls as failed
                _emit(out, {"notice": ["error", f"tracing: could not export spans: {type(exc).__name__}: {exc}"]})
            report["cpu"] = time.process_time()
            _emit(out, report)
    finally:
        sender.close()


_NICENESS = 5  # enough CPU share to keep up (a few % of a core at full load), never ahead of the proxy


def main() -> None:
    # Spans can wait a few milliseconds, the calls beside them cannot: on a busy machine the
    # scheduler should run the proxy (and whatever it serves) first.
    with contextlib.suppress(AttributeError, OSError):  # no os.nice on Windows
        os.nice(_NICENESS)
    try:
        serve(sys.stdin.buffer, sys.stdout)
    except (BrokenPipeError, KeyboardInterrupt):  # iron-tui went away: nothing left to tell
        pass


if __name__ == "__main__":
    main()

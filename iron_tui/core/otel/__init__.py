"""OpenTelemetry traces (DESIGN.md §8): one span per call, exported over OTLP/HTTP when configured.

    tracing = start_tracing(settings, os.environ, report=..., instance_id=...)   # None: tracing off
    tracing.record(rec, spent, limit)   # the engine, per finished call: one deque append
    await asyncio.to_thread(tracing.close, 3.0)

`config.py` resolves where spans go (OTEL_* variables, then settings); `link.py` hands finished
calls over (`wire.py`) to an exporter process (`worker.py`) that turns them into spans (`spans.py`)
and POSTs them (`exporter.py`). That process needs the `iron-tui[otel]` extra; without it tracing is
reported as unavailable and stays off.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from iron_tui.core.events import RequestRecord
from iron_tui.core.otel.config import OtlpConfig, resolve_otlp

if TYPE_CHECKING:
    from iron_tui.config import Settings
    from iron_tui.core.otel.link import ExporterLink, ExportStats
    from iron_tui.core.otel.wire import QueuedCall

__all__ = ["OtlpConfig", "Tracing", "resolve_otlp", "start_tracing"]


class Tracing:
    def __init__(self, cfg: OtlpConfig, *, instance_id: str, report: Callable[[str, str], None]) -> None:
        from iron_tui.core.otel.link import ExporterLink, ExportStats

        self.config = cfg
        self._queue: deque[QueuedCall] = deque()
        self._max_queue = cfg.max_queue
        self._batch = cfg.max_batch
        self._wake = threading.Event()
        self.stats: ExportStats = ExportStats()
        self._link: ExporterLink = ExporterLink(cfg, self._queue, self.stats, self._wake,
                                                instance_id=instance_id, report=report)

    def start(self) -> None:
        self._link.start()

    def record(self, rec: RequestRecord, spent_micros: int, limit_micros: int | None) -> None:
        """Queue a finished call for export. The request path's whole cost of tracing."""
        q = self._queue
        if len(q) >= self._max_queue:
            self.stats.drop("queue_full", 1)
            return
        q.append((rec, spent_micros, limit_micros))
        if len(q) >= self._batch and not self._wake.is_set():  # (set() takes a lock: not once per call)
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Export everything queued now (blocking: call it from a thread). True when done in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._link.drain()
            if self._link.idle():
                return True
            time.sleep(0.01)
        return self._link.idle()

    def close(self, timeout_s: float = 3.0) -> None:
        """Export what is queued, within `timeout_s`, and stop (blocking: call it from a thread)."""
        self._link.close(timeout_s)


def start_tracing(settings: Settings, environ: Mapping[str, str], *, instance_id: str,
                  report: Callable[[str, str], None]) -> Tracing | None:
    """A running `Tracing` when an OTLP endpoint is configured, else None. Problems (a bad variable,
    the extra not installed) are passed to `report(level, message)`; none of them stops iron-tui."""
    cfg, problems = resolve_otlp(settings, environ)
    for p in problems:
        report("warning", p)
    if cfg is None:
        return None
    try:
        import opentelemetry.proto.collector.trace.v1.trace_service_pb2  # noqa: F401
    except ImportError:
        report("warning", f"tracing to {cfg.endpoint} needs the OpenTelemetry extra: "
                          "pip install 'iron-tui[otel]' (tracing is off)")
        return None
    tracing = Tracing(cfg, instance_id=instance_id, report=report)
    tracing.start()
    return tracing

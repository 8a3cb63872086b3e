"""OTLP/HTTP (protobuf) span export on a background thread, with the official `opentelemetry-proto`
messages (the `iron-tui[otel]` extra).

The request path only appends to a bounded deque (`Tracing.record`); this thread turns queued calls
into spans, batches them and POSTs them. A collector that is down, slow or refusing costs the calls
nothing: the queue is bounded, what does not fit is dropped and counted (`iron_trace_spans_dropped_total`
in /metrics), and a failed batch is retried a few times with backoff, then dropped and counted.

Why not the opentelemetry-sdk: measured on this project's shared 2-core VM (docs/telemetry.md), an SDK
span (start, ten attributes, end, BatchSpanProcessor) costs ~40 µs of the event loop thread, plus
~20 µs to encode later, where the proxy's whole call costs 130-450 µs. Here the loop pays one deque
append (<1 µs) and this thread ~8 µs per span (`spans.py`).
"""

from __future__ import annotations

import gzip
import http.client
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from iron_tui import __version__
from iron_tui.core.otel.config import OtlpConfig
from iron_tui.core.otel.spans import QueuedCall, SpanEncoder

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_RETRIES = 3


@dataclass
class ExportStats:
    exported: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # queue_full | export_failed -> spans
    cpu_seconds: float = 0.0  # the export thread's own CPU: what tracing costs the process

    def drop(self, reason: str, n: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n


class Exporter:
    """The export thread. `queue` is filled by `Tracing.record` on the event loop thread (deque
    appends and pops are atomic); `wake` is set when a full batch is waiting."""

    def __init__(self, cfg: OtlpConfig, queue: deque[QueuedCall], stats: ExportStats, wake: threading.Event,
                 *, instance_id: str, report: Callable[[str, str], None]) -> None:
        self._cfg = cfg
        self._queue = queue
        self._stats = stats
        self._wake = wake
        self._report = report  # (level, message) for the user; thread-safe
        self._encoder = SpanEncoder(cfg, instance_id)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="iron-tui-otlp", daemon=True)
        parts = urlsplit(cfg.endpoint)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._conn: http.client.HTTPConnection | None = None
        self._failing = False
        self.busy = False  # a batch is being built or sent (for flush waits)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float) -> None:
        """Export what is queued (within `timeout_s`), then stop the thread."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.wait(self._cfg.schedule_delay_s)
                self._wake.clear()
                self._drain()
            self._drain()
        finally:
            if self._conn is not None:
                self._conn.close()

    def _drain(self) -> None:
        while self._queue:
            self.busy = True
            cpu0 = time.thread_time()
            try:
                calls: list[QueuedCall] = []
                while self._queue and len(calls) < self._cfg.max_batch:
                    calls.append(self._queue.popleft())
                body, n = self._encoder.encode(calls)
                if n:
                    self._send(body, n)
            except Exception as exc:  # a bug here must not kill tracing for the rest of the run
                self._report("error", f"tracing: could not export spans: {type(exc).__name__}: {exc}")
            finally:
                self._stats.cpu_seconds += time.thread_time() - cpu0
                self.busy = False

    def _send(self, body: bytes, n: int) -> None:
        headers = {**self._cfg.headers, "content-type": "application/x-protobuf",
                   "user-agent": f"iron-tui/{__version__}"}
        if self._cfg.gzip:
            body = gzip.compress(body, 5)
            headers["content-encoding"] = "gzip"
        problem = ""
        for attempt in range(_RETRIES):
            status, problem = self._post(body, headers)
            if 200 <= status < 300:
                self._stats.exported += n
                if self._failing:
                    self._failing = False
                    self._report("info", f"tracing: exporting to {self._cfg.endpoint} again")
                return
            if (status and status not in _RETRY_STATUSES) or attempt == _RETRIES - 1:
                break
            if self._stop.wait(0.5 * 2**attempt):  # stopping: no backoff, what is left is dropped
                break
        self._stats.drop("export_failed", n)
        if not self._failing:
            self._failing = True
            self._report("warning", f"tracing: the collector at {self._cfg.endpoint} failed ({problem}); "
                                    "spans are dropped until it answers")

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """(HTTP status or 0, problem text)."""
        try:
            conn = self._conn or self._connect()
            conn.request("POST", self._path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read(1 << 20)  # the (partial success) reply is not needed, but the connection is reused
            if resp.will_close:
                self._reset()
            return resp.status, f"HTTP {resp.status}"
        except (OSError, http.client.HTTPException) as exc:
            self._reset()
            return 0, str(exc) or type(exc).__name__

    def _connect(self) -> http.client.HTTPConnection:
        t = self._cfg.timeout_s
        if self._https:
            ctx = ssl.create_default_context(cafile=self._cfg.certificate)
            self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=t, context=ctx)
        else:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=t)
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until the queue is empty and no batch is in flight (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        while (self._queue or self.busy) and time.monotonic() < deadline:
            time.sleep(0.01)
            self._wake.set()
        return not (self._queue or self.busy)

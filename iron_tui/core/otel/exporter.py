"""OTLP/HTTP (protobuf) POSTs to the collector, with retries: what the exporter process sends with.

A collector that answers 429/502/503/504, or cannot be reached, gets the batch again after 0.5 s and
1 s; then the batch is dropped and counted. Any other error status drops it at once, and while the
collector is failing each batch gets one try. One warning
when the collector starts failing, one note when it answers again: never one per batch.
"""

from __future__ import annotations

import gzip
import http.client
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from iron_tui import __version__
from iron_tui.core.otel.config import OtlpConfig

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_TRIES = 3


class OtlpSender:
    def __init__(self, cfg: OtlpConfig, report: Callable[[str, str], None],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._cfg = cfg
        self._report = report
        self._sleep = sleep
        parts = urlsplit(cfg.endpoint)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {**cfg.headers, "content-type": "application/x-protobuf",
                         "user-agent": f"iron-tui/{__version__}"}
        if cfg.gzip:
            self._headers["content-encoding"] = "gzip"
        self._conn: http.client.HTTPConnection | None = None
        self._failing = False

    def send(self, body: bytes) -> bool:
        """POST one ExportTraceServiceRequest; True when the collector accepted it."""
        if self._cfg.gzip:
            body = gzip.compress(body, 5)
        problem = ""
        tries = 1 if self._failing else _TRIES  # known down: one try per batch, no backoff to sit out
        for attempt in range(tries):
            status, problem = self._post(body)
            if 200 <= status < 300:
                if self._failing:
                    self._failing = False
                    self._report("info", f"tracing: exporting to {self._cfg.endpoint} again")
                return True
            if (status and status not in _RETRY_STATUSES) or attempt == tries - 1:
                break
            self._sleep(0.5 * 2**attempt)
        if not self._failing:
            self._failing = True
            self._report("warning", f"tracing: the collector at {self._cfg.endpoint} failed ({problem}); "
                                    "spans are dropped until it answers")
        return False

    def _post(self, body: bytes) -> tuple[int, str]:
        """(HTTP status or 0, problem text)."""
        try:
            conn = self._conn or self._connect()
            conn.request("POST", self._path, body=body, headers=self._headers)
            resp = conn.getresponse()
            resp.read(1 << 20)  # the (partial success) reply is not needed, but the connection is reused
            if resp.will_close:
                self.close()
            return resp.status, f"HTTP {resp.status}"
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return 0, str(exc) or type(exc).__name__

    def _connect(self) -> http.client.HTTPConnection:
        t = self._cfg.timeout_s
        if self._https:
            ctx = ssl.create_default_context(cafile=self._cfg.certificate)
            self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=t, context=ctx)
        else:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=t)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

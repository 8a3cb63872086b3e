"""iron-tui's side of span export: a thread that hands queued calls to the exporter process
(`worker.py`) and one that reads what it reports.

Why a process: exporting a span costs ~4 µs of Python (~11 µs with the official protobuf messages),
which on iron-tui's own core and GIL would be taken from the event loop; packing the call for the
pipe costs ~0.5 µs. The work moves to another core, and the GIL is left to the event loop.

Nothing here can slow a call: the request path only appends to a bounded deque. When the exporter is
behind (a slow or hanging collector), the pipe fills, this thread waits, the deque fills, and what
does not fit is dropped and counted. An exporter process that dies is started again (at most once
every few seconds); the calls it had not reported on are counted as failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from iron_tui.core.agent_env import is_provider_secret
from iron_tui.core.otel.config import OtlpConfig
from iron_tui.core.otel.wire import QueuedCall, pack_calls, pack_config, write_frame

_RESPAWN_S = 5.0
_CONTENT_BATCH = 32  # calls per frame with content capture on (each may carry two 64 KB previews)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])  # the directory holding `iron_tui`


@dataclass
class ExportStats:
    exported: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # queue_full | export_failed -> spans
    cpu_seconds: float = 0.0  # this process's share: the thread that packs calls for the exporter
    exporter_cpu_seconds: float = 0.0  # the exporter process's CPU

    def drop(self, reason: str, n: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n


@dataclass
class _Exporter:
    proc: subprocess.Popen[bytes]
    unreported: deque[int] = field(default_factory=deque)  # calls per frame it has not reported on yet


class ExporterLink:
    def __init__(self, cfg: OtlpConfig, queue: deque[QueuedCall], stats: ExportStats, wake: threading.Event,
                 *, instance_id: str, report: Callable[[str, str], None]) -> None:
        self._cfg = cfg
        self._queue = queue
        self._stats = stats
        self._wake = wake
        self._report = report
        self._instance_id = instance_id
        self._stop = threading.Event()
        self._drain = threading.Event()  # flush(): hand over a part batch too
        self._thread = threading.Thread(target=self._run, name="iron-tui-otlp", daemon=True)
        self._current: _Exporter | None = None
        self._lock = threading.Lock()  # `unreported`: appended by this thread, popped by the reader
        self._last_spawn = 0.0
        self._cpu_base = 0.0  # exporter CPU of the processes that came before this one
        self.busy = False

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float) -> None:
        """Hand over what is queued, let the exporter send it (within `timeout_s`), stop both."""
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        self._wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        proc = self._current.proc if self._current is not None else None
        if proc is not None and proc.poll() is None:
            proc.kill()  # still busy after the deadline (a hanging collector): its batches are lost
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1.0)
        self._thread.join(1.0)

    def drain(self) -> None:
        """Hand over everything queued now, a part batch included (`Tracing.flush`)."""
        self._drain.set()
        self._wake.set()

    def idle(self) -> bool:
        with self._lock:
            return not self._queue and not self.busy and not (self._current and self._current.unreported)

    # --- the hand-over thread ----------------------------------------------------------------------

    def _run(self) -> None:
        self._exporter()  # now, not at the first batch: it takes a moment to start, and calls keep coming
        while not self._stop.is_set():
            woken = self._wake.wait(self._cfg.schedule_delay_s)
            self._wake.clear()
            drain = self._drain.is_set()
            self._drain.clear()
            # Woken by a full batch: only full batches go (the rest rides in the next one, or goes
            # when the schedule delay passes). Each frame costs the exporter an HTTP POST (~100 µs)
            # and a report: shipping the few calls that came in while a batch was written made
            # every other frame a handful of spans.
            self._ship(everything=drain or not woken)
        self._ship(everything=True)
        proc = self._current.proc if self._current is not None else None
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the exporter sends what it has read, then ends
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self._cfg.timeout_s)

    def _ship(self, everything: bool) -> None:
        batch_size = _CONTENT_BATCH if self._cfg.capture_content else self._cfg.max_batch
        while len(self._queue) >= (1 if everything else batch_size):
            self.busy = True
            cpu0 = time.thread_time()
            try:
                calls = [self._queue.popleft() for _ in range(min(batch_size, len(self._queue)))]
                payload = pack_calls(calls, self._cfg.capture_content)
                self._stats.cpu_seconds += time.thread_time() - cpu0
                self._send(payload, len(calls))
            finally:
                self.busy = False

    def _send(self, payload: bytes, calls: int) -> None:
        exporter = self._exporter()
        if exporter is None or exporter.proc.stdin is None:
            self._stats.drop("export_failed", calls)
            return
        with self._lock:
            exporter.unreported.append(calls)
        try:
            write_frame(exporter.proc.stdin, payload)  # blocks while the exporter is behind: that is the back-pressure
        except (OSError, ValueError):
            pass  # it died: the reader thread counts what it had not reported on

    def _exporter(self) -> _Exporter | None:
        if self._current is not None and self._current.proc.poll() is None:
            return self._current
        if self._current is not None and time.monotonic() - self._last_spawn < _RESPAWN_S:
            return None
        self._last_spawn = time.monotonic()
        env = {k: v for k, v in os.environ.items() if not is_provider_secret(k)}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "iron_tui.core.otel.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                start_new_session=True,  # Ctrl-C in the terminal is for iron-tui, which then flushes it
            )
            assert proc.stdin is not None
            write_frame(proc.stdin, pack_config(self._cfg, self._instance_id))
        except (OSError, ValueError) as exc:
            self._report("error", f"tracing: cannot start the span exporter ({sys.executable}): {exc}")
            return None
        if self._current is not None:
            self._report("warning", "tracing: the span exporter process ended; started a new one")
        self._current = _Exporter(proc)
        threading.Thread(target=self._read, args=(self._current,), name="iron-tui-otlp-reports",
                         daemon=True).start()
        return self._current

    # --- the report thread -------------------------------------------------------------------------

    def _read(self, exporter: _Exporter) -> None:
        assert exporter.proc.stdout is not None
        cpu = 0.0
        for line in exporter.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "notice" in msg:
                level, text = msg["notice"]
                self._report(str(level), str(text))
                continue
            with self._lock:
                calls = exporter.unreported.popleft() if exporter.unreported else 0
            self._stats.exported += int(msg.get("exported", 0))
            self._stats.drop("export_failed", calls if msg.get("lost") else int(msg.get("failed", 0)))
            cpu = float(msg.get("cpu", cpu))
            self._stats.exporter_cpu_seconds = self._cpu_base + cpu
        self._cpu_base += cpu
        with self._lock:  # the process ended: frames it never reported on are lost
            lost = sum(exporter.unreported)
            exporter.unreported.clear()
        if lost:
            self._stats.drop("export_failed", lost)

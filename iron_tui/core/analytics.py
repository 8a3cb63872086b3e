"""Analytics events, their durable SQLite outbox, and the loop that syncs them to the control server.

Guarantees (the original lost events in four ways; see reference defect 6):

- Every event is written to the outbox before `record()` returns, and stays there until the server
  has answered 202 accepted or 200 duplicate for its `event_id`. A server outage, a crash or a
  restart only delays delivery. Re-sending after a crash is safe because the `event_id` is stored with
  the event (never re-generated) and the server deduplicates on it.
- Each tick sends only pending events, oldest first, each at most once per tick, and at most
  `batch_size * MAX_BATCHES_PER_TICK` of them; acknowledged rows are deleted. There is no cap on the
  backlog: nothing is dropped.
- 4xx answers (other than 408/425/429) are final: the event moves to a dead-letter table with the
  server's reason and `status.rejected` counts it. 5xx and network failures are retried with
  exponential back-off and jitter.
- `stop()` flushes for at most `flush_timeout_s`; what is left stays on disk for the next start.

With no control server configured (`client is None`) the sync is `disabled` and `record()` stores
nothing: an outbox row that can never be delivered would only grow the file. Rows left by an earlier
server-mode run stay untouched and count as pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from iron_tui.core.clock import Clock
from iron_tui.core.control import UNREACHABLE, ControlClient, ControlError
from iron_tui.core.events import Event, SyncState, SyncStatus

log = logging.getLogger(__name__)

OUTBOX_FILENAME = "analytics-outbox.sqlite3"
COMPLETED = "llm_request_completed"
FAILED = "llm_request_failed"
MAX_BATCHES_PER_TICK = 10
OFFLINE_AFTER_FAILURES = 3  # consecutive failed ticks before "retrying" becomes "offline"
# Answers about the server or our credentials, not about the event: keep the event and retry later.
# Only a judgement on the event itself (400 VALIDATION_ERROR, 409, 422) dead-letters it: a revoked or
# mistyped token must not throw away the whole backlog.
_RETRY_STATUSES = frozenset({401, 403, 404, 408, 413, 425, 429})
_AUTOCHECKPOINT_PAGES = 10_000  # backstop only (~40 MB of WAL); the sync loop checkpoints each tick


# --- event shapes (protocol: POST /api/v1/analytics/events) --------------------------------------


def _common(ic_token: str, event_id: str, timestamp_ms: int, event_type: str, model: str, provider: str,
            agent_id: str | None, provider_id: str | int | None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "ic_token": ic_token,
        "event_id": event_id,
        "timestamp_ms": int(timestamp_ms),
        "event_type": event_type,
        "model": model,
        "provider": provider if provider in ("openai", "anthropic") else "unknown",
    }
    # Absent optional fields are omitted, never null (the protocol's contract).
    if agent_id is not None:
        event["agent_id"] = agent_id
    if provider_id is not None:
        event["provider_id"] = provider_id
    return event


def completed_event(*, ic_token: str, event_id: str, timestamp_ms: int, model: str, provider: str,
                    input_tokens: int, output_tokens: int, cost_micros: int, agent_id: str | None = None,
                    provider_id: str | int | None = None) -> dict[str, Any]:
    event = _common(ic_token, event_id, timestamp_ms, COMPLETED, model, provider, agent_id, provider_id)
    event["input_tokens"] = int(input_tokens)
    event["output_tokens"] = int(output_tokens)
    event["cost_micros"] = int(cost_micros)
    return event


def failed_event(*, ic_token: str, event_id: str, timestamp_ms: int, model: str, provider: str,
                 error_code: str, error_message: str, agent_id: str | None = None,
                 provider_id: str | int | None = None) -> dict[str, Any]:
    event = _common(ic_token, event_id, timestamp_ms, FAILED, model, provider, agent_id, provider_id)
    event["error_code"] = str(error_code)
    event["error_message"] = str(error_message)
    return event


# --- durable outbox ------------------------------------------------------------------------------


class DeadLetter(NamedTuple):
    id: int
    event: dict[str, Any] | None  # None if the stored row was not valid JSON
    status: int | None
    reason: str
    failed_at: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    body TEXT NOT NULL,
    status INTEGER,
    reason TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""


class Outbox:
    """Pending analytics events in SQLite; safe for one process (any thread, serialised by a lock).

    Durability: WAL with synchronous=NORMAL, one autocommit transaction per `add`. A commit in WAL mode
    is a write() of the frame into the WAL file, so the event is in the OS page cache before `add`
    returns and survives the process being killed (SIGKILL, OOM, crash) — the durability window for
    process death is zero. Only an OS crash or power loss can roll back the last commits since the last
    checkpoint fsync; synchronous=FULL would close that too but costs an fsync (milliseconds) per
    proxied call, which the hot path cannot afford. The database stays consistent either way.

    Checkpoints (copying the WAL into the database, the only fsyncs) are moved off the hot path: the
    sync loop calls `checkpoint()` in a worker thread after each tick. SQLite's automatic checkpoint
    would otherwise run inside an `add` now and then and stall the proxy's event loop for milliseconds;
    it stays enabled with a high threshold only as a backstop for an outbox used without a sync loop.
    """

    def __init__(self, db_path: Path) -> None:
        self.path = Path(db_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Rows carry the IC token: keep the file private. SQLite gives -wal/-shm the same mode.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._lock = threading.Lock()
        # isolation_level=None: autocommit, so each add() is exactly one committed transaction.
        self._db: sqlite3.Connection | None = sqlite3.connect(self.path, isolation_level=None,
                                                              check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        self._db.executescript(_SCHEMA)
        _add_event_id_column(self._db)
        self._ckpt_lock = threading.Lock()
        self._ckpt_db: sqlite3.Connection | None = None
        self.dirty = False  # written since the last checkpoint()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("outbox is closed")
        return self._db

    def add(self, event: dict[str, Any]) -> bool:
        """Store one event; False when one with the same `event_id` is already pending (a crash
        recovery re-reporting a call whose own event was stored just before the process died)."""
        body = json.dumps(event, separators=(",", ":"))
        event_id = event.get("event_id")
        with self._lock:
            cur = self._conn().execute("INSERT OR IGNORE INTO outbox (created_at, body, event_id) VALUES (?, ?, ?)",
                                       (time.time(), body, event_id if isinstance(event_id, str) else None))
            self.dirty = True
        return cur.rowcount == 1

    def pending_count(self) -> int:
        with self._lock:
            return int(self._conn().execute("SELECT count(*) FROM outbox").fetchone()[0])

    def max_id(self) -> int:
        with self._lock:
            return int(self._conn().execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()[0])

    def take(self, limit: int, *, after_id: int = 0, up_to_id: int | None = None
             ) -> list[tuple[int, dict[str, Any]]]:
        """Oldest pending events with after_id < id <= up_to_id. Rows that are not valid JSON go
        straight to the dead-letter table (they can never be delivered)."""
        hi = up_to_id if up_to_id is not None else 2**62
        with self._lock:
            rows = self._conn().execute(
                "SELECT id, body FROM outbox WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                (after_id, hi, limit)).fetchall()
        out: list[tuple[int, dict[str, Any]]] = []
        for row_id, body in rows:
            try:
                event = json.loads(body)
                if not isinstance(event, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                self.dead_letter(row_id, None, f"corrupt outbox row: {e}")
                continue
            out.append((row_id, event))
        return out

    def ack(self, ids: Iterable[int]) -> None:
        id_list = [(i,) for i in ids]
        if not id_list:
            return
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                db.executemany("DELETE FROM outbox WHERE id = ?", id_list)
                db.execute("COMMIT")
                self.dirty = True
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def dead_letter(self, row_id: int, status: int | None, reason: str) -> None:
        """Move one row out of the outbox, keeping the server's reason (one transaction)."""
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                db.execute(
                    "INSERT OR REPLACE INTO dead_letter (id, created_at, body, status, reason, failed_at) "
                    "SELECT id, created_at, body, ?, ?, ? FROM outbox WHERE id = ?",
                    (status, reason, time.time(), row_id))
                db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                db.execute("COMMIT")
                self.dirty = True
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def dead_letters(self) -> list[DeadLetter]:
        with self._lock:
            rows = self._conn().execute(
                "SELECT id, body, status, reason, failed_at FROM dead_letter ORDER BY id").fetchall()
        out = []
        for row_id, body, status, reason, failed_at in rows:
            try:
                event = json.loads(body)
            except ValueError:
                event = None
            out.append(DeadLetter(row_id, event, status, reason, failed_at))
        return out

    def checkpoint(self) -> None:
        """Copy the WAL into the database (PASSIVE: never blocks writers). Meant for a worker thread;
        it uses its own connection so `add` on the loop thread is not held up by the fsync."""
        with self._ckpt_lock:
            if self._db is None:
                return
            self.dirty = False
            if self._ckpt_db is None:
                self._ckpt_db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._ckpt_db.execute("PRAGMA busy_timeout=5000")
            self._ckpt_db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def close(self) -> None:
        with self._ckpt_lock:
            if self._ckpt_db is not None:
                self._ckpt_db.close()
                self._ckpt_db = None
        with self._lock:
            if self._db is not None:
                self._db.close()  # the last connection to close checkpoints and removes the WAL
                self._db = None


def _add_event_id_column(db: sqlite3.Connection) -> None:
    """Outboxes from before event-id deduplication get the column (existing rows keep NULL)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    if "event_id" not in columns:
        db.execute("ALTER TABLE outbox ADD COLUMN event_id TEXT")
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS outbox_event_id ON outbox (event_id)")


# --- sync loop -----------------------------------------------------------------------------------


@dataclass
class _BatchResult:
    delivered: int = 0
    rejected: int = 0
    failure: ControlError | None = None
    rejection_reason: str | None = None


class AnalyticsSync:
    """Delivers outbox events to the control server in the background. See the module docstring."""

    def __init__(self, outbox: Outbox, client: ControlClient | None, *, publish: Callable[[Event], None],
                 clock: Clock, interval_s: float = 5.0, batch_size: int = 200, concurrency: int = 8,
                 flush_timeout_s: float = 5.0, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 60.0) -> None:
        self._outbox = outbox
        self._client = client
        self._publish = publish
        self._clock = clock
        self.interval_s = interval_s
        self.batch_size = max(1, batch_size)
        self.concurrency = max(1, concurrency)
        self.flush_timeout_s = flush_timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._pending = self._safe_count()
        self._failures = 0  # consecutive failed passes
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one pass at a time (loop tick or flush)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._capped = False  # the last pass stopped at its per-tick limit with more pending
        self._last_failure_code: str | None = None
        state: SyncState = "disabled" if client is None else "ok"
        self.status = SyncStatus(timestamp=clock.now(), state=state, pending=self._pending)

    # --- recording (hot path) --------------------------------------------------------------------

    def record(self, event: dict[str, Any]) -> None:
        """Store one event for delivery. Never raises: a failure is logged and shown in the status."""
        if self._client is None:
            return
        try:
            added = self._outbox.add(event)
        except Exception as e:  # a broken disk must not fail the proxied call
            log.error("analytics event %s could not be stored: %s", event.get("event_id"), e)
            self._update(last_error=f"outbox write failed: {e}")
            return
        if not added:
            return  # already pending under this event_id
        self._pending += 1
        self._update()
        if self._pending >= self.batch_size and self.status.state == "ok":
            self._wake.set()  # a full batch is waiting: no need to sit out the interval

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._publish_safely(self.status)  # let front ends show the initial state
        if self._client is None or self._task is not None:
            return
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="analytics-sync")
        self._wake.set()  # deliver what a previous run left behind right away

    def close(self) -> None:
        """Release the outbox's database (after stop(); what is pending stays on disk)."""
        self._outbox.close()

    async def stop(self) -> None:
        """Flush for at most `flush_timeout_s`, then stop; undelivered events stay on disk."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self.flush(self.flush_timeout_s)

    def kick(self) -> None:
        self._wake.set()

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Try to deliver everything pending within the timeout (retrying briefly on failure).
        True when the outbox is empty afterwards."""
        if self._client is None:
            return self._pending == 0
        timeout = self.flush_timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(timeout):
                delay = 0.02
                while self._pending > 0:
                    async with self._lock:
                        ok = await self._pass(limit=None)
                    if not ok:
                        if self._last_failure_code == UNREACHABLE:
                            break  # nothing listens there: waiting out the timeout would only delay exit
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 0.5)
        except TimeoutError:
            log.info("analytics flush timed out after %.2f s; %d events stay queued", timeout, self._pending)
        return self._pending == 0

    # --- the loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.interval_s
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            if self._pending <= 0:
                delay = self.interval_s
                await self._checkpoint()
                continue
            try:
                async with self._lock:
                    ok = await self._pass(limit=self.batch_size * MAX_BATCHES_PER_TICK)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # keep the loop alive whatever happens (e.g. disk error)
                log.exception("analytics sync tick failed")
                ok = False
                self._note_failure(ControlError(None, "INTERNAL", str(e)))
            if ok:
                # A backlog beyond one tick's share: go again at once (still bounded per tick).
                delay = 0.0 if self._pending > 0 and self._capped else self.interval_s
            else:
                delay = self._backoff()
                self._wake.clear()  # a wake-up from record() during the failed pass must not skip the back-off
                self._update(next_attempt=self._clock.now() + delay)
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        if not self._outbox.dirty:
            return
        try:
            await asyncio.to_thread(self._outbox.checkpoint)
        except sqlite3.Error as e:
            log.warning("analytics outbox checkpoint failed: %s", e)

    def _backoff(self) -> float:
        base = min(self.backoff_max_s, self.backoff_base_s * 2 ** max(0, self._failures - 1))
        return base / 2 + random.uniform(0, base / 2)  # "equal jitter": spread reconnect storms

    async def _pass(self, limit: int | None) -> bool:
        """One sweep over the events pending when it began, each sent at most once.
        False if the server failed (5xx/network): the rest waits for the next attempt."""
        assert self._client is not None
        high = self._outbox.max_id()  # events recorded during the pass wait for the next one
        cursor = 0
        sent = 0
        self._capped = False
        rejection: str | None = None
        while True:
            want = self.batch_size if limit is None else min(self.batch_size, limit - sent)
            if want <= 0:
                self._capped = True
                break
            rows = self._outbox.take(want, after_id=cursor, up_to_id=high)
            if not rows:
                break
            cursor = rows[-1][0]
            sent += len(rows)
            result = await self._send_batch(rows)
            rejection = result.rejection_reason or rejection
            if result.failure is not None:
                self._recount()
                self._note_failure(result.failure)
                return False
        self._recount()
        self._failures = 0
        self._update(state="ok", last_success=self._clock.now() if sent else self.status.last_success,
                     last_error=rejection, next_attempt=None)
        return True

    async def _send_batch(self, rows: list[tuple[int, dict[str, Any]]]) -> _BatchResult:
        """POST a batch with bounded concurrency. On the first retryable failure, no new POSTs start
        (an outage costs at most `concurrency` failed attempts, not a whole batch)."""
        assert self._client is not None
        client = self._client
        result = _BatchResult()
        delivered: list[int] = []
        queue = iter(rows)

        async def worker() -> None:
            for row_id, event in queue:
                if result.failure is not None:
                    return
                try:
                    status, body = await client.post_event(event)
                except ControlError as e:
                    result.failure = result.failure or e
                    return
                if 200 <= status < 300:
                    delivered.append(row_id)
                elif status >= 500 or status in _RETRY_STATUSES:
                    result.failure = result.failure or _as_error(status, body)
                    return
                else:
                    reason = _reason(status, body)
                    self._outbox.dead_letter(row_id, status, reason)
                    log.warning("analytics event %s rejected by the control server: %s",
                                event.get("event_id"), reason)
                    result.rejected += 1
                    result.rejection_reason = f"event {event.get('event_id')} rejected: {reason}"

        try:
            await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(rows)))))
        finally:
            # Also on cancellation (stop() mid-batch): acknowledge what the server already has, so
            # it is not re-sent. Re-sending would be harmless (dedup by event_id) but wasteful.
            self._outbox.ack(delivered)
            result.delivered = len(delivered)
            self._pending = max(0, self._pending - len(delivered) - result.rejected)
            self._update(sent=self.status.sent + len(delivered), rejected=self.status.rejected + result.rejected)
        return result

    def _note_failure(self, err: ControlError) -> None:
        self._failures += 1
        self._last_failure_code = err.code
        offline = (err.code == UNREACHABLE or err.status in (401, 403)
                   or self._failures >= OFFLINE_AFTER_FAILURES)
        log.info("analytics sync failed (%d in a row): %s", self._failures, err)
        self._update(state="offline" if offline else "retrying", last_error=str(err))

    # --- status ----------------------------------------------------------------------------------

    def _safe_count(self) -> int:
        try:
            return self._outbox.pending_count()
        except sqlite3.Error as e:
            log.error("analytics outbox unreadable: %s", e)
            return 0

    def _update(self, **changes: Any) -> None:
        new = replace(self.status, pending=self._pending, **changes)
        if new == self.status:
            return
        self.status = replace(new, timestamp=self._clock.now())
        self._publish_safely(self.status)

    def _publish_safely(self, status: SyncStatus) -> None:
        try:
            self._publish(status)
        except Exception:  # a broken subscriber must not break the sync
            log.exception("publishing sync status failed")

    def _recount(self) -> None:
        # The in-memory count is what record() uses on the hot path; re-sync it with the disk once per
        # pass so nothing (a corrupt row dead-lettered by take(), another writer) can make it drift.
        try:
            self._pending = self._outbox.pending_count()
        except sqlite3.Error as e:
            log.error("analytics outbox unreadable: %s", e)


def _reason(status: int, body: dict[str, Any]) -> str:
    err, msg = body.get("error"), body.get("message")
    if err and msg:
        return f"{status} {err}: {msg}"
    return f"{status} {err or msg or 'rejected'}"


def _as_error(status: int, body: dict[str, Any]) -> ControlError:
    code = body.get("error")
    message = body.get("message") or code or "server error"
    return ControlError(status, str(code) if code else None, str(message), endpoint="/api/v1/analytics/events")

"""The loop that syncs analytics events (built in `analytics_protocol.py`, kept in the durable SQLite
outbox of `outbox.py`) to the control server.

Guarantees (the original lost events in four ways; see reference defect 6):

- Every event is written to the outbox before `record()` returns, and stays there until the server
  has answered 202 accepted or 200 duplicate for its `event_id`. A server outage, a crash or a
  restart only delays delivery. Re-sending after a crash is safe because the `event_id` is stored with
  the event (never re-generated) and the server deduplicates on it; the outbox itself keeps one row
  per `event_id`.
- Events go out in batches of `batch_size`, each event its own POST (the protocol's contract), up to
  `concurrency` at a time, oldest first, at most `batch_size * MAX_BATCHES_PER_TICK` per tick. A failed
  POST (5xx, 408/425/429, a timeout or broken connection) holds back only its own batch's failed
  events: they wait a jittered back-off that doubles with each failure of that batch (from
  `backoff_base_s` to `backoff_max_s`) and is never shorter than the server's `Retry-After`; every
  other event keeps flowing. Only a server that cannot be reached at all, or that refuses our
  credentials (401/403/404), stops the whole sync, with the same back-off.
- An event the server will never take is dead-lettered (kept in the outbox's dead-letter table with
  the server's reason, counted in `status.rejected` this run and `status.dead_letters` in all):
  a per-event 400/409/422, and 413 — one event per POST means a 413 event already stands alone, so it
  is too large for this server whatever we do. Client-supplied fields are capped when an event is
  built (`MAX_NAME_CHARS`, `MAX_MESSAGE_CHARS`), so only a server with a very small limit sees one.
- `stop()` flushes for at most `flush_timeout_s`; what is left stays on disk for the next start.

With no control server configured (`client is None`) the sync is `disabled` and `record()` stores
nothing: an outbox row that can never be delivered would only grow the file. Rows left by an earlier
server-mode run stay untouched and count as pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from iron_tui.core.analytics_protocol import (
    HOLD_STATUSES,
    RETRY_STATUSES,
    BatchResult,
    answer_error,
    rejection_text,
)
from iron_tui.core.clock import Clock
from iron_tui.core.control import NETWORK, TIMEOUT, UNREACHABLE, ControlClient, ControlError
from iron_tui.core.events import Event, SyncState, SyncStatus
from iron_tui.core.outbox import DeadLetter, Outbox

__all__ = ["OUTBOX_FILENAME", "AnalyticsSync", "DeadLetter", "Outbox"]

log = logging.getLogger(__name__)

OUTBOX_FILENAME = "analytics-outbox.sqlite3"
MAX_BATCHES_PER_TICK = 10
OFFLINE_AFTER_FAILURES = 3  # failed POSTs in a row before "retrying" becomes "offline"
MAX_RETRY_AFTER_S = 600.0  # a Retry-After beyond this is not believed


class AnalyticsSync:
    """Delivers outbox events to the control server in the background. See the module docstring."""

    def __init__(self, outbox: Outbox, client: ControlClient | None, *, publish: Callable[[Event], None],
                 clock: Clock, interval_s: float = 5.0, batch_size: int = 200, concurrency: int = 8,
                 flush_timeout_s: float = 5.0, backoff_base_s: float = 0.5,
                 backoff_max_s: float = 30.0) -> None:
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
        self._failures = 0  # failed POSTs in a row
        self._holds = 0  # consecutive passes the whole sync was held
        self._hold_until = 0.0  # loop time before which nothing is sent (unreachable, credentials refused)
        self._retry_at: dict[int, float] = {}  # outbox row id → loop time before which it is not re-sent
        self._batch_failures: dict[int, int] = {}  # row id → failures of the batch it failed in
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one pass at a time (loop tick or flush)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._capped = False  # the last pass stopped at its per-tick limit with more pending
        self._last_failure_code: str | None = None
        state: SyncState = "disabled" if client is None else "ok"
        self.status = SyncStatus(timestamp=clock.now(), state=state, pending=self._pending,
                                 dead_letters=self._safe_dead_letters())

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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.flush_timeout_s
        task, self._task = self._task, None
        if task is not None:
            # Let a pass in progress finish (its POSTs may have reached the server: cancelling them would
            # re-send those events), then stop the loop.
            self._wake.set()
            if self._lock.locked():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_timeout_s):
                        async with self._lock:
                            pass
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self.flush(max(0.0, deadline - loop.time()))

    def kick(self) -> None:
        self._hold_until = 0.0
        self._retry_at.clear()
        self._wake.set()

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Try to deliver everything pending within the timeout (retrying what fails as its back-off
        allows). True when the outbox is empty afterwards."""
        if self._client is None:
            return self._pending == 0
        timeout = self.flush_timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while self._pending > 0:
                    async with self._lock:
                        await self._pass(limit=None)
                    if self._pending <= 0:
                        break
                    if self._last_failure_code == UNREACHABLE and self._hold_until > loop.time():
                        break  # nothing listens there: waiting out the timeout would only delay exit
                    await asyncio.sleep(max(0.01, self._next_due() - loop.time()))
        except TimeoutError:
            log.info("analytics flush timed out after %.2f s; %d events stay queued", timeout, self._pending)
        return self._pending == 0

    # --- the loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
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
                    await self._pass(limit=self.batch_size * MAX_BATCHES_PER_TICK)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # keep the loop alive whatever happens (e.g. disk error)
                log.exception("analytics sync tick failed")
                self._hold(ControlError(None, "INTERNAL", str(e)), 0.0)
            if self._pending > 0 and self._capped:
                delay = 0.0  # a backlog beyond one tick's share: go again at once (still bounded per tick)
            elif self._pending > 0:
                delay = min(self.interval_s, max(0.0, self._next_due() - loop.time()))
            else:
                delay = self.interval_s
            await self._checkpoint()

    def _next_due(self) -> float:
        """Loop time of the next send worth trying: a held sync's end, else the earliest retry."""
        loop = asyncio.get_running_loop()
        if self._hold_until > loop.time():
            return self._hold_until
        return min(self._retry_at.values(), default=loop.time())

    async def _checkpoint(self) -> None:
        if not self._outbox.dirty:
            return
        try:
            await asyncio.to_thread(self._outbox.checkpoint)
        except sqlite3.Error as e:
            log.warning("analytics outbox checkpoint failed: %s", e)

    def _backoff(self, failures: int, retry_after: float = 0.0) -> float:
        base = min(self.backoff_max_s, self.backoff_base_s * 2 ** max(0, failures - 1))
        jittered = base / 2 + random.uniform(0, base / 2)  # "equal jitter": spread retry storms
        return max(jittered, min(retry_after, MAX_RETRY_AFTER_S))

    async def _pass(self, limit: int | None) -> None:
        """One sweep over the events pending when it began, each sent at most once; events waiting
        out their back-off are skipped."""
        assert self._client is not None
        loop = asyncio.get_running_loop()
        if self._hold_until > loop.time():
            return
        high = self._outbox.max_id()  # events recorded during the pass wait for the next one
        cursor = 0
        sent = 0
        self._capped = False
        rejection: str | None = None
        trouble: ControlError | None = None
        while True:
            want = self.batch_size if limit is None else min(self.batch_size, limit - sent)
            if want <= 0:
                self._capped = True
                break
            rows = self._outbox.take(want, after_id=cursor, up_to_id=high)
            if not rows:
                break
            cursor = rows[-1][0]
            now = loop.time()
            ready = [r for r in rows if self._retry_at.get(r[0], 0.0) <= now]
            if not ready:
                continue
            sent += len(ready)
            result = await self._send_batch(ready)
            rejection = result.rejection_reason or rejection
            trouble = result.failure or trouble
            if result.failed:
                # This batch's failed events wait; the rest of the pass goes on.
                tries = 1 + max(self._batch_failures.get(i, 0) for i in result.failed)
                due = loop.time() + self._backoff(tries, result.retry_after)
                for row_id in result.failed:
                    self._batch_failures[row_id] = tries
                    self._retry_at[row_id] = due
            if result.hold is not None:
                self._recount()
                self._hold(result.hold, result.retry_after)
                return
        self._recount()
        self._holds = 0
        if self._retry_at:
            offline = self._failures >= OFFLINE_AFTER_FAILURES
            self._update(state="offline" if offline else "retrying", last_error=str(trouble) if trouble else
                         self.status.last_error, next_attempt=self._clock.now() + max(
                             0.0, self._next_due() - loop.time()))
        else:
            self._update(state="ok", last_success=self._clock.now() if sent else self.status.last_success,
                         last_error=rejection, next_attempt=None)

    def _hold(self, err: ControlError, retry_after: float) -> None:
        """Stop sending everything for a back-off: the server is not there, or refuses our credentials."""
        self._holds += 1
        self._last_failure_code = err.code
        delay = self._backoff(self._holds, retry_after)
        self._hold_until = asyncio.get_running_loop().time() + delay
        offline = (err.code == UNREACHABLE or err.status in (401, 403)
                   or self._holds >= OFFLINE_AFTER_FAILURES or self._failures >= OFFLINE_AFTER_FAILURES)
        log.info("analytics sync held (%d in a row): %s", self._holds, err)
        self._update(state="offline" if offline else "retrying", last_error=str(err),
                     next_attempt=self._clock.now() + delay)

    async def _send_batch(self, rows: list[tuple[int, dict[str, Any]]]) -> BatchResult:
        """POST a batch's events with bounded concurrency. A failed POST marks its event for retry; only
        a failure of the server itself (unreachable, credentials refused) stops new POSTs."""
        assert self._client is not None
        client = self._client
        result = BatchResult()
        delivered: list[int] = []
        queue = iter(rows)

        async def worker() -> None:
            for row_id, event in queue:
                if result.hold is not None:
                    return
                try:
                    status, body, retry_after = await client.post_event_with_retry_after(event)
                except ControlError as e:
                    gone = e.code not in (TIMEOUT, NETWORK)  # refused connection, DNS: the server is gone
                    self._failed(result, row_id, e, 0.0, publish=not gone)
                    if gone:
                        result.hold = e  # (the hold publishes the status, with its next attempt)
                    continue
                if 200 <= status < 300:
                    delivered.append(row_id)
                    self._failures = 0
                    continue
                err = answer_error(status, body)
                if status in HOLD_STATUSES:
                    self._failed(result, row_id, err, retry_after, publish=False)
                    result.hold = err
                elif status >= 500 or status in RETRY_STATUSES:
                    self._failed(result, row_id, err, retry_after)
                else:  # 400/409/413/422...: a judgement on this event, which will never pass
                    reason = rejection_text(status, body)
                    self._outbox.dead_letter(row_id, status, reason)
                    self._forget(row_id)
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
            for row_id in delivered:
                self._forget(row_id)
            result.delivered = len(delivered)
            self._pending = max(0, self._pending - len(delivered) - result.rejected)
            self._update(sent=self.status.sent + len(delivered), rejected=self.status.rejected + result.rejected,
                         dead_letters=self.status.dead_letters + result.rejected)
        return result

    def _failed(self, result: BatchResult, row_id: int, err: ControlError, retry_after: float, *,
                publish: bool = True) -> None:
        result.failed.append(row_id)
        result.failure = err
        result.retry_after = max(result.retry_after, retry_after)
        self._failures += 1
        self._last_failure_code = err.code
        if publish:  # shown as it happens: several failures in a row are "offline"
            self._update(state="offline" if self._failures >= OFFLINE_AFTER_FAILURES else "retrying",
                         last_error=str(err))

    def _forget(self, row_id: int) -> None:
        self._retry_at.pop(row_id, None)
        self._batch_failures.pop(row_id, None)

    # --- status ----------------------------------------------------------------------------------

    def _safe_count(self) -> int:
        try:
            return self._outbox.pending_count()
        except sqlite3.Error as e:
            log.error("analytics outbox unreadable: %s", e)
            return 0

    def _safe_dead_letters(self) -> int:
        try:
            return self._outbox.dead_letter_count()
        except sqlite3.Error:
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

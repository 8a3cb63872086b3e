"""The budget state that every iron-tui sharing a data dir shares, and the crash journal (one SQLite file).

Tables (in `state.sqlite3`; the schema is in ledger_schema.py):

* `budget_periods(period_key, spent_micros)`: what was spent per calendar period, by all processes.
* `budget_slices(holder, period_key, micros)`: the part of the limit each live process has leased into
  memory. Invariant kept by `grow_slice` (one `BEGIN IMMEDIATE` transaction): spent + Σ slices ≤ limit,
  so processes admitting calls from their own slices together never pass the limit.
* `calls(holder, id, …)`: the journal: one row per admitted call, written before the call goes upstream,
  its relayed progress (tokens, characters, finished web searches) updated now and then, deleted when the call is settled — in the same
  transaction that adds its cost to `spent` and takes it out of the holder's slice, so a call is
  charged exactly once.
* `holders(holder, pid, started_at)`: who is (or was) running.

Liveness: each process holds an exclusive `flock` on `holders/<holder>.lock` next to the database for
as long as it lives; the kernel drops it when the process dies, however it dies (SIGKILL, OOM). A holder
whose lock can be taken is dead: `take_dead_holder` hands its rows to crash recovery (`recovery.py`).
A pid alone could be reused; a lock cannot outlive its process.

Writes are batched ("group commit"): operations queue in memory and one transaction commits them all —
right away (next loop iteration) when a caller waits for durability (`durable()`: an admitted call before
it goes upstream), within `LAZY_FLUSH_S` otherwise (settlements, progress, slice returns), so a
single-process call costs one small commit at most. Without a running event loop every operation
commits at once. WAL with synchronous=NORMAL: a commit survives the process being killed; only an OS
crash or power loss can roll back the last ones (see analytics.py's Outbox for the same trade-off).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iron_tui.core.ledger_schema import MIGRATIONS, SCHEMA, CallRow, LedgerStorageError, hold_lock, try_lock
from iron_tui.core.sqlite_shared import add_columns, open_shared

LAZY_FLUSH_S = 0.05  # settlements
PROGRESS_FLUSH_S = 0.5  # stream progress checkpoints
_AUTOCHECKPOINT_PAGES = 10_000  # backstop; the engine checkpoints from a worker thread

# Queued operations: (kind, args). Kinds: admit, finish (progress is coalesced apart).
_Op = tuple[str, tuple[Any, ...]]


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
    conn.executescript(SCHEMA)
    add_columns(conn, MIGRATIONS)


class LedgerStore:
    """One process's handle on the shared state. Not thread-safe: used from the engine's loop only."""

    def __init__(self, db_path: Path, *, on_commit: Callable[[dict[str, tuple[int, int]]], None] | None = None,
                 on_error: Callable[[sqlite3.Error], None] | None = None) -> None:
        self.path = Path(db_path)
        self.holder = "h-" + secrets.token_hex(8)
        # Called after a commit that changed spent: {period_key: (spent after it, this process's costs in it)}.
        self.on_commit = on_commit
        self.on_error = on_error
        self.failed = False  # a write failed: the ledger falls back to enforcing in memory
        self._queue: list[_Op] = []
        self._progress: dict[str, tuple[int, int, int, int]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._urgent: asyncio.Handle | None = None
        self._lazy: asyncio.TimerHandle | None = None
        self._lock_fd: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: every transaction below is explicit.
            self._conn: sqlite3.Connection | None = open_shared(self.path, _setup)
            self._lock_fd = hold_lock(self.lock_path(self.holder))
            self._conn.execute("INSERT OR REPLACE INTO holders VALUES (?, ?, ?)",
                               (self.holder, os.getpid(), time.time()))
        except (sqlite3.Error, OSError) as exc:
            self.close()
            raise LedgerStorageError(f"cannot open budget database {self.path}: {exc}") from exc

    def lock_path(self, holder: str) -> Path:
        return self.path.parent / "holders" / f"{holder}.lock"

    # --- reads and synchronous transactions ------------------------------------------------------

    def load_spent(self, period_key: str) -> int:
        row = self._db().execute("SELECT spent_micros FROM budget_periods WHERE period_key = ?",
                                 (period_key,)).fetchone()
        return int(row[0]) if row else 0

    def grow_slice(self, period_key: str, want: int, limit: int) -> tuple[int, int]:
        """Lease up to `want` more µ$ of `limit` for this process: (its slice now, spent now).
        Atomic across processes; what is queued is committed first, in the same transaction."""
        def txn(db: sqlite3.Connection) -> tuple[int, int]:
            spent = self._spent_in(db, period_key)
            mine, others = 0, 0
            for holder, micros in db.execute(
                    "SELECT holder, micros FROM budget_slices WHERE period_key = ?", (period_key,)):
                if holder == self.holder:
                    mine = int(micros)
                else:
                    others += int(micros)
            grant = max(0, min(want, limit - spent - others - mine))
            if grant:
                mine += grant
                db.execute("INSERT INTO budget_slices VALUES (?, ?, ?, ?) ON CONFLICT(holder, period_key) "
                           "DO UPDATE SET micros = excluded.micros, updated_at = excluded.updated_at",
                           (self.holder, period_key, mine, time.time()))
            return mine, spent

        return self._transaction(txn)  # type: ignore[no-any-return]

    # --- queued writes ---------------------------------------------------------------------------

    def admit(self, row: CallRow) -> None:
        """Journal an admitted call; `durable()` waits until it is committed."""
        self._enqueue(("admit", (row.id, row.period_key, row.reserved_micros, row.started_at, row.provider,
                                 row.model, row.api, row.agent_id, row.event_id, row.input_tokens)), urgent=True)

    def progress(self, call_id: str, input_tokens: int, output_tokens: int, output_chars: int,
                 web_searches: int = 0) -> None:
        """Checkpoint a call's progress (coalesced: the latest values go out with the next commit, at
        most `PROGRESS_FLUSH_S` later)."""
        if self.failed:
            return
        self._progress[call_id] = (input_tokens, output_tokens, output_chars, web_searches)
        self._schedule(urgent=False, delay=PROGRESS_FLUSH_S)

    def finish(self, call_id: str | None, period_key: str, cost: int, slice_delta: int) -> None:
        """Charge `cost` to the period, add `slice_delta` to this process's slice (never below 0) and
        drop the call's journal row (if any) — one transaction, so a call is charged once."""
        if call_id is not None:
            self._progress.pop(call_id, None)
        self._enqueue(("finish", (call_id, period_key, cost, slice_delta)), urgent=False)

    def pending(self) -> bool:
        return bool(self._queue or self._progress)

    async def durable(self) -> None:
        """Wait until everything queued so far is committed (or the write failed: then at once)."""
        if not self._queue or self._conn is None:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        await fut

    def flush(self) -> None:
        """Commit everything queued now, in one transaction."""
        for handle in (self._urgent, self._lazy):
            if handle is not None:
                handle.cancel()
        self._urgent = self._lazy = None
        if self._conn is not None and (self._queue or self._progress):
            with contextlib.suppress(sqlite3.Error):
                self._transaction(lambda db: None)
        self._wake()

    # --- crash recovery --------------------------------------------------------------------------

    def other_holders(self) -> list[str]:
        rows = self._db().execute(
            "SELECT holder FROM holders UNION SELECT holder FROM calls UNION SELECT holder FROM budget_slices"
        ).fetchall()
        return sorted(h for (h,) in rows if h != self.holder)

    def take_dead_holder(self, holder: str) -> int | None:
        """If `holder`'s process is gone, take its lock (so no one else recovers it at the same time)
        and return the lock's file descriptor for `release_dead_holder`; None while it lives."""
        path = self.lock_path(holder)
        return try_lock(path)

    def calls_of(self, holder: str) -> list[CallRow]:
        rows = self._db().execute(
            "SELECT id, period_key, reserved_micros, started_at, provider, model, api, agent_id, event_id, "
            "input_tokens, output_tokens, output_chars, web_searches FROM calls WHERE holder = ? ORDER BY started_at",
            (holder,)).fetchall()
        return [CallRow(*r) for r in rows]

    def settle_dead(self, holder: str, charges: dict[str, int]) -> dict[str, int]:
        """Charge a dead holder's calls (`charges`: call id → µ$), drop its rows and slices: one
        transaction. Only rows still present are charged, so two recoverers never charge twice.
        Returns {period_key: µ$ charged}."""
        spent_after: dict[str, tuple[int, int]] = {}

        def txn(db: sqlite3.Connection) -> dict[str, int]:
            charged: dict[str, int] = {}
            for call_id, period_key in db.execute(
                    "SELECT id, period_key FROM calls WHERE holder = ?", (holder,)).fetchall():
                cost = charges.get(call_id, 0)
                if cost and period_key != "session":
                    spent_after[period_key] = (self._add_spent(db, period_key, cost), 0)
                    charged[period_key] = charged.get(period_key, 0) + cost
            for table in ("calls", "budget_slices", "holders"):
                db.execute(f"DELETE FROM {table} WHERE holder = ?", (holder,))
            return charged

        charged: dict[str, int] = self._transaction(txn)
        if spent_after and self.on_commit is not None:
            self.on_commit(spent_after)
        return charged

    def release_dead_holder(self, holder: str, fd: int) -> None:
        with contextlib.suppress(OSError):
            self.lock_path(holder).unlink()
        with contextlib.suppress(OSError):
            os.close(fd)

    # --- lifecycle -------------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Copy the WAL into the database (PASSIVE); meant for a worker thread, own connection."""
        with sqlite3.connect(self.path, timeout=5.0) as db:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def close(self) -> None:
        """Flush, forget this process's slices and holder row, release the lock. Its journal rows for
        calls that never settled stay: the next start recovers them."""
        if getattr(self, "_conn", None) is not None:
            self.flush()
            with contextlib.suppress(sqlite3.Error):
                self._transaction(self._forget_self)
            with contextlib.suppress(sqlite3.Error):
                assert self._conn is not None
                self._conn.close()
        self._conn = None
        if self._lock_fd is not None:
            if not self.calls_left:
                with contextlib.suppress(OSError):
                    self.lock_path(self.holder).unlink()
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None
        self._wake()

    calls_left = 0  # journal rows left behind at close (unsettled calls)

    # --- internals -------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("budget database is closed")
        return self._conn

    def _forget_self(self, db: sqlite3.Connection) -> None:
        self.calls_left = int(db.execute("SELECT count(*) FROM calls WHERE holder = ?",
                                         (self.holder,)).fetchone()[0])
        db.execute("DELETE FROM budget_slices WHERE holder = ?", (self.holder,))
        if not self.calls_left:
            db.execute("DELETE FROM holders WHERE holder = ?", (self.holder,))

    def _transaction(self, body: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `body` in one BEGIN IMMEDIATE transaction, after the queued writes (order is kept).
        A busy database puts the queued writes back for the next attempt; any other error marks the
        store failed (the ledger then enforces in memory)."""
        db = self._db()
        ops, self._queue = self._queue, []
        progress, self._progress = self._progress, {}
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                touched = self._apply(db, ops, progress) if ops or progress else {}
                result = body(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                self._queue[:0] = ops
                for call_id, values in progress.items():
                    self._progress.setdefault(call_id, values)
                self._retry_later()
            else:
                self._storage_failed(exc)
            raise
        except sqlite3.Error as exc:
            self._storage_failed(exc)
            raise
        if touched and self.on_commit is not None:
            self.on_commit(touched)
        return result

    def _apply(self, db: sqlite3.Connection, ops: list[_Op], progress: dict[str, tuple[int, int, int, int]]
               ) -> dict[str, tuple[int, int]]:
        touched: dict[str, tuple[int, int]] = {}
        holder = self.holder
        for kind, args in ops:
            if kind == "admit":
                db.execute("INSERT OR REPLACE INTO calls (holder, id, period_key, reserved_micros, started_at, "
                           "provider, model, api, agent_id, event_id, input_tokens) VALUES "
                           "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (holder, *args))
            elif kind == "finish":
                call_id, period_key, cost, delta = args
                if call_id is not None:
                    db.execute("DELETE FROM calls WHERE holder = ? AND id = ?", (holder, call_id))
                if period_key != "session":
                    if cost:
                        before = touched.get(period_key, (0, 0))[1]
                        touched[period_key] = (self._add_spent(db, period_key, cost), before + cost)
                    if delta:
                        db.execute("UPDATE budget_slices SET micros = max(0, micros + ?) "
                                   "WHERE holder = ? AND period_key = ?", (delta, holder, period_key))
        if progress:
            db.executemany("UPDATE calls SET input_tokens = ?, output_tokens = ?, output_chars = ?, "
                           "web_searches = ? WHERE holder = ? AND id = ?",
                           [(*values, holder, call_id) for call_id, values in progress.items()])
        return touched

    @staticmethod
    def _spent_in(db: sqlite3.Connection, period_key: str) -> int:
        row = db.execute("SELECT spent_micros FROM budget_periods WHERE period_key = ?", (period_key,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _add_spent(db: sqlite3.Connection, period_key: str, cost: int) -> int:
        row = db.execute(
            "INSERT INTO budget_periods (period_key, spent_micros, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(period_key) DO UPDATE SET spent_micros = spent_micros + excluded.spent_micros, "
            "updated_at = excluded.updated_at RETURNING spent_micros", (period_key, cost, time.time())).fetchone()
        return int(row[0])

    def _enqueue(self, op: _Op, *, urgent: bool) -> None:
        if self.failed:
            return  # the ledger enforces in memory now
        self._queue.append(op)
        self._schedule(urgent=urgent)

    def _schedule(self, *, urgent: bool, delay: float = LAZY_FLUSH_S) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # no event loop (scripts, tests): write through
            return
        if urgent:
            if self._urgent is None:
                self._urgent = loop.call_soon(self.flush)
            return
        if self._urgent is not None:
            return  # a commit is coming at once anyway
        due = loop.time() + delay
        if self._lazy is not None:
            if self._lazy.when() <= due:
                return
            self._lazy.cancel()
        self._lazy = loop.call_at(due, self.flush)

    def _retry_later(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # without a loop the next write tries again
        if self._lazy is None:
            self._lazy = loop.call_later(LAZY_FLUSH_S, self.flush)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _storage_failed(self, exc: sqlite3.Error) -> None:
        if not self.failed:
            self.failed = True
            if self.on_error is not None:
                self.on_error(exc)

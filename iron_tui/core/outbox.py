"""The durable SQLite outbox of analytics events (see analytics.py for the guarantees it serves)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from iron_tui.core.safe_text import clean_text
from iron_tui.core.sqlite_shared import add_columns, open_shared

_AUTOCHECKPOINT_PAGES = 10_000  # backstop only (~40 MB of WAL); the sync loop checkpoints each tick


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


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
    db.executescript(_SCHEMA)
    # Outboxes from before event-id deduplication get the column (existing rows keep NULL).
    add_columns(db, [("outbox", "event_id", "TEXT")],
                then=["CREATE UNIQUE INDEX IF NOT EXISTS outbox_event_id ON outbox (event_id)"])


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
        self._db: sqlite3.Connection | None = open_shared(self.path, _setup)
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
                    (status, clean_text(reason), time.time(), row_id))  # a server's text: no key stored
                db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                db.execute("COMMIT")
                self.dirty = True
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def dead_letter_count(self) -> int:
        with self._lock:
            return int(self._conn().execute("SELECT count(*) FROM dead_letter").fetchone()[0])

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

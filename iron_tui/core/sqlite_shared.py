"""Opening a SQLite database that several iron-tui processes share (one data dir), in WAL mode.

Two processes that open a new database at the same moment race to switch it to WAL and to create its
tables, and SQLite answers the loser "database is locked" at once, without waiting for its busy timeout
(18 of 90 simultaneous opens of a new budget ledger failed that way). So opening is retried, after a
short randomised pause that grows, until `wait_s` has passed; only then is the error the caller's.
`add_columns` migrates a database from an older release, safely when several processes open it at once.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED


def is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES  # (extended codes keep the primary one in the low byte)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def open_shared(path: Path | str, setup: Callable[[sqlite3.Connection], None], *, timeout: float = 5.0,
                wait_s: float = 10.0) -> sqlite3.Connection:
    """An autocommit connection to `path` in WAL mode, with `setup` (pragmas, schema) run on it."""
    deadline = time.monotonic() + wait_s
    pause = 0.005
    while True:
        conn = sqlite3.connect(path, isolation_level=None, timeout=timeout, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            setup(conn)
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if not is_busy(exc) or time.monotonic() + pause > deadline:
                raise
        except BaseException:
            conn.close()
            raise
        time.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 0.25)


def add_columns(db: sqlite3.Connection, columns: Iterable[tuple[str, str, str]], then: Iterable[str] = ()) -> None:
    """Add each (table, column, declaration) a database from an older release lacks, then run `then`
    (e.g. an index on a new column). Looked at and altered in one write transaction: two processes
    opening one old database at once would otherwise both add a column, and the second would fail."""
    columns, then = list(columns), list(then)

    def missing() -> list[tuple[str, str, str]]:
        have: dict[str, set[str]] = {}
        for table, _column, _decl in columns:
            if table not in have:
                have[table] = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        return [c for c in columns if c[1] not in have[c[0]]]

    if not then and not missing():
        return  # the usual case: nothing to change, no write lock taken
    db.execute("BEGIN IMMEDIATE")
    try:
        for table, column, decl in missing():
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        for statement in then:
            db.execute(statement)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise

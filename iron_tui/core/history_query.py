"""Reading the on-disk request history (every session, up to the newest 100,000 calls) with filters.

`History` (history.py) writes the `requests` table; this module only reads it, on its own read-only
connection to the same SQLite file, so browsing never holds up the writer. Queries run in SQL
(`Filter.sql`), newest first, in pages:

    reader = HistoryReader(path)
    page = reader.page(Filter.parse("is:error model:gpt"), limit=200)
    more = reader.page(flt, after=page.cursor, limit=200)
    reader.count(flt)      # how many match in all

Blocking calls: run them in a worker thread (`asyncio.to_thread`), never on the event loop.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from iron_tui.core.filter_expr import Filter
from iron_tui.core.filter_sql import register_sql_functions

Cursor = tuple[float, int]  # (started_at, rowid) of the last row of a page


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]  # summaries, newest first; each carries "session"
    cursor: Cursor | None  # pass as `after` for the next page; None when this was the last


@dataclass(frozen=True)
class SessionInfo:
    session: str
    first_started: float
    last_started: float
    calls: int


class HistoryReader:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.path is not None and self.path.exists()

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is None:
            if not self.available:
                return None
            assert self.path is not None
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
            db.execute("PRAGMA query_only=ON")
            register_sql_functions(db)
            self._db = db
        return self._db

    def _rows(self, sql: str, args: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            db = self._conn()
            if db is None:
                return []
            try:
                return db.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):  # nothing written yet
                    return []
                raise

    def page(self, flt: Filter, *, session: str | None = None, after: Cursor | None = None,
             limit: int = 200) -> Page:
        where, args = flt.sql()
        sql = "SELECT summary, session, started_at, rowid FROM requests WHERE " + where
        if session is not None:
            sql += " AND session = ?"
            args.append(session)
        if after is not None:
            sql += " AND (started_at < ? OR (started_at = ? AND rowid < ?))"
            args.extend([after[0], after[0], after[1]])
        # (started_at, rowid) is the order of the started_at index (rowid is its last column).
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        args.append(limit + 1)
        got = self._rows(sql, args)
        rows = [_summary(raw, session_id) for raw, session_id, _ts, _rid in got[:limit]]
        cursor = (got[limit - 1][2], got[limit - 1][3]) if len(got) > limit else None
        return Page(rows, cursor)

    def count(self, flt: Filter, *, session: str | None = None) -> int:
        where, args = flt.sql()
        sql = "SELECT count(*) FROM requests WHERE " + where
        if session is not None:
            sql += " AND session = ?"
            args.append(session)
        got = self._rows(sql, args)
        return int(got[0][0]) if got else 0

    def get(self, request_id: str) -> dict[str, Any] | None:
        got = self._rows("SELECT summary, session FROM requests WHERE id = ?", [request_id])
        return _summary(got[0][0], got[0][1]) if got else None

    def sessions(self) -> list[SessionInfo]:
        """Newest first."""
        got = self._rows("SELECT session, min(started_at), max(started_at), count(*) FROM requests "
                         "GROUP BY session ORDER BY max(started_at) DESC", [])
        return [SessionInfo(s, a, b, n) for s, a, b, n in got]

    def iter_session(self, session: str, batch: int = 5000) -> Iterator[dict[str, Any]]:
        """Every summary of one session, newest first, read in batches."""
        after: Cursor | None = None
        while True:
            page = self.page(Filter(), session=session, after=after, limit=batch)
            yield from page.rows
            if page.cursor is None:
                return
            after = page.cursor

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None


def _summary(raw: str, session: str) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads(raw)
    obj["session"] = session
    return obj

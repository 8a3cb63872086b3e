"""Conversation state for `previous_response_id` on translated Responses calls (OpenAI keeps its own).

A SQLite file in the data dir (`responses.sqlite3`) keeps, per response iron-tui translated, that
request's own input items, the response's output items and the id it continued. `load(id)` walks that
chain back and returns every item oldest first — what the pipeline puts in `ctx.previous_items`.

Like OpenAI, nothing is kept for `store: false` (Codex sends full history instead), and `instructions`
are not carried over. The store is bounded: at most `max_responses` responses and `max_bytes` of items;
beyond either the oldest are evicted, so a very old `previous_response_id` (or a chain through an
evicted response) gets OpenAI's own 400 "Previous response with id '…' not found.". Several iron-tui
processes may share the file (WAL mode); a process never holds a lock between calls.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from iron_tui.core.dialects.base import RequestContext, TranslationError
from iron_tui.core.dialects.responses.output import ResponsesState, decode_reasoning
from iron_tui.core.sqlite_shared import open_shared

__all__ = ["FILE_NAME", "MAX_BYTES", "MAX_RESPONSES", "ResponsesStore", "input_items"]

FILE_NAME = "responses.sqlite3"
MAX_RESPONSES = 5_000
MAX_BYTES = 100 * 1024 * 1024
_MAX_CHAIN = 10_000  # hops load() follows; a longer chain is cut at its oldest end
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    previous TEXT,
    items BLOB NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL
)
"""
_CHAIN = """
WITH RECURSIVE chain(id, previous, items, depth) AS (
    SELECT id, previous, items, 0 FROM responses WHERE id = ?
    UNION ALL
    SELECT r.id, r.previous, r.items, chain.depth + 1
    FROM responses r JOIN chain ON r.id = chain.previous
    WHERE chain.depth < ?
)
SELECT id, previous, items FROM chain ORDER BY depth DESC
"""


def not_found(response_id: str, detail: str = "") -> TranslationError:
    return TranslationError(f"Previous response with id '{response_id}' not found.{detail}",
                            "previous_response_id", "previous_response_not_found")


def input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's `input` as a list of items (a string input is one user message)."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    return [item for item in raw if isinstance(item, dict)] if isinstance(raw, list) else []


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(_SCHEMA)


class ResponsesStore:
    def __init__(self, path: Path | None, *, max_responses: int = MAX_RESPONSES,
                 max_bytes: int = MAX_BYTES) -> None:
        """`path` None: kept in memory only (an engine without a data dir)."""
        self.path = path
        self.max_responses = max_responses
        self.max_bytes = max_bytes
        self.evicted = 0  # responses evicted by this process (shown in diagnostics and tests)
        self.last_error: str | None = None  # the last failed save, if any (a call never fails for it)
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        target = str(path) if path is not None else ":memory:"
        self._db = open_shared(target, _setup, timeout=10)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def load(self, response_id: object) -> list[dict[str, Any]]:
        """Every item of the conversation `response_id` ends, oldest first; TranslationError if unknown."""
        if not isinstance(response_id, str) or not response_id:
            raise TranslationError("'previous_response_id' must be a non-empty string", "previous_response_id",
                                   "invalid_type")
        with self._lock:
            rows = self._db.execute(_CHAIN, (response_id, _MAX_CHAIN)).fetchall()
        if not rows:
            raise not_found(response_id)
        oldest_previous = rows[0][1]
        if oldest_previous is not None and len(rows) <= _MAX_CHAIN:
            raise not_found(response_id, f" It continues '{oldest_previous}', which is no longer in iron-tui's "
                                         f"local store (it keeps the newest {self.max_responses} responses).")
        items: list[dict[str, Any]] = []
        for _id, _prev, blob in rows:
            items.extend(orjson.loads(blob))
        return items

    def expand_for_openai(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """A native OpenAI call continuing a response iron-tui translated (a conversation that moved
        from Claude to a GPT model): the body with that history in `input` instead of the id OpenAI
        does not know. None when the id is not one kept here (OpenAI's own). Reasoning only Claude can
        read and the item ids minted here are left out (OpenAI would refuse both)."""
        rid = body.get("previous_response_id")
        if not isinstance(rid, str):
            return None
        with self._lock:
            known = self._db.execute("SELECT 1 FROM responses WHERE id = ?", (rid,)).fetchone()
        if known is None:
            return None
        history = [{k: v for k, v in item.items() if k != "id"} for item in self.load(rid)
                   if not (item.get("type") == "reasoning" and decode_reasoning(item.get("encrypted_content")))]
        out = {k: v for k, v in body.items() if k != "previous_response_id"}
        out["input"] = history + input_items(body)
        return out

    def remember(self, ctx: RequestContext, response: dict[str, Any] | None) -> bool:
        """After a translated Responses call completed: keep it for a later `previous_response_id`.
        A storage failure is noted in `last_error`, never raised: the client already has its answer."""
        state = ctx.state
        if response is None or not isinstance(state, ResponsesState):
            return False
        try:
            return self.save(state.body, response)
        except (sqlite3.Error, TypeError, ValueError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False

    def save(self, body: dict[str, Any], response: dict[str, Any]) -> bool:
        """Keep a finished response (and its request's input) unless the client said `store: false`.
        Returns whether it was kept (a response larger than the whole bound is not)."""
        response_id = response.get("id")
        if body.get("store") is False or not isinstance(response_id, str):
            return False
        if response.get("status") not in ("completed", "incomplete"):
            return False
        output = response.get("output")
        blob = orjson.dumps(input_items(body) + (output if isinstance(output, list) else []))
        if len(blob) > self.max_bytes:
            return False
        previous = body.get("previous_response_id")
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses (id, previous, items, size, created) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (response_id, previous if isinstance(previous, str) else None, blob, len(blob),
                              time.time()))
            self._evict()
        return True

    def _evict(self) -> None:
        count, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM responses").fetchone()
        while count > self.max_responses or size > self.max_bytes:
            rows = self._db.execute("SELECT rowid, size FROM responses ORDER BY rowid LIMIT 64").fetchall()
            drop: list[int] = []
            for rowid, row_size in rows:
                if count <= self.max_responses and size <= self.max_bytes:
                    break
                drop.append(rowid)
                count -= 1
                size -= row_size
            self._db.executemany("DELETE FROM responses WHERE rowid = ?", [(r,) for r in drop])
            self.evicted += len(drop)

"""The dashboard's view model: recent request summaries, filtered and sorted, with a stable selection.

Plain Python (no widgets), so the `@on` handlers that own UI state stay small and this is easy to test.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from iron_tui.core.filter_expr import Filter
from iron_tui.core.filter_match import status_text
from iron_tui.core.stats import alert_level

Row = dict[str, Any]

# Sortable columns: (key, label, value of a row, newest/biggest first by default).
_SORT_KEYS: dict[str, tuple[str, Callable[[Row], Any], bool]] = {
    "time": ("time", lambda r: (r.get("started_at") or "", r.get("id") or ""), True),
    "latency": ("latency", lambda r: r.get("latency_ms") or -1.0, True),
    "ttft": ("TTFT", lambda r: r.get("ttft_ms") or -1.0, True),
    "cost": ("cost", lambda r: r.get("cost_usd") or -1.0, True),
    "tokens": ("tokens", lambda r: (r.get("input_tokens") or 0) + (r.get("output_tokens") or 0), True),
    "status": ("status", lambda r: r.get("status") or (0 if r.get("state") == "pending" else 999), True),
    "model": ("model", lambda r: str(r.get("model") or ""), False),
    "provider": ("provider", lambda r: str(r.get("provider") or ""), False),
}
SORT_ORDER = tuple(_SORT_KEYS)


@dataclass(frozen=True)
class Sort:
    key: str = "time"
    descending: bool = True

    @property
    def label(self) -> str:
        return _SORT_KEYS[self.key][0] + (" ↓" if self.descending else " ↑")

    @property
    def is_default(self) -> bool:
        return self.key == "time" and self.descending

    def next_key(self) -> Sort:
        key = SORT_ORDER[(SORT_ORDER.index(self.key) + 1) % len(SORT_ORDER)]
        return Sort(key, _SORT_KEYS[key][2])

    def by(self, key: str) -> Sort:
        """Sort by `key`; by the same key again flips the direction."""
        if key == self.key:
            return Sort(key, not self.descending)
        return Sort(key, _SORT_KEYS[key][2])

    def flipped(self) -> Sort:
        return Sort(self.key, not self.descending)


class MatchCache:
    """Filter results per row, so a refresh only evaluates rows that are new or changed.

    `bodies(id)` returns a call's recorded bodies (for free-text search) or "" when they are gone.
    """

    def __init__(self, flt: Filter, bodies: Callable[[str], str]) -> None:
        self.filter = flt
        self._bodies = bodies
        self._seen: dict[str, tuple[Row, bool]] = {}

    def __call__(self, r: Row) -> bool:
        if not self.filter.active:
            return True
        rid = r["id"]
        hit = self._seen.get(rid)
        if hit is not None and hit[0] is r:
            return hit[1]
        body = (lambda: self._bodies(rid)) if self.filter.uses_text else None
        ok = self.filter.matches(r, body)
        self._seen[rid] = (r, ok)
        if len(self._seen) > 50_000:
            self._seen.clear()
        return ok


class RequestStore:
    """The last `capacity` request summaries by id, in arrival order (a finish updates in place).

    One id may be pinned (the selection): when it falls out of the window it is kept aside, so the
    row the user is looking at never disappears under load.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._rows: OrderedDict[str, Row] = OrderedDict()
        self._pinned: str | None = None
        self._kept: Row | None = None  # the pinned row, after it left the window
        self.total_seen = 0  # calls ever added (not capped by capacity)

    def upsert(self, rows: list[Row]) -> int:
        """Add or update rows; returns how many were new."""
        new = 0
        for r in rows:
            rid = r["id"]
            if rid not in self._rows and not (self._kept is not None and self._kept["id"] == rid):
                new += 1
            if self._kept is not None and self._kept["id"] == rid:
                self._kept = r
                continue
            self._rows[rid] = r
        self.total_seen += new
        while len(self._rows) > self.capacity:
            rid, r = self._rows.popitem(last=False)
            if rid == self._pinned:
                self._kept = r
        return new

    def pin(self, request_id: str | None) -> None:
        self._pinned = request_id
        if self._kept is not None and self._kept["id"] != request_id:
            self._kept = None

    def clear(self) -> tuple[OrderedDict[str, Row], int]:
        """Empty the store; returns what undo() needs."""
        saved = (self._rows, self.total_seen)
        self._rows = OrderedDict()
        self._kept = None
        self.total_seen = 0
        return saved

    def restore(self, saved: tuple[OrderedDict[str, Row], int]) -> None:
        """Undo a clear: the rows from before it, then everything that arrived since."""
        since, seen_since = self._rows, self.total_seen
        self._rows, self.total_seen = saved
        self.upsert(list(since.values()))
        self.total_seen = saved[1] + seen_since

    def get(self, request_id: str) -> Row | None:
        r = self._rows.get(request_id)
        if r is None and self._kept is not None and self._kept["id"] == request_id:
            return self._kept
        return r

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def newest_id(self) -> str | None:
        return next(reversed(self._rows), None) if self._rows else None

    def view(self, match: Callable[[Row], bool], sort: Sort, limit: int) -> tuple[list[Row], int]:
        """Up to `limit` matching rows in `sort` order, and how many match in all."""
        rows = [r for r in reversed(self._rows.values()) if match(r)]
        if self._kept is not None and match(self._kept):
            rows.append(self._kept)
        matched = len(rows)
        if not sort.is_default:
            value = _SORT_KEYS[sort.key][1]
            rows.sort(key=value, reverse=sort.descending)
        return rows[:limit], matched


__all__ = ["SORT_ORDER", "MatchCache", "RequestStore", "Row", "Sort", "alert_level", "status_text"]

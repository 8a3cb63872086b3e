"""The dashboard's view model: recent requests, the filter, per-model totals, the spend series.

Plain Python (no widgets), so the handlers that own UI state stay small and this part is easy to test.
"""

from __future__ import annotations

import shlex
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from iron_tui.core.budget import ALERT_THRESHOLDS, format_usd
from iron_tui.core.events import MICROS_PER_USD

FILTER_FIELDS = ("model", "provider", "status", "id", "api", "agent", "error")


# --- formatting -----------------------------------------------------------------------------------


def fmt_cost(r: dict[str, Any]) -> str:
    """'$0.000123', '~$0.0012' when estimated, 'unpriced', '' while unknown."""
    if not r.get("priced", True):
        return "unpriced"
    cost = r.get("cost_usd")
    if cost is None:
        return ""
    text = "$" + format_usd(round(cost * MICROS_PER_USD))
    return "~" + text if r.get("cost_estimated") else text


def fmt_usd(micros: int | None) -> str:
    return "unlimited" if micros is None else "$" + format_usd(micros)


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return ""
    if ms >= 10_000:
        return f"{ms / 1000:.1f}s"
    return f"{ms:.0f}ms"


def fmt_tokens(n: int | None) -> str:
    if not n:
        return "0" if n == 0 else ""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.1f}k"
    return str(n)


def fmt_time(iso: str) -> str:
    """HH:MM:SS in local time from the feed's ISO-8601 UTC timestamp."""
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return iso


def fmt_duration(seconds: float) -> str:
    s = max(0, int(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def fmt_age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    return f"{s // 3600}h ago"


def status_text(r: dict[str, Any]) -> str:
    if r.get("state") == "pending":
        return "…"
    status = r.get("status")
    return str(status) if status is not None else "err"


# --- filter ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestFilter:
    """`model:gpt provider:anthropic status:err words…` — every term must match (case-insensitive).

    status: a code prefix (`5`, `429`), `ok`, `err` (failed or ≥ 400) or `pending`. Free words match
    the id, model, provider, status, api, agent or error text.
    """

    text: str = ""
    terms: tuple[tuple[str | None, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> RequestFilter:
        text = text.strip()
        try:
            words = shlex.split(text)
        except ValueError:  # an unbalanced quote: take the words as typed
            words = text.split()
        terms: list[tuple[str | None, str]] = []
        for word in words:
            key, sep, value = word.partition(":")
            if sep and key.lower() in FILTER_FIELDS and value:
                terms.append((key.lower(), value.lower()))
            else:
                terms.append((None, word.lower()))
        return cls(text, tuple(terms))

    @property
    def active(self) -> bool:
        return bool(self.terms)

    def matches(self, r: dict[str, Any]) -> bool:
        return all(_term(key, value, r) for key, value in self.terms)


def _field(r: dict[str, Any], key: str) -> str:
    if key == "agent":
        return str(r.get("agent_id") or "").lower()
    if key == "status":
        return status_text(r).lower()
    return str(r.get(key) or "").lower()


def _term(key: str | None, value: str, r: dict[str, Any]) -> bool:
    if key is None:
        return any(value in _field(r, k) for k in FILTER_FIELDS)
    if key == "status":
        status = r.get("status")
        if value in ("err", "error", "failed"):
            return r.get("state") == "error" or (status is not None and status >= 400)
        if value == "ok":
            return r.get("state") == "ok"
        if value == "pending":
            return r.get("state") == "pending"
        return _field(r, "status").startswith(value)
    return value in _field(r, key)


# --- stores ---------------------------------------------------------------------------------------


class RequestStore:
    """The last `capacity` request summaries by id, in arrival order (a finish updates in place)."""

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._rows: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def upsert(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self._rows[r["id"]] = r
        while len(self._rows) > self.capacity:
            self._rows.popitem(last=False)

    def clear(self) -> None:
        self._rows.clear()

    def get(self, request_id: str) -> dict[str, Any] | None:
        return self._rows.get(request_id)

    def __len__(self) -> int:
        return len(self._rows)

    def newest_first(self, flt: RequestFilter, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Up to `limit` matching rows, newest first, and how many match in all."""
        out: list[dict[str, Any]] = []
        matched = 0
        for r in reversed(self._rows.values()):
            if flt.matches(r):
                matched += 1
                if len(out) < limit:
                    out.append(r)
        return out, matched


@dataclass
class ModelTotal:
    provider: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    unpriced: int = 0


@dataclass
class SpendSeries:
    """Spend per fixed time bucket (engine clock), for the sparkline."""

    bucket_s: float = 10.0
    keep: int = 120
    buckets: dict[int, int] = field(default_factory=dict)

    def add(self, ts: float, micros: int) -> None:
        key = int(ts // self.bucket_s)
        self.buckets[key] = self.buckets.get(key, 0) + micros
        if len(self.buckets) > self.keep:
            for old in sorted(self.buckets)[: len(self.buckets) - self.keep]:
                del self.buckets[old]

    def window(self, now: float, n: int) -> list[float]:
        """The last `n` buckets ending at `now`, in USD (zeros where nothing was spent)."""
        last = int(now // self.bucket_s)
        return [self.buckets.get(k, 0) / MICROS_PER_USD for k in range(last - n + 1, last + 1)]


def add_totals(totals: dict[str, ModelTotal], finished: list[dict[str, Any]]) -> None:
    for r in finished:
        t = totals.get(r["model"])
        if t is None:
            t = totals[r["model"]] = ModelTotal(provider=r["provider"])
        t.calls += 1
        t.input_tokens += r.get("input_tokens") or 0
        t.output_tokens += r.get("output_tokens") or 0
        cost = r.get("cost_usd")
        if not r.get("priced", True):
            t.unpriced += 1
        elif cost is not None:
            t.cost_micros += round(cost * MICROS_PER_USD)


def alert_level(spent: int, limit: int | None) -> str:
    """ok / warning / critical / exhausted, at the engine's alert thresholds."""
    if limit is None:
        return "ok"
    if limit <= 0:
        return "exhausted"
    pct = 100.0 * spent / limit
    level = "ok"
    for severity, threshold in ALERT_THRESHOLDS:
        if pct >= threshold:
            level = severity
    return level

"""Totals over finished calls: per model, provider and agent; rate and latency series; a budget forecast.

Plain data in, plain data out (no engine, no I/O), so every front end shows the same numbers:

    acc = TotalsAccumulator()
    acc.add(summary)                      # each finished call, once (RequestRecord.summary())
    acc.groups("model")                   # [GroupTotals], most expensive first
    acc.rate_series(now, n=30)               # calls per 10 s bucket, oldest first
    forecast(spent, limit, acc.spend_points(), now)

Percentiles are nearest-rank (p95 of 20 calls is the 19th fastest), over the last
`SAMPLES_PER_GROUP` calls of a group, so memory stays bounded however long the session runs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from iron_tui.core.budget_state import ALERT_THRESHOLDS
from iron_tui.core.filter_match import is_failed

GroupBy = Literal["model", "provider", "agent"]
GROUPINGS: tuple[GroupBy, ...] = ("model", "provider", "agent")
SAMPLES_PER_GROUP = 10_000
SERIES_KEEP_S = 3600.0  # the rate/latency/spend series remember the last hour
BUCKET_S = 10.0  # the series' resolution
SAMPLES_PER_BUCKET = 2000  # latencies kept per bucket for its percentile
MICROS = 1_000_000


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of unsorted values; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class _Group:
    provider: str = ""
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    unpriced: int = 0
    latency: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES_PER_GROUP))
    ttft: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES_PER_GROUP))


@dataclass(frozen=True)
class GroupTotals:
    key: str
    provider: str  # for model groups: the provider serving it
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_micros: int
    unpriced: int
    latency_p50: float | None
    latency_p95: float | None
    ttft_p50: float | None
    ttft_p95: float | None
    sampled: int  # calls the percentiles are over (≤ SAMPLES_PER_GROUP)

    def share(self, whole_micros: int | None) -> float | None:
        """Fraction of `whole_micros` (the budget limit) this group spent; None without a limit."""
        if not whole_micros:
            return None
        return self.cost_micros / whole_micros


def _key(r: dict[str, Any], by: GroupBy) -> str:
    if by == "model":
        return str(r.get("model") or "?")
    if by == "provider":
        return str(r.get("provider") or "?")
    return str(r.get("agent_id") or "(no agent)")


def cost_micros(r: dict[str, Any]) -> int:
    cost = r.get("cost_usd")
    return round(cost * MICROS) if isinstance(cost, int | float) and r.get("priced", True) else 0


def first_token_ms(r: dict[str, Any]) -> float | None:
    """TTFT only where it means something: a stream that delivered its first token."""
    ttft = r.get("ttft_ms")
    if not r.get("stream") or ttft is None or (is_failed(r) and not r.get("output_tokens")):
        return None
    return float(ttft)


class TotalsAccumulator:
    """Running totals, fed each finished call once. O(1) per call; only percentile queries sort."""

    def __init__(self) -> None:
        self._groups: dict[GroupBy, dict[str, _Group]] = {g: {} for g in GROUPINGS}
        self.calls = 0
        self.errors = 0
        self.cost_micros = 0
        # Per BUCKET_S bucket (index = floor(t / BUCKET_S)): [calls, µ$, latencies of successful calls],
        # the last SERIES_KEEP_S seconds, so a series query costs the same after a day as after a minute.
        self._buckets: dict[int, list[Any]] = {}

    def add(self, r: dict[str, Any], finished_at: float) -> None:
        failed = is_failed(r)
        cost = cost_micros(r)
        latency = r.get("latency_ms")
        ttft = first_token_ms(r)
        self.calls += 1
        self.errors += failed
        self.cost_micros += cost
        for by in GROUPINGS:
            groups = self._groups[by]
            key = _key(r, by)
            g = groups.get(key)
            if g is None:
                g = groups[key] = _Group(provider=str(r.get("provider") or ""))
            g.calls += 1
            g.errors += failed
            g.input_tokens += r.get("input_tokens") or 0
            g.output_tokens += r.get("output_tokens") or 0
            g.cost_micros += cost
            if not r.get("priced", True):
                g.unpriced += 1
            if latency is not None and not failed:
                g.latency.append(float(latency))
            if ttft is not None:
                g.ttft.append(ttft)
        index = math.floor(finished_at / BUCKET_S)
        bucket = self._buckets.get(index)
        if bucket is None:
            bucket = self._buckets[index] = [0, 0, []]
            oldest = index - int(SERIES_KEEP_S / BUCKET_S)
            for old in [k for k in self._buckets if k < oldest]:
                del self._buckets[old]
        bucket[0] += 1
        bucket[1] += cost
        if latency is not None and not failed and len(bucket[2]) < SAMPLES_PER_BUCKET:
            bucket[2].append(float(latency))

    def extend(self, finished: Iterable[tuple[float, dict[str, Any]]]) -> None:
        for ts, r in finished:
            self.add(r, ts)

    def groups(self, by: GroupBy, *, percentiles: bool = True) -> list[GroupTotals]:
        """Most expensive first, then most calls, then by name. Without `percentiles` (cheap: no sorting)
        the latency and TTFT fields are None."""

        def pct(values: deque[float], p: float) -> float | None:
            return percentile(values, p) if percentiles else None

        out = [
            GroupTotals(
                key=key, provider=g.provider, calls=g.calls, errors=g.errors, input_tokens=g.input_tokens,
                output_tokens=g.output_tokens, cost_micros=g.cost_micros, unpriced=g.unpriced,
                latency_p50=pct(g.latency, 50), latency_p95=pct(g.latency, 95),
                ttft_p50=pct(g.ttft, 50), ttft_p95=pct(g.ttft, 95), sampled=len(g.latency),
            )
            for key, g in self._groups[by].items()
        ]
        out.sort(key=lambda t: (-t.cost_micros, -t.calls, t.key))
        return out

    def _window(self, now: float, n: int) -> list[list[Any] | None]:
        last = math.floor(now / BUCKET_S)
        return [self._buckets.get(k) for k in range(last - n + 1, last + 1)]

    def rate_series(self, now: float, n: int) -> list[int]:
        """Calls finished per BUCKET_S bucket, the last `n` buckets ending at `now`, oldest first."""
        return [0 if b is None else b[0] for b in self._window(now, n)]

    def latency_series(self, now: float, n: int, pct: float = 50) -> list[float | None]:
        """The `pct` latency percentile of successful calls per bucket (None where there were none)."""
        return [None if b is None else percentile(b[2], pct) for b in self._window(now, n)]

    def spend_series(self, now: float, n: int) -> list[int]:
        """µ$ spent per bucket."""
        return [0 if b is None else b[1] for b in self._window(now, n)]

    def spend_points(self) -> list[tuple[float, int]]:
        """(bucket start, µ$) of the buckets of the last hour that cost something, oldest first."""
        return [(k * BUCKET_S, b[1]) for k, b in sorted(self._buckets.items()) if b[1]]


# --- the budget forecast -------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    burn_micros_per_min: float  # over the window
    window_s: float  # how much time the rate is measured over
    remaining_micros: int | None  # None: no limit
    seconds_left: float | None  # at this rate; None when unlimited or nothing is being spent
    exhausted: bool


def forecast(spent: int, limit: int | None, points: Iterable[tuple[float, int]], now: float,
             window_s: float = 600.0) -> Forecast:
    """Burn rate over the last `window_s` seconds (or since the first spend, if later) and when the
    budget runs out at that rate."""
    recent = [(ts, c) for ts, c in points if ts >= now - window_s]
    burned = sum(c for _, c in recent)
    # At least a minute, so one expensive call right now does not read as a huge rate.
    span = max(60.0, now - min((ts for ts, _ in recent), default=now)) if recent else window_s
    per_min = burned / span * 60.0
    remaining = None if limit is None else max(0, limit - spent)
    exhausted = limit is not None and spent >= limit
    seconds = None
    if remaining is not None and per_min > 0 and not exhausted:
        seconds = remaining / per_min * 60.0
    return Forecast(per_min, span, remaining, seconds, exhausted)


def alert_level(spent: int, limit: int | None) -> str:
    """ok / warning / critical / exhausted, at the engine's alert thresholds (80 / 95 / 100 %)."""
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

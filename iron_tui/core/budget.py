"""The budget ledger: admission by reservation, settlement at actual cost, alerts, periods.

Why spend cannot overshoot through concurrency: admission (`reserve`) is synchronous — nothing awaits
between the check and the booking, and the engine is one asyncio thread — and it books the call's
worst-case cost. A call is admitted only while `spent + reserved + worst_case <= limit`, so as long as
each call's actual cost is at most its reservation, the sum of settled costs never exceeds the limit
however many calls are in flight.

When a call's actual cost exceeds its reservation (an estimate too low: e.g. a hosted tool pulled in
content the request body did not show), the actual cost is charged anyway — the money was spent —
and spent may then pass the limit; every later call is refused with `exceeded`.

Every reservation must end in exactly one `settle` or `release` (both idempotent, so a `finally:
ledger.release(res)` after a settle is harmless); the proxy does this on every path.

Periods: "session" is in memory. "day" / "week" / "month" keep spent per calendar period (the LOCAL
calendar of the injected clock: `2026-01-31`, ISO week `2026-W05`, `2026-01`) in SQLite, written
through on every settle (a crash loses no settled spend). Crossing a boundary starts the new period
at the spend stored for it (normally 0) and re-arms the alerts; reads (`spent`, `status()`) report the
new period at once, and the roll-over itself (state, `SpendChanged`) happens on the next
reserve/settle/release/set_limit or `tick()`. A reservation made before a boundary is charged to the period it settles in.
Several processes sharing one database add to the same row (`spent = spent + ?`), so their spend
adds up.

Per-model and per-provider totals cover this ledger's lifetime (this process), not the period.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from iron_tui.core.clock import Clock
from iron_tui.core.events import CostAlert, Event, Notice, Severity, SpendChanged
from iron_tui.core.pricing import TokenUsage

Period = Literal["session", "day", "week", "month"]
PERIODS: tuple[Period, ...] = ("session", "day", "week", "month")

# (severity, percent of the limit at which it fires), ascending.
ALERT_THRESHOLDS: tuple[tuple[Severity, int], ...] = (("warning", 80), ("critical", 95), ("exhausted", 100))


# --- refusal --------------------------------------------------------------------------------------


def format_usd(micros: int) -> str:
    """USD with 2 to 6 decimals: 10.00, 1.2345, 0.000012 (µ$ precision, no float noise)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    digits = f"{frac:06d}".rstrip("0")
    return f"{sign}{whole}.{digits.ljust(2, '0')}"


class BudgetExceeded(Exception):
    """A refused admission. `kind` "exceeded": spent has reached the limit; "insufficient": the
    request's worst-case cost (`estimate`) does not fit in what is left after in-flight reservations."""

    def __init__(
        self,
        kind: Literal["exceeded", "insufficient"],
        *,
        spent: int,
        reserved: int,
        limit: int,
        estimate: int,
        period: str = "session",
    ) -> None:
        self.kind: Literal["exceeded", "insufficient"] = kind
        self.spent = spent
        self.reserved = reserved
        self.limit = limit
        self.estimate = estimate
        self.period = period
        super().__init__(self.message)

    @property
    def available(self) -> int:
        return max(0, self.limit - self.spent - self.reserved)

    @property
    def error_type(self) -> str:
        return "iron_cage_budget_exceeded" if self.kind == "exceeded" else "iron_cage_insufficient_budget"

    @property
    def code(self) -> str:
        return "budget_exceeded" if self.kind == "exceeded" else "insufficient_budget"

    @property
    def message(self) -> str:
        if self.kind == "exceeded":
            adjective = {"day": "daily", "week": "weekly", "month": "monthly"}.get(self.period)
            reset = f" or wait for the {adjective} budget to reset" if adjective else ""
            return (
                f"Iron Cage budget limit exceeded. Spent: ${format_usd(self.spent)}, "
                f"Reserved: ${format_usd(self.reserved)}, Limit: ${format_usd(self.limit)}. "
                f"Increase the budget (router.set_budget(), --budget or the dashboard){reset}."
            )
        return (
            f"Iron Cage insufficient budget for request. Available: ${format_usd(self.available)}, "
            f"Estimated max cost: ${format_usd(self.estimate)}. Reduce max_tokens, wait for in-flight "
            f"requests to complete, or increase the budget."
        )


def budget_error_body(exc: BudgetExceeded, shape: Literal["openai", "anthropic"]) -> dict[str, Any]:
    """The JSON body of the 402 in the caller's API shape (DESIGN.md section 3)."""
    if shape == "anthropic":
        return {"type": "error", "error": {"type": exc.error_type, "message": exc.message}}
    return {"error": {"message": exc.message, "type": exc.error_type, "param": None, "code": exc.code}}


# --- records --------------------------------------------------------------------------------------


@dataclass(eq=False)
class Reservation:
    id: str  # the request id
    amount: int  # µ$ booked at admission
    model: str
    provider: str
    agent_id: str | None = None
    settled: bool = False  # True once settled or released
    _seq: int = field(default=0, repr=False)


@dataclass(slots=True)
class ModelTotals:
    provider: str
    model: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_micros: int = 0
    unpriced_calls: int = 0
    estimated_calls: int = 0


@dataclass(slots=True)
class ProviderTotals:
    provider: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_micros: int = 0
    unpriced_calls: int = 0
    estimated_calls: int = 0


def _add(t: ModelTotals | ProviderTotals, usage: TokenUsage | None, cost: int | None, estimated: bool) -> None:
    t.calls += 1
    if usage is not None:
        t.input_tokens += usage.input_tokens
        t.output_tokens += usage.output_tokens
        t.cache_read_tokens += usage.cache_read_tokens
        t.cache_write_tokens += usage.cache_write_tokens
    if cost is None:
        t.unpriced_calls += 1
    else:
        t.cost_micros += cost
    if estimated:
        t.estimated_calls += 1


def period_key(period: Period, ts: float) -> str:
    """The calendar period containing epoch `ts`, in local time."""
    if period == "session":
        return "session"
    d = datetime.fromtimestamp(ts)
    if period == "day":
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    if period == "week":
        year, week, _ = d.isocalendar()
        return f"{year:04d}-W{week:02d}"
    return f"{d.year:04d}-{d.month:02d}"


class LedgerStorageError(RuntimeError):
    """The budget database could not be opened (message names the file)."""


# --- ledger ---------------------------------------------------------------------------------------


class BudgetLedger:
    """Spent / reserved / limit in integer µ$. `limit_micros=None` means unlimited (never refuses)."""

    def __init__(
        self,
        *,
        limit_micros: int | None,
        publish: Callable[[Event], None],
        clock: Clock,
        period: Period = "session",
        db_path: Path | None = None,
    ) -> None:
        if period not in PERIODS:
            raise ValueError(f"budget period must be one of {', '.join(PERIODS)}, not {period!r}")
        self._limit = _check_limit(limit_micros)
        self._publish = publish
        self._clock = clock
        self.period: Period = period
        self._spent = 0
        self._reserved = 0
        self._active: dict[int, Reservation] = {}
        self._seq = itertools.count(1)
        self._alerted: set[Severity] = set()
        self._by_model: dict[tuple[str, str], ModelTotals] = {}
        self._by_provider: dict[str, ProviderTotals] = {}
        self.unpriced_calls = 0
        self.estimated_calls = 0
        self._storage_warned = False
        self._conn: sqlite3.Connection | None = None
        if period != "session" and db_path is not None:
            self._conn = _open(db_path)
        self._key = period_key(period, clock.now())
        self._spent = self._load(self._key)
        # Thresholds already passed at start (restored spend, a limit of 0) are not "crossings".
        self._alerted = self._crossed()

    # -- state ----------------------------------------------------------------------------------

    @property
    def limit(self) -> int | None:
        return self._limit

    # Reads have no side effects (LlmRouter reads them from the caller's thread): when the clock has
    # passed into a new period they already report it, and the next reserve/settle/tick() rolls over.

    @property
    def spent(self) -> int:
        return 0 if self._stale() else self._spent

    @property
    def reserved(self) -> int:
        return self._reserved

    @property
    def available(self) -> int | None:
        """What a new reservation may still book; None when unlimited."""
        if self._limit is None:
            return None
        return max(0, self._limit - self.spent - self._reserved)

    @property
    def period_key(self) -> str:
        return period_key(self.period, self._clock.now())

    @property
    def active_reservations(self) -> int:
        return len(self._active)

    def status(self) -> tuple[int, int | None]:
        """(spent, limit) in µ$; limit None = unlimited."""
        return self.spent, self._limit

    def tick(self) -> None:
        """Start a new period if the clock has entered one (publishes the reset). Call it now and then
        from the engine loop so an idle dashboard shows the reset at midnight; otherwise it happens on
        the next reserve or settle."""
        self._roll()

    # -- admission and settlement ---------------------------------------------------------------

    def reserve(
        self, request_id: str, amount: int, *, model: str, provider: str, agent_id: str | None = None
    ) -> Reservation:
        """Book `amount` µ$ (the call's worst case) or raise BudgetExceeded. Synchronous and atomic."""
        if self.period != "session":  # (a session never rolls over: skip the call on the hot path)
            self._roll()
        amount = max(0, int(amount))
        limit = self._limit
        if limit is not None:
            if self._spent >= limit:
                raise self._refusal("exceeded", amount)
            if self._spent + self._reserved + amount > limit:
                raise self._refusal("insufficient", amount)
        res = Reservation(request_id, amount, model, provider, agent_id, False, next(self._seq))
        self._active[res._seq] = res
        self._reserved += amount
        self._changed()
        return res

    def settle(
        self, res: Reservation, actual_micros: int | None, usage: TokenUsage | None = None, *,
        estimated: bool = False,
    ) -> None:
        """End a reservation with the call's actual cost (None = unpriced: counted, charges 0).

        The actual cost is charged even when it exceeds the reservation. Idempotent.
        """
        if res.settled:
            return
        self._finish(res)
        if self.period != "session":
            self._roll()
        cost = None if actual_micros is None else max(0, int(actual_micros))
        model_key = (res.provider, res.model)
        mt = self._by_model.get(model_key)
        if mt is None:
            mt = self._by_model[model_key] = ModelTotals(provider=res.provider, model=res.model)
        pt = self._by_provider.get(res.provider)
        if pt is None:
            pt = self._by_provider[res.provider] = ProviderTotals(provider=res.provider)
        _add(mt, usage, cost, estimated)
        _add(pt, usage, cost, estimated)
        if cost is None:
            self.unpriced_calls += 1
        if estimated:
            self.estimated_calls += 1
        if cost:
            self._spent = self._persist_add(cost)
        self._changed()
        self._check_alerts()

    def release(self, res: Reservation) -> None:
        """End a reservation without charge (the call failed before costing anything). Idempotent."""
        if res.settled:
            return
        self._finish(res)
        self._changed()

    def set_limit(self, limit_micros: int | None) -> None:
        """Change the limit live. Spent is kept; alerts above the new level re-arm, newly passed ones fire."""
        self._limit = _check_limit(limit_micros)
        self._roll()
        self._alerted &= self._crossed()
        self._changed()
        self._check_alerts()

    # -- totals ---------------------------------------------------------------------------------

    def totals_by_model(self) -> dict[str, ModelTotals]:
        """Copies keyed "provider/model"."""
        return {f"{p}/{m}": replace(t) for (p, m), t in self._by_model.items()}

    def totals_by_provider(self) -> dict[str, ProviderTotals]:
        return {p: replace(t) for p, t in self._by_provider.items()}

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    # -- internals ------------------------------------------------------------------------------

    def _finish(self, res: Reservation) -> None:
        res.settled = True
        if self._active.pop(res._seq, None) is not None:
            self._reserved -= res.amount

    def _refusal(self, kind: Literal["exceeded", "insufficient"], amount: int) -> BudgetExceeded:
        assert self._limit is not None
        return BudgetExceeded(kind, spent=self._spent, reserved=self._reserved, limit=self._limit,
                              estimate=amount, period=self.period)

    def _crossed(self) -> set[Severity]:
        if self._limit is None:
            return set()
        return {sev for sev, pct in ALERT_THRESHOLDS if self._spent * 100 >= pct * self._limit}

    def _check_alerts(self) -> None:
        if self._limit is None or self._spent * 100 < ALERT_THRESHOLDS[0][1] * self._limit:
            return  # below the lowest threshold (the usual case), so none can fire
        for sev, pct in ALERT_THRESHOLDS:  # ascending, so a jump past several fires each once, in order
            if sev not in self._alerted and self._spent * 100 >= pct * self._limit:
                self._alerted.add(sev)
                self._publish(CostAlert(timestamp=self._clock.now(), severity=sev,
                                        spent_micros=self._spent, limit_micros=self._limit))

    def _changed(self) -> None:
        # Positional: keyword arguments cost a measurable share of this per-call event.
        self._publish(SpendChanged(self._clock.now(), self._spent, self._reserved, self._limit, None, self.period))

    def _stale(self) -> bool:
        return self.period != "session" and period_key(self.period, self._clock.now()) != self._key

    def _roll(self) -> None:
        if self.period == "session":
            return
        key = period_key(self.period, self._clock.now())
        if key == self._key:
            return
        self._key = key
        self._spent = self._load(key)
        self._alerted = self._crossed()  # re-armed: only what the new period has already passed
        self._changed()

    # -- storage --------------------------------------------------------------------------------

    def _load(self, key: str) -> int:
        if self._conn is None:
            return 0
        try:
            row = self._conn.execute(
                "SELECT spent_micros FROM budget_periods WHERE period_key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            self._storage_failed(exc)
            return 0
        return int(row[0]) if row else 0

    def _persist_add(self, cost: int) -> int:
        """Add `cost` to the current period; returns the new spent (including other processes' spend)."""
        if self._conn is None:
            return self._spent + cost
        try:
            row = self._conn.execute(
                "INSERT INTO budget_periods (period_key, spent_micros, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(period_key) DO UPDATE SET spent_micros = spent_micros + excluded.spent_micros, "
                "updated_at = excluded.updated_at RETURNING spent_micros",
                (self._key, cost, self._clock.now()),
            ).fetchone()
        except sqlite3.Error as exc:
            self._storage_failed(exc)
            return self._spent + cost
        return int(row[0]) if row else self._spent + cost

    def _storage_failed(self, exc: sqlite3.Error) -> None:
        # Spend keeps being enforced in memory; say so once rather than failing requests.
        if not self._storage_warned:
            self._storage_warned = True
            self._publish(Notice(timestamp=self._clock.now(), level="error",
                                 message=f"budget ledger could not save spend ({exc}); tracking in memory"))


def _check_limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"budget limit must be a non-negative integer of microdollars or None, not {limit!r}")
    return limit


def _open(db_path: Path) -> sqlite3.Connection:
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each write-through UPDATE is its own small transaction.
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=2.0, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS budget_periods ("
            "period_key TEXT PRIMARY KEY, spent_micros INTEGER NOT NULL, updated_at REAL NOT NULL)"
        )
    except (sqlite3.Error, OSError) as exc:
        raise LedgerStorageError(f"cannot open budget database {db_path}: {exc}") from exc
    return conn

"""The budget ledger's state and what follows from it alone: spent / reserved / available (read without
side effects), the calendar periods, the 80/95/100 % alerts, `SpendChanged` and the storage-failure
notice. `budget.py`'s `BudgetLedger` builds admission, settlement and the shared slices on it.

Periods: the LOCAL calendar of the injected clock (`2026-01-31`, ISO week `2026-W05`, `2026-01`). Reads
(`spent`, `status()`) report a new period at once; the roll-over itself (state, `SpendChanged`) happens on
the next admit/settle/release/set_limit or `tick()`. A reservation made before a boundary is charged to
the period it settles in. Per-model and per-provider totals cover this ledger's lifetime.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from iron_tui.core.clock import Clock
from iron_tui.core.events import CostAlert, Event, Notice, Severity, SpendChanged
from iron_tui.core.ledger_store import LedgerStore
from iron_tui.core.spend_totals import SpendTotals

__all__ = ["ALERT_THRESHOLDS", "PERIODS", "LedgerState", "Period", "Reservation", "check_limit", "period_key"]

Period = Literal["session", "day", "week", "month"]
PERIODS: tuple[Period, ...] = ("session", "day", "week", "month")

# (severity, percent of the limit at which it fires), ascending.
ALERT_THRESHOLDS: tuple[tuple[Severity, int], ...] = (("warning", 80), ("critical", 95), ("exhausted", 100))


@dataclass(eq=False)
class Reservation:
    id: str  # the request id
    amount: int  # µ$ booked at admission
    model: str
    provider: str
    agent_id: str | None = None
    settled: bool = False  # True once settled or released
    capped: int | None = None  # the output cap `admit` lowered the call to (None: not lowered)
    journaled: bool = False
    input_tokens: int = 0  # journaled: the input estimate charged if the process dies
    _seq: int = field(default=0, repr=False)


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


class LedgerState:
    """Spent / reserved / limit in integer µ$, read without side effects, and the bookkeeping that follows
    from them alone (period loads, alerts, `SpendChanged`). `BudgetLedger` (budget.py) adds the calls and
    documents this constructor."""

    def __init__(
        self,
        *,
        limit_micros: int | None,
        publish: Callable[[Event], None],
        clock: Clock,
        period: Period = "session",
        db_path: Path | None = None,
        store: LedgerStore | None = None,
        fit: bool = True,
        wants: Callable[[type[Event]], bool] | None = None,
    ) -> None:
        if period not in PERIODS:
            raise ValueError(f"budget period must be one of {', '.join(PERIODS)}, not {period!r}")
        self._limit = check_limit(limit_micros)
        self._publish = publish
        # Whether anyone takes SpendChanged (the bus's `wants`): with no dashboard and no feed client,
        # a change of spend is not worth an event (a consumer that comes later reads the state itself).
        self._wants = wants
        self._clock = clock
        self.period: Period = period
        self.fit = fit
        if store is None and period != "session" and db_path is not None:
            store = LedgerStore(db_path)
        self._store = store
        if store is not None:
            store.on_commit = self._on_commit
            store.on_error = self._storage_failed
        self._reserved = 0
        self._active: dict[int, Reservation] = {}
        # request id → (period key, cost, slice delta) of a settled journaled call, committed by finish()
        self._unfinished: dict[str, tuple[str, int, int]] = {}
        self._seq = itertools.count(1)
        self._totals = SpendTotals()
        self._key = period_key(period, clock.now())
        # Spent = _disk_spent + _unflushed. With a store and a calendar period: what every process had
        # spent at the last read, plus this process's costs not committed yet. Otherwise (a session, no
        # data dir) _disk_spent is simply this process's spend.
        self._disk_spent = self._load(self._key)
        self._unflushed = 0
        self._slice = 0  # µ$ of the shared limit this process holds (shared mode only)
        self._last_busy = clock.now()
        self._alerted: set[Severity] = self._crossed()  # passed at start: not "crossings"
        self._spend_due = False  # a SpendChanged is scheduled for the end of this loop iteration

    # -- state ----------------------------------------------------------------------------------

    @property
    def limit(self) -> int | None:
        return self._limit

    # Reads have no side effects (LlmRouter reads them from the caller's thread): when the clock has
    # passed into a new period they already report it, and the next admit/settle/tick() rolls over.

    @property
    def spent(self) -> int:
        return 0 if self._stale() else self._disk_spent + self._unflushed

    @property
    def reserved(self) -> int:
        return self._reserved

    @property
    def available(self) -> int | None:
        """What a new reservation may still book (other processes' slices not counted); None: unlimited."""
        if self._limit is None:
            return None
        return max(0, self._limit - self.spent - self._reserved)

    @property
    def period_key(self) -> str:
        return period_key(self.period, self._clock.now())

    @property
    def active_reservations(self) -> int:
        return len(self._active)

    @property
    def shared(self) -> bool:
        """Admission goes through slices of a total shared with other processes."""
        return self._store is not None and self.period != "session" and not self._store.failed

    @property
    def store(self) -> LedgerStore | None:
        return self._store

    @property
    def journaling(self) -> bool:
        return self._store is not None and not self._store.failed

    @property
    def unpriced_calls(self) -> int:
        return self._totals.unpriced_calls

    @property
    def estimated_calls(self) -> int:
        return self._totals.estimated_calls

    def status(self) -> tuple[int, int | None]:
        """(spent, limit) in µ$; limit None = unlimited."""
        return self.spent, self._limit

    # -- bookkeeping ----------------------------------------------------------------------------

    def _on_commit(self, touched: dict[str, tuple[int, int]]) -> None:
        now = touched.get(self._key)
        if now is None:
            return
        spent_after, ours = now
        self._unflushed = max(0, self._unflushed - ours)
        self._disk_spent = spent_after
        self._changed()
        self._check_alerts()

    def _crossed(self) -> set[Severity]:
        if self._limit is None:
            return set()
        spent = self.spent
        return {sev for sev, pct in ALERT_THRESHOLDS if spent * 100 >= pct * self._limit}

    def _check_alerts(self) -> None:
        spent = self._disk_spent + self._unflushed
        if self._limit is None or spent * 100 < ALERT_THRESHOLDS[0][1] * self._limit:
            return  # below the lowest threshold (the usual case), so none can fire
        for sev, pct in ALERT_THRESHOLDS:  # ascending, so a jump past several fires each once, in order
            if sev not in self._alerted and spent * 100 >= pct * self._limit:
                self._alerted.add(sev)
                self._publish(CostAlert(timestamp=self._clock.now(), severity=sev,
                                        spent_micros=spent, limit_micros=self._limit))

    def _changed(self) -> None:
        # One SpendChanged per event-loop iteration, with the state at its end: every call changes spend
        # twice (reserve, settle) and under load many calls do so in one iteration, while every consumer
        # (dashboard, feed) only shows the latest. Without a running loop (a sync caller): at once.
        if self._spend_due or (self._wants is not None and not self._wants(SpendChanged)):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._publish_spend()
            return
        self._spend_due = True
        loop.call_soon(self._publish_spend)

    def _publish_spend(self) -> None:
        self._spend_due = False
        # Positional: keyword arguments cost a measurable share of this per-call event.
        self._publish(SpendChanged(self._clock.now(), self._disk_spent + self._unflushed, self._reserved,
                                   self._limit, None, self.period))

    def _stale(self) -> bool:
        return self.period != "session" and period_key(self.period, self._clock.now()) != self._key

    def _load(self, key: str) -> int:
        if self._store is None or key == "session":
            return 0
        try:
            return self._store.load_spent(key)
        except sqlite3.Error as exc:
            self._storage_failed(exc)
            return 0

    def _storage_failed(self, exc: sqlite3.Error) -> None:
        # Spend keeps being enforced in memory (this process only); say so once rather than failing calls.
        self._publish(Notice(timestamp=self._clock.now(), level="error",
                             message=f"budget ledger could not save spend ({exc}); tracking in memory"))


def check_limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"budget limit must be a non-negative integer of microdollars or None, not {limit!r}")
    return limit

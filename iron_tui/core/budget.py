"""The budget ledger: admission by reservation (fitted to what is left), settlement, alerts, periods.

Why spend cannot overshoot through concurrency: admission (`admit`, `reserve`) is synchronous — nothing
awaits between the check and the booking, and the engine is one asyncio thread — and it books the
call's worst-case cost. A call is admitted only while its worst case fits what is left, so as long as
each call's actual cost is at most its reservation, the settled costs never pass the limit.

Fit to budget: when the worst case does not fit but a useful answer does, `admit` lowers the call's
output cap to the largest one the remaining budget pays for (`Reservation.capped`; the pipeline sends
it upstream and tells the client). "Useful" is the caller's `out_min`: the smallest cap worth sending
(see `proxy/admission.py`: 1,024 tokens by default, the thinking budget on top for Anthropic extended
thinking). Below that, or with fitting off, the call is refused with the 402 of `budget_refusal.py`.

One budget across processes (periods "day" / "week" / "month" with a data dir): every iron-tui sharing
the data dir admits against the same total in `state.sqlite3` (`ledger_store.py`). The hot path stays in
memory: a process leases a *slice* of what is left (1/32 of the limit, or what a call needs) in one
atomic transaction, admits calls from it, and gives back what it does not need (above one slice after a
call settles; everything after `IDLE_RETURN_S` without calls, and when it stops). A dead process's
slice comes back through crash recovery. The "session" period is this process's run: it is never shared
(two processes each get their own session budget; use a calendar period to share).

When a call's actual cost exceeds its reservation (a hosted tool pulled in content the body did not
show), the actual cost is charged anyway — the money was spent — and spent may then pass the limit;
every later call is refused with `exceeded`.

Every reservation ends in exactly one `settle` or `release` (both idempotent). A journaled reservation
(crash-proof accounting: `call=` given) is written to the journal before the call goes upstream
(`await durable(res)`); after it settles, `finish(request_id)` — called once the call's analytics event is
stored — commits its cost and drops its journal row in one transaction.

Periods: the LOCAL calendar of the injected clock (`2026-01-31`, ISO week `2026-W05`, `2026-01`). Reads
(`spent`, `status()`) report a new period at once; the roll-over itself (state, `SpendChanged`) happens on
the next admit/settle/release/set_limit or `tick()`. A reservation made before a boundary is charged to
the period it settles in. Per-model and per-provider totals cover this ledger's lifetime.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from iron_tui.core.budget_refusal import BudgetExceeded, budget_error_body, format_usd
from iron_tui.core.clock import Clock
from iron_tui.core.events import CostAlert, Event, Notice, Severity, SpendChanged
from iron_tui.core.ledger_schema import CallRow, LedgerStorageError
from iron_tui.core.ledger_store import LedgerStore
from iron_tui.core.spend_totals import ModelTotals, ProviderTotals, SpendTotals
from iron_tui.core.token_usage import TokenUsage

__all__ = ["ALERT_THRESHOLDS", "PERIODS", "BudgetExceeded", "BudgetLedger", "CallInfo", "LedgerStorageError",
           "ModelTotals", "Period", "ProviderTotals", "Reservation", "budget_error_body", "format_usd",
           "period_key"]

Period = Literal["session", "day", "week", "month"]
PERIODS: tuple[Period, ...] = ("session", "day", "week", "month")

# (severity, percent of the limit at which it fires), ascending.
ALERT_THRESHOLDS: tuple[tuple[Severity, int], ...] = (("warning", 80), ("critical", 95), ("exhausted", 100))
SLICE_FRACTION = 32  # a leased slice is 1/32 of the limit (or what one call needs, if more)
IDLE_RETURN_S = 2.0  # a process with no call in flight for this long gives its slice back
MAX_FITTED_CAP = 2**31 - 1  # the largest cap ever sent (a model with no known maximum output)


@dataclass(slots=True)
class CallInfo:
    """What the journal keeps of an admitted call, for crash recovery."""

    api: str
    event_id: str | None = None
    input_tokens: int = 0  # iron-tui's estimate of the input (charged if the process dies)


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


class BudgetLedger:
    """Spent / reserved / limit in integer µ$. `limit_micros=None` means unlimited (never refuses).

    `db_path` (a calendar period) or `store` share spend with every process on the same database;
    `store` also journals calls admitted with `call=` (any period). The ledger owns and closes it.
    """

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
    ) -> None:
        if period not in PERIODS:
            raise ValueError(f"budget period must be one of {', '.join(PERIODS)}, not {period!r}")
        self._limit = _check_limit(limit_micros)
        self._publish = publish
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

    def tick(self) -> None:
        """Called about once a second by the engine: starts a new period if the clock has entered one,
        gives an idle slice back to the shared total, and refreshes what other processes spent."""
        self._roll()
        if self._store is None or not self.shared:
            return
        if not self._active and self._slice and self._clock.now() - self._last_busy >= IDLE_RETURN_S:
            self._give_back(self._slice)
        if not self._store.pending():
            try:
                spent = self._store.load_spent(self._key)
            except sqlite3.Error:
                return
            if spent != self._disk_spent:  # another process spent
                self._disk_spent = spent
                self._changed()
                self._check_alerts()

    # -- admission ------------------------------------------------------------------------------

    def reserve(self, request_id: str, amount: int, *, model: str, provider: str, agent_id: str | None = None,
                call: CallInfo | None = None) -> Reservation:
        """Book exactly `amount` µ$ (the call's worst case) or raise BudgetExceeded."""
        amount = max(0, int(amount))
        return self.admit(request_id, cost_for=lambda _out: amount, out_max=0, out_min=0, model=model,
                          provider=provider, agent_id=agent_id, call=call, fit=False)

    def admit(self, request_id: str, *, cost_for: Callable[[int], int], out_max: int | None, out_min: int,
              model: str, provider: str, agent_id: str | None = None, call: CallInfo | None = None,
              fit: bool | None = None) -> Reservation:
        """Book the call's worst case `cost_for(out_max)`, or — when that does not fit and fitting is on —
        the largest output cap c ≥ `out_min` whose `cost_for(c)` fits (`Reservation.capped` = c), or raise
        BudgetExceeded. `out_max` None: nothing bounds the output (only a fitted cap can admit the call
        under a limit). `cost_for` must not decrease as its argument grows. Synchronous and atomic."""
        if self.period != "session":  # (a session never rolls over: skip the call on the hot path)
            self._roll()
        self._last_busy = self._clock.now()
        limit = self._limit
        if limit is None:
            return self._book(request_id, cost_for(out_max or 0), None, model, provider, agent_id, call)
        if self.spent >= limit:
            raise self._refusal("exceeded", cost_for(out_min))
        full = cost_for(out_max) if out_max is not None else None
        room = self._room(full)
        if full is not None and full <= room:
            return self._book(request_id, full, None, model, provider, agent_id, call)
        hi = out_max if out_max is not None else MAX_FITTED_CAP
        lo = min(out_min, hi)
        floor_cost = cost_for(lo)
        unbounded = "" if out_max is not None else (
            "The request sets no output cap and the model's maximum output is unknown (set max_tokens, or "
            "max_output_tokens for the model in the config file).")
        if not (self.fit if fit is None else fit) or floor_cost > room:
            if self.shared and self._slice > self._reserved and self._store is not None:
                # Refused: what this process holds unused may be what another one needs to fit a call —
                # committed now, so that process's next try sees it.
                self._give_back(self._slice - self._reserved)
                self._store.flush()
            raise self._refusal("insufficient", full if full is not None else floor_cost, room, unbounded)
        while lo < hi:  # the largest cap that fits: cost_for is monotonic
            mid = (lo + hi + 1) // 2
            if cost_for(mid) <= room:
                lo = mid
            else:
                hi = mid - 1
        return self._book(request_id, cost_for(lo), lo, model, provider, agent_id, call)

    async def durable(self, res: Reservation) -> None:
        """Wait until a journaled reservation is on disk (before its call goes upstream)."""
        if res.journaled and self._store is not None:
            await self._store.durable()

    def progress(self, res: Reservation, *, input_tokens: int, output_tokens: int, output_chars: int) -> None:
        """Checkpoint what a journaled call has relayed (batched; charged if the process dies).
        `input_tokens` < 0: not reported yet (the admission estimate stays)."""
        if res.journaled and not res.settled and self._store is not None:
            if input_tokens >= 0:
                res.input_tokens = input_tokens
            self._store.progress(res.id, res.input_tokens, output_tokens, output_chars)

    # -- settlement -----------------------------------------------------------------------------

    def settle(self, res: Reservation, actual_micros: int | None, usage: TokenUsage | None = None, *,
               estimated: bool = False) -> None:
        """End a reservation with the call's actual cost (None = unpriced: counted, charges 0).
        The actual cost is charged even when it exceeds the reservation. Idempotent."""
        if res.settled:
            return
        self._finish_reservation(res)
        if self.period != "session":
            self._roll()
        cost = None if actual_micros is None else max(0, int(actual_micros))
        self._totals.add(res.provider, res.model, usage, cost, estimated)
        self._charge(res, cost or 0)
        self._changed()
        self._check_alerts()

    def release(self, res: Reservation) -> None:
        """End a reservation without charge (the call failed before costing anything). Idempotent."""
        if res.settled:
            return
        self._finish_reservation(res)
        self._charge(res, 0)
        self._changed()

    def finish(self, request_id: str) -> None:
        """Commit a settled journaled call (its cost, its journal row gone): after its analytics event is
        stored, so a crash in between recovers the call (same event id) instead of losing its event."""
        done = self._unfinished.pop(request_id, None)
        if done is not None and self._store is not None:
            key, cost, delta = done
            self._store.finish(request_id, key, cost, delta)

    def set_limit(self, limit_micros: int | None) -> None:
        """Change the limit live. Spent is kept; alerts above the new level re-arm, newly passed ones fire."""
        self._limit = _check_limit(limit_micros)
        self._roll()
        if self.shared and self._slice > self._reserved:
            self._give_back(self._slice - self._reserved)  # re-leased under the new limit on demand
        self._alerted &= self._crossed()
        self._changed()
        self._check_alerts()

    # -- totals ---------------------------------------------------------------------------------

    def totals_by_model(self) -> dict[str, ModelTotals]:
        """Copies keyed "provider/model"."""
        return self._totals.by_model()

    def totals_by_provider(self) -> dict[str, ProviderTotals]:
        return self._totals.by_provider()

    def flush(self) -> None:
        """Commit every queued write now (they are otherwise batched for up to `PROGRESS_FLUSH_S`)."""
        if self._store is not None:
            self._store.flush()

    def close(self) -> None:
        """Commit what is settled, give the slice back, close the store. Journal rows of calls that
        never settled stay for the next start's crash recovery."""
        for request_id in list(self._unfinished):
            self.finish(request_id)
        store, self._store = self._store, None
        if store is not None:
            store.close()

    # -- internals ------------------------------------------------------------------------------

    def _book(self, request_id: str, amount: int, capped: int | None, model: str, provider: str,
              agent_id: str | None, call: CallInfo | None) -> Reservation:
        res = Reservation(request_id, amount, model, provider, agent_id, capped=capped, _seq=next(self._seq))
        self._active[res._seq] = res
        self._reserved += amount
        if call is not None and self._store is not None and not self._store.failed:
            self._store.admit(CallRow(request_id, self._key, amount, self._clock.now(), provider, model, call.api,
                                      agent_id, call.event_id, call.input_tokens))
            res.journaled = True
            res.input_tokens = call.input_tokens
        self._changed()
        return res

    def _room(self, need: int | None) -> int:
        """What this process may book now; in shared mode it leases more of the total when `need` (None:
        as much as there is) exceeds its slice."""
        assert self._limit is not None
        room = self._limit - self.spent - self._reserved
        if not self.shared:
            return room
        assert self._store is not None
        local = self._slice - self._reserved
        if need is None or local < need:
            chunk = max(1, self._limit // SLICE_FRACTION)
            want = (self._limit if need is None else need - local) + chunk
            held = sum(d for key, _c, d in self._unfinished.values() if key == self._key)  # not on disk yet
            try:
                mine, self._disk_spent = self._store.grow_slice(self._key, want, self._limit)
            except sqlite3.Error:
                return room if not self.shared else min(room, local)
            self._slice = max(0, mine + held)
            local = self._slice - self._reserved
        return min(room, local)

    def _charge(self, res: Reservation, cost: int) -> None:
        shared = self.shared
        delta = 0
        if shared and self._limit is not None:
            delta = -min(cost, self._slice)
            self._slice += delta
        if self._store is not None and self.period != "session":
            self._unflushed += cost
        else:
            self._disk_spent += cost
        if res.journaled:
            self._unfinished[res.id] = (self._key, cost, delta)
        elif self._store is not None and (cost or delta) and self.period != "session":
            self._store.finish(None, self._key, cost, delta)
        if shared and self._limit is not None and self._slice - self._reserved > 2 * (self._limit // SLICE_FRACTION):
            self._give_back(self._slice - self._reserved - self._limit // SLICE_FRACTION)
        if not self._active:
            self._last_busy = self._clock.now()

    def _give_back(self, amount: int) -> None:
        if amount <= 0 or self._store is None:
            return
        self._slice -= amount
        self._store.finish(None, self._key, 0, -amount)

    def _on_commit(self, touched: dict[str, tuple[int, int]]) -> None:
        now = touched.get(self._key)
        if now is None:
            return
        spent_after, ours = now
        self._unflushed = max(0, self._unflushed - ours)
        self._disk_spent = spent_after
        self._changed()
        self._check_alerts()

    def _finish_reservation(self, res: Reservation) -> None:
        res.settled = True
        if self._active.pop(res._seq, None) is not None:
            self._reserved -= res.amount

    def _refusal(self, kind: Literal["exceeded", "insufficient"], amount: int, room: int | None = None,
                 detail: str = "") -> BudgetExceeded:
        assert self._limit is not None
        return BudgetExceeded(kind, spent=self.spent, reserved=self._reserved, limit=self._limit,
                              estimate=amount, period=self.period, available=room, detail=detail)

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
        # Positional: keyword arguments cost a measurable share of this per-call event.
        self._publish(SpendChanged(self._clock.now(), self._disk_spent + self._unflushed, self._reserved,
                                   self._limit, None, self.period))

    def _stale(self) -> bool:
        return self.period != "session" and period_key(self.period, self._clock.now()) != self._key

    def _roll(self) -> None:
        if self.period == "session":
            return
        key = period_key(self.period, self._clock.now())
        if key == self._key:
            return
        if self.shared and self._slice:
            self._give_back(self._slice)  # the old period's slice; in-flight calls re-lease in the new one
        self._slice = 0
        self._key = key
        self._unflushed = 0  # costs still queued belong to the old period
        self._disk_spent = self._load(key)
        self._alerted = self._crossed()  # re-armed: only what the new period has already passed
        self._changed()

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


def _check_limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"budget limit must be a non-negative integer of microdollars or None, not {limit!r}")
    return limit

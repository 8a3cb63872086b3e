"""The budget ledger: admission by reservation (fitted to what is left), settlement, shared slices.

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

Periods, the read-only state and the alerts are `budget_state.py`'s (`LedgerState`, this ledger's base).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from iron_tui.core.budget_refusal import BudgetExceeded, budget_error_body, format_usd
from iron_tui.core.budget_state import LedgerState, Reservation, check_limit, period_key
from iron_tui.core.ledger_schema import CallRow, LedgerStorageError
from iron_tui.core.spend_totals import ModelTotals, ProviderTotals
from iron_tui.core.token_usage import TokenUsage

__all__ = ["BudgetExceeded", "BudgetLedger", "CallInfo", "LedgerStorageError", "ModelTotals",
           "ProviderTotals", "budget_error_body", "format_usd"]

SLICE_FRACTION = 32  # a leased slice is 1/32 of the limit (or what one call needs, if more)
IDLE_RETURN_S = 2.0  # a process with no call in flight for this long gives its slice back
MAX_FITTED_CAP = 2**31 - 1  # the largest cap ever sent (a model with no known maximum output)


@dataclass(slots=True)
class CallInfo:
    """What the journal keeps of an admitted call, for crash recovery."""

    api: str
    event_id: str | None = None
    input_tokens: int = 0  # iron-tui's estimate of the input (charged if the process dies)


class BudgetLedger(LedgerState):
    """Spent / reserved / limit in integer µ$. `limit_micros=None` means unlimited (never refuses).

    `db_path` (a calendar period) or `store` share spend with every process on the same database;
    `store` also journals calls admitted with `call=` (any period). The ledger owns and closes it.
    `wants(SpendChanged)` (the bus's): when given and false, spend changes publish nothing.
    """

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

    def progress(self, res: Reservation, *, input_tokens: int, output_tokens: int, output_chars: int,
                 web_searches: int = 0) -> None:
        """Checkpoint what a journaled call has relayed (batched; charged if the process dies), with the
        server-side web searches finished so far. `input_tokens` < 0: not reported yet (the admission
        estimate stays)."""
        if res.journaled and not res.settled and self._store is not None:
            if input_tokens >= 0:
                res.input_tokens = input_tokens
            self._store.progress(res.id, res.input_tokens, output_tokens, output_chars, web_searches)

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
        self._limit = check_limit(limit_micros)
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

    def _finish_reservation(self, res: Reservation) -> None:
        res.settled = True
        if self._active.pop(res._seq, None) is not None:
            self._reserved -= res.amount

    def _refusal(self, kind: Literal["exceeded", "insufficient"], amount: int, room: int | None = None,
                 detail: str = "") -> BudgetExceeded:
        assert self._limit is not None
        return BudgetExceeded(kind, spent=self.spent, reserved=self._reserved, limit=self._limit,
                              estimate=amount, period=self.period, available=room, detail=detail)

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

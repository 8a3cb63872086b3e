"""Crash recovery: calls a dead iron-tui left in flight are charged, reported and released.

Any iron-tui on the data dir runs this at start and every few seconds (`Engine`): a process whose lock
(`ledger_store.py`) can be taken is dead (SIGKILL, OOM, power cut of the process). For each call it had
journaled and not settled:

* it is charged at least what was relayed: the input as iron-tui estimated it at admission (or as the
  provider reported it, when a stream said so before it was cut) plus the output relayed so far
  (provider-reported tokens, else one token per 2 relayed characters), at the model's price, never
  more than the call's reservation (its true upper bound). The server-side web searches it had
  finished are charged too, at the model's per-search price, as a settled call's are: they are
  counted, not estimated, so they are charged in full even when they pass the reservation (a search
  allowance is a guess where the API sets no bound). The last checkpoint is at most `PROGRESS_FLUSH_S`
  old, so output relayed and searches finished after it are not counted;
* ONE analytics event is stored for it, marked interrupted (`llm_request_failed`, error_code
  `interrupted`), under the event id the call was admitted with — so if the dead process had stored
  the call's own event just before dying, the outbox (and the control server) keep only one;
* the rest of its reservation, and the dead process's slice of a shared budget, are released.

Charging, dropping the rows and releasing the slice happen in one transaction that only takes rows still
present, so two processes recovering the same dead one never charge twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from iron_tui.core.dialects.client_apis import NATIVE_PATHS
from iron_tui.core.estimate import estimate_output_tokens_from_text
from iron_tui.core.events import MICROS_PER_USD, Notice, RequestFinished, RequestRecord
from iron_tui.core.ledger_schema import CallRow
from iron_tui.core.ledger_store import LedgerStore
from iron_tui.core.pricing import Pricer
from iron_tui.core.token_usage import TokenUsage
from iron_tui.core.units import money, tokens

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine

INTERRUPTED = "interrupted"


@dataclass(slots=True)
class RecoveredCall:
    holder: str
    row: CallRow
    usage: TokenUsage
    charge_micros: int  # what was charged (0 for an unpriced model)
    priced: bool = True


@dataclass(slots=True)
class RecoveryReport:
    calls: list[RecoveredCall] = field(default_factory=list)
    charged: dict[str, int] = field(default_factory=dict)  # period key → µ$ charged
    holders: list[str] = field(default_factory=list)  # dead processes cleaned up

    @property
    def total_micros(self) -> int:
        return sum(c.charge_micros for c in self.calls)


def interrupted_usage(row: CallRow) -> TokenUsage:
    """What the dead call is known to have used: its input, the output it relayed, its web searches."""
    output = max(row.output_tokens, estimate_output_tokens_from_text(row.output_chars))
    return TokenUsage(input_tokens=max(0, row.input_tokens), output_tokens=output,
                      web_search_requests=max(0, row.web_searches))


def interrupted_charge(row: CallRow, usage: TokenUsage, pricer: Pricer) -> int | None:
    """What to charge (None: the model is unpriced, nothing is charged)."""
    cost = pricer.cost(row.provider, row.model, usage)
    if cost is None or row.reserved_micros <= 0:
        return cost
    tokens_only = pricer.cost(row.provider, row.model, dataclasses.replace(usage, web_search_requests=0)) or 0
    return max(min(cost, row.reserved_micros), cost - tokens_only)  # the searches in full, tokens capped


def interrupted_message(call: RecoveredCall) -> str:
    searches = call.usage.web_search_requests
    return (f"interrupted: the iron-tui relaying this call stopped before it settled; charged "
            f"{money(call.charge_micros)} for {tokens(call.usage.input_tokens)} input and "
            f"{tokens(call.usage.output_tokens)} relayed output tokens (estimated)"
            + (f" and {searches} web search{'es' if searches != 1 else ''}" if searches else ""))


def interrupted_record(call: RecoveredCall) -> RequestRecord:
    """The call as the dashboard, the feed and the history show it: failed, marked interrupted, charged
    what recovery charged (its bodies and timings died with the process)."""
    row = call.row
    return RequestRecord(
        id=row.id, started_at=row.started_at, method="POST", path=NATIVE_PATHS.get(row.api, ""), api=row.api,
        model=row.model, provider=row.provider, agent_id=row.agent_id, state="error",  # type: ignore[arg-type]
        input_tokens=call.usage.input_tokens, output_tokens=call.usage.output_tokens,
        cost_micros=call.charge_micros if call.priced else None, priced=call.priced, cost_estimated=True,
        reserved_micros=row.reserved_micros, error=interrupted_message(call), error_code=INTERRUPTED,
        event_id=row.event_id, interrupted=True)


def recover_dead(store: LedgerStore, pricer: Pricer,
                 record: Callable[[RecoveredCall], None] | None = None) -> RecoveryReport:
    """Recover every dead holder's calls. `record` stores each call's analytics event; it runs before
    the charge commits (an event is never lost; a repeat is dropped by its event id)."""
    report = RecoveryReport()
    for holder in store.other_holders():
        fd = store.take_dead_holder(holder)
        if fd is None:
            continue  # alive
        try:
            recovered = []
            for row in store.calls_of(holder):
                usage = interrupted_usage(row)
                charge = interrupted_charge(row, usage, pricer)
                recovered.append(RecoveredCall(holder, row, usage, charge or 0, charge is not None))
            if record is not None:
                for call in recovered:
                    record(call)
            charged = store.settle_dead(holder, {c.row.id: c.charge_micros for c in recovered})
        finally:
            store.release_dead_holder(holder, fd)
        report.holders.append(holder)
        report.calls.extend(recovered)
        for key, micros in charged.items():
            report.charged[key] = report.charged.get(key, 0) + micros
    return report


RECOVERY_INTERVAL_S = 5.0


async def recovery_loop(engine: Engine, preload: asyncio.Task[Any],
                        record: Callable[[RecoveredCall], None]) -> None:
    """Crash recovery at start, then every few seconds for processes that die while this one runs."""
    with contextlib.suppress(Exception):
        await preload  # prices are needed to charge what was relayed
    while True:
        store = engine.ledger.store
        if store is None:
            return
        try:
            report = recover_dead(store, engine.pricer, record)
        except sqlite3.Error as exc:
            engine.bus.publish(Notice(engine.clock.now(), "warning", f"crash recovery failed: {exc}"))
            report = None
        if report is not None and report.calls:
            show_interrupted(engine, report.calls)
            engine.bus.publish(Notice(engine.clock.now(), "warning", (
                f"recovered {len(report.calls)} call(s) left in flight by an iron-tui that stopped without "
                f"settling them: charged ${report.total_micros / MICROS_PER_USD:.6f} for what they relayed")))
        await asyncio.sleep(RECOVERY_INTERVAL_S)


def show_interrupted(engine: Engine, calls: list[RecoveredCall]) -> None:
    """Recovered calls join this process's history and bus as finished, failed, interrupted calls, so the
    dashboard, the feed, headless lines and the history browser show what the crash cost. Not metrics
    or traces: those count the calls this process served (the analytics event is stored by `record`)."""
    for call in calls:
        rec = interrupted_record(call)
        summary = rec.summary()
        engine.history.add(rec)
        engine.history.finished(rec, summary)
        engine.bus.publish(RequestFinished(engine.clock.now(), summary))

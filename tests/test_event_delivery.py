"""How events reach their consumers: subscriptions by kind (so a publisher can skip an event nobody
takes), the feed taking nothing while no client is connected, and one budget update per event-loop
iteration however many calls changed the spend in it."""

from __future__ import annotations

import asyncio

from iron_tui.core.budget import BudgetLedger
from iron_tui.core.bus import EventBus
from iron_tui.core.clock import FixedClock
from iron_tui.core.events import CostAlert, Event, Notice, RequestFinished, RequestStarted, SpendChanged
from iron_tui.core.pricing import TokenUsage

USD = 1_000_000


def test_a_subscription_takes_only_its_kinds_and_can_change_them() -> None:
    bus = EventBus()
    everything = bus.subscribe(name="all")
    finished = bus.subscribe(name="log", kinds=(RequestFinished, Notice))
    assert bus.wants(RequestStarted) and bus.wants(RequestFinished)
    bus.publish(RequestStarted(1.0, {"id": "a"}))
    bus.publish(RequestFinished(2.0, {"id": "a"}))
    assert [type(e) for e in everything.drain()] == [RequestStarted, RequestFinished]
    assert [type(e) for e in finished.drain()] == [RequestFinished]

    everything.close()
    assert not bus.wants(RequestStarted)  # nobody takes it: a publisher may skip building it
    finished.listen(None)
    assert bus.wants(RequestStarted)
    bus.publish(RequestStarted(3.0, {"id": "b"}))
    assert [type(e) for e in finished.drain()] == [RequestStarted]
    finished.listen(())
    bus.publish(Notice(4.0, "info", "nobody hears this"))
    assert len(finished) == 0 and not bus.wants(Notice)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def spend(self) -> list[tuple[int, int]]:
        return [(e.spent_micros, e.reserved_micros) for e in self.events if isinstance(e, SpendChanged)]


async def test_many_spend_changes_in_one_loop_iteration_are_one_update_with_the_final_state() -> None:
    rec = Recorder()
    ledger = BudgetLedger(limit_micros=10 * USD, publish=rec, clock=FixedClock())
    held = [ledger.reserve(f"req_{i}", USD, model="gpt-4o", provider="openai") for i in range(5)]
    for res in held[:3]:
        ledger.settle(res, 100_000, TokenUsage(input_tokens=10, output_tokens=5))
    assert rec.spend() == []  # not yet: at the end of this iteration
    await asyncio.sleep(0)
    assert rec.spend() == [(300_000, 2 * USD)]
    ledger.release(held[3])
    await asyncio.sleep(0)
    assert rec.spend() == [(300_000, 2 * USD), (300_000, USD)]


def test_without_an_event_loop_every_spend_change_is_published_at_once() -> None:
    rec = Recorder()
    ledger = BudgetLedger(limit_micros=10 * USD, publish=rec, clock=FixedClock())
    res = ledger.reserve("req_1", USD, model="gpt-4o", provider="openai")
    ledger.settle(res, 250_000, TokenUsage(input_tokens=10, output_tokens=5))
    assert rec.spend() == [(0, USD), (250_000, 0)]


async def test_no_spend_event_is_made_while_nobody_takes_one_and_alerts_still_are() -> None:
    bus = EventBus()
    log = bus.subscribe(name="log", kinds=(CostAlert,))  # like the headless log: no SpendChanged
    ledger = BudgetLedger(limit_micros=USD, publish=bus.publish, clock=FixedClock(), wants=bus.wants)
    res = ledger.reserve("req_1", 100_000, model="gpt-4o", provider="openai")
    ledger.settle(res, 900_000, TokenUsage(input_tokens=10, output_tokens=5))
    await asyncio.sleep(0)
    assert [type(e) for e in log.drain()] == [CostAlert]  # 90 %: the warning, and nothing else
    dashboard = bus.subscribe(name="tui")  # someone who shows spend arrives
    res = ledger.reserve("req_2", 10_000, model="gpt-4o", provider="openai")
    await asyncio.sleep(0)
    assert [(e.spent_micros, e.reserved_micros) for e in dashboard.drain() if isinstance(e, SpendChanged)] == [
        (900_000, 10_000)]

"""Budget ledger: reservations under concurrency, no leaks, 402 bodies, alerts, limits, periods, persistence."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from iron_tui.core.budget import (
    BudgetExceeded,
    BudgetLedger,
    LedgerStorageError,
    budget_error_body,
    format_usd,
)
from iron_tui.core.budget_state import period_key
from iron_tui.core.clock import FixedClock
from iron_tui.core.events import CostAlert, Event, Notice, SpendChanged
from iron_tui.core.pricing import TokenUsage

USD = 1_000_000


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def alerts(self) -> list[str]:
        return [e.severity for e in self.events if isinstance(e, CostAlert)]

    def spend(self) -> list[SpendChanged]:
        return [e for e in self.events if isinstance(e, SpendChanged)]


def make(limit: int | None, **kw: object) -> tuple[BudgetLedger, Recorder, FixedClock]:
    rec = Recorder()
    clock = kw.pop("clock", None) or FixedClock()
    assert isinstance(clock, FixedClock)
    ledger = BudgetLedger(limit_micros=limit, publish=rec, clock=clock, **kw)  # type: ignore[arg-type]
    return ledger, rec, clock


# --- basics ---------------------------------------------------------------------------------------


def test_reserve_then_settle_charges_actual_and_frees_reservation() -> None:
    ledger, rec, _ = make(10 * USD)
    res = ledger.reserve("req_1", 2 * USD, model="gpt-4o", provider="openai")
    assert (ledger.spent, ledger.reserved, ledger.available) == (0, 2 * USD, 8 * USD)
    ledger.settle(res, 300_000, TokenUsage(input_tokens=10, output_tokens=5))
    assert (ledger.spent, ledger.reserved, ledger.available) == (300_000, 0, 9_700_000)
    assert ledger.status() == (300_000, 10 * USD)
    changes = [(e.spent_micros, e.reserved_micros, e.limit_micros) for e in rec.spend()]
    assert changes == [(0, 2 * USD, 10 * USD), (300_000, 0, 10 * USD)]


def test_settle_and_release_are_idempotent() -> None:
    ledger, rec, _ = make(10 * USD)
    res = ledger.reserve("r", 1000, model="m", provider="openai")
    ledger.settle(res, 400)
    n = len(rec.events)
    ledger.settle(res, 400)
    ledger.release(res)  # a `finally: release()` after a settle must not undo or double anything
    assert (ledger.spent, ledger.reserved, len(rec.events)) == (400, 0, n)
    res2 = ledger.reserve("r2", 1000, model="m", provider="openai")
    ledger.release(res2)
    ledger.release(res2)
    assert (ledger.spent, ledger.reserved, ledger.active_reservations) == (400, 0, 0)


def test_actual_above_reservation_is_still_charged() -> None:
    ledger, _, _ = make(1000)
    res = ledger.reserve("r", 100, model="m", provider="openai")
    ledger.settle(res, 1500)  # the money was spent upstream
    assert ledger.spent == 1500
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve("r2", 0, model="m", provider="openai")
    assert info.value.kind == "exceeded"


def test_unpriced_calls_are_counted_and_charge_nothing() -> None:
    ledger, _, _ = make(None)
    res = ledger.reserve("r", 0, model="mystery", provider="openai")
    ledger.settle(res, None, TokenUsage(input_tokens=7, output_tokens=3))
    assert (ledger.spent, ledger.unpriced_calls) == (0, 1)
    totals = ledger.totals_by_model()["openai/mystery"]
    assert (totals.calls, totals.unpriced_calls, totals.cost_micros, totals.input_tokens) == (1, 1, 0, 7)


def test_totals_by_model_and_provider() -> None:
    ledger, _, _ = make(None)
    for model, provider, cost, usage in [
        ("gpt-4o", "openai", 100, TokenUsage(10, 20, 5, 0)),
        ("gpt-4o", "openai", 50, TokenUsage(1, 2, 0, 0)),
        ("claude-sonnet-4-5", "anthropic", 70, TokenUsage(3, 4, 6, 8)),
    ]:
        ledger.settle(ledger.reserve("r", 1000, model=model, provider=provider), cost, usage)
    ledger.settle(ledger.reserve("r", 1000, model="gpt-4o", provider="openai"), 9, None, estimated=True)
    by_model = ledger.totals_by_model()
    g = by_model["openai/gpt-4o"]
    assert (g.calls, g.input_tokens, g.output_tokens, g.cache_read_tokens, g.cost_micros, g.estimated_calls) == (
        3, 11, 22, 5, 159, 1)
    c = by_model["anthropic/claude-sonnet-4-5"]
    assert (c.calls, c.cache_write_tokens, c.cost_micros) == (1, 8, 70)
    by_provider = ledger.totals_by_provider()
    assert {p: t.cost_micros for p, t in by_provider.items()} == {"openai": 159, "anthropic": 70}
    assert sum(t.cost_micros for t in by_provider.values()) == ledger.spent
    by_model["openai/gpt-4o"].calls = 999  # copies: the ledger's own totals are not touched
    assert ledger.totals_by_model()["openai/gpt-4o"].calls == 3


# --- refusals and the 402 body ----------------------------------------------------------------------


def test_none_limit_is_unlimited_and_never_refuses() -> None:
    ledger, rec, _ = make(None)
    for i in range(100):
        res = ledger.reserve(f"r{i}", 10**12, model="m", provider="openai")
        ledger.settle(res, 10**12)
    assert ledger.spent == 100 * 10**12 and ledger.available is None and ledger.status()[1] is None
    assert rec.alerts() == []


def test_zero_limit_refuses_everything() -> None:
    ledger, _, _ = make(0)
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve("r", 0, model="m", provider="openai")
    assert info.value.kind == "exceeded"


def test_insufficient_when_worst_case_does_not_fit() -> None:
    ledger, _, _ = make(1 * USD)
    held = ledger.reserve("a", 600_000, model="m", provider="openai")
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve("b", 500_000, model="m", provider="openai")
    exc = info.value
    assert (exc.kind, exc.spent, exc.reserved, exc.limit, exc.estimate, exc.available) == (
        "insufficient", 0, 600_000, 1 * USD, 500_000, 400_000)
    assert ledger.reserved == 600_000  # a refusal books nothing
    ledger.reserve("c", 400_000, model="m", provider="openai")  # exactly fits
    ledger.release(held)


def test_402_bodies_exact_openai_and_anthropic() -> None:
    exceeded = BudgetExceeded("exceeded", spent=10_500_000, reserved=250_000, limit=10 * USD, estimate=1234)
    message = ("Iron Cage budget limit exceeded. Spent: $10.50, Reserved: $0.25, Limit: $10.00. "
               "Increase the budget (router.set_budget(), --budget or the dashboard).")
    assert budget_error_body(exceeded, "openai") == {
        "error": {"message": message, "type": "iron_cage_budget_exceeded", "param": None, "code": "budget_exceeded"}
    }
    assert budget_error_body(exceeded, "anthropic") == {
        "type": "error", "error": {"type": "iron_cage_budget_exceeded", "message": message}
    }
    short = BudgetExceeded("insufficient", spent=700_000, reserved=200_000, limit=1 * USD, estimate=123_456)
    message2 = ("Iron Cage insufficient budget for request. Available: $0.10, Estimated max cost: $0.123456. "
                "Reduce max_tokens, wait for in-flight requests to complete, or increase the budget.")
    assert budget_error_body(short, "openai") == {
        "error": {"message": message2, "type": "iron_cage_insufficient_budget", "param": None,
                  "code": "insufficient_budget"}
    }
    assert budget_error_body(short, "anthropic") == {
        "type": "error", "error": {"type": "iron_cage_insufficient_budget", "message": message2}
    }
    assert str(short) == message2


def test_exceeded_message_mentions_period_reset() -> None:
    exc = BudgetExceeded("exceeded", spent=5, reserved=0, limit=5, estimate=0, period="day")
    assert exc.message.endswith("or wait for the daily budget to reset.")


@pytest.mark.parametrize(("micros", "text"), [(0, "0.00"), (10 * USD, "10.00"), (1_234_500, "1.2345"),
                                              (12, "0.000012"), (250_000, "0.25")])
def test_format_usd(micros: int, text: str) -> None:
    assert format_usd(micros) == text


# --- concurrency and leaks --------------------------------------------------------------------------


async def test_concurrent_calls_never_overspend() -> None:
    rng = random.Random(7)
    limit = 5 * USD
    ledger, rec, _ = make(limit)
    settled: list[int] = []
    refused = 0
    spent_seen: list[int] = []

    async def call(i: int) -> None:
        nonlocal refused
        worst = rng.randint(50_000, 400_000)
        await asyncio.sleep(0)
        try:
            res = ledger.reserve(f"req_{i}", worst, model="gpt-4o", provider="openai")
        except BudgetExceeded:
            refused += 1
            return
        try:
            for _ in range(rng.randint(1, 5)):  # upstream time, other calls interleave here
                await asyncio.sleep(0)
                spent_seen.append(ledger.spent)
            if rng.random() < 0.15:
                raise ConnectionError("upstream reset")
            actual = rng.randint(0, worst)
            ledger.settle(res, actual)
            settled.append(actual)
        except ConnectionError:
            pass
        finally:
            ledger.release(res)

    await asyncio.gather(*(call(i) for i in range(400)))
    assert refused > 0 and settled, "the test must actually push against the limit"
    assert ledger.spent <= limit
    assert max(spent_seen) <= limit
    assert all(e.spent_micros <= limit for e in rec.spend())
    assert sum(settled) == ledger.spent
    assert (ledger.reserved, ledger.active_reservations) == (0, 0)


async def test_reservations_released_on_every_path() -> None:
    ledger, _, _ = make(100 * USD)
    started = asyncio.Event()

    async def handler(i: int, outcome: str) -> None:
        res = ledger.reserve(f"r{i}", 1000, model="m", provider="openai")
        try:
            if outcome == "error":
                raise RuntimeError("boom")
            if outcome == "hang":
                started.set()
                await asyncio.sleep(3600)  # cancelled: a client disconnect or timeout
            ledger.settle(res, 10)
        finally:
            ledger.release(res)

    results = await asyncio.gather(handler(1, "ok"), handler(2, "error"), return_exceptions=True)
    assert isinstance(results[1], RuntimeError)
    task = asyncio.create_task(handler(3, "hang"))
    await started.wait()
    assert ledger.reserved == 1000
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (ledger.reserved, ledger.active_reservations, ledger.spent) == (0, 0, 10)


# --- alerts and live limit --------------------------------------------------------------------------


def settle(ledger: BudgetLedger, amount: int) -> None:
    ledger.settle(ledger.reserve("r", 0, model="m", provider="openai"), amount)


def test_alerts_fire_once_per_upward_crossing() -> None:
    ledger, rec, _ = make(1000)
    settle(ledger, 700)
    assert rec.alerts() == []
    settle(ledger, 100)  # 80 %
    settle(ledger, 50)
    assert rec.alerts() == ["warning"]
    settle(ledger, 100)  # 95 %
    settle(ledger, 40)
    assert rec.alerts() == ["warning", "critical"]
    settle(ledger, 10)  # 100 %
    assert rec.alerts() == ["warning", "critical", "exhausted"]
    alert = next(e for e in rec.events if isinstance(e, CostAlert) and e.severity == "exhausted")
    assert (alert.spent_micros, alert.limit_micros, alert.percentage) == (1000, 1000, 100.0)


def test_a_jump_past_several_thresholds_fires_each_once_in_order() -> None:
    ledger, rec, _ = make(1000)
    first = ledger.reserve("a", 0, model="m", provider="openai")
    second = ledger.reserve("b", 0, model="m", provider="openai")
    ledger.settle(first, 2000)
    ledger.settle(second, 1)  # still over: no repeat
    assert rec.alerts() == ["warning", "critical", "exhausted"]


def test_set_limit_is_live_keeps_spent_and_rearms_alerts() -> None:
    ledger, rec, _ = make(1000)
    settle(ledger, 960)
    assert rec.alerts() == ["warning", "critical"]
    with pytest.raises(BudgetExceeded):
        ledger.reserve("big", 100, model="m", provider="openai")
    ledger.set_limit(10_000)  # raised: 9.6 % used, every alert re-armed
    assert ledger.spent == 960 and ledger.status() == (960, 10_000)
    assert rec.spend()[-1].limit_micros == 10_000
    ledger.reserve("big", 100, model="m", provider="openai")
    settle(ledger, 7100)  # 80.6 % of the new limit: warning again
    assert rec.alerts() == ["warning", "critical", "warning"]
    ledger.set_limit(8_000)  # lowered below spend: the newly passed thresholds fire now
    assert rec.alerts() == ["warning", "critical", "warning", "critical", "exhausted"]
    ledger.set_limit(None)
    ledger.reserve("x", 10**9, model="m", provider="openai")  # unlimited again


def test_set_limit_rejects_nonsense() -> None:
    ledger, _, _ = make(None)
    with pytest.raises(ValueError, match="non-negative"):
        ledger.set_limit(-1)


def test_restored_spend_above_a_threshold_is_not_a_new_crossing(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    ledger, rec, clock = make(1000, period="day", db_path=db)
    settle(ledger, 850)
    assert rec.alerts() == ["warning"]
    ledger.close()
    again, rec2, _ = make(1000, period="day", db_path=db, clock=clock)
    assert again.spent == 850
    settle(again, 10)
    assert rec2.alerts() == []
    settle(again, 100)
    assert rec2.alerts() == ["critical"]


# --- periods and persistence ------------------------------------------------------------------------


def local_ts(*args: int) -> float:
    return datetime(*args).timestamp()  # type: ignore[arg-type]


def test_period_keys_use_the_local_calendar() -> None:
    ts = local_ts(2026, 1, 31, 23, 59, 59)
    assert period_key("day", ts) == "2026-01-31"
    assert period_key("day", ts + 1) == "2026-02-01"
    assert period_key("month", ts) == "2026-01" and period_key("month", ts + 1) == "2026-02"
    assert period_key("week", local_ts(2026, 1, 4, 23, 59, 59)) == "2026-W01"  # a Sunday
    assert period_key("week", local_ts(2026, 1, 5)) == "2026-W02"  # Monday
    assert period_key("week", local_ts(2027, 1, 1)) == "2026-W53"  # ISO year, not calendar year
    assert period_key("session", ts) == "session"


@pytest.mark.parametrize(
    ("period", "start", "step_within", "step_across"),
    [
        ("day", (2026, 3, 10, 23, 0), 3540, 120),  # 23:59 then 00:01
        ("week", (2026, 3, 15, 12, 0), 11 * 3600, 3600 + 60),  # Sunday noon → 23:00 → Monday 00:01
        ("month", (2026, 3, 31, 22, 0), 3600, 3600 + 60),
    ],
)
def test_spent_resets_when_the_period_turns(
    period: str, start: tuple[int, ...], step_within: int, step_across: int, tmp_path: Path
) -> None:
    clock = FixedClock(local_ts(*start))
    ledger, rec, _ = make(1000, period=period, db_path=tmp_path / "b.sqlite3", clock=clock)
    settle(ledger, 900)
    assert rec.alerts() == ["warning"]
    clock.advance(step_within)
    assert ledger.spent == 900
    held = ledger.reserve("inflight", 50, model="m", provider="openai")
    clock.advance(step_across)
    assert ledger.status() == (0, 1000)  # reads see the new period at once...
    assert rec.spend()[-1].spent_micros == 900  # ...without side effects
    ledger.tick()  # the engine's periodic tick (or the next reserve/settle) rolls over and says so
    assert rec.spend()[-1].spent_micros == 0 and rec.spend()[-1].period == period
    assert ledger.reserved == 50  # in-flight reservations carry over
    ledger.settle(held, 30)  # charged to the period it settles in
    settle(ledger, 800)
    assert ledger.spent == 830
    assert rec.alerts() == ["warning", "warning"]  # re-armed by the new period
    ledger.close()


def test_persistence_restores_spent_for_the_same_period(tmp_path: Path) -> None:
    db = tmp_path / "state" / "ledger.sqlite3"
    clock = FixedClock(local_ts(2026, 5, 20, 9, 0))
    first, _, _ = make(10 * USD, period="month", db_path=db, clock=clock)
    settle(first, 1_250_000)
    settle(first, 250_000)
    # Write-through: visible to another connection before close (a crash loses nothing).
    with sqlite3.connect(db) as other:
        assert other.execute("SELECT period_key, spent_micros FROM budget_periods").fetchall() == [
            ("2026-05", 1_500_000)]
    first.close()
    second, _, _ = make(10 * USD, period="month", db_path=db, clock=clock)
    assert second.status() == (1_500_000, 10 * USD)
    settle(second, 1)
    clock.advance(20 * 86400)  # June: a new period starts from zero, May's row is kept
    assert second.spent == 0
    settle(second, 7)  # rolls over lazily: charged to June
    second.close()
    third, _, _ = make(10 * USD, period="month", db_path=db, clock=clock)
    assert third.spent == 7
    third.close()
    with sqlite3.connect(db) as other:
        assert dict(other.execute("SELECT period_key, spent_micros FROM budget_periods").fetchall()) == {
            "2026-05": 1_500_001, "2026-06": 7}


def test_two_ledgers_on_one_database_add_up(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    clock = FixedClock(local_ts(2026, 5, 20, 9, 0))
    a, _, _ = make(None, period="day", db_path=db, clock=clock)
    b, _, _ = make(None, period="day", db_path=db, clock=clock)
    settle(a, 100)
    settle(b, 50)
    assert b.spent == 150
    settle(a, 1)
    assert a.spent == 151
    a.close()
    b.close()


def test_session_period_is_in_memory_only(tmp_path: Path) -> None:
    ledger, _, _ = make(None, period="session", db_path=tmp_path / "unused.sqlite3")
    settle(ledger, 5)
    assert not (tmp_path / "unused.sqlite3").exists()
    assert make(None)[0].spent == 0


def test_unopenable_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(LedgerStorageError, match="adir"):
        make(None, period="day", db_path=tmp_path / "adir")


def test_storage_failure_after_start_keeps_enforcing_in_memory(tmp_path: Path) -> None:
    ledger, rec, _ = make(1000, period="day", db_path=tmp_path / "b.sqlite3")
    assert ledger._store is not None
    ledger._store._db().execute("DROP TABLE budget_periods")  # the file is damaged under us
    settle(ledger, 600)
    settle(ledger, 500)
    assert ledger.spent == 1100
    notices = [e for e in rec.events if isinstance(e, Notice)]
    assert len(notices) == 1 and "could not save spend" in notices[0].message
    with pytest.raises(BudgetExceeded):
        ledger.reserve("r", 0, model="m", provider="openai")


def test_bad_period_is_rejected() -> None:
    with pytest.raises(ValueError, match="budget period"):
        make(None, period="fortnight")

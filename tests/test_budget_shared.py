"""Fit to budget, one budget across processes (slices of a shared SQLite total), and crash recovery."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from iron_tui.core.analytics import Outbox
from iron_tui.core.budget import BudgetExceeded, BudgetLedger, CallInfo
from iron_tui.core.clock import FixedClock
from iron_tui.core.events import Event
from iron_tui.core.ledger_store import LedgerStore
from iron_tui.core.pricing import Pricer
from iron_tui.core.recovery import RecoveredCall, recover_dead
from iron_tui.core.token_usage import TokenUsage

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).parent / "helpers" / "ledger_worker.py"


def ledger(limit: int | None, *, clock: FixedClock | None = None, db: Path | None = None, period: str = "day",
           fit: bool = True) -> BudgetLedger:
    events: list[Event] = []
    return BudgetLedger(limit_micros=limit, publish=events.append, clock=clock or FixedClock(), period=period,  # type: ignore[arg-type]
                        store=LedgerStore(db) if db is not None else None, fit=fit)


def linear(base: int, per_token: int):  # type: ignore[no-untyped-def]
    return lambda out: base + per_token * out


# --- fit to budget ------------------------------------------------------------------------------------


def test_a_call_whose_worst_case_does_not_fit_is_capped_to_what_is_left() -> None:
    led = ledger(1000, period="session")
    res = led.admit("r1", cost_for=linear(100, 2), out_max=5000, out_min=50, model="m", provider="p")
    assert res.capped == 450 and res.amount == 1000  # 100 + 2 × 450: every µ$ left, not one more
    with pytest.raises(BudgetExceeded) as refused:  # nothing left for even a minimal answer
        led.admit("r2", cost_for=linear(100, 2), out_max=5000, out_min=50, model="m", provider="p")
    assert refused.value.kind == "insufficient" and refused.value.code == "insufficient_budget"
    led.settle(res, 300)
    res2 = led.admit("r3", cost_for=linear(100, 2), out_max=5000, out_min=50, model="m", provider="p")
    assert res2.capped == 300 and res2.amount == 700


def test_a_call_that_fits_is_not_touched() -> None:
    led = ledger(10_000, period="session")
    res = led.admit("r1", cost_for=linear(100, 2), out_max=200, out_min=50, model="m", provider="p")
    assert res.capped is None and res.amount == 500


def test_fitting_off_or_no_room_for_a_useful_answer_is_the_402() -> None:
    with pytest.raises(BudgetExceeded) as off:
        ledger(1000, period="session", fit=False).admit(
            "r", cost_for=linear(100, 2), out_max=5000, out_min=50, model="m", provider="p")
    assert off.value.estimate == 10_100  # the worst case, as before fitting existed
    with pytest.raises(BudgetExceeded) as small:
        ledger(1000, period="session").admit(
            "r", cost_for=linear(100, 2), out_max=5000, out_min=1024, model="m", provider="p")
    assert small.value.kind == "insufficient" and small.value.available == 1000
    assert small.value.message.startswith("Iron Cage insufficient budget for request.")


def test_an_unbounded_call_is_capped_under_a_limit_and_free_without_one() -> None:
    res = ledger(1000, period="session").admit("r", cost_for=linear(100, 3), out_max=None, out_min=10,
                                               model="m", provider="p")
    assert res.capped == 300 and res.amount == 1000
    free = ledger(None, period="session").admit("r", cost_for=linear(100, 3), out_max=None, out_min=10,
                                                model="m", provider="p")
    assert free.capped is None and free.amount == 100
    with pytest.raises(BudgetExceeded, match="no output cap"):
        ledger(1000, period="session", fit=False).admit("r", cost_for=linear(100, 3), out_max=None, out_min=10,
                                                        model="m", provider="p")


def test_claude_code_requests_run_until_the_budget_is_really_spent() -> None:
    # Claude Code always asks for 64,000 output tokens: $0.96 of claude-sonnet-4-5 output alone. Under a $1
    # budget each call is capped to what is left and settles at its real (small) cost.
    pricer = Pricer()
    led = ledger(1_000_000, period="session")
    calls = 0
    while True:
        try:
            res = led.admit(f"r{calls}", out_max=64_000, out_min=1024, model="claude-sonnet-4-5",
                            provider="anthropic",
                            cost_for=lambda out: pricer.worst_case("anthropic", "claude-sonnet-4-5", 20_000, out) or 0)
        except BudgetExceeded:
            break
        calls += 1
        led.settle(res, pricer.cost("anthropic", "claude-sonnet-4-5", TokenUsage(5_000, 500)))
    assert calls > 30
    floor = pricer.worst_case("anthropic", "claude-sonnet-4-5", 20_000, 1024) or 0
    assert 1_000_000 - floor < led.spent <= 1_000_000  # stopped only when not even 1,024 tokens fit


# --- one budget across processes ------------------------------------------------------------------------


def test_two_ledgers_on_one_database_never_book_past_the_shared_limit(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    clock = FixedClock()
    a, b = ledger(10_000, clock=clock, db=db), ledger(10_000, clock=clock, db=db)
    rng = random.Random(7)
    held: list[tuple[BudgetLedger, object]] = []
    admitted = {id(a): 0, id(b): 0}
    for i in range(600):
        led = rng.choice((a, b))
        if held and rng.random() < 0.45:
            owner, res = held.pop(rng.randrange(len(held)))
            owner.settle(res, rng.randint(0, res.amount))  # type: ignore[attr-defined]
        else:
            try:
                res = led.admit(f"r{i}", cost_for=linear(50, 1), out_max=rng.randint(0, 300), out_min=10,
                                model="m", provider="p")
            except BudgetExceeded:
                continue
            held.append((led, res))
            admitted[id(led)] += 1
        with sqlite3.connect(db) as con:
            spent = con.execute("SELECT coalesce(sum(spent_micros), 0) FROM budget_periods").fetchone()[0]
            slices = con.execute("SELECT coalesce(sum(micros), 0) FROM budget_slices").fetchone()[0]
        assert spent + a.reserved + b.reserved <= 10_000
        assert spent + slices <= 10_000
    assert admitted[id(a)] > 10 and admitted[id(b)] > 10
    assert a.spent == b.spent  # both see every process's spend


def test_an_idle_process_gives_its_slice_back(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    clock = FixedClock()
    a, b = ledger(3_200, clock=clock, db=db), ledger(3_200, clock=clock, db=db)
    res = a.admit("r", cost_for=linear(0, 1), out_max=3_000, out_min=1, model="m", provider="p")
    a.settle(res, 10)
    with pytest.raises(BudgetExceeded):  # a still holds a slice...
        b.reserve("x", 3_150, model="m", provider="p")
    clock.advance(5)
    a.tick()  # ...until it has been idle for a moment
    assert b.reserve("x", 3_150, model="m", provider="p").amount == 3_150


def test_spend_of_a_session_is_never_shared(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    a, b = ledger(1000, db=db, period="session"), ledger(1000, db=db, period="session")
    a.settle(a.reserve("r", 900, model="m", provider="p"), 900)
    assert b.reserve("r", 900, model="m", provider="p").amount == 900 and b.spent == 0


def test_two_processes_share_one_daily_budget(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    limit = 40_000
    procs = [subprocess.Popen([sys.executable, str(WORKER), "spend", str(db), str(limit), str(seed)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}) for seed in (1, 2)]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1]))
    with sqlite3.connect(db) as con:
        spent = con.execute("SELECT sum(spent_micros) FROM budget_periods").fetchone()[0]
        left = con.execute("SELECT count(*) FROM calls").fetchone()[0] + con.execute(
            "SELECT count(*) FROM budget_slices").fetchone()[0]
    assert spent == sum(r["spent"] for r in results)  # every settled µ$ is on disk, once
    assert spent <= limit  # together they never spent past the limit
    assert all(r["admitted"] > 5 for r in results)  # both really used it
    assert spent > limit * 0.6  # and the budget was used, not stranded in slices
    assert left == 0  # journal empty, slices returned


# --- crash recovery -------------------------------------------------------------------------------------


def _kill_worker_mid_flight(db: Path, n: int) -> None:
    p = subprocess.Popen([sys.executable, str(WORKER), "inflight", str(db), "1000000", str(n)],
                         stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)


def test_calls_of_a_killed_process_are_charged_once_with_one_event_each(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    _kill_worker_mid_flight(db, 4)
    live = ledger(1_000_000, db=db, clock=FixedClock(__import__("time").time()))
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    pricer = Pricer()

    def record(call: RecoveredCall) -> None:
        for _ in range(2):  # a repeat (a second recoverer, or the dead process's own event) is dropped
            outbox.add({"event_id": call.row.event_id, "event_type": "llm_request_failed",
                        "error_code": "interrupted"})

    assert live._store is not None
    report = recover_dead(live._store, pricer, record)
    assert [c.row.event_id for c in report.calls] == [f"event-{i}" for i in range(4)]
    # Charged what was relayed: 1,000 input tokens + 1 token per 2 relayed characters, at gpt-4o-mini's price.
    expected = [pricer.cost("openai", "gpt-4o-mini", TokenUsage(1_000, 1_000 * (i + 1))) for i in range(4)]
    assert [c.charge_micros for c in report.calls] == expected
    assert live.spent == sum(expected)  # type: ignore[arg-type]
    assert outbox.pending_count() == 4
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM calls").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM budget_slices").fetchone()[0] == 0
    again = recover_dead(live._store, pricer, record)
    assert again.calls == [] and live.spent == sum(expected)  # type: ignore[arg-type]


def test_a_live_process_is_never_recovered(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    clock = FixedClock()
    alive = ledger(1_000_000, db=db, clock=clock)
    res = alive.reserve("r", 5_000, model="gpt-4o-mini", provider="openai", call=CallInfo("openai.chat", "e1"))
    other = ledger(1_000_000, db=db, clock=clock)
    assert other._store is not None
    assert recover_dead(other._store, Pricer()).calls == []
    alive.settle(res, 1_234)
    alive.finish("r")
    assert other.spent == 0 and alive.spent == 1_234
    other.tick()
    assert other.spent == 1_234

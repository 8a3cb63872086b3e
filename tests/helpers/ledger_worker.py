"""A budget ledger in its own process, on a shared data dir (tests of one budget across processes).

    python ledger_worker.py spend DB LIMIT SEED
        Admit calls with random worst cases (fitted to the budget when they do not fit), settle each at a
        random actual cost, until the budget refuses 30 times in a row; print one JSON line with what it
        admitted and spent, then close.
    python ledger_worker.py inflight DB LIMIT N
        Admit N journaled calls, checkpoint their relayed progress, print "ready" once that is on disk,
        then wait to be killed (SIGKILL) with the calls still in flight.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

from iron_tui.core.budget import BudgetExceeded, BudgetLedger, CallInfo
from iron_tui.core.clock import SystemClock
from iron_tui.core.ledger_store import LedgerStore


async def spend(db: Path, limit: int, seed: int) -> None:
    rng = random.Random(seed)
    ledger = BudgetLedger(limit_micros=limit, publish=lambda e: None, clock=SystemClock(), period="day",
                          store=LedgerStore(db))
    admitted = spent = refusals = capped = 0
    n = 0
    while refusals < 30:
        n += 1
        per_token = rng.choice((1, 2, 3))
        try:
            res = ledger.admit(f"r{n}", cost_for=lambda out, p=per_token: 20 + p * out, out_max=rng.randint(20, 150),
                               out_min=10, model="m", provider="openai", call=CallInfo("openai.chat", f"e{seed}-{n}"))
        except BudgetExceeded:
            refusals += 1
            await asyncio.sleep(0.005)
            continue
        refusals = 0
        admitted += 1
        capped += res.capped is not None
        await ledger.durable(res)
        await asyncio.sleep(rng.random() * 0.004)
        cost = rng.randint(res.amount // 2, res.amount)
        ledger.settle(res, cost)
        ledger.finish(res.id)
        spent += cost
    ledger.close()
    print(json.dumps({"admitted": admitted, "spent": spent, "capped": capped}), flush=True)


async def inflight(db: Path, limit: int, n: int) -> None:
    ledger = BudgetLedger(limit_micros=limit, publish=lambda e: None, clock=SystemClock(), period="day",
                          store=LedgerStore(db))
    calls = []
    for i in range(n):
        res = ledger.reserve(f"s{i}", 50_000, model="gpt-4o-mini", provider="openai",
                             call=CallInfo("openai.chat", f"event-{i}", input_tokens=1_000))
        await ledger.durable(res)
        calls.append(res)
    for i, res in enumerate(calls):
        ledger.progress(res, input_tokens=1_000, output_tokens=0, output_chars=2_000 * (i + 1))
    ledger.flush()  # the checkpoint the relay would commit within PROGRESS_FLUSH_S
    print("ready", flush=True)
    await asyncio.sleep(3600)


def main() -> None:
    mode, db, limit, arg = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    asyncio.run(spend(db, limit, arg) if mode == "spend" else inflight(db, limit, arg))


if __name__ == "__main__":
    main()

"""What issue 13's money path costs per call, in one process, side by side in one run:

    python bench/money_bench.py

* admission: the checks and bounds a call pays before it goes upstream — the old path (a fixed 4,096
  default, `reserve`) against the new one (number validation, model limits, fitting `admit`);
* the shared ledger and crash journal (a calendar-period budget): admit + durable + settle + finish
  against an in-memory session ledger, sequential and 32 calls at a time (group commit).
CPU time per call (process time), best of 5 rounds.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from iron_tui.core.budget import BudgetLedger, CallInfo  # noqa: E402
from iron_tui.core.clock import SystemClock  # noqa: E402
from iron_tui.core.estimate import input_token_bound, max_output_tokens  # noqa: E402
from iron_tui.core.ledger_store import LedgerStore  # noqa: E402
from iron_tui.core.model_limits import ModelLimits  # noqa: E402
from iron_tui.core.pricing import Pricer  # noqa: E402
from iron_tui.core.request_numbers import validate_numbers  # noqa: E402

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in five words."}]}
RAW = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in five words."}]}'
N = 20_000


def best(fn, n: int = N) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(5):
        t = time.process_time()
        fn(n)
        times.append((time.process_time() - t) / n * 1e6)
    return min(times)


def admission(pricer: Pricer, limits: ModelLimits) -> tuple[float, float]:
    old_ledger = BudgetLedger(limit_micros=10**12, publish=lambda e: None, clock=SystemClock())
    new_ledger = BudgetLedger(limit_micros=10**12, publish=lambda e: None, clock=SystemClock())

    def old(n: int) -> None:
        for i in range(n):
            bound = input_token_bound(BODY, "openai.chat", RAW)
            out = max_output_tokens(BODY, "openai.chat", 4096)
            amount = pricer.worst_case("openai", "gpt-4o-mini", bound, out) or 0
            old_ledger.settle(old_ledger.reserve(str(i), amount, model="gpt-4o-mini", provider="openai"), 10)

    def new(n: int) -> None:
        for i in range(n):
            validate_numbers("openai.chat", BODY, max_output=limits.max_output("openai", "gpt-4o-mini"))
            bound = input_token_bound(BODY, "openai.chat", RAW)
            per_choice = limits.output_bound("openai", "gpt-4o-mini", bound, None)

            def cost_for(out: int, bound: int = bound) -> int:
                return pricer.worst_case("openai", "gpt-4o-mini", bound, out) or 0

            res = new_ledger.admit(str(i), cost_for=cost_for, out_max=per_choice, out_min=1024, model="gpt-4o-mini",
                                   provider="openai")
            new_ledger.settle(res, 10)

    return best(old), best(new)


async def journal(concurrency: int) -> tuple[float, float]:
    async def run(ledger: BudgetLedger, n: int, call: bool) -> None:
        async def one(i: int) -> None:
            res = ledger.reserve(f"r{i}", 100, model="gpt-4o-mini", provider="openai",
                                 call=CallInfo("openai.chat", f"e{i}", 50) if call else None)
            await ledger.durable(res)
            await asyncio.sleep(0)
            ledger.settle(res, 60)
            ledger.finish(res.id)

        for start in range(0, n, concurrency):
            await asyncio.gather(*(one(i) for i in range(start, min(n, start + concurrency))))

    results = []
    for shared in (False, True):
        times = []
        for _ in range(5):
            d = tempfile.mkdtemp()
            ledger = BudgetLedger(limit_micros=10**12, publish=lambda e: None, clock=SystemClock(),
                                  period="day" if shared else "session",
                                  store=LedgerStore(Path(d) / "state.sqlite3") if shared else None)
            n = 5_000
            t = time.process_time()
            await run(ledger, n, shared)
            ledger.flush()
            times.append((time.process_time() - t) / n * 1e6)
            ledger.close()
        results.append(min(times))
    return results[0], results[1]


def main() -> None:
    pricer, limits = Pricer(), ModelLimits()
    pricer.cost("openai", "gpt-4o-mini", __import__("iron_tui.core.token_usage").core.token_usage.TokenUsage(1))
    old, new = admission(pricer, limits)
    print(f"admission (checks + bound + book + settle): old {old:.1f} µs/call, new {new:.1f} µs/call, "
          f"+{new - old:.1f} µs")
    for c in (1, 32):
        mem, disk = asyncio.run(journal(c))
        print(f"ledger, {c:>2} at a time: in-memory session {mem:.1f} µs/call, shared day ledger + journal "
              f"{disk:.1f} µs/call (+{disk - mem:.1f} µs)")


if __name__ == "__main__":
    main()

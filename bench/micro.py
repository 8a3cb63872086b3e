"""Micro-benchmarks of per-call building blocks whose speed tests used to assert (tests assert behaviour;
speed is measured here):

    python bench/micro.py

- the input bound of a 200-message conversation (`estimate.input_token_bound`, walked, no fast path);
- the input bound of a Claude Code-sized request (110 KB: tool calls with file_path, tool results, a long
  system prompt) from the client's bytes, the proxy's fast path;
- a cached price (`Pricer.cost` + `Pricer.worst_case`), against genai-prices' own lookup;
- one analytics outbox insert (`Outbox.add`, a real SQLite file, WAL).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent_body import agent_messages_request

from iron_tui.core.analytics_protocol import completed_event
from iron_tui.core.estimate import input_token_bound
from iron_tui.core.outbox import Outbox
from iron_tui.core.pricing import Pricer, TokenUsage

WORDS = "the quick brown fox jumps over a lazy dog while seven wizards box jolly quartz nymphs".split()


def per_call_us(fn: object, n: int, rounds: int = 5) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(samples)


def main() -> None:
    rng = random.Random(1)
    body = {"model": "gpt-4o", "messages": [
        {"role": "user" if i % 2 else "assistant", "content": " ".join(rng.choices(WORDS, k=150))}
        for i in range(200)]}
    print(f"input bound, 200 messages ({len(str(body)) // 1024} KB): "
          f"{per_call_us(lambda: input_token_bound(body, 'openai.chat'), 20):.0f} µs")

    agent = agent_messages_request()
    raw = orjson.dumps(agent)
    print(f"input bound, agent request from its bytes ({len(raw) // 1024} KB): "
          f"{per_call_us(lambda: input_token_bound(agent, 'anthropic.messages', raw), 50):.0f} µs "
          f"(walked: {per_call_us(lambda: input_token_bound(agent, 'anthropic.messages'), 20):.0f} µs)")

    pricer = Pricer()
    usage = TokenUsage(input_tokens=1234, output_tokens=567, cache_read_tokens=89, cache_write_tokens=10)
    pricer.cost("anthropic", "claude-sonnet-4-5-20250929", usage)  # resolve once

    def priced() -> None:
        pricer.cost("anthropic", "claude-sonnet-4-5-20250929", usage)
        pricer.worst_case("openai", "gpt-4o", 5_000, 1_000)

    print(f"cached cost + worst case: {per_call_us(priced, 5_000):.2f} µs")
    from genai_prices import Usage, calc_price

    print(f"genai-prices calc_price (what the cache avoids): "
          f"{per_call_us(lambda: calc_price(Usage(input_tokens=1234, output_tokens=567), 'gpt-4o'), 200):.0f} µs")

    with tempfile.TemporaryDirectory() as tmp:
        outbox = Outbox(Path(tmp) / "outbox.sqlite3")
        events = iter(completed_event(ic_token="t", event_id=str(uuid.uuid4()), timestamp_ms=i, model="gpt-4o",
                                      provider="openai", input_tokens=11, output_tokens=1, cost_micros=1)
                      for i in range(10**6))
        print(f"outbox add: {per_call_us(lambda: outbox.add(next(events)), 500):.0f} µs")
        outbox.close()


if __name__ == "__main__":
    main()

"""The budget real agents can live with, end to end through the proxy with the official SDKs: a true
output bound when the request sets none, calls fitted to what is left, compaction billed in full."""

from __future__ import annotations

import asyncio
import json

import anthropic
import openai

from iron_tui.core.engine import Engine
from iron_tui.sim import ProviderSim
from tests.conftest import EngineFactory


def oai(engine: Engine) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)


def claude(engine: Engine) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0)


async def test_no_max_tokens_never_overspends(make_engine: EngineFactory, sim: ProviderSim) -> None:
    # The OpenAI SDK sends no max_tokens by default: gpt-4o may write 16,384 tokens ($0.16 each), so
    # under $0.10 every call is fitted to what is left instead of assuming 4,096.
    engine = await make_engine(budget=0.10)
    sim.settings.latency_ms = 20  # concurrent calls overlap for real
    client = oai(engine)
    finishes: list[str] = []

    async def one(i: int) -> None:
        try:
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"[[sim:words=20000]] essay {i}"}])
        except openai.APIStatusError as exc:
            assert exc.status_code == 402 and exc.body["type"] == "iron_cage_insufficient_budget"  # type: ignore[index]
            return
        reply = raw.parse()
        finishes.append(reply.choices[0].finish_reason)
        cap = int(raw.headers["x-iron-max-tokens"])
        assert reply.usage is not None and reply.usage.completion_tokens == cap  # the model stopped at the cap

    await asyncio.gather(*(one(i) for i in range(16)))
    spent, limit = engine.ledger.status()
    assert finishes and set(finishes) == {"length"}
    assert spent <= limit == 100_000
    assert spent > 0.9 * limit  # the budget was used, not refused wholesale
    assert engine.ledger.reserved == 0


async def test_fit_to_budget_lowers_the_cap_and_says_so(make_engine: EngineFactory, sim: ProviderSim) -> None:
    engine = await make_engine(budget=0.02)
    raw = await oai(engine).chat.completions.with_raw_response.create(
        model="gpt-4o", max_tokens=16_000, messages=[{"role": "user", "content": "[[sim:words=16000]] go"}])
    reply = raw.parse()
    cap = int(raw.headers["x-iron-max-tokens"])
    assert 1024 <= cap < 16_000
    assert reply.choices[0].finish_reason == "length"
    assert sim.requests[-1].body["max_tokens"] == cap  # type: ignore[index]  # what went upstream
    rec = engine.history.recent()[-1]
    assert rec.capped_max_tokens == cap and rec.summary()["capped_max_tokens"] == cap
    assert any("capped by budget" in w for w in rec.warnings)
    assert engine.ledger.spent <= 20_000


async def test_fitting_off_refuses_with_the_402(make_engine: EngineFactory) -> None:
    engine = await make_engine(budget=0.02, budget_fit=False)
    try:
        await oai(engine).chat.completions.create(
            model="gpt-4o", max_tokens=16_000, messages=[{"role": "user", "content": "go"}])
    except openai.APIStatusError as exc:
        assert exc.status_code == 402
        assert exc.body["code"] == "insufficient_budget"  # type: ignore[index]
        assert exc.body["message"].startswith("Iron Cage insufficient budget")  # type: ignore[index]
    else:
        raise AssertionError("the call should have been refused")


async def test_claude_code_runs_under_one_dollar_until_it_is_spent(make_engine: EngineFactory) -> None:
    # Claude Code always asks for max_tokens 64,000 ($0.96 of claude-sonnet-4-5 output), streams, and sends
    # a large context: the worst case never fits $1, so every call is fitted to what is left.
    engine = await make_engine(budget=1.0)
    client = claude(engine)
    context = "code " * 8000
    calls, capped = 0, []
    for i in range(100):
        try:
            async with client.messages.stream(
                model="claude-sonnet-4-5", max_tokens=64_000,
                messages=[{"role": "user", "content": f"[[sim:words=1500]] task {i} {context}"}],
            ) as stream:
                final = await stream.get_final_message()
                headers = stream.response.headers
        except anthropic.APIStatusError as exc:
            assert exc.status_code == 402
            assert exc.body["error"]["type"] == "iron_cage_insufficient_budget"  # type: ignore[index]
            break
        calls += 1
        capped.append((int(headers["x-iron-max-tokens"]), final.stop_reason, final.usage.output_tokens))
    else:
        raise AssertionError("the budget never ran out")
    spent = engine.ledger.spent
    assert calls >= 10 and spent <= 1_000_000
    assert all(1024 <= cap < 64_000 for cap, _stop, _out in capped)
    # It ran until not even a 1,024-token answer fit (the input bound of this context plus 1,024 tokens).
    floor = engine.pricer.worst_case("anthropic", "claude-sonnet-4-5", 45_000, 1024) or 0
    assert spent > 1_000_000 - floor


async def test_a_capped_claude_stream_stops_at_max_tokens(make_engine: EngineFactory) -> None:
    engine = await make_engine(budget=0.2)
    async with claude(engine).messages.stream(
        model="claude-sonnet-4-5", max_tokens=64_000,
        messages=[{"role": "user", "content": "[[sim:words=8000]] " + "code " * 8000}],
    ) as stream:
        final = await stream.get_final_message()
        cap = int(stream.response.headers["x-iron-max-tokens"])
    assert 1024 <= cap < 8000
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == cap
    assert engine.ledger.spent <= 200_000


async def test_a_request_sending_no_cap_to_claude_gets_the_model_maximum(engine: Engine, sim: ProviderSim) -> None:
    await oai(engine).chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    assert sim.requests[-1].body["max_tokens"] == 64_000  # type: ignore[index]  # not an arbitrary 4,096


async def test_absurd_numbers_are_400s_naming_the_field(engine: Engine) -> None:
    client = oai(engine)
    for bad in ({"max_tokens": -5}, {"max_tokens": 10**30}, {"n": 1.5}, {"max_tokens": 100_000}):
        try:
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}],
                                                 **bad)  # type: ignore[call-overload]
        except openai.BadRequestError as exc:
            assert exc.body["param"] == next(iter(bad))  # type: ignore[index]
        else:
            raise AssertionError(f"{bad} should be refused")
    raw = b'{"model": "gpt-4o", "max_tokens": 1e400, "messages": [{"role": "user", "content": "x"}]}'
    import aiohttp

    async with aiohttp.ClientSession() as s, s.post(engine.openai_base_url + "/chat/completions", data=raw, headers={
            "authorization": f"Bearer {engine.token}", "content-type": "application/json"}) as resp:
        assert resp.status == 400
        assert json.loads(await resp.read())["error"]["param"] == "max_tokens"
    snapshot = engine.snapshot()
    json.dumps(snapshot, allow_nan=False)  # the feed can always describe the state


async def test_a_capped_thinking_call_keeps_its_thinking_budget_below_the_cap(
        make_engine: EngineFactory, sim: ProviderSim) -> None:
    # Claude Code's "ultrathink": a 31,999-token thinking budget under max_tokens 64,000. Fitted to $0.20,
    # the cap drops below the thinking budget, so the budget is lowered with it (Anthropic requires
    # budget_tokens < max_tokens), leaving room for the answer.
    engine = await make_engine(budget=0.2)
    async with claude(engine).messages.stream(
        model="claude-sonnet-4-5", max_tokens=64_000, thinking={"type": "enabled", "budget_tokens": 31_999},
        messages=[{"role": "user", "content": "[[sim:words=200]] think hard"}],
    ) as stream:
        await stream.get_final_message()
        cap = int(stream.response.headers["x-iron-max-tokens"])
    sent = sim.requests[-1].body
    assert sent is not None and sent["max_tokens"] == cap < 31_999
    assert 1024 <= sent["thinking"]["budget_tokens"] <= cap - 1024

"""Spend through the real proxy: reservations under concurrency, no leaks, streams priced, periods."""

from __future__ import annotations

import asyncio

import aiohttp
import anthropic
import openai
import pytest

from iron_tui.core.clock import FixedClock
from iron_tui.core.engine import Engine
from iron_tui.core.events import CostAlert
from iron_tui.core.pricing import TokenUsage
from iron_tui.sim import ProviderSim
from tests.conftest import EngineFactory


def oai(engine: Engine) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)


async def test_concurrent_requests_never_overspend(make_engine: EngineFactory, sim: ProviderSim) -> None:
    engine = await make_engine(budget=0.05)
    sim.settings.latency_ms = 30  # requests overlap for real
    client = oai(engine)
    outcomes: list[str] = []

    async def one(i: int) -> None:
        try:
            await client.chat.completions.create(
                model="gpt-4o", max_tokens=1500,
                messages=[{"role": "user", "content": f"[[sim:words=600]] request {i} " + "context " * 200}])
            outcomes.append("ok")
        except openai.APIStatusError as exc:
            assert exc.status_code == 402, exc
            assert exc.body["type"] in ("iron_cage_budget_exceeded", "iron_cage_insufficient_budget")  # type: ignore[index]
            outcomes.append("402")

    for _ in range(3):  # keep going until the budget is really used up
        await asyncio.gather(*(one(i) for i in range(64)))
    assert "ok" in outcomes and "402" in outcomes
    spent, limit = engine.ledger.status()
    assert limit == 50_000 and spent <= limit
    assert engine.ledger.reserved == 0
    recorded = sum(r.cost_micros or 0 for r in engine.history.recent() if r.state == "ok")
    assert recorded == spent, "the sum of per-request costs equals the ledger"


async def test_failures_never_leak_reservations(make_engine: EngineFactory, sim: ProviderSim) -> None:
    # Each call reserves ~$0.01 (1,000 gpt-4o output tokens): 200 leaked reservations would be $2,
    # four times the budget, so a leak locks us out.
    engine = await make_engine(budget=0.5, upstream_timeout=0.3)
    client = oai(engine)
    body_big = {"max_tokens": 1000}

    async def upstream_500(i: int) -> None:
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="gpt-4o", messages=[
                {"role": "user", "content": "[[sim:error=500]]"}], **body_big)

    async def timeout(i: int) -> None:
        with pytest.raises(openai.APIStatusError) as e:
            await client.chat.completions.create(model="gpt-4o", messages=[
                {"role": "user", "content": "[[sim:hang]]"}], **body_big)
        assert e.value.status_code == 504

    async def translation_400(i: int) -> None:
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="claude-sonnet-4-6", n=2,
                                                 messages=[{"role": "user", "content": "x"}], **body_big)

    async def disconnect(i: int) -> None:
        async with aiohttp.ClientSession() as s:
            r = await s.post(engine.openai_base_url + "/chat/completions",
                             json={"model": "gpt-4o", "stream": True, "max_tokens": 1000, "messages": [
                                 {"role": "user", "content": "[[sim:words=300]] [[sim:slow_stream=5]] go"}]},
                             headers={"authorization": f"Bearer {engine.token}"})
            await r.content.readuntil(b"\n\n")
            r.close()

    for kind in (upstream_500, timeout, translation_400, disconnect):
        for batch in range(5):
            await asyncio.gather(*(kind(batch * 10 + i) for i in range(10)))
    for _ in range(100):
        if engine.ledger.reserved == 0 and engine.proxy.inflight == 0:
            break
        await asyncio.sleep(0.02)
    assert engine.ledger.reserved == 0
    r = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "ok?"}],
                                             **body_big)
    assert r.choices[0].message.content, "the next request is admitted"


async def test_streams_are_charged_from_usage(engine: Engine) -> None:
    client = oai(engine)
    for kw in ({}, {"stream_options": {"include_usage": True}}):
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "count"}], **kw)  # type: ignore[call-overload]
        [c async for c in stream]
        rec = engine.history.recent(1)[0]
        assert rec.output_tokens > 0 and not rec.cost_estimated
        assert rec.cost_micros == engine.pricer.cost(
            "openai", "gpt-4o-mini", TokenUsage(input_tokens=rec.input_tokens, output_tokens=rec.output_tokens))
    a = anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0)
    async with a.messages.stream(model="claude-3-5-haiku-latest", max_tokens=100,
                                 messages=[{"role": "user", "content": "hi"}]) as s:
        final = await s.get_final_message()
    rec = engine.history.recent(1)[0]
    assert rec.output_tokens == final.usage.output_tokens and rec.input_tokens == final.usage.input_tokens
    assert rec.cost_micros and not rec.cost_estimated
    stream = await client.chat.completions.create(
        model="claude-3-5-haiku-latest", stream=True, messages=[{"role": "user", "content": "hi"}])
    [c async for c in stream]
    rec = engine.history.recent(1)[0]
    assert rec.translated and rec.output_tokens > 0 and rec.cost_micros


async def test_cache_tokens_priced_at_their_own_rates(engine: Engine, sim: ProviderSim) -> None:
    a = anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0)
    system = [{"type": "text", "text": "You are a careful assistant. " * 300, "cache_control": {"type": "ephemeral"}}]
    for _ in range(2):
        await a.messages.create(model="claude-sonnet-4-6", max_tokens=50, system=system,  # type: ignore[arg-type]
                                messages=[{"role": "user", "content": "hi"}])
    write, read = engine.history.recent(2)[1], engine.history.recent(2)[0]
    assert write.cache_write_tokens > 0 and read.cache_read_tokens > 0
    rates = engine.pricer.rates("anthropic", "claude-sonnet-4-6")
    assert rates is not None and rates.cache_read < rates.input < rates.cache_write
    for rec in (write, read):
        usage = TokenUsage(input_tokens=rec.input_tokens - rec.cache_read_tokens - rec.cache_write_tokens,
                           output_tokens=rec.output_tokens, cache_read_tokens=rec.cache_read_tokens,
                           cache_write_tokens=rec.cache_write_tokens)
        assert rec.cost_micros == engine.pricer.cost("anthropic", "claude-sonnet-4-6", usage)
    assert read.cost_micros is not None and write.cost_micros is not None
    assert read.cost_micros < write.cost_micros


async def test_unpriced_model_marked_and_strict_refuses(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    async with aiohttp.ClientSession() as s:
        r = await s.post(engine.base_url + "/openai/v1/chat/completions",
                         json={"model": "acme-secret-model", "messages": [{"role": "user", "content": "x"}]},
                         headers={"authorization": f"Bearer {engine.token}"})
        assert r.status == 200 and r.headers["x-iron-cost-usd"] == "unpriced"
    assert engine.ledger.unpriced_calls == 1
    rec = engine.history.recent(1)[0]
    assert not rec.priced and rec.cost_micros is None
    strict = await make_engine(strict_pricing=True)
    async with aiohttp.ClientSession() as s:
        r = await s.post(strict.base_url + "/openai/v1/chat/completions",
                         json={"model": "acme-secret-model", "messages": [{"role": "user", "content": "x"}]},
                         headers={"authorization": f"Bearer {strict.token}"})
        assert r.status == 400 and "strict" in (await r.json())["error"]["message"]


async def test_budget_402_shapes_and_alerts(make_engine: EngineFactory) -> None:
    engine = await make_engine(budget=0.0005)
    sub = engine.bus.subscribe()
    client = oai(engine)
    with pytest.raises(openai.APIStatusError):
        for _ in range(50):
            await client.chat.completions.create(model="gpt-4o-mini", max_tokens=100,
                                                 messages=[{"role": "user", "content": "[[sim:words=90]] hi"}])
    a = anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as e:
        await a.messages.create(model="claude-sonnet-4-6", max_tokens=1000, messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 402
    assert e.value.body["type"] == "error"  # type: ignore[index]
    assert e.value.body["error"]["type"].startswith("iron_cage_")  # type: ignore[index]
    assert e.value.body["error"]["message"].startswith("Iron Cage")  # type: ignore[index]
    alerts = [ev.severity for ev in sub.drain() if isinstance(ev, CostAlert)]
    assert alerts.count("warning") <= 1 and alerts.count("critical") <= 1
    assert "warning" in alerts
    # Raising the limit lets calls through again; spent is kept.
    spent = engine.ledger.spent
    engine.set_budget(1.0)
    await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}])
    assert engine.ledger.spent > spent


async def test_daily_budget_survives_restart_and_resets_at_midnight(make_engine: EngineFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import time as _time

    # Local noon, so a 24 h step always lands on the next calendar day.
    lt = _time.localtime()
    noon = _time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 12, 0, 0, 0, 0, -1))
    clock = FixedClock(noon)
    data = tmp_path / "shared"
    e1 = await make_engine(budget=5.0, budget_period="day", data_dir=data, clock=clock)
    await oai(e1).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    spent = e1.ledger.spent
    assert spent > 0
    await e1.stop()
    e2 = await make_engine(budget=5.0, budget_period="day", data_dir=data, clock=clock)
    assert e2.ledger.spent == spent, "restarting does not reset a daily budget"
    clock.advance(24 * 3600)
    assert e2.ledger.status()[0] == 0, "a new day starts from zero"

"""How numbers read (one form on every surface), cost breakdowns and error explanations — the last
two from real calls through the proxy (a provider 429, a budget 402 iron-tui makes)."""

from __future__ import annotations

import json

import openai
import pytest

from iron_tui.core import units
from iron_tui.core.explain import cost_breakdown, explain_error, tokens_per_second
from iron_tui.sim import ProviderSim
from tests.conftest import EngineFactory


@pytest.mark.parametrize(("micros", "text"), [
    (1530, "$0.001530"), (2286, "$0.002286"), (55_500, "$0.055500"), (0, "$0.000000"), (20_000, "$0.020000"),
    (5_000_000, "$5.000000"), (1_234_500_000, "$1,234.500000"), (-1, "-$0.000001"), (None, "–"),
])
def test_money_has_six_decimals_everywhere(micros: int | None, text: str) -> None:
    assert units.money(micros) == text


def test_call_cost_forms() -> None:
    assert units.call_cost({"cost_usd": 0.00153, "priced": True}) == "$0.001530"
    assert units.call_cost({"cost_usd": 0.0009, "cost_estimated": True}) == "~$0.000900"
    assert units.call_cost({"cost_usd": None, "priced": False}) == "unpriced"
    assert units.call_cost({"cost_usd": None}) == ""


@pytest.mark.parametrize(("ms", "text"), [(0.4, "0 ms"), (420.0, "420 ms"), (999.4, "999 ms"), (999.6, "1.00 s"),
                                          (2300.0, "2.30 s"), (59_994.0, "59.99 s"), (185_000.0, "3m 05s"),
                                          (None, "")])
def test_durations(ms: float | None, text: str) -> None:
    assert units.duration_ms(ms) == text


def test_tokens_and_counts() -> None:
    assert [units.tokens_short(n) for n in (950, 9_999, 15_000, 999_949, 1_234_567)] == \
        ["950", "9,999", "15.0k", "999.9k", "1.2M"]
    assert units.tokens(15000) == "15,000"
    assert [units.count(n, "request") for n in (0, 1, 2, 1000, 123_456)] == \
        ["0 requests", "1 request", "2 requests", "1,000 requests", "123,456 requests"]
    assert units.percent(1, 3) == "33%" and units.percent(1, 1000) == "<1%" and units.percent(1, 0) == "–"


def test_countdowns_round_up_to_whole_seconds() -> None:
    # "retry in 1 s" until the probe is due, never "retry in 0 s" while there is still a wait
    assert [units.wait_s(s) for s in (0.0, 0.2, 1.0, 23.4, 59.5, 60.0, 185.0)] == \
        ["0 s", "1 s", "1 s", "24 s", "1m 00s", "1m 00s", "3m 05s"]


def test_tokens_per_second() -> None:
    assert tokens_per_second({"output_tokens": 100, "latency_ms": 2000.0, "stream": False}) == 50.0
    # A stream generates after its first token.
    assert tokens_per_second({"output_tokens": 100, "latency_ms": 2000.0, "ttft_ms": 1000.0, "stream": True}) == 100.0
    assert tokens_per_second({"output_tokens": 0, "latency_ms": 10.0}) is None
    assert tokens_per_second({"output_tokens": 5, "latency_ms": 10.0, "status": 500, "state": "error"}) is None


async def test_cost_breakdown_of_a_real_call(make_engine: EngineFactory) -> None:
    engine = await make_engine(budget=1.0)
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", max_tokens=50, messages=[{"role": "user", "content": "tell me about owls"}])
    await client.close()
    rec = engine.history.get(raw.headers["x-iron-request-id"])
    assert rec is not None
    b = cost_breakdown(rec.summary(), rec, engine.pricer, stop_reason="stop")
    rates = engine.pricer.rates("openai", "gpt-4o-mini")
    assert rates is not None and b.priced
    by = {line.label: line for line in b.lines}
    assert by["input"].tokens == rec.input_tokens and by["input"].usd_per_mtok == rates.input
    assert by["output"].tokens == rec.output_tokens and by["output"].usd_per_mtok == rates.output
    assert sum(line.micros or 0 for line in b.lines) == pytest.approx(rec.cost_micros, abs=2)
    assert b.total_micros == rec.cost_micros and b.reserved_micros == rec.reserved_micros > 0
    assert "settled at the actual cost" in b.settlement and b.stop_reason == "stop"
    assert b.price_source is not None and "genai-prices" in b.price_source


async def test_a_provider_429_is_explained(make_engine: EngineFactory, sim: ProviderSim) -> None:
    engine = await make_engine(retries={"attempts": 1})  # the 429 itself reaches the client
    sim.faults.push(status=429, retry_after=20)
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    await client.close()
    rec = engine.history.get(info.value.response.headers["x-iron-request-id"])
    assert rec is not None
    e = explain_error(rec.summary(), rec)
    assert e is not None and e.origin == "provider" and e.headline == "openai answered 429"
    assert "retry after" in e.advice and not e.client_body_rebuilt
    assert e.client_body is not None and json.loads(e.client_body)["error"]["code"] == "rate_limit_exceeded"
    assert e.retry_after_s == 1.0  # from the provider's message ("try again in 1s")
    assert explain_error({"state": "ok", "status": 200}, None) is None


async def test_a_budget_402_shows_the_answer_the_agent_got(make_engine: EngineFactory) -> None:
    engine = await make_engine(budget=0.0)
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    await client.close()
    got = info.value.response.json()
    rec = engine.history.get(info.value.response.headers["x-iron-request-id"])
    assert rec is not None
    e = explain_error(rec.summary(), rec)
    assert e is not None and e.origin == "iron-tui" and "budget" in e.headline and "raise the budget" in e.advice
    assert e.client_body is not None and e.client_body_rebuilt
    assert json.loads(e.client_body) == got  # exactly what the agent received
    b = cost_breakdown(rec.summary(), rec, engine.pricer)
    assert b.settlement.startswith("refused at admission")

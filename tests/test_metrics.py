"""`GET /metrics`: real SDK calls through an in-process engine, the exposition parsed with
prometheus_client's own parsers (Prometheus text and OpenMetrics), auth, and bounded labels."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from iron_tui.core.engine import Engine
from iron_tui.core.events import RequestRecord
from iron_tui.core.metrics import DURATION_BUCKETS, OTHER, TOKEN_BUCKETS, Metrics
from tests.conftest import EngineFactory

OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(engine: Engine, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    h = {"authorization": f"Bearer {engine.token}"} if headers is None else headers
    async with aiohttp.ClientSession() as s, s.get(engine.base_url + "/metrics", headers=h) as r:
        return r.status, r.headers.get("content-type", ""), await r.text()


def samples(families: Any) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def calls(engine: Engine) -> tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic]:
    return (openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0),
            anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0))


async def test_series_after_real_sdk_calls_parse_in_both_formats(make_engine: EngineFactory) -> None:
    engine = await make_engine(budget=0.5, retries={"attempts": 1})  # one try per call (retries: below)
    oai, ant = calls(engine)
    chat = await oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    stream = await oai.chat.completions.create(model="gpt-4o-mini", stream=True,
                                               messages=[{"role": "user", "content": "hello there"}])
    async for _ in stream:
        pass
    msg = await ant.messages.create(model="claude-sonnet-4-6", max_tokens=64,
                                    messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError):
        await oai.chat.completions.create(model="gpt-4o-mini",
                                          messages=[{"role": "user", "content": "[[sim:error=429]]"}])
    with pytest.raises(openai.APIStatusError) as refused:  # not even 128 fitted 1,024-token answers fit $0.50
        await oai.chat.completions.create(model="gpt-4o", max_tokens=16_384, n=128,
                                          messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 402

    status, ctype, text = await scrape(engine)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    found = samples(parse_prometheus(text))
    om_status, om_type, om_text = await scrape(engine, {"authorization": f"Bearer {engine.token}",
                                                        "accept": OPENMETRICS_ACCEPT})
    assert om_status == 200 and om_type.startswith("application/openmetrics-text; version=1.0.0")
    assert om_text.endswith("# EOF\n")
    om_found = samples(parse_openmetrics(om_text))
    for name, labels in om_found:
        assert (name, labels) in found  # the same series in both formats

    gpt = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-4o-mini"}
    claude = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "anthropic",
              "gen_ai_request_model": "claude-sonnet-4-6"}
    for found_ in (found, om_found):
        assert value(found_, "gen_ai_client_operation_duration_seconds_count", **gpt) == 2
        assert value(found_, "gen_ai_client_operation_duration_seconds_count", **gpt, error_type="429") == 1
        assert value(found_, "gen_ai_client_operation_duration_seconds_count", **claude) == 1
        assert value(found_, "gen_ai_client_token_usage_sum", **claude, gen_ai_token_type="output") == \
            msg.usage.output_tokens
        assert value(found_, "gen_ai_client_token_usage_count", **gpt, gen_ai_token_type="input") == 2
        # Only the stream has a time to first chunk, as the convention says.
        assert value(found_, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **gpt) == 1
        assert ("gen_ai_client_operation_time_to_first_chunk_seconds_count", frozenset(claude.items())) \
            not in found_
        assert value(found_, "iron_upstream_errors_total", gen_ai_provider_name="openai", error_type="429") == 1
        assert value(found_, "iron_budget_refused_calls_total", reason="insufficient_budget") == 1
        assert value(found_, "iron_budget_limit_usd") == 0.5
        assert value(found_, "iron_sync_state", state="disabled") == 1
        assert value(found_, "iron_agent_state", state="idle") == 1
        assert value(found_, "iron_build_info", version=__import__("iron_tui").__version__, mode="direct") == 1
    assert chat.usage is not None
    assert value(found, "gen_ai_client_token_usage_sum", **gpt, gen_ai_token_type="output") >= \
        chat.usage.completion_tokens
    spent_usd = engine.ledger.spent / 1e6
    assert value(found, "iron_budget_spent_usd") == pytest.approx(spent_usd)
    cost = sum(v for (name, _), v in found.items() if name == "iron_cost_usd_total")
    assert cost == pytest.approx(spent_usd)
    # The convention's bucket boundaries.
    les = sorted(float(dict(labels)["le"]) for name, labels in found
                 if name == "gen_ai_client_operation_duration_seconds_bucket" and labels >= frozenset(gpt.items())
                 and "error_type" not in dict(labels))
    assert les == [*DURATION_BUCKETS, float("inf")]
    les = sorted(float(dict(labels)["le"]) for name, labels in found
                 if name == "gen_ai_client_token_usage_bucket" and ("gen_ai_token_type", "input") in labels
                 and labels >= frozenset(claude.items()))
    assert les == [*TOKEN_BUCKETS, float("inf")]


async def test_metrics_need_the_api_token(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    for headers in ({}, {"authorization": "Bearer wrong"}, {"x-api-key": engine.agent_token + ".agent_x"}):
        status, ctype, text = await scrape(engine, headers)
        assert status == 401 and ctype.startswith("application/json")
        assert "gen_ai" not in text and "token" in text
    status, _, _ = await scrape(engine, {"x-api-key": engine.token})
    assert status == 200


async def test_loopback_scrapes_may_skip_the_token_when_configured(make_engine: EngineFactory) -> None:
    engine = await make_engine(metrics_auth="loopback")
    status, _, text = await scrape(engine, {})
    assert status == 200 and "iron_build_info" in text


async def test_metrics_can_be_turned_off(make_engine: EngineFactory) -> None:
    engine = await make_engine(metrics=False)
    status, _, _ = await scrape(engine)
    assert status == 404
    oai, _ = calls(engine)
    await oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def _rec(model: str, *, state: str = "ok", api: str = "openai.chat", code: str | None = None) -> RequestRecord:
    rec = RequestRecord(id="r", started_at=0.0, method="POST", path="/v1/chat/completions", api=api,
                        model=model, provider="openai")
    rec.state = state  # type: ignore[assignment]
    rec.latency_ms = 12.0
    rec.input_tokens, rec.output_tokens = 10, 5
    rec.error_code = code
    return rec


def test_labels_stay_bounded_whatever_models_clients_send() -> None:
    m = Metrics(max_models=3)
    for i in range(1000):  # names a client invents: the provider refuses every one
        m.observe(_rec(f"made-up-{i}", state="error", code="404"))
    for i in range(10):
        m.observe(_rec(f"real-{i}"))
    models = {s.labels[2] for s in m.series()}
    assert models == {"real-0", "real-1", "real-2", OTHER}
    other = next(s for s in m.series() if s.labels[2] == OTHER)
    assert sum(h.count for h in other.errors.values()) == 1000 and other.duration.count == 7
    assert len(m._by_record) == 3  # refused names are not remembered either


def test_error_types_and_operations_are_folded_too() -> None:
    m = Metrics(max_error_types=2)
    for code in ("upstream_timeout", "500", "501", "weird code with spaces"):
        m.observe(_rec("gpt-4o", state="error", code=code))
    m.observe(_rec("gpt-4o", api="openai.embeddings"))
    [chat] = [s for s in m.series() if s.labels[0] == "chat"]
    assert set(chat.errors) == {"upstream_timeout", "500", OTHER}
    assert {s.labels[0] for s in m.series()} == {"chat", "embeddings"}


async def test_retries_and_the_errors_behind_them_are_counted(make_engine: EngineFactory, sim: Any) -> None:
    engine = await make_engine(retries={"attempts": 3, "backoff": 0.0})
    sim.faults.push(status=503, times=2, provider="openai", retry_after=0)
    oai, _ = calls(engine)
    await oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    sim.faults.push(status=429, times=3, provider="openai", retry_after=0)
    with pytest.raises(openai.RateLimitError):  # every try answers 429: the last one is relayed
        await oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    _, _, text = await scrape(engine)
    found = samples(parse_prometheus(text))
    assert value(found, "iron_retries_total", gen_ai_provider_name="openai", reason="503") == 2
    assert value(found, "iron_upstream_errors_total", gen_ai_provider_name="openai", error_type="503") == 2
    gpt = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-4o-mini"}
    assert value(found, "gen_ai_client_operation_duration_seconds_count", **gpt) == 1  # one call, which succeeded
    assert value(found, "iron_upstream_errors_total", gen_ai_provider_name="openai", error_type="429") == 3
    assert value(found, "iron_retries_total", gen_ai_provider_name="openai", reason="429") == 2

"""OTLP/HTTP traces: real SDK calls through an in-process engine, spans received by a local collector
that decodes them with the official opentelemetry-proto messages."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import openai
import pytest

from iron_tui.core.engine import Engine
from iron_tui.core.redact import redact_text
from iron_tui.sim import ProviderSim
from iron_tui.sim.collector import CollectorSim, ReceivedSpan
from tests.conftest import EngineFactory

AGENTS = Path(__file__).parent / "agents"
PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"
SPAN_KIND_CLIENT = 3
STATUS_ERROR = 2
IS_REMOTE = 0x200


@pytest.fixture
async def collector(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CollectorSim]:
    c = CollectorSim()
    await c.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")  # export promptly: the tests wait for spans
    try:
        yield c
    finally:
        await c.stop()


def client(engine: Engine, **headers: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0,
                              default_headers=headers)


def by_model(spans: list[ReceivedSpan], model: str) -> ReceivedSpan:
    [s] = [s for s in spans if s.attributes["gen_ai.request.model"] == model]
    return s


async def test_spans_carry_genai_attributes_and_continue_the_callers_trace(
        make_engine: EngineFactory, collector: CollectorSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20collector-key,x-team=core")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=ci,service.name=team%20gateway")
    engine = await make_engine(budget=5.0, retries={"attempts": 1})  # one span per call here
    oai = client(engine, traceparent=TRACEPARENT)
    chat = await oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    ant = anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0)
    stream = await ant.messages.create(model="claude-sonnet-4-6", max_tokens=64, stream=True,
                                       messages=[{"role": "user", "content": "hello"}])
    async for _ in stream:
        pass
    with pytest.raises(openai.RateLimitError):
        await client(engine, traceparent="00-zzz-not-a-traceparent-01").chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "[[sim:error=429]]"}])

    spans = await collector.wait_for(3)
    gpt = by_model(spans, "gpt-4o-mini")
    assert gpt.span.name == "chat gpt-4o-mini" and gpt.span.kind == SPAN_KIND_CLIENT
    assert gpt.span.trace_id.hex() == PARENT_TRACE and gpt.span.parent_span_id.hex() == PARENT_SPAN
    assert gpt.span.flags & IS_REMOTE
    assert chat.usage is not None
    a = gpt.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.response.model"] == chat.model and a["gen_ai.response.id"] == chat.id
    assert a["gen_ai.response.finish_reasons"] == [chat.choices[0].finish_reason]
    assert a["gen_ai.usage.input_tokens"] == chat.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == chat.usage.completion_tokens
    rec = next(r for r in engine.history.recent(10) if r.model == "gpt-4o-mini")
    assert a["iron.request_id"] == rec.id and a["iron.cost_usd"] == pytest.approx(rec.cost_micros / 1e6)
    assert a["iron.budget.limit_usd"] == 5.0 and a["iron.budget.spent_usd"] > 0
    assert "gen_ai.input.messages" not in a  # content capture is off by default
    duration_ms = (gpt.span.end_time_unix_nano - gpt.span.start_time_unix_nano) / 1e6
    assert duration_ms == pytest.approx(rec.latency_ms, abs=0.01)

    claude = by_model(spans, "claude-sonnet-4-6")
    assert claude.span.trace_id.hex() != PARENT_TRACE and claude.span.parent_span_id == b""  # a new trace
    assert claude.attributes["gen_ai.provider.name"] == "anthropic"
    assert claude.attributes["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert claude.attributes["iron.stream"] is True and claude.attributes["gen_ai.usage.output_tokens"] > 0

    failed = by_model(spans, "gpt-4o")
    assert failed.span.parent_span_id == b""  # an invalid traceparent starts a new trace, the call still runs
    assert failed.attributes["error.type"] == "429" and failed.span.status.code == STATUS_ERROR
    assert failed.attributes["http.response.status_code"] == 429

    assert gpt.resource["service.name"] == "team gateway" and gpt.resource["deployment.environment"] == "ci"
    assert gpt.resource["service.instance.id"] == engine.session_id and gpt.scope == "iron_tui"
    post = collector.posts[0]
    assert post["Authorization"] == "Bearer collector-key" and post["x-team"] == "core"
    assert post["Content-Encoding"] == "gzip" and post["Content-Type"] == "application/x-protobuf"


async def test_a_dead_collector_changes_nothing_for_the_client(
        make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    plain = await make_engine()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{dead}/v1/traces")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    traced = await make_engine()
    assert plain.tracing is None and traced.tracing is not None
    replies = []
    for engine in (plain, traced):
        oai = client(engine, traceparent=TRACEPARENT)
        r = await oai.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "same question"}])
        body = r.parse()
        replies.append((r.status_code, r.headers["x-iron-cost-usd"], body.choices[0].message.content, body.usage))
    assert replies[0] == replies[1]
    tracing = traced.tracing
    async with asyncio.timeout(30):  # the failed export is counted (after its retries), not raised
        while tracing.stats.dropped.get("export_failed", 0) < 1:
            await asyncio.sleep(0.05)
    async with traced.session.get(traced.base_url + "/metrics",
                                  headers={"authorization": f"Bearer {traced.token}"}) as r:
        text = await r.text()
    assert 'iron_trace_spans_dropped_total{reason="export_failed"} 1' in text


async def test_a_hanging_collector_drops_spans_and_counts_them(
        make_engine: EngineFactory, collector: CollectorSim, monkeypatch: pytest.MonkeyPatch) -> None:
    collector.mode = "hang"  # accepts the export and never answers
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "2")
    engine = await make_engine()
    oai = client(engine)
    async with asyncio.timeout(30):
        while not collector.posts:  # the exporter is stuck in its first POST
            await oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    for _ in range(5):
        await oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert engine.tracing is not None
    assert engine.tracing.queued == 2 and engine.tracing.stats.dropped["queue_full"] >= 3
    collector.mode = "ok"
    collector._release.set()  # let the stuck export finish so stop() can flush
    await engine.stop()
    assert engine.tracing.queued == 0


async def test_sampling_follows_the_callers_decision(make_engine: EngineFactory, collector: CollectorSim) -> None:
    engine = await make_engine()
    unsampled = f"00-{PARENT_TRACE}-{PARENT_SPAN}-00"
    await client(engine, traceparent=unsampled).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "not traced"}])
    await client(engine).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert engine.tracing is not None
    assert await asyncio.to_thread(engine.tracing.flush, 30.0)
    assert [s.attributes["gen_ai.request.model"] for s in collector.spans] == ["gpt-4o-mini"]


async def test_content_capture_is_opt_in_and_redacted(make_engine: EngineFactory, collector: CollectorSim) -> None:
    engine = await make_engine(otel_capture_content=True)
    secret = "sk-proj-" + "a1b2c3d4" * 5
    chat = await client(engine).chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": f"my key is {secret}"}])
    [span] = await collector.wait_for(1)
    a = span.attributes
    assert secret not in a["gen_ai.input.messages"] and "[redacted]" in a["gen_ai.input.messages"]
    messages = json.loads(a["gen_ai.input.messages"])
    assert [m["role"] for m in messages] == ["system", "user"]
    [out] = json.loads(a["gen_ai.output.messages"])
    reply = chat.choices[0].message.content
    assert reply is not None and secret in reply  # the simulator echoes the prompt: redacted on the span too
    assert out["parts"] == [{"type": "text", "content": redact_text(reply)}]
    assert out["finish_reason"] == "stop"


async def test_a_launched_agent_joins_the_trace(make_engine: EngineFactory, collector: CollectorSim) -> None:
    engine = await make_engine()
    await engine.agent.start([sys.executable, str(AGENTS / "otel_agent.py")])
    code = await asyncio.wait_for(engine.agent.wait(), 60)
    lines = [o.text for o in engine.agent.output]
    assert code == 0, lines
    trace_id = next(line.split()[1] for line in lines if line.startswith("trace:"))
    spans = await collector.wait_for(2)
    [agent_span] = [s for s in spans if s.span.name == "plan the task"]
    [llm] = [s for s in spans if s.span.name == "chat gpt-4o-mini"]
    # The agent's own span went to the same collector, under its own service name ...
    assert agent_span.resource["service.name"] == "iron-tui-agent"
    assert agent_span.resource["iron.agent.id"] == engine.agent.agent_id
    # ... and iron-tui's LLM span sits inside it.
    assert agent_span.span.trace_id.hex() == trace_id == llm.span.trace_id.hex()
    assert llm.span.parent_span_id == agent_span.span.span_id
    assert llm.resource["service.name"] == "iron-tui" and llm.attributes["iron.agent_id"] == engine.agent.agent_id


async def test_a_retried_call_has_one_child_span_per_attempt(
        make_engine: EngineFactory, collector: CollectorSim, sim: ProviderSim) -> None:
    engine = await make_engine(retries={"attempts": 3, "backoff": 0.0})
    sim.faults.push(status=429, times=1, provider="openai", retry_after=0)
    await client(engine, traceparent=TRACEPARENT).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    spans = await collector.wait_for(3)
    call = next(s for s in spans if s.span.parent_span_id.hex() == PARENT_SPAN)
    tries = [s for s in spans if s.span.parent_span_id == call.span.span_id]
    assert [t.attributes["iron.attempt"] for t in tries] == [1, 2]
    assert tries[0].attributes["error.type"] == "429" and tries[0].span.status.code == STATUS_ERROR
    assert tries[1].attributes["http.response.status_code"] == 200 and "error.type" not in tries[1].attributes
    assert call.attributes["http.response.status_code"] == 200

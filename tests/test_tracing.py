"""OTLP/HTTP traces: real SDK calls through an in-process engine, spans received by a local collector
that decodes them with the official opentelemetry-proto messages."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import openai
import pytest

from iron_tui.core.engine import Engine
from iron_tui.core.events import RequestRecord
from iron_tui.core.otel.config import OtlpConfig
from iron_tui.core.otel.link import ExporterLink, ExportStats
from iron_tui.core.otel.wire import QueuedCall
from iron_tui.core.redact import redact_text
from iron_tui.sim import ProviderSim
from iron_tui.sim.collector import CollectorSim, ReceivedSpan
from tests.conftest import OPENAI_KEY, EngineFactory

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
    tracing = engine.tracing
    assert tracing is not None
    oai = client(engine)
    await oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    async with asyncio.timeout(60):
        while not collector.posts:  # the exporter is now stuck in its first POST
            await asyncio.sleep(0.02)
    before = tracing.stats.dropped.get("queue_full", 0)  # (a queue of 2 may overflow while it starts)
    calls = 0
    # Spans now wait in the pipe to the exporter, then in the queue; once both are full, spans are
    # dropped, and every call still succeeds.
    async with asyncio.timeout(120):
        while tracing.stats.dropped.get("queue_full", 0) == before:
            r = await oai.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            assert r.status_code == 200
            calls += 1
    assert tracing.queued <= 2
    async with engine.session.get(engine.base_url + "/metrics",
                                  headers={"authorization": f"Bearer {engine.token}"}) as r:
        text = await r.text()
    dropped = float(text.split('iron_trace_spans_dropped_total{reason="queue_full"} ', 1)[1].split()[0])
    assert before < dropped < before + calls
    collector.mode = "ok"
    collector._release.set()  # let the stuck export finish so stop() can flush
    await engine.stop()
    assert tracing.queued == 0


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
    assert tries[0].span.status.message  # what went wrong with that try, for people
    assert tries[1].attributes["http.response.status_code"] == 200 and "error.type" not in tries[1].attributes
    assert call.attributes["http.response.status_code"] == 200


async def test_response_facts_for_every_dialect(make_engine: EngineFactory, collector: CollectorSim) -> None:
    engine = await make_engine()
    oai = client(engine)
    native = await oai.responses.create(model="gpt-4o-mini", input="hi")
    stream = await oai.responses.create(model="gpt-4o", input="hello", stream=True)
    async for _ in stream:
        pass
    on_claude = await oai.responses.create(model="claude-sonnet-4-6", input="hey", max_output_tokens=64)
    spans = await collector.wait_for(3)
    a = by_model(spans, "gpt-4o-mini").attributes
    assert a["gen_ai.response.finish_reasons"] == ["completed"] and a["gen_ai.response.id"] == native.id
    assert a["gen_ai.usage.output_tokens"] == native.usage.output_tokens
    assert by_model(spans, "gpt-4o").attributes["gen_ai.response.finish_reasons"] == ["completed"]
    a = by_model(spans, "claude-sonnet-4-6").attributes  # a Responses client, served by Anthropic
    assert a["gen_ai.provider.name"] == "anthropic" and a["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert a["gen_ai.usage.output_tokens"] == on_claude.usage.output_tokens
    assert a["iron.api"] == "openai.responses" and a["iron.translated"] is True


async def test_the_exporter_process_is_restarted_and_stopped_with_iron_tui(
        make_engine: EngineFactory, collector: CollectorSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("iron_tui.core.otel.link._RESPAWN_S", 0.0)
    engine = await make_engine()
    assert engine.tracing is not None
    link = engine.tracing._link
    oai = client(engine)
    await oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "one"}])
    await collector.wait_for(1)
    assert link._current is not None
    first = link._current.proc
    first.kill()  # the exporter dies (OOM killer, a bug): tracing carries on with a new one
    first.wait(10)
    await oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "two"}])
    spans = await collector.wait_for(2)
    assert [s.attributes["gen_ai.request.model"] for s in spans] == ["gpt-4o-mini", "gpt-4o"]
    second = link._current.proc
    assert second.pid != first.pid
    await engine.stop()
    assert second.poll() is not None  # no exporter outlives iron-tui


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


async def test_a_killed_iron_tui_leaves_no_exporter_behind(sim: ProviderSim, collector: CollectorSim,
                                                          tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--token", "t", "--openai-key", OPENAI_KEY,
        "--openai-base-url", sim.url, "--data-dir", str(tmp_path), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        ready = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        base_url = ready.split()[2]
        oai = openai.AsyncOpenAI(base_url=base_url, api_key="t", max_retries=0)
        await oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        [span] = await collector.wait_for(1)
        assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
        [exporter] = _children(proc.pid)
        proc.kill()  # no chance to stop anything: the exporter must notice on its own
        await proc.wait()
        async with asyncio.timeout(30):
            while os.path.exists(f"/proc/{exporter}") and "Z" not in _state(exporter):
                await asyncio.sleep(0.05)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


async def test_an_alias_is_traced_as_the_model_it_resolves_to(make_engine: EngineFactory,
                                                              collector: CollectorSim) -> None:
    engine = await make_engine(models={"fast": "gpt-4o-mini"})
    await client(engine).chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    [span] = await collector.wait_for(1)
    assert span.span.name == "chat gpt-4o-mini"
    assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini" and span.attributes["iron.client_model"] == "fast"


async def test_full_batches_go_at_once_and_the_rest_waits_for_the_schedule_or_a_flush(
        collector: CollectorSim) -> None:
    # Each frame is an HTTP POST for the exporter: woken by a full batch, the hand-over sends full
    # batches only, and the calls left over wait for the next batch, the schedule delay or a flush.
    cfg = OtlpConfig(endpoint=collector.url + "/v1/traces", max_batch=4)
    queue: deque[QueuedCall] = deque()
    link = ExporterLink(cfg, queue, ExportStats(), threading.Event(), instance_id="i", report=lambda *_: None)
    for i in range(10):
        rec = RequestRecord(id=f"req_{i}", started_at=1000.0, method="POST", path="/v1/chat/completions",
                            api="openai.chat", model="gpt-4o", provider="openai")
        rec.state, rec.status, rec.latency_ms = "ok", 200, 1.0
        queue.append((rec, 0, None))
    try:
        await asyncio.to_thread(link._ship, everything=False)  # what a wake-up for a full batch sends
        assert len(queue) == 2
        await collector.wait_for(8)
        assert len(collector.posts) == 2
        await asyncio.to_thread(link._ship, everything=True)  # the schedule delay passed, or a flush
        assert not queue
        spans = await collector.wait_for(10)
        assert len(collector.posts) == 3
        assert [s.attributes["iron.request_id"] for s in spans] == [f"req_{i}" for i in range(10)]
    finally:  # (the hand-over thread never ran: end the exporter as it would, by closing its stdin)
        if link._current is not None and link._current.proc.stdin is not None:
            link._current.proc.stdin.close()
            await asyncio.to_thread(link._current.proc.wait, 30)

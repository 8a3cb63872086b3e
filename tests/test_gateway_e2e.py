"""Gateway mode end to end: the official OpenAI SDK talks to Claude models through the proxy."""

from __future__ import annotations

import json

import aiohttp
import openai
import pytest

from iron_tui.core.engine import Engine
from iron_tui.sim import ProviderSim

CLAUDE = "claude-sonnet-4-6"
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "description": "Time in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
]


def client(engine: Engine) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)


async def test_non_stream_translated(engine: Engine, sim: ProviderSim) -> None:
    r = await client(engine).chat.completions.create(
        model=CLAUDE, max_tokens=200,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello Claude"}],
    )
    assert r.object == "chat.completion" and r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.prompt_tokens > 0
    sent = sim.requests[-1]
    assert sent.path == "/v1/messages" and sent.body is not None
    assert sent.body["system"] == "Be brief." and sent.body["max_tokens"] == 200
    rec = engine.history.recent(1)[0]
    assert rec.translated and rec.provider == "anthropic" and rec.cost_micros
    # The translation view keeps all four bodies.
    assert rec.request_body and rec.translated_request and rec.upstream_response and rec.translated_response
    assert '"system"' in rec.translated_request


@pytest.mark.parametrize("include_usage", [False, True])
async def test_stream_translated(engine: Engine, include_usage: bool) -> None:
    kw = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = await client(engine).chat.completions.create(
        model=CLAUDE, stream=True, messages=[{"role": "user", "content": "Stream to me"}], **kw)
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert len({c.id for c in chunks}) == 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage_chunks = [c for c in chunks if not c.choices]
    if include_usage:
        assert len(usage_chunks) == 1 and usage_chunks[0].usage and usage_chunks[0].usage.completion_tokens > 0
    else:
        assert usage_chunks == [] and all(c.usage is None for c in chunks)
    rec = engine.history.recent(1)[0]
    assert rec.state == "ok" and rec.output_tokens > 0 and rec.cost_micros


async def test_stream_two_parallel_tool_calls_after_text(engine: Engine) -> None:
    stream = await client(engine).chat.completions.create(
        model=CLAUDE, stream=True, tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "[[sim:tools=2]] weather and time in Paris"}])
    calls: dict[int, dict[str, str]] = {}
    finish = None
    async for c in stream:
        if not c.choices:
            continue
        for tc in c.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
            if tc.id:
                slot["id"] = tc.id
            if tc.function and tc.function.name:
                slot["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                slot["args"] += tc.function.arguments
        finish = c.choices[0].finish_reason or finish
    assert sorted(calls) == [0, 1], "tool-call indices count from 0 per response"
    assert {calls[0]["name"], calls[1]["name"]} == {"get_weather", "get_time"}
    for slot in calls.values():
        assert slot["id"] and isinstance(json.loads(slot["args"]), dict)
    assert finish == "tool_calls"


async def test_tool_result_round_trip(engine: Engine, sim: ProviderSim) -> None:
    c = client(engine)
    first = await c.chat.completions.create(
        model=CLAUDE, tools=TOOLS, messages=[{"role": "user", "content": "weather in Paris?"}])  # type: ignore[arg-type]
    msg = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and msg.tool_calls
    call = msg.tool_calls[0]  # type: ignore[index]
    second = await c.chat.completions.create(
        model=CLAUDE, tools=TOOLS,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": call.id, "type": "function",
                             "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
        ],
    )
    assert second.choices[0].message.content
    sent = sim.requests[-1].body
    assert sent is not None
    assert sent["messages"][1]["content"][0]["type"] == "tool_use"
    assert sent["messages"][2]["role"] == "user"
    assert sent["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": call.id,
                                                 "content": "18C and sunny"}


async def test_image_data_uri_and_url(engine: Engine, sim: ProviderSim) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    r = await client(engine).chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in these?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        ]}],
    )
    assert r.choices[0].message.content
    blocks = sim.requests[-1].body["messages"][0]["content"]  # type: ignore[index]
    assert blocks[1]["source"] == {"type": "base64", "media_type": "image/png", "data": png}
    assert blocks[2]["source"] == {"type": "url", "url": "https://example.com/cat.jpg"}


async def test_unsupported_parameter_is_400_naming_it(engine: Engine, sim: ProviderSim) -> None:
    before = len(sim.requests)
    with pytest.raises(openai.BadRequestError) as e:
        await client(engine).chat.completions.create(
            model=CLAUDE, n=2, messages=[{"role": "user", "content": "x"}])
    assert "n" in str(e.value) and e.value.body["param"] == "n"  # type: ignore[index]
    assert len(sim.requests) == before
    assert engine.ledger.reserved == 0


async def test_overloaded_before_first_byte_is_real_status(engine: Engine) -> None:
    with pytest.raises(openai.APIStatusError) as e:
        stream = await client(engine).chat.completions.create(
            model=CLAUDE, stream=True, messages=[{"role": "user", "content": "[[sim:error=529]]"}])
        async for _ in stream:
            pass
    assert e.value.status_code == 529
    with pytest.raises(openai.APIStatusError) as e2:
        stream = await client(engine).chat.completions.create(
            model=CLAUDE, stream=True, messages=[{"role": "user", "content": "[[sim:prestream_error]]"}])
        async for _ in stream:
            pass
    assert e2.value.status_code == 529
    assert e2.value.body["type"] == "overloaded_error"  # type: ignore[index]


async def test_rate_limit_keeps_status_and_retry_after(engine: Engine) -> None:
    with pytest.raises(openai.RateLimitError) as e:
        await client(engine).chat.completions.create(
            model=CLAUDE, messages=[{"role": "user", "content": "[[sim:error=429]]"}])
    assert e.value.response.headers.get("retry-after") == "1"
    assert e.value.body["type"] == "rate_limit_error"  # type: ignore[index]


async def test_mid_stream_error_is_error_event_and_recorded_failed(engine: Engine) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.post(engine.openai_base_url + "/chat/completions",
                         json={"model": CLAUDE, "stream": True,
                               "messages": [{"role": "user", "content": "[[sim:midstream_error]] go"}]},
                         headers={"authorization": f"Bearer {engine.token}"})
        assert r.status == 200
        body = (await r.read()).decode()
    events = [line[6:] for line in body.splitlines() if line.startswith("data: ")]
    assert events and "[DONE]" not in events
    last = json.loads(events[-1])
    assert "error" in last and last["error"]["message"]
    rec = engine.history.recent(1)[0]
    assert rec.state == "error" and rec.error
    assert engine.ledger.reserved == 0

"""The simulated providers, driven directly by the official openai and anthropic SDKs (no proxy)."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from iron_tui.sim import ProviderSim, SimSettings, base, parse_directives
from iron_tui.sim.script import make_text

OA_KEY = "sk-sim-openai"
AN_KEY = "sk-ant-sim-anthropic"
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
TIME: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string"}, "hour24": {"type": "boolean"}},
        },
    },
}
AN_TOOLS: list[Any] = [
    {"name": t["function"]["name"], "description": "d", "input_schema": t["function"]["parameters"]}
    for t in (WEATHER, TIME)
]


@pytest.fixture
async def psim() -> AsyncIterator[ProviderSim]:
    async with ProviderSim(SimSettings(openai_keys={OA_KEY}, anthropic_keys={AN_KEY})) as s:
        yield s


@pytest.fixture
async def oa(psim: ProviderSim) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=psim.url + "/v1", api_key=OA_KEY, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def an(psim: ProviderSim) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=psim.url, api_key=AN_KEY, max_retries=0)
    yield client
    await client.close()


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# ---- OpenAI chat completions ------------------------------------------------------------------------


async def test_chat_non_stream_reply_usage_and_headers(oa: openai.AsyncOpenAI, psim: ProviderSim) -> None:
    raw = await oa.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "system", "content": "be brief"}, *user("hello there world")]
    )
    done = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-ratelimit-remaining-requests"] and "openai-processing-ms" in raw.headers
    msg = done.choices[0].message
    assert msg.content is not None and msg.content.startswith("Simulated reply to: hello there world")
    assert len(msg.content.split()) == 12 and done.choices[0].finish_reason == "stop"
    assert done.id.startswith("chatcmpl-") and done.model == "gpt-4o-mini"
    assert done.usage is not None
    # ceil(chars / 4) over "be brief" + "hello there world" (25 chars) → 7 tokens
    assert (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.total_tokens) == (7, 12, 19)
    rec = psim.requests[-1]
    assert rec.provider == "openai" and rec.path == "/v1/chat/completions" and rec.completed
    assert rec.headers["authorization"] == f"Bearer {OA_KEY}" and rec.body is not None
    assert rec.body["model"] == "gpt-4o-mini" and rec.status == 200


async def test_chat_stream_matches_non_stream_and_hides_usage(oa: openai.AsyncOpenAI) -> None:
    whole = await oa.chat.completions.create(model="gpt-4o", messages=user("stream me please"))
    stream = await oa.chat.completions.create(model="gpt-4o", messages=user("stream me please"), stream=True)
    chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)


async def test_chat_stream_include_usage_final_chunk(oa: openai.AsyncOpenAI) -> None:
    stream = await oa.chat.completions.create(
        model="gpt-4o",
        messages=user("count tokens [[sim:words=30]]"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == 30
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert len(text.split()) == 30 and "[[sim:" not in text


async def test_chat_max_tokens_and_stop_sequence(oa: openai.AsyncOpenAI) -> None:
    cut = await oa.chat.completions.create(model="gpt-4o", messages=user("alpha beta gamma"), max_tokens=5)
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == "Simulated reply to: alpha beta"
    assert cut.usage is not None and cut.usage.completion_tokens == 5
    stopped = await oa.chat.completions.create(
        model="gpt-4o", messages=user("alpha beta gamma"), stop=[" beta"]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == "Simulated reply to: alpha"


async def test_chat_parallel_tool_calls_stream_to_valid_json(oa: openai.AsyncOpenAI) -> None:
    stream = await oa.chat.completions.create(
        model="gpt-4o", messages=user("weather and time [[sim:tools=2]]"), tools=[WEATHER, TIME], stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    pieces = 0
    finish = None
    async for chunk in stream:
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for tc in chunk.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
            if tc.id:
                slot["id"] = tc.id
            if tc.function and tc.function.name:
                slot["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                slot["args"] += tc.function.arguments
                pieces += 1
    assert finish == "tool_calls" and sorted(calls) == [0, 1]
    assert [calls[0]["name"], calls[1]["name"]] == ["get_weather", "get_time"]
    assert all(c["id"].startswith("call_") for c in calls.values()) and calls[0]["id"] != calls[1]["id"]
    assert json.loads(calls[0]["args"]) == {"city": "sim-city", "unit": "c"}
    assert json.loads(calls[1]["args"]) == {"zone": "sim-zone", "hour24": True}
    assert pieces > 2  # arguments arrive in several pieces, as from OpenAI


async def test_chat_tool_call_then_tool_result_reply(oa: openai.AsyncOpenAI) -> None:
    first = await oa.chat.completions.create(
        model="gpt-4o", messages=user("weather in Paris?"), tools=[WEATHER]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    follow = [
        *user("weather in Paris?"),
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny and 21C"},
    ]
    second = await oa.chat.completions.create(model="gpt-4o", messages=follow, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content is not None
    assert second.choices[0].message.content.startswith("Simulated reply to tool result: sunny and 21C")
    # A tool message that answers nothing is refused, as OpenAI does.
    with pytest.raises(openai.BadRequestError):
        await oa.chat.completions.create(
            model="gpt-4o", messages=[*user("hi"), {"role": "tool", "tool_call_id": "call_x", "content": "?"}]
        )


async def test_chat_prompt_cache_key_reports_cached_tokens(oa: openai.AsyncOpenAI) -> None:
    convo = [{"role": "system", "content": "long shared preamble " * 20}, *user("first")]
    one = await oa.chat.completions.create(model="gpt-4o", messages=convo, prompt_cache_key="k1")
    two = await oa.chat.completions.create(
        model="gpt-4o", messages=[*convo[:1], *user("second")], prompt_cache_key="k1"
    )
    assert (
        one.usage and one.usage.prompt_tokens_details and one.usage.prompt_tokens_details.cached_tokens == 0
    )
    assert two.usage and two.usage.prompt_tokens_details
    assert two.usage.prompt_tokens_details.cached_tokens == 105  # the 420-char system prompt


# ---- OpenAI errors -----------------------------------------------------------------------------------


async def test_openai_errors_map_to_sdk_exceptions(oa: openai.AsyncOpenAI, psim: ProviderSim) -> None:
    with pytest.raises(openai.RateLimitError) as rate:
        await oa.chat.completions.create(model="gpt-4o", messages=user("[[sim:error=429]] hi"))
    assert rate.value.status_code == 429 and rate.value.response.headers["retry-after"] == "1"
    assert rate.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError) as boom:
        await oa.chat.completions.create(model="gpt-4o", messages=user("[[sim:error=500]]"))
    assert boom.value.status_code == 500 and boom.value.type == "server_error"
    with pytest.raises(openai.InternalServerError) as overloaded:
        await oa.chat.completions.create(model="gpt-4o", messages=user("[[sim:error=529]]"))
    assert overloaded.value.status_code == 503
    with pytest.raises(openai.BadRequestError):
        await oa.chat.completions.create(model="gpt-4o", messages=user("[[sim:error=400]]"))
    bad = openai.AsyncOpenAI(base_url=psim.url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        await bad.chat.completions.create(model="gpt-4o", messages=user("hi"))
    await bad.close()
    assert auth.value.body == {
        "message": "Incorrect API key provided",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }


async def test_fault_queue_fails_next_matching_requests(
    oa: openai.AsyncOpenAI, an: anthropic.AsyncAnthropic, psim: ProviderSim
) -> None:
    psim.faults.push(status=500, times=2, provider="openai")
    psim.faults.push(status=429, provider="anthropic", retry_after=7)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await oa.chat.completions.create(model="gpt-4o", messages=user("hi"))
    ok = await oa.chat.completions.create(model="gpt-4o", messages=user("hi"))
    assert ok.choices[0].message.content
    with pytest.raises(anthropic.RateLimitError) as rate:
        await an.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=user("hi"))
    assert rate.value.response.headers["retry-after"] == "7" and len(psim.faults) == 0
    psim.faults.push(
        status=503, body={"error": {"message": "custom", "type": "x", "param": None, "code": None}}
    )
    with pytest.raises(openai.InternalServerError) as custom:
        await oa.chat.completions.create(model="gpt-4o", messages=user("hi"))
    assert custom.value.message.endswith("custom")
    psim.faults.push(kind="disconnect")
    with pytest.raises(openai.APIConnectionError):
        await oa.chat.completions.create(model="gpt-4o", messages=user("hi"))
    assert psim.requests[-1].status == -1 and not psim.requests[-1].cancelled
    with pytest.raises(ValueError, match="unknown fault kind"):
        psim.faults.push(kind="explode")


async def test_openai_midstream_and_prestream_errors(oa: openai.AsyncOpenAI) -> None:
    stream = await oa.chat.completions.create(
        model="gpt-4o", messages=user("[[sim:midstream_error]] go"), stream=True
    )
    got: list[str] = []
    with pytest.raises(openai.APIError) as err:
        async for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "Simulated reply to:" and err.value.type == "server_error"
    stream = await oa.chat.completions.create(
        model="gpt-4o", messages=user("[[sim:prestream_error]]"), stream=True
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pytest.fail("no chunk may arrive before a pre-stream error")
    with pytest.raises(openai.InternalServerError):  # a non-stream call gets an overload status instead
        await oa.chat.completions.create(model="gpt-4o", messages=user("[[sim:midstream_error]]"))


# ---- OpenAI other endpoints --------------------------------------------------------------------------


async def test_embeddings_float_and_base64_are_deterministic(oa: openai.AsyncOpenAI) -> None:
    b64 = await oa.embeddings.create(
        model="text-embedding-3-small", input=["hello", "world"]
    )  # SDK asks base64
    flt = await oa.embeddings.create(model="text-embedding-3-small", input="hello", encoding_format="float")
    small = await oa.embeddings.create(model="text-embedding-3-small", input="hello", dimensions=8)
    assert [d.index for d in b64.data] == [0, 1] and len(b64.data[0].embedding) == 1536
    assert b64.data[0].embedding == pytest.approx(flt.data[0].embedding, abs=1e-6)
    assert b64.data[0].embedding != b64.data[1].embedding
    assert sum(v * v for v in flt.data[0].embedding) == pytest.approx(1.0, abs=1e-5)
    assert len(small.data[0].embedding) == 8
    assert b64.usage.prompt_tokens == 4 and b64.usage.total_tokens == 4  # 2 × ceil(5/4)


async def test_legacy_completions_and_stream(oa: openai.AsyncOpenAI) -> None:
    done = await oa.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test")
    assert done.object == "text_completion" and done.choices[0].text.startswith(
        "Simulated reply to: Say this"
    )
    assert done.usage is not None and done.usage.prompt_tokens == 5 and done.usage.completion_tokens == 12
    cut = await oa.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", max_tokens=2)
    assert cut.choices[0].finish_reason == "length" and cut.choices[0].text == "Simulated reply"
    stream = await oa.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Say", stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices).startswith("Simulated reply to: Say")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12


async def test_responses_non_stream_and_stream(oa: openai.AsyncOpenAI) -> None:
    resp = await oa.responses.create(model="gpt-4o", input="tell me a story", instructions="short")
    assert resp.status == "completed" and resp.output_text.startswith("Simulated reply to: tell me a story")
    assert resp.usage is not None and (resp.usage.input_tokens, resp.usage.output_tokens) == (5, 12)
    short = await oa.responses.create(model="gpt-4o", input="x", max_output_tokens=3)
    assert short.status == "incomplete" and short.incomplete_details is not None
    assert short.output_text == "Simulated reply to:"
    stream = await oa.responses.create(model="gpt-4o", input="stream a story", stream=True)
    events = [e async for e in stream]
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == events[-1].response.output_text
    assert [e.sequence_number for e in events] == list(range(len(events)))


async def test_models_in_both_shapes(oa: openai.AsyncOpenAI, an: anthropic.AsyncAnthropic) -> None:
    oa_ids = [m.id async for m in oa.models.list()]
    assert {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "o3-mini"} <= set(oa_ids)
    assert (await oa.models.retrieve("gpt-4o")).owned_by == "system"
    with pytest.raises(openai.NotFoundError):
        await oa.models.retrieve("gpt-nope")
    an_models = [m async for m in an.models.list()]
    assert all(m.id.startswith("claude-") and m.type == "model" for m in an_models) and an_models
    assert (await an.models.retrieve(an_models[0].id)).display_name


# ---- Anthropic messages ------------------------------------------------------------------------------


async def test_messages_non_stream(an: anthropic.AsyncAnthropic, psim: ProviderSim) -> None:
    raw = await an.messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=100, system="be brief", messages=user("hello there world")
    )
    msg = await raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert raw.headers["anthropic-ratelimit-requests-remaining"]
    assert msg.id.startswith("msg_") and msg.role == "assistant" and msg.stop_reason == "end_turn"
    assert msg.content[0].type == "text" and msg.content[0].text.startswith(
        "Simulated reply to: hello there world"
    )
    u = msg.usage
    assert (u.input_tokens, u.output_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens) == (
        7,
        12,
        0,
        0,
    )
    rec = psim.requests[-1]
    # The Anthropic SDK sends the key as x-api-key or (newer releases) as a bearer token; the sim takes both.
    assert rec.provider == "anthropic" and AN_KEY in (
        rec.headers.get("x-api-key"),
        rec.headers["authorization"][7:],
    )
    assert rec.headers["anthropic-version"]
    cut = await an.messages.create(model="claude-sonnet-4-6", max_tokens=4, messages=user("a b c"))
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 4
    stopped = await an.messages.create(
        model="claude-sonnet-4-6", max_tokens=50, messages=user("alpha beta"), stop_sequences=["beta"]
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "beta"
    assert stopped.content[0].type == "text" and stopped.content[0].text == "Simulated reply to: alpha "


async def test_messages_stream_events(an: anthropic.AsyncAnthropic) -> None:
    whole = await an.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=user("stream it"))
    stream = await an.messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=user("stream it"), stream=True
    )
    events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and start.message.usage.output_tokens == 1
    assert start.message.usage.input_tokens == whole.usage.input_tokens
    assert delta.type == "message_delta" and delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == whole.usage.output_tokens
    text = "".join(
        e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert whole.content[0].type == "text" and text == whole.content[0].text


async def test_messages_tool_use_stream_and_parallel(an: anthropic.AsyncAnthropic) -> None:
    async with an.messages.stream(
        model="claude-sonnet-4-6", max_tokens=200, tools=AN_TOOLS, messages=user("weather? [[sim:tools=2]]")
    ) as stream:
        partials = 0
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partials += 1
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    uses = [b for b in final.content if b.type == "tool_use"]
    assert uses[0].name == "get_weather" and uses[0].input == {"city": "sim-city", "unit": "c"}
    assert uses[1].input == {"zone": "sim-zone", "hour24": True} and uses[0].id.startswith("toolu_")
    assert partials >= 6  # several partial_json pieces per tool
    one = await an.messages.create(
        model="claude-sonnet-4-6", max_tokens=200, tools=AN_TOOLS, messages=user("w?")
    )
    assert [b.type for b in one.content] == ["tool_use"]
    follow = [
        *user("w?"),
        {"role": "assistant", "content": [b.model_dump() for b in one.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": one.content[0].id, "content": "rainy 9C"}],  # type: ignore[union-attr]
        },
    ]
    answer = await an.messages.create(
        model="claude-sonnet-4-6", max_tokens=200, tools=AN_TOOLS, messages=follow
    )
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"
    assert answer.content[0].text.startswith("Simulated reply to tool result: rainy 9C")


async def test_messages_prompt_cache_write_then_read(an: anthropic.AsyncAnthropic) -> None:
    system: Any = [{"type": "text", "text": "cached preamble " * 25, "cache_control": {"type": "ephemeral"}}]
    first = await an.messages.create(
        model="claude-sonnet-4-6", max_tokens=20, system=system, messages=user("one")
    )
    second = await an.messages.create(
        model="claude-sonnet-4-6", max_tokens=20, system=system, messages=user("two")
    )
    assert (first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens) == (100, 0)
    assert (second.usage.cache_creation_input_tokens, second.usage.cache_read_input_tokens) == (0, 100)
    assert first.usage.input_tokens == second.usage.input_tokens == 1


async def test_messages_validation_catches_translation_bugs(
    an: anthropic.AsyncAnthropic, psim: ProviderSim
) -> None:
    bad_requests: list[dict[str, Any]] = [
        {"messages": [*user("a"), *user("b")]},  # roles do not alternate
        {"messages": [{"role": "assistant", "content": "hi"}]},  # must start with user
        {"messages": [{"role": "system", "content": "x"}, *user("a")]},  # system is not a role
        {
            "messages": [
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}
            ]
        },
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
        {"messages": user("a"), "stop_sequences": [" "]},
        {"messages": user("a"), "temperature": 1.5},
        {"messages": user("a"), "stream_options": {"include_usage": True}},
        {
            "messages": [
                *user("a"),
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                },
                *user("no result for t1"),
            ]
        },
    ]
    for case in bad_requests:
        messages = case.pop("messages")
        with pytest.raises(anthropic.BadRequestError) as err:
            await an.messages.create(
                model="claude-sonnet-4-6", max_tokens=10, messages=messages, extra_body=case
            )
        assert err.value.status_code == 400 and err.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert all(r.status == 400 for r in psim.requests[-len(bad_requests) :])
    async with aiohttp.ClientSession() as http:
        hdrs = {"x-api-key": AN_KEY, "content-type": "application/json"}
        payload = {"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": user("x")}
        async with http.post(psim.url + "/v1/messages", json=payload, headers=hdrs) as resp:
            assert resp.status == 400 and "anthropic-version" in (await resp.json())["error"]["message"]
        hdrs["anthropic-version"] = "2023-06-01"
        async with http.post(
            psim.url + "/v1/messages", json={**payload, "max_tokens": None}, headers=hdrs
        ) as resp:
            assert (
                resp.status == 400 and (await resp.json())["error"]["message"] == "max_tokens: Field required"
            )


async def test_anthropic_errors_map_to_sdk_exceptions(
    an: anthropic.AsyncAnthropic, psim: ProviderSim
) -> None:
    with pytest.raises(anthropic.OverloadedError) as over:
        await an.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=user("[[sim:error=529]]"))
    assert over.value.status_code == 529 and over.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    with pytest.raises(anthropic.RateLimitError) as rate:
        await an.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=user("[[sim:error=429]]"))
    assert rate.value.response.headers["retry-after"] == "1"
    with pytest.raises(anthropic.InternalServerError):
        await an.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=user("[[sim:error=500]]"))
    wrong = anthropic.AsyncAnthropic(base_url=psim.url, api_key="sk-ant-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as auth:
        await wrong.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=user("hi"))
    await wrong.close()
    assert auth.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }


async def test_anthropic_midstream_and_prestream_errors(an: anthropic.AsyncAnthropic) -> None:
    stream = await an.messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=user("[[sim:midstream_error]]"), stream=True
    )
    kinds: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as err:
        async for event in stream:
            kinds.append(event.type)
    assert kinds[0] == "message_start" and kinds.count("content_block_delta") == 3
    assert err.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    stream = await an.messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=user("[[sim:prestream_error]]"), stream=True
    )
    with pytest.raises(anthropic.APIStatusError):
        async for _ in stream:
            pytest.fail("the error must come before message_start")


# ---- latency, hangs and cancellation -----------------------------------------------------------------


async def test_stream_closed_early_is_recorded_cancelled(
    an: anthropic.AsyncAnthropic, psim: ProviderSim
) -> None:
    stream = await an.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=500,
        messages=user("[[sim:words=200]] [[sim:slow_stream=20]]"),
        stream=True,
    )
    seen = 0
    async for _ in stream:
        seen += 1
        if seen == 3:
            break
    await stream.close()
    rec = await psim.wait_cancelled(timeout=3)
    assert rec is psim.requests[-1] and rec.cancelled and not rec.completed


async def test_hang_until_client_timeout_and_latency(oa: openai.AsyncOpenAI, psim: ProviderSim) -> None:
    with pytest.raises(openai.APITimeoutError):
        await oa.chat.completions.create(model="gpt-4o", messages=user("[[sim:hang]]"), timeout=0.3)
    rec = await psim.wait_cancelled(timeout=3)
    assert rec.body is not None and "[[sim:hang]]" in rec.body["messages"][0]["content"]
    t0 = time.perf_counter()
    await oa.chat.completions.create(model="gpt-4o", messages=user("[[sim:latency=150]]"))
    assert time.perf_counter() - t0 >= 0.15


async def test_stop_ends_hanging_handlers_quickly() -> None:
    sim = ProviderSim()
    await sim.start()
    client = openai.AsyncOpenAI(base_url=sim.url + "/v1", api_key="sk-sim-openai", max_retries=0)
    call = asyncio.create_task(client.chat.completions.create(model="gpt-4o", messages=user("[[sim:hang]]")))
    await sim.wait_requests(1)
    await asyncio.wait_for(sim.stop(), 30)  # a hang guard: the hanging handler would otherwise never end
    with pytest.raises(openai.APIConnectionError):
        await call
    await client.close()
    await sim.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = sim.url


async def test_embedded_app_without_handler_cancellation_still_sees_cancels() -> None:
    # Embedders may run make_app() on a runner that does not cancel handlers on disconnect;
    # the sim then notices the vanished client by polling while it waits.
    sim = ProviderSim()
    runner = aiohttp.web.AppRunner(sim.make_app(), access_log=None)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    body = {"model": "gpt-4o", "stream": True, "messages": user("[[sim:stall]] wait")}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=body, headers={"Authorization": f"Bearer {OA_KEY}"}) as resp:
                assert resp.status == 200
                first = await resp.content.readuntil(b"\n\n")
                assert first.startswith(b"data: {") and b'"role":"assistant"' in first
        rec = await sim.wait_cancelled(timeout=3)
        assert rec.path == "/v1/chat/completions" and await rec.wait_done(0.1) is rec
        assert sim.cancelled_requests == [rec]
    finally:
        await runner.cleanup()


async def test_count_tokens_and_openai_stream_helper(
    oa: openai.AsyncOpenAI, an: anthropic.AsyncAnthropic
) -> None:
    counted = await an.messages.count_tokens(model="claude-sonnet-4-6", messages=user("hello world!"))
    assert counted.input_tokens == 3
    async with oa.chat.completions.stream(
        model="gpt-4o", messages=user("w [[sim:tools=2]]"), tools=[WEATHER, TIME]
    ) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]


async def test_request_log_is_bounded(
    oa: openai.AsyncOpenAI, psim: ProviderSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "MAX_RECORDED", 3)
    for i in range(5):
        await oa.chat.completions.create(model="gpt-4o", messages=user(f"n{i}"))
    assert len(psim.requests) == 3
    assert [r.body["messages"][0]["content"] for r in psim.requests if r.body] == ["n2", "n3", "n4"]


# ---- pure helpers ------------------------------------------------------------------------------------


def test_directives_parse_and_strip() -> None:
    d, text = parse_directives("hi [[sim:error=429]] there [[sim:tools=2]][[sim:no_usage]] [[sim:latency=x]]")
    assert (d.error, d.tools, d.no_usage, d.latency_ms) == (429, 2, True, None)
    assert text.split() == ["hi", "there"]
    plain, same = parse_directives("nothing special")
    assert plain.error is None and same == "nothing special"


def test_make_text_is_deterministic_and_respects_limits() -> None:
    a = make_text("one two", 12)
    assert a == make_text("one two", 12) and a.tokens == 12 and "".join(a.pieces) == a.text
    assert make_text("one two", 12, max_tokens=3).text == "Simulated reply to:"
    cut = make_text("one two", 12, stops=["two"])
    assert cut.text == "Simulated reply to: one " and cut.finish == "stop_sequence" and cut.tokens == 5


def test_embedding_base64_is_float32_little_endian() -> None:
    from iron_tui.sim.openai_sim import _vector_json

    raw = base64.b64decode(json.loads(_vector_json("abc", 4, True)))
    floats = struct.unpack("<4f", raw)
    assert list(floats) == pytest.approx(json.loads(_vector_json("abc", 4, False)), abs=1e-6)


def test_a_type_or_role_that_is_not_a_string_is_the_providers_400_not_a_crash() -> None:
    # Found by the end-to-end fuzz: the simulator looked a list up in a set and answered a bare 500.
    from iron_tui.sim.anthropic_validation import validate_request
    from iron_tui.sim.openai_validation import scan_chat

    problem, _ = validate_request({"model": "claude-haiku-4-5", "max_tokens": 1,
                                   "messages": [{"role": "user", "content": [{"type": []}]}]})
    assert problem is not None and problem.startswith("messages.0.content.0.type: Input tag '[]'")
    scan = scan_chat([{"role": ["user"], "content": "hi"}])
    assert scan.error is not None and scan.error[1] == "messages[0].role"

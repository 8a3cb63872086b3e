"""Calls as transcripts: every dialect's bodies and recorded streams, from hand-written bodies and from
real calls through the proxy (the official SDKs against the provider simulator)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
from hypothesis import given, settings
from hypothesis import strategies as st

from iron_tui.core.conversation import call_view, parse_body, transcript_lines
from iron_tui.core.engine import Engine
from iron_tui.core.transcript import Transcript
from tests.conftest import EngineFactory

PNG = "data:image/png;base64," + "iVBORw0KGgo" * 400


def kinds(t: Transcript | None) -> list[tuple[str, list[str]]]:
    assert t is not None
    return [(turn.role, [b.kind for b in turn.blocks]) for turn in t.turns]


def test_openai_chat_request_with_image_tool_call_and_result() -> None:
    body = {"model": "gpt-4o", "max_tokens": 64, "tools": [{"type": "function", "function": {"name": "get_weather"}}],
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": [{"type": "text", "text": "Weather here?"},
                                             {"type": "image_url", "image_url": {"url": PNG}}]},
                {"role": "assistant", "content": None, "reasoning_content": "the user wants weather",
                 "tool_calls": [{"id": "call_1", "type": "function",
                                 "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "12 °C"}]}
    t = parse_body(json.dumps(body), "openai.chat")
    assert t is not None and t.dialect == "openai.chat" and t.kind == "request"
    assert kinds(t) == [("system", ["text"]), ("user", ["text", "image"]),
                        ("assistant", ["thinking", "tool_call"]), ("tool", ["tool_result"])]
    assert t.tools == ("get_weather",) and ("max_tokens", "64") in t.settings
    image = t.turns[1].blocks[1]
    assert image.text.startswith("image/png · ") and "KiB inline" in image.text  # a placeholder, not base64
    call = t.turns[2].blocks[1]
    assert (call.name, call.ref) == ("get_weather", "call_1") and '"city": "Oslo"' in call.text
    assert t.turns[3].blocks[0].ref == "call_1" and t.turns[3].blocks[0].text == "12 °C"
    lines = transcript_lines(t)
    assert "[thinking: 22 characters]" in lines and "[tool call get_weather (call_1)]" in lines


def test_anthropic_request_and_response_blocks() -> None:
    req = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": [{"type": "text", "text": "Be terse."}],
           "thinking": {"type": "enabled", "budget_tokens": 512},
           "messages": [
               {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                                                         "data": "A" * 2048}},
                                            {"type": "text", "text": "What is it?"}]},
               {"role": "assistant", "content": [{"type": "thinking", "thinking": "looks like a cat", "signature": "s"},
                                                 {"type": "tool_use", "id": "tu_1", "name": "lookup",
                                                  "input": {"q": "cat"}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "is_error": True,
                                             "content": [{"type": "text", "text": "no such animal"}]}]}]}
    t = parse_body(json.dumps(req))
    assert t is not None and t.dialect == "anthropic.messages"
    assert kinds(t) == [("system", ["text"]), ("user", ["image", "text"]), ("assistant", ["thinking", "tool_call"]),
                        ("tool", ["tool_result"])]
    assert t.turns[1].blocks[0].text == "image/jpeg · 1.5 KiB inline"
    result = t.turns[3].blocks[0]
    assert result.error and result.text == "no such animal" and result.ref == "tu_1"
    resp = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "redacted_thinking", "data": "xx"}, {"type": "text", "text": "A cat."}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 3}}
    r = parse_body(json.dumps(resp))
    assert r is not None and r.kind == "response" and r.stop_reason == "end_turn"
    assert kinds(r) == [("assistant", ["thinking", "text"])]


def test_responses_request_and_response_items() -> None:
    req = {"model": "gpt-4o", "instructions": "Be terse.", "previous_response_id": "resp_0",
           "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"},
                                                  {"type": "input_image", "image_url": "https://x.test/cat.png"}]},
                     {"type": "function_call", "call_id": "fc_1", "name": "f", "arguments": "{}"},
                     {"type": "function_call_output", "call_id": "fc_1", "output": "done"}]}
    t = parse_body(json.dumps(req))
    assert t is not None and t.dialect == "openai.responses" and t.kind == "request"
    assert kinds(t) == [("system", ["text"]), ("user", ["text", "image"]), ("assistant", ["tool_call"]),
                        ("tool", ["tool_result"])]
    assert t.turns[1].blocks[1].text == "https://x.test/cat.png"
    assert ("previous_response_id", "resp_0") in t.settings
    plain = parse_body(json.dumps({"model": "gpt-4o", "input": "just text"}))
    assert plain is not None and kinds(plain) == [("user", ["text"])]


def test_recorded_streams_are_assembled() -> None:
    chat = "".join(f"data: {json.dumps(c)}\n\n" for c in [
        {"model": "gpt-4o", "choices": [{"delta": {"role": "assistant", "content": "Hel"}}]},
        {"choices": [{"delta": {"content": "lo"}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
    ]) + "data: [DONE]\n\n"
    t = parse_body(chat, "openai.chat")
    assert t is not None and t.streamed and t.stop_reason == "tool_calls" and t.usage == {"prompt_tokens": 5,
                                                                                           "completion_tokens": 2}
    assert t.turns[0].blocks[0].text == "Hello" and json.loads(t.turns[0].blocks[1].text) == {"a": 1}
    responses = "".join(f"event: {e}\ndata: {json.dumps({'type': e, **d})}\n\n" for e, d in [
        ("response.created", {"response": {"status": "in_progress"}}),
        ("response.output_text.delta", {"output_index": 0, "delta": "Hi "}),
        ("response.output_text.delta", {"output_index": 0, "delta": "there"}),
    ])
    r = parse_body(responses)
    assert r is not None and r.dialect == "openai.responses" and r.turns[0].blocks[0].text == "Hi there"


def test_cut_and_broken_bodies_say_so() -> None:
    cut = parse_body('{"model": "gpt-4o", "messages": [{"role": "user", "content": "aaa\n… [truncated: 99 more bytes]')
    assert cut is not None and any("cut at the preview limit" in n for n in cut.notes)
    assert any("not JSON" in n for n in (parse_body("<html>oops</html>") or Transcript("unknown", "request")).notes)
    assert parse_body(None) is None and parse_body("  ") is None
    err = parse_body(json.dumps({"error": {"message": "Rate limit reached", "type": "requests"}}))
    assert err is not None and err.turns[0].role == "error" and err.turns[0].blocks[0].text == "Rate limit reached"


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                         st.sampled_from(["model", "messages", "content", "role", "type", "choices", "delta",
                                          "input", "output", "system", "tool_calls", "function", "index", "text",
                                          "source", "image_url", "error", "usage", "arguments"]), inner,
                         max_size=5), max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(_JSON, st.sampled_from([None, "openai.chat", "openai.responses", "anthropic.messages"]),
       st.sampled_from(["json", "sse", "sse-named"]))
def test_any_body_reads_without_raising(value: Any, hint: str | None, form: str) -> None:
    text = json.dumps(value)
    if form == "sse":
        text = f"data: {text}\n\ndata: {text}\n\n"
    elif form == "sse-named":
        text = f"event: content_block_delta\ndata: {text}\n\nevent: message_delta\ndata: {text}\n\n"
    t = parse_body(text, hint)
    transcript_lines(t)  # renders too


# --- real calls through the proxy ----------------------------------------------------------------


def _record(engine: Engine, request_id: str) -> Any:
    rec = engine.history.get(request_id)
    assert rec is not None
    return rec


async def test_real_calls_read_as_conversations(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    oai = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    ant = anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0)
    try:
        plain = await oai.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "tell me about owls"}])
        streamed = await oai.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "tell me about bats"}])
        text = "".join([c.choices[0].delta.content or "" async for c in streamed.parse() if c.choices])
        translated = await oai.chat.completions.with_raw_response.create(
            model="claude-3-5-haiku-latest", stream=True, max_tokens=64,
            messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "tell me about moles"}])
        async for _ in translated.parse():
            pass
        native = await ant.messages.with_raw_response.create(
            model="claude-3-5-haiku-latest", max_tokens=64, messages=[{"role": "user", "content": "tell me about voles"}])
    finally:
        await oai.close()
        await ant.close()

    v = call_view(_record(engine, plain.headers["x-iron-request-id"]))
    assert v.request is not None and v.response is not None and v.upstream_request is None
    assert "owls" in v.request.turns[0].blocks[0].text
    answer = plain.parse().choices[0].message.content
    assert v.response.turns[0].blocks[0].text == answer and v.response.stop_reason == "stop"

    v = call_view(_record(engine, streamed.headers["x-iron-request-id"]))
    assert v.response is not None and v.response.streamed and v.response.turns[0].blocks[0].text == text

    v = call_view(_record(engine, translated.headers["x-iron-request-id"]))
    assert v.request is not None and v.request.dialect == "openai.chat"
    assert v.upstream_request is not None and v.upstream_request.dialect == "anthropic.messages"
    assert [t.role for t in v.upstream_request.turns] == ["system", "user"]  # the system message moved
    assert v.upstream_response is not None and v.upstream_response.dialect == "anthropic.messages"
    assert v.response is not None and v.response.dialect == "openai.chat"
    assert v.response.turns[0].blocks[0].text == v.upstream_response.turns[0].blocks[0].text != ""

    v = call_view(_record(engine, native.headers["x-iron-request-id"]))
    assert v.response is not None and v.response.dialect == "anthropic.messages"
    message = await native.parse()
    assert v.response.turns[0].blocks[0].text == message.content[0].text  # type: ignore[union-attr]

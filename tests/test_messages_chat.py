"""Anthropic Messages client → OpenAI Chat Completions provider: request, response and stream translation,
checked with the official SDKs' types and parsers."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest
from anthropic.types import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat.completion_create_params import CompletionCreateParamsStreaming

from iron_tui.core.dialects.base import DONE_EVENT, RequestContext, TranslationError, UpstreamFormatError
from iron_tui.core.dialects.messages_chat import ESTIMATE_HEADER, PAIR, estimate_input_tokens
from tests.sdk_replay import anthropic_final_message

CHAT_REQUEST = pydantic.TypeAdapter(CompletionCreateParamsStreaming)


def ctx(model: str = "gpt-4o", stream: bool = False) -> RequestContext:
    counter = iter(range(1, 1000))
    return RequestContext(model=model, client_model=model, stream=stream, created=1_700_000_000,
                          new_id=lambda prefix: f"{prefix}_{next(counter):04d}")


def translate(body: dict[str, Any], model: str = "gpt-4o") -> tuple[dict[str, Any], list[str]]:
    tr = PAIR.request({"model": model, "max_tokens": 256, **body}, ctx(model))
    assert tr.path == "/v1/chat/completions"
    CHAT_REQUEST.validate_python({**tr.body, "stream": True})  # the openai SDK's own request type
    return tr.body, tr.warnings


# -- request ----------------------------------------------------------------------------------------


def test_system_blocks_and_claude_code_mid_conversation_system_messages() -> None:
    body, _ = translate({
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Be terse."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                                         {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "Plan mode is active."},
            {"role": "assistant", "content": "ok"},
        ],
    })
    assert body["messages"] == [
        {"role": "system", "content": "You are Claude Code.\n\nBe terse."},
        {"role": "user", "content": [{"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                                     {"type": "text", "text": "hi"}]},
        {"role": "system", "content": "Plan mode is active."},
        {"role": "assistant", "content": "ok"},
    ]
    assert "cache_control" not in json.dumps(body)


def test_mid_conversation_system_is_folded_for_non_openai_models() -> None:
    body, warnings = translate({"system": "Base.", "messages": [
        {"role": "user", "content": "hi"}, {"role": "system", "content": [{"type": "text", "text": "Late."}]}]},
        model="llama-3.1-8b")
    assert body["messages"] == [{"role": "system", "content": "Base.\n\nLate."}, {"role": "user", "content": "hi"}]
    assert any("folded" in w for w in warnings)


def test_images_and_documents() -> None:
    body, _ = translate({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
        {"type": "text", "text": "describe"},
    ]}]})
    assert body["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "file", "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
        {"type": "text", "text": "notes"},
        {"type": "text", "text": "describe"},
    ]


def test_tool_round_trip_history() -> None:
    body, warnings = translate({
        "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object"},
                   "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": "read a and b"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a"}},
                {"type": "tool_use", "id": "toolu_2", "name": "Read", "input": {"path": "b"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "A!"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
                 "content": [{"type": "text", "text": "no such file"},
                             {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]},
                {"type": "text", "text": "go on"}]},
        ],
    })
    assert body["tools"] == [{"type": "function", "function": {
        "name": "Read", "parameters": {"type": "object"}, "description": "Read a file"}}]
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ("auto", False)
    assistant, result1, result2, user = body["messages"][1:]
    assert assistant == {"role": "assistant", "content": "Reading.", "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "Read", "arguments": '{"path":"a"}'}},
        {"id": "toolu_2", "type": "function", "function": {"name": "Read", "arguments": '{"path":"b"}'}}]}
    assert result1 == {"role": "tool", "tool_call_id": "toolu_1", "content": "A!"}
    assert result2["tool_call_id"] == "toolu_2" and result2["content"].startswith("Error: no such file")
    # The image of the tool result follows the tool messages, in a user turn (tool messages hold text only).
    assert user["role"] == "user"
    assert [p["type"] for p in user["content"]] == ["text", "image_url", "text"]
    assert warnings


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "any"}, "required"),
    ({"type": "none"}, "none"),
    ({"type": "tool", "name": "Read"}, {"type": "function", "function": {"name": "Read"}}),
])
def test_tool_choice(choice: dict[str, Any], expected: object) -> None:
    body, _ = translate({"tools": [{"name": "Read", "input_schema": {"type": "object"}}], "tool_choice": choice,
                         "messages": [{"role": "user", "content": "x"}]})
    assert body["tool_choice"] == expected and "parallel_tool_calls" not in body


def test_sampling_stop_metadata_and_stream_options() -> None:
    user = "user_" + "a" * 64 + "_account__session_1234"
    body, warnings = translate({"messages": [{"role": "user", "content": "x"}], "temperature": 0.2, "top_p": 0.9,
                                "top_k": 5, "stop_sequences": ["a", "b", "c", "d", "e"], "stream": True,
                                "metadata": {"user_id": user}})
    assert (body["temperature"], body["top_p"], body["stop"]) == (0.2, 0.9, ["a", "b", "c", "d"])
    assert body["max_completion_tokens"] == 256 and "top_k" not in body
    assert body["stream_options"] == {"include_usage": True}
    assert len(body["user"]) == 64 and body["user"] != user[:64]
    assert any("top_k" in w for w in warnings) and any("first 4" in w for w in warnings)


@pytest.mark.parametrize(("thinking", "effort"), [
    ({"type": "enabled", "budget_tokens": 1024}, "low"),
    ({"type": "enabled", "budget_tokens": 8000}, "medium"),
    ({"type": "enabled", "budget_tokens": 31999}, "high"),
    ({"type": "adaptive"}, "medium"),
])
def test_thinking_becomes_reasoning_effort_on_reasoning_models(thinking: dict[str, Any], effort: str) -> None:
    body, warnings = translate({"messages": [{"role": "user", "content": "x"}], "thinking": thinking,
                                "temperature": 1, "stop_sequences": ["END"]}, model="gpt-5-mini")
    assert body["reasoning_effort"] == effort
    assert "temperature" not in body and "stop" not in body  # reasoning models refuse them
    assert warnings
    body, warnings = translate({"messages": [{"role": "user", "content": "x"}], "thinking": thinking})
    assert "reasoning_effort" not in body and any("not a reasoning model" in w for w in warnings)


def test_output_config_effort_and_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body, _ = translate({"messages": [{"role": "user", "content": "x"}],
                         "output_config": {"effort": "max", "format": {"type": "json_schema", "schema": schema}}},
                        model="o3")
    assert body["reasoning_effort"] == "high"
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


@pytest.mark.parametrize(("body", "param"), [
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0"),
    ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools.0"),
    ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, "mcp_servers"),
    ({"messages": [{"role": "user", "content": "x"},
                   {"role": "assistant", "content": [{"type": "server_tool_use", "id": "s", "name": "web_search",
                                                      "input": {}}]}]}, "messages.1.content.0"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]},
     "messages.0.content.0.source"),
])
def test_what_cannot_be_served_is_a_translation_error_naming_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as err:
        PAIR.request({"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}], **body},
                     ctx())
    assert err.value.param == param and err.value.message


# -- response ---------------------------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str = "stop", usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-abc", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107,
                               "prompt_tokens_details": {"cached_tokens": 64}}}


def test_response_text_tools_reasoning_and_usage() -> None:
    out = PAIR.response(completion({
        "content": "Let me look.", "reasoning_content": "The user wants a file.",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "Read", "arguments": '{"path":"a"}'}},
                       {"id": "call_2", "type": "function", "function": {"name": "Read", "arguments": "not json"}}]},
        "tool_calls"), ctx())
    msg = Message.model_validate(out)
    assert msg.id == "msg_abc" and msg.model == "gpt-4o" and msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert out["content"][2]["input"] == {"path": "a"} and out["content"][3]["input"] == {}
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (36, 64, 7)


@pytest.mark.parametrize(("finish", "stop_reason"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal"), (None, "end_turn"),
    ("something_new", "end_turn")])
def test_stop_reasons(finish: str | None, stop_reason: str) -> None:
    out = PAIR.response(completion({"content": "x"}, finish), ctx())  # type: ignore[arg-type]
    assert out["stop_reason"] == stop_reason


def test_refusal_and_empty_reply() -> None:
    out = PAIR.response(completion({"content": None, "refusal": "I can't help with that."}), ctx())
    assert out["stop_reason"] == "refusal" and out["content"] == [{"type": "text", "text": "I can't help with that."}]
    out = PAIR.response(completion({"content": None}), ctx())
    assert Message.model_validate(out).content == []


@pytest.mark.parametrize("body", [{"choices": []}, {"choices": [{"message": 5}]}, {"choices": "x"},
                                  {"choices": [{"message": {"content": 5}}]},
                                  {"choices": [{"message": {"tool_calls": [{"function": "x"}]}}]}, []])
def test_malformed_upstream_response_is_an_upstream_format_error(body: Any) -> None:
    with pytest.raises(UpstreamFormatError):
        PAIR.response(body, ctx())


# -- stream -----------------------------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-abc", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": choices, **extra}


def completion_to_chunks(body: dict[str, Any], size: int) -> list[dict[str, Any]]:
    """The chunks OpenAI streams for a chat.completion (text, then tool calls), arguments in pieces."""
    message = body["choices"][0]["message"]
    out = [chunk({"role": "assistant", "content": ""})]
    for name in ("reasoning_content", "content"):
        text = message.get(name) or ""
        out += [chunk({name: text[i:i + size]}) for i in range(0, len(text), size)]
    for k, call in enumerate(message.get("tool_calls") or []):
        out.append(chunk({"tool_calls": [{"index": k, "id": call["id"], "type": "function",
                                          "function": {"name": call["function"]["name"], "arguments": ""}}]}))
        args = call["function"]["arguments"]
        out += [chunk({"tool_calls": [{"index": k, "function": {"arguments": args[i:i + size]}}]})
                for i in range(0, len(args), size)]
    out.append(chunk({}, body["choices"][0]["finish_reason"]))
    out.append(chunk(None, usage=body["usage"]))
    return out


texts = st.text(max_size=30)
calls = st.lists(st.fixed_dictionaries({
    "name": st.sampled_from(["Read", "Bash", "mcp__git__status"]),
    "args": st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=10), max_size=3)}), max_size=3)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, texts, calls, st.sampled_from(["stop", "length", "tool_calls"]), st.integers(1, 9))
def test_stream_and_non_stream_translations_agree(
    reasoning: str, text: str, tool_calls: list[dict[str, Any]], finish: str, size: int
) -> None:
    message: dict[str, Any] = {"content": text or None, "reasoning_content": reasoning or None}
    if tool_calls:
        message["tool_calls"] = [{"id": f"call_{k}", "type": "function",
                                  "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
                                 for k, c in enumerate(tool_calls)]
    body = completion(message, finish)
    expected = Message.model_validate(PAIR.response(body, ctx()))
    st_ = PAIR.stream(ctx(stream=True))
    frames = [f for c in completion_to_chunks(body, size) for f in st_.feed("message", c)]
    assert st_.done and st_.finish() == []
    got = anthropic_final_message(frames)  # parsed and accumulated by the anthropic SDK
    assert got.model_dump(exclude={"id"}) == expected.model_dump(exclude={"id"})


def test_a_tool_input_beyond_64_bits_stays_exact_streamed_or_not() -> None:
    # Found by the property above: orjson reads -9223372036854775809 as a float, the SDK (reading the
    # streamed partial JSON) as the integer it is; both paths now hand the tool the number as written.
    args = {"": -9223372036854775809, "id": 123456789012345678901234567890, "n": 7}
    body = completion({"content": None, "tool_calls": [{"id": "call_0", "type": "function", "function": {
        "name": "Read", "arguments": json.dumps(args)}}]}, "tool_calls")
    whole = PAIR.response(body, ctx())
    assert whole["content"][0]["input"] == args and isinstance(whole["content"][0]["input"][""], int)
    st_ = PAIR.stream(ctx(stream=True))
    frames = [f for c in completion_to_chunks(body, 4) for f in st_.feed("message", c)]
    assert anthropic_final_message(frames).content[0].input == args  # type: ignore[union-attr]


def test_stream_without_a_usage_chunk_is_closed_at_eof() -> None:
    st_ = PAIR.stream(ctx(stream=True))
    frames = [f for c in [chunk({"role": "assistant", "content": "hi"}), chunk({}, "stop")]
              for f in st_.feed("message", c)]
    assert not st_.done
    frames += st_.finish()
    assert st_.done
    msg = anthropic_final_message(frames)
    assert msg.stop_reason == "end_turn" and msg.content[0].text == "hi"  # type: ignore[union-attr]


def test_done_marker_closes_a_stream_without_usage() -> None:
    st_ = PAIR.stream(ctx(stream=True))
    frames = [f for c in [chunk({"role": "assistant", "content": "hi"}), chunk({}, "length")]
              for f in st_.feed("message", c)]
    frames += st_.feed(DONE_EVENT, {})
    assert st_.done and st_.feed("message", chunk(None, usage={"prompt_tokens": 1})) == []
    assert anthropic_final_message(frames).stop_reason == "max_tokens"


def test_truncated_stream_gets_no_invented_end() -> None:
    st_ = PAIR.stream(ctx(stream=True))
    st_.feed("message", chunk({"content": "par"}))
    assert st_.finish() == [] and not st_.done


def test_usage_in_the_finish_chunk_and_error_objects() -> None:
    st_ = PAIR.stream(ctx(stream=True))
    assert st_.feed("message", {"error": {"message": "boom"}}) == []
    frames = st_.feed("message", chunk({"content": "x"}, "stop",
                                       usage={"prompt_tokens": 5, "completion_tokens": 1}))
    assert st_.done and b"message_stop" in frames[-1]
    assert anthropic_final_message(frames).usage.input_tokens == 5


@pytest.mark.parametrize("data", [{"choices": "x"}, {"choices": [{"delta": "text"}]}, {"usage": [1]},
                                  {"choices": [{"delta": {"content": 5}}]},
                                  {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": []}]}}]}])
def test_malformed_chunks_are_upstream_format_errors(data: dict[str, Any]) -> None:
    with pytest.raises(UpstreamFormatError):
        PAIR.stream(ctx(stream=True)).feed("message", data)


# -- count_tokens -----------------------------------------------------------------------------------


def test_count_tokens_estimate_grows_with_what_the_model_reads() -> None:
    base = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello world"}]}
    small = estimate_input_tokens(base)
    with_system = estimate_input_tokens({**base, "system": "x" * 4000})
    with_tools = estimate_input_tokens({**base, "tools": [{"name": "Read", "input_schema": {
        "type": "object", "properties": {"path": {"type": "string", "description": "y" * 400}}}}]})
    with_image = estimate_input_tokens({**base, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 100_000}}]}]})
    assert 0 < small < 20
    assert with_system - small == 1000
    assert 100 < with_tools - small < 200
    assert 700 < with_image < 900  # a fixed image cost, not the base64 length
    assert ESTIMATE_HEADER.startswith("x-iron-")
    with pytest.raises(TranslationError):
        estimate_input_tokens({"model": "gpt-4o"})


def test_deferred_tools_stay_out_of_an_openai_models_context() -> None:
    from iron_tui.core.dialects.base import RequestContext
    from iron_tui.core.dialects.messages_chat import PAIR

    body = {"model": "gpt-4.1", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}], "tools": [
        {"name": "read", "input_schema": {"type": "object"}},
        {"name": "DeferredToolPlaceholder", "description": "never call this tool",
         "input_schema": {"type": "object", "properties": {}}, "defer_loading": True}]}
    tr = PAIR.request(body, RequestContext(model="gpt-4.1", client_model="gpt-4.1", stream=False, created=0))
    assert [t["function"]["name"] for t in tr.body["tools"]] == ["read"]
    assert any("defer_loading" in w for w in tr.warnings)
    only = {**body, "tools": body["tools"][1:]}
    tr = PAIR.request(only, RequestContext(model="gpt-4.1", client_model="gpt-4.1", stream=False, created=0))
    assert "tools" not in tr.body and "tool_choice" not in tr.body

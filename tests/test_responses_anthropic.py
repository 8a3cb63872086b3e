"""Responses → Anthropic Messages: what Codex, the Agents SDK and `client.responses` send, and what
they get back (every event checked against the official SDK's types)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from iron_tui.core.dialects.base import TranslationError, UpstreamFormatError
from iron_tui.core.dialects.responses.output import decode_reasoning, encode_reasoning
from iron_tui.core.dialects.responses_anthropic import PAIR
from tests.responses_support import run_stream, sdk_response, translate, without_ids

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city.", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}}
PATCH = {"type": "custom", "name": "apply_patch", "description": "Apply a patch.",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
AGENTS_NS = {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.",
             "tools": [{"type": "function", "name": "close_agent", "strict": False,
                        "parameters": {"type": "object", "properties": {"target": {"type": "string"}}}}]}


def body(**kw: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "input": "Hi", **kw}


def anthropic_message(content: list[dict[str, Any]], stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
            "content": content, "stop_reason": stop,
            "usage": {"input_tokens": 10, "output_tokens": 5, **usage}}


def stream_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events Anthropic streams for `message`, with text and JSON split in pieces."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    evs: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
    for i, block in enumerate(message["content"]):
        kind = block["type"]
        first = {"text": {"type": "text", "text": ""}, "tool_use": {**block, "input": {}},
                 "thinking": {"type": "thinking", "thinking": "", "signature": ""}}.get(kind, block)
        evs.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": first}))
        if kind == "text":
            deltas = [{"type": "text_delta", "text": block["text"][j:j + 3]} for j in range(0, len(block["text"]), 3)]
        elif kind == "tool_use":
            raw = json.dumps(block["input"], separators=(",", ":"))
            deltas = [{"type": "input_json_delta", "partial_json": raw[j:j + 4]} for j in range(0, len(raw), 4)]
        elif kind == "thinking":
            deltas = [{"type": "thinking_delta", "thinking": block["thinking"]},
                      {"type": "signature_delta", "signature": block["signature"]}]
        else:
            deltas = []
        evs.extend(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}) for d in deltas)
        evs.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    evs.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"]},
                                  "usage": {"output_tokens": message["usage"]["output_tokens"]}}))
    evs.append(("message_stop", {"type": "message_stop"}))
    return evs


# --- request ---------------------------------------------------------------------------------------


def test_codex_shaped_request() -> None:
    tr, _ = translate(PAIR, {
        "model": "claude-sonnet-4-6", "stream": True, "store": False, "tool_choice": "auto",
        "parallel_tool_calls": True, "reasoning": {"summary": "auto"}, "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "thread-1", "client_metadata": {"thread_id": "t"},
        "tools": [WEATHER, PATCH, AGENTS_NS, {"type": "web_search", "external_web_access": False}],
        "input": [
            {"type": "message", "id": "msg_a", "role": "developer",
             "content": [{"type": "input_text", "text": "You are Codex."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<env/>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix it"}]},
        ]})
    out = tr.body
    assert tr.path == "/v1/messages"
    assert out["system"] == [{"type": "text", "text": "You are Codex.", "cache_control": {"type": "ephemeral"}}]
    assert out["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "<env/>"}, {"type": "text", "text": "fix it", "cache_control": {"type": "ephemeral"}}]}]
    assert [t["name"] for t in out["tools"]] == ["get_weather", "apply_patch", "multi_agent_v1__close_agent"]
    assert out["tools"][1]["input_schema"]["required"] == ["input"]
    assert "start: /.+/" in out["tools"][1]["input_schema"]["properties"]["input"]["description"]
    assert out["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert out["max_tokens"] == 64_000 and out["stream"] is True
    assert "thinking" not in out  # a summary alone asks for no effort
    assert any("web_search" in w for w in tr.warnings)


def test_tool_history_becomes_alternating_turns() -> None:
    tr, _ = translate(PAIR, body(instructions="Be brief.", tools=[WEATHER, PATCH], input=[
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call:2", "name": "get_weather", "arguments": "not json"},
        {"type": "function_call_output", "call_id": "call_1", "output": "Sunny"},
        {"type": "function_call_output", "call_id": "call:2",
         "output": [{"type": "input_text", "text": "Rainy"}]},
        {"type": "custom_tool_call", "call_id": "c3", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "c3", "output": "done"},
    ]))
    assert tr.body["system"] == [{"type": "text", "text": "Be brief."}]
    assert tr.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "Sunny"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "Rainy"}]}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "c3", "name": "apply_patch", "input": {"input": "*** Begin Patch"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c3", "content": "done"}]},
    ]
    assert any("not a JSON object" in w for w in tr.warnings)


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    ("auto", None, {"type": "auto"}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ("none", None, {"type": "none"}),
    ({"type": "function", "name": "get_weather"}, None, {"type": "tool", "name": "get_weather"}),
    ({"type": "custom", "name": "apply_patch"}, None, {"type": "tool", "name": "apply_patch"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
])
def test_tool_choice(choice: Any, parallel: Any, expected: dict[str, Any]) -> None:
    extra = {"tool_choice": choice} if choice is not None else {}
    if parallel is not None:
        extra["parallel_tool_calls"] = parallel
    tr, _ = translate(PAIR, body(tools=[WEATHER, PATCH], **extra))
    assert tr.body["tool_choice"] == expected


def test_allowed_tools_limits_what_is_sent() -> None:
    tr, _ = translate(PAIR, body(tools=[WEATHER, PATCH], tool_choice={
        "type": "allowed_tools", "mode": "required", "tools": [{"type": "custom", "name": "apply_patch"}]}))
    assert [t["name"] for t in tr.body["tools"]] == ["apply_patch"]
    assert tr.body["tool_choice"] == {"type": "any"}


def test_structured_output_and_sampling() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
              "additionalProperties": False}
    tr, _ = translate(PAIR, body(temperature=1.7, top_p=0.5, max_output_tokens=300, user="u1",
                                 text={"format": {"type": "json_schema", "name": "out", "schema": schema,
                                                  "strict": True}}))
    assert tr.body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert tr.body["temperature"] == 1.0 and "top_p" not in tr.body
    assert tr.body["max_tokens"] == 300 and tr.body["metadata"] == {"user_id": "u1"}


@pytest.mark.parametrize(("effort", "cap", "budget"), [
    ("low", None, 1024), ("medium", None, 4096), ("high", None, 16_384), ("xhigh", 20_000, 15_000),
    ("none", None, None), ("minimal", None, None), ("high", 1000, None),
])
def test_reasoning_effort_to_thinking_budget(effort: str, cap: int | None, budget: int | None) -> None:
    extra = {"max_output_tokens": cap} if cap else {}
    tr, _ = translate(PAIR, body(reasoning={"effort": effort}, temperature=0.2, **extra))
    if budget is None:
        assert "thinking" not in tr.body
    else:
        assert tr.body["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert budget < tr.body["max_tokens"]
        assert "temperature" not in tr.body  # Anthropic requires the default while thinking


def test_forced_tool_turns_thinking_off() -> None:
    tr, _ = translate(PAIR, body(tools=[WEATHER], tool_choice="required", reasoning={"effort": "high"}))
    assert "thinking" not in tr.body and tr.body["tool_choice"] == {"type": "any"}
    assert any("forces a tool call" in w for w in tr.warnings)


def test_reasoning_round_trip_rebuilds_signed_thinking_blocks() -> None:
    thought = {"type": "thinking", "thinking": "Paris first.", "signature": "sig-abc"}
    redacted = {"type": "redacted_thinking", "data": "opaque"}
    tr, _ = translate(PAIR, body(reasoning={"effort": "medium"}, tools=[WEATHER], input=[
        {"role": "user", "content": "Weather?"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Paris first."}],
         "encrypted_content": encode_reasoning([thought])},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": encode_reasoning([redacted])},
        {"type": "function_call", "call_id": "toolu_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "Sunny"},
    ]))
    assistant = tr.body["messages"][1]["content"]
    assert assistant[:2] == [thought, redacted] and assistant[2]["type"] == "tool_use"
    assert tr.body["thinking"]["type"] == "enabled"


def test_tool_loop_without_its_thinking_block_drops_thinking() -> None:
    # The Agents SDK after a model switch: OpenAI's own reasoning item cannot be replayed to Claude.
    tr, _ = translate(PAIR, body(reasoning={"effort": "low"}, tools=[WEATHER], input=[
        {"role": "user", "content": "Weather?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAABforeign"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "Sunny"},
    ]))
    assert "thinking" not in tr.body
    assert all(b["type"] != "thinking" for m in tr.body["messages"] for b in m["content"])
    assert any("another provider" in w for w in tr.warnings)
    assert any("no thinking block" in w for w in tr.warnings)


def test_previous_items_come_first() -> None:
    previous = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "My name is Ada."}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi Ada."}]}]
    tr, _ = translate(PAIR, body(input="What is my name?", previous_response_id="resp_1"), previous=previous)
    assert [m["role"] for m in tr.body["messages"]] == ["user", "assistant", "user"]
    assert tr.body["messages"][2]["content"] == [{"type": "text", "text": "What is my name?"}]


def test_images_and_files() -> None:
    tr, _ = translate(PAIR, body(input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Look"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
        {"type": "input_image", "image_url": "https://example.com/a.jpg"},
        {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
        {"type": "input_file", "filename": "notes.txt", "file_data": "aGVsbG8="},
    ]}]))
    blocks = tr.body["messages"][0]["content"]
    assert blocks[1]["source"] == {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    assert blocks[2]["source"] == {"type": "url", "url": "https://example.com/a.jpg"}
    assert blocks[3] == {"type": "document", "title": "a.pdf",
                         "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    assert blocks[4]["source"] == {"type": "text", "media_type": "text/plain", "data": "hello"}


@pytest.mark.parametrize(("extra", "param", "words"), [
    ({"tools": [{"type": "file_search", "vector_store_ids": ["vs"]}]}, "tools[0].type", "hosted tool 'file_search'"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type", "hosted tool 'web_search'"),
    ({"tools": [WEATHER], "tool_choice": {"type": "web_search_preview"}}, "tool_choice", "hosted"),
    ({"background": True}, "background", "not supported"),
    ({"conversation": "conv_1"}, "conversation", "not supported"),
    ({"include": ["nonsense"]}, "include[0]", "not supported"),
    ({"reasoning": {"effort": "extreme"}}, "reasoning.effort", "not one of"),
    ({"max_output_tokens": 0}, "max_output_tokens", "positive"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]", "item_reference"),
    ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type", "hosted OpenAI tool"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
     "input[0].content[0]", "uploaded to OpenAI"),
    ({"input": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}]},
     "input", "No tool output found for function call c1."),
    ({"input": [{"type": "function_call_output", "call_id": "c9", "output": "x"}]},
     "input", "No tool call found for function call output with call_id c9."),
    ({"input": [{"role": "critic", "content": "x"}]}, "input[0].role", "not supported"),
    ({"input": []}, "input", "at least one"),
])
def test_what_cannot_be_served_is_a_400_naming_the_param(extra: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(TranslationError) as err:
        translate(PAIR, body(**extra))
    assert err.value.param == param and words in err.value.message


# --- non-stream response ---------------------------------------------------------------------------


def test_response_object_as_the_sdk_reads_it() -> None:
    _, ctx = translate(PAIR, body(tools=[WEATHER, PATCH, AGENTS_NS], reasoning={"effort": "low", "summary": "auto"},
                                   instructions="Be brief.", store=False))
    thought = {"type": "thinking", "thinking": "Let me check.", "signature": "sig"}
    out = PAIR.response(anthropic_message([
        thought,
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "apply_patch", "input": {"input": "*** Begin Patch"}},
        {"type": "tool_use", "id": "toolu_3", "name": "multi_agent_v1__close_agent", "input": {"target": "a"}},
    ], "tool_use", cache_read_input_tokens=100, cache_creation_input_tokens=7), ctx)
    resp = sdk_response(out)
    assert resp.id == "resp_0001" and resp.status == "completed" and resp.model == "claude-sonnet-4-6"
    assert resp.output_text == "Checking both."
    kinds = [(i.type, getattr(i, "name", None)) for i in resp.output]
    assert kinds == [("reasoning", None), ("message", None), ("function_call", "get_weather"),
                     ("custom_tool_call", "apply_patch"), ("function_call", "close_agent")]
    assert out["output"][0]["summary"] == [{"type": "summary_text", "text": "Let me check."}]
    assert decode_reasoning(out["output"][0]["encrypted_content"]) == [thought]
    assert out["output"][2]["arguments"] == '{"city":"Paris"}' and out["output"][2]["call_id"] == "toolu_1"
    assert out["output"][3]["input"] == "*** Begin Patch"
    assert out["output"][4]["namespace"] == "multi_agent_v1"
    assert out["usage"] == {"input_tokens": 117, "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 7},
                            "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 4}, "total_tokens": 122}
    assert out["instructions"] == "Be brief." and out["store"] is False


def test_no_summary_asked_means_empty_summary_but_kept_thinking() -> None:
    _, ctx = translate(PAIR, body(reasoning={"effort": "low"}))
    out = PAIR.response(anthropic_message([{"type": "thinking", "thinking": "hidden", "signature": "s"},
                                           {"type": "text", "text": "ok"}]), ctx)
    assert out["output"][0]["summary"] == []
    assert decode_reasoning(out["output"][0]["encrypted_content"])[0]["thinking"] == "hidden"


@pytest.mark.parametrize(("stop", "status", "reason"), [
    ("max_tokens", "incomplete", "max_output_tokens"), ("refusal", "incomplete", "content_filter"),
    ("end_turn", "completed", None), ("pause_turn", "completed", None),
])
def test_stop_reasons(stop: str, status: str, reason: str | None) -> None:
    _, ctx = translate(PAIR, body())
    resp = sdk_response(PAIR.response(anthropic_message([{"type": "text", "text": "x"}], stop), ctx))
    assert resp.status == status
    assert (resp.incomplete_details.reason if resp.incomplete_details else None) == reason


def test_broken_upstream_body_is_an_upstream_format_error() -> None:
    _, ctx = translate(PAIR, body())
    with pytest.raises(UpstreamFormatError):
        PAIR.response({"id": "msg_1", "content": "not a list"}, ctx)


# --- streaming ------------------------------------------------------------------------------------


def test_stream_matches_the_non_stream_translation() -> None:
    message = anthropic_message([
        {"type": "thinking", "thinking": "Plan: call tools.", "signature": "sig-1"},
        {"type": "text", "text": "I'll call both tools."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "apply_patch", "input": {"input": "*** Begin\n\"x\""}},
        {"type": "tool_use", "id": "toolu_3", "name": "multi_agent_v1__close_agent", "input": {}},
    ], "tool_use", cache_read_input_tokens=3)
    request = body(stream=True, tools=[WEATHER, PATCH, AGENTS_NS], reasoning={"effort": "low", "summary": "auto"})
    _, ctx = translate(PAIR, request)
    evs, st = run_stream(PAIR, ctx, stream_events(message))
    types = [e["type"] for e in evs]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-1] == "response.completed"
    for needed in ("response.reasoning_summary_text.delta", "response.output_text.delta",
                   "response.function_call_arguments.delta", "response.custom_tool_call_input.done",
                   "response.content_part.done"):
        assert needed in types
    text = "".join(e["delta"] for e in evs if e["type"] == "response.output_text.delta")
    assert text == "I'll call both tools."
    args = "".join(e["delta"] for e in evs if e["type"] == "response.function_call_arguments.delta"
                   and e["output_index"] == 2)
    assert json.loads(args) == {"city": "Paris"}
    final = evs[-1]["response"]
    assert st.response == final and final["usage"]["input_tokens_details"]["cached_tokens"] == 3
    _, ctx2 = translate(PAIR, {**request, "stream": False})
    whole = PAIR.response(message, ctx2)
    assert without_ids(final["output"]) == without_ids(whole["output"])
    assert final["usage"] == whole["usage"]
    done_items = [e["item"] for e in evs if e["type"] == "response.output_item.done"]
    assert done_items == final["output"]


def test_stream_cut_at_max_tokens_is_incomplete() -> None:
    _, ctx = translate(PAIR, body(stream=True))
    evs, _ = run_stream(PAIR, ctx, stream_events(anthropic_message([{"type": "text", "text": "abcdef"}], "max_tokens")))
    assert evs[-1]["type"] == "response.incomplete"
    assert evs[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    item = evs[-1]["response"]["output"][0]
    assert item["status"] == "incomplete" and item["content"][0]["text"] == "abcdef"


def test_stream_ignores_pings_errors_and_unknown_events_and_ends_once() -> None:
    _, ctx = translate(PAIR, body(stream=True))
    events = stream_events(anthropic_message([{"type": "text", "text": "hi"}]))
    events.insert(2, ("ping", {"type": "ping"}))
    events.insert(3, ("future_event", {"type": "future_event", "x": 1}))
    events.append(("message_stop", {"type": "message_stop"}))
    evs, st = run_stream(PAIR, ctx, events)
    assert [e["type"] for e in evs].count("response.completed") == 1 and st.done
    st2 = PAIR.stream(ctx)
    assert st2.feed("error", {"type": "error", "error": {"type": "overloaded_error", "message": "x"}}) == []
    assert st2.finish() == []

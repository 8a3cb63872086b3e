"""Responses → OpenAI Chat Completions (chat-only compatible providers): requests, responses, streams."""

from __future__ import annotations

import json
from typing import Any

import pytest

from iron_tui.core.dialects.base import DONE_EVENT, UpstreamFormatError
from iron_tui.core.dialects.responses_chat import PAIR
from tests.responses_support import run_stream, sdk_response, translate, without_ids

WEATHER = {"type": "function", "name": "get_weather", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
PATCH = {"type": "custom", "name": "apply_patch", "description": "Apply a patch."}


def body(**kw: Any) -> dict[str, Any]:
    return {"model": "llama3", "input": "Hi", **kw}


def test_request_maps_history_tools_and_options() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    tr, _ = translate(PAIR, body(
        instructions="Be brief.", stream=True, max_output_tokens=200, temperature=0.3,
        reasoning={"effort": "high"}, tools=[WEATHER, PATCH], tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False, text={"format": {"type": "json_schema", "name": "out", "schema": schema}},
        input=[
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Rules."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "Look"},
                                         {"type": "input_image", "image_url": "https://x/a.png", "detail": "low"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "hm"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Calling."}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
            {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin"},
            {"type": "function_call_output", "call_id": "c1", "output": "Cold"},
            {"type": "custom_tool_call_output", "call_id": "c2", "output": "ok"},
        ]), model="llama3")
    out = tr.body
    assert tr.path == "/v1/chat/completions"
    assert out["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Rules."},
        {"role": "user", "content": [{"type": "text", "text": "Look"},
                                     {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "low"}}]},
        {"role": "assistant", "content": "Calling.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "c2", "type": "function", "function": {"name": "apply_patch", "arguments": '{"input": "*** Begin"}'}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "Cold"},
        {"role": "tool", "tool_call_id": "c2", "content": "ok"},
    ]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert out["parallel_tool_calls"] is False and out["tools"][1]["function"]["parameters"]["required"] == ["input"]
    assert out["response_format"] == {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}
    assert out["reasoning_effort"] == "high" and out["max_tokens"] == 200 and out["temperature"] == 0.3
    assert out["stream_options"] == {"include_usage": True}


def test_response_with_reasoning_text_and_calls() -> None:
    _, ctx = translate(PAIR, body(tools=[WEATHER, PATCH]), model="llama3")
    out = PAIR.response({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "llama3",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Sure.", "reasoning_content": "Think first.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
                {"id": "call_2", "type": "function", "function": {"name": "apply_patch", "arguments": '{"input":"P"}'}},
            ]}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29,
                  "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 3}},
    }, ctx)
    resp = sdk_response(out)
    assert [i.type for i in resp.output] == ["reasoning", "message", "function_call", "custom_tool_call"]
    assert out["output"][0]["content"] == [{"type": "reasoning_text", "text": "Think first."}]
    assert resp.output_text == "Sure." and out["output"][3]["input"] == "P"
    assert out["usage"]["input_tokens"] == 20 and out["usage"]["input_tokens_details"]["cached_tokens"] == 4
    assert out["usage"]["output_tokens_details"]["reasoning_tokens"] == 3


@pytest.mark.parametrize(("finish", "status"), [("length", "incomplete"), ("stop", "completed"),
                                                ("content_filter", "incomplete")])
def test_finish_reasons(finish: str, status: str) -> None:
    _, ctx = translate(PAIR, body(), model="llama3")
    out = PAIR.response({"id": "x", "choices": [{"finish_reason": finish, "message": {"content": "a"}}]}, ctx)
    assert sdk_response(out).status == status


def test_bad_upstream_body() -> None:
    _, ctx = translate(PAIR, body(), model="llama3")
    with pytest.raises(UpstreamFormatError):
        PAIR.response({"id": "x", "choices": []}, ctx)


def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[str, dict[str, Any]]:
    return ("message", {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "llama3",
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def test_stream_with_reasoning_text_and_interleaved_parallel_calls() -> None:
    _, ctx = translate(PAIR, body(stream=True, tools=[WEATHER, PATCH]), model="llama3")
    events = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning": "Thinking"}), chunk({"reasoning": " more."}),
        chunk({"content": "Calling"}), chunk({"content": " tools."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "apply_patch", "arguments": '{"inp'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": 'ut":"P1"}'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
        chunk({}, "tool_calls"),
        ("message", {"id": "chatcmpl-9", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}),
        (DONE_EVENT, {}),
    ]
    evs, st = run_stream(PAIR, ctx, events)
    types = [e["type"] for e in evs]
    assert "response.reasoning_text.delta" in types and types[-1] == "response.completed"
    final = evs[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["reasoning", "message", "function_call", "custom_tool_call"]
    assert json.loads(final["output"][2]["arguments"]) == {"city": "Oslo"}
    assert final["output"][3]["input"] == "P1"
    assert final["usage"]["input_tokens"] == 5 and final["usage"]["output_tokens"] == 7
    assert st.response == final


def test_stream_without_done_still_ends_after_a_finish_reason() -> None:
    _, ctx = translate(PAIR, body(stream=True), model="llama3")
    evs, _ = run_stream(PAIR, ctx, [chunk({"content": "Hello"}), chunk({}, "length")])
    assert evs[-1]["type"] == "response.incomplete"
    _, ctx2 = translate(PAIR, body(stream=True), model="llama3")
    st = PAIR.stream(ctx2)
    st.feed(*chunk({"content": "cut"}))
    assert st.finish() == []  # no finish_reason: nothing honest to add


def test_stream_and_whole_agree() -> None:
    _, ctx = translate(PAIR, body(stream=True, tools=[WEATHER]), model="llama3")
    evs, _ = run_stream(PAIR, ctx, [
        chunk({"content": "Hi"}),
        chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "get_weather", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"), (DONE_EVENT, {})])
    _, ctx2 = translate(PAIR, body(tools=[WEATHER]), model="llama3")
    whole = PAIR.response({"id": "c", "choices": [{"finish_reason": "tool_calls", "message": {
        "content": "Hi", "tool_calls": [{"id": "c", "function": {"name": "get_weather", "arguments": "{}"}}]}}]}, ctx2)
    assert without_ids(evs[-1]["response"]["output"]) == without_ids(whole["output"])


def test_unhashable_and_missing_values_are_clear_errors_not_crashes() -> None:
    from iron_tui.core.dialects.base import TranslationError

    for bad in ({"tools": [{"type": []}]}, {"input": [{"role": ["user"], "content": "x"}]},
                {"reasoning": {"effort": ["high"]}}, {"include": [["x"]]},
                {"input": [{"type": {"a": 1}}]}):
        with pytest.raises(TranslationError):
            translate(PAIR, body(**bad), model="llama3")
    _, ctx = translate(PAIR, body(stream=True, tools=[WEATHER]), model="llama3")
    st = PAIR.stream(ctx)
    with pytest.raises(UpstreamFormatError):
        st.feed(*chunk({"tool_calls": [{"index": [0], "function": {"name": "get_weather"}}]}))
    # A server that leaves the index out: the call with an id starts an item, pieces without one join it.
    _, ctx = translate(PAIR, body(stream=True, tools=[WEATHER]), model="llama3")
    evs, _ = run_stream(PAIR, ctx, [
        chunk({"tool_calls": [{"id": "c1", "function": {"name": "get_weather", "arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"function": {"arguments": 'ty":"Oslo"}'}}]}),
        chunk({}, "tool_calls"), (DONE_EVENT, {})])
    assert json.loads(evs[-1]["response"]["output"][0]["arguments"]) == {"city": "Oslo"}

"""Fuzz: every translator and the SSE parser answer ANY input with a result or their own error type.

Pairs come from the registry (`registry.PAIRS`: a pair is held to this as soon as it is registered). For each: `request` → Translated or TranslationError; `response` →
dict or UpstreamFormatError; a stream fed any event sequence → frames or UpstreamFormatError; results
always serialisable. The SSE parser never raises and gives the same events however the bytes are split.

Inputs are JSON values built from the dialects' own vocabulary (keys and type names), so they reach deep
into the translators, not just their first type check. Fixed seed, CI-sized; `scripts/fuzz_translators.py`
runs the same properties for longer (IRON_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from iron_tui.core.dialects import registry
from iron_tui.core.dialects.base import (
    DONE_EVENT,
    Pair,
    RequestContext,
    TranslationError,
    UpstreamFormatError,
)
from iron_tui.core.json_bytes import dumps
from iron_tui.core.proxy.sse import SSEParser

EXAMPLES = int(os.environ.get("IRON_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=os.environ.get("IRON_FUZZ_RANDOM") != "1",
                suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate, Phase.shrink))


PAIRS: list[Pair] = list(registry.PAIRS.values())
IDS = [f"{p.client}->{p.provider}" for p in PAIRS]

KEYS = ["type", "role", "content", "text", "messages", "model", "system", "tools", "tool_choice", "tool_calls",
        "function", "arguments", "name", "id", "input", "index", "delta", "usage", "choices", "message",
        "content_block", "finish_reason", "stop_reason", "max_tokens", "max_completion_tokens", "stream",
        "tool_use_id", "tool_call_id", "source", "data", "media_type", "url", "image_url", "thinking",
        "signature", "thinking_blocks", "reasoning_content", "reasoning_effort", "reasoning", "partial_json",
        "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "prompt_tokens_details",
        "cached_tokens", "error", "is_error", "cache_control", "metadata", "user_id", "stop_sequences",
        "temperature", "top_p", "input_schema", "parameters", "output", "output_index", "item", "item_id",
        "response", "instructions", "call_id", "status", "output_config", "response_format", "effort",
        "previous_response_id", "store", "include", "text_format", "format", "schema", "budget_tokens",
        "refusal", "n", "logprobs", "stop", "stream_options", "include_usage", "parallel_tool_calls",
        "disable_parallel_tool_use", "summary", "encrypted_content", "file", "file_data", "title"]
WORDS = ["user", "assistant", "system", "developer", "tool", "text", "image", "tool_use", "tool_result",
         "thinking", "redacted_thinking", "function", "auto", "any", "none", "required", "enabled", "adaptive",
         "base64", "url", "image/png", "message", "message_start", "content_block_start",
         "content_block_delta", "content_block_stop", "message_delta", "message_stop", "text_delta",
         "input_json_delta", "thinking_delta", "signature_delta", "end_turn", "tool_calls", "stop", "length",
         "function_call", "function_call_output", "input_text", "output_text", "input_image", "reasoning",
         "json_schema", "low", "high", "data:image/png;base64,AAAA", "https://x.test/a.png", "{", '{"a":1}',
         "[1]", "", " ", "gpt-4o", "claude-sonnet-4-6", "document", "application/pdf", "server_tool_use",
         "web_search_20250305", "custom", "response.created", "response.output_text.delta", "chat.completion"]

scalars = (st.none() | st.booleans() | st.integers(-3, 70_000) | st.sampled_from([1e308, -0.5, 0.5])
           | st.sampled_from(WORDS) | st.text(max_size=6))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3),
                                                              inner, max_size=6),
    max_leaves=16,
)
objects = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)
EVENTS = ["message", "", DONE_EVENT, "message_start", "content_block_start", "content_block_delta",
          "content_block_stop", "message_delta", "message_stop", "ping", "error", "response.created",
          "response.output_item.added", "response.output_text.delta", "response.completed"]


def ctx(stream: bool, previous: Any = None) -> RequestContext:
    n = iter(range(10**6))
    return RequestContext(model="gpt-4o", client_model="gpt-4o", stream=stream, created=1, max_output_tokens=4096,
                          previous_items=previous if isinstance(previous, list) else None,
                          new_id=lambda prefix: f"{prefix}_{next(n)}")


MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", "developer"]),
                                 "content": json_values},
                                optional={"tool_calls": json_values, "tool_call_id": json_values,
                                          "thinking_blocks": json_values})
REQUEST = st.fixed_dictionaries(
    {"model": st.just("m"), "messages": st.lists(MESSAGE | objects, max_size=4)},
    optional={"input": json_values, "system": json_values, "tools": st.lists(objects, max_size=2),
              "stream": st.booleans(), "max_tokens": json_values, "tool_choice": json_values,
              "thinking": json_values, "reasoning_effort": json_values, "output_config": json_values,
              "metadata": json_values, "reasoning": json_values, "text": json_values},
)


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
@FUZZ
@given(body=REQUEST, previous=st.none() | st.lists(objects, max_size=3))
def test_request_translation_never_crashes(pair: Pair, body: dict[str, Any], previous: Any) -> None:
    try:
        tr = pair.request(body, ctx(body.get("stream") is True, previous))
    except TranslationError as exc:
        assert isinstance(exc.message, str) and exc.message
        return
    dumps(tr.body)
    assert tr.path.startswith("/")


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
@FUZZ
@given(body=objects | json_values)
def test_response_translation_never_crashes(pair: Pair, body: Any) -> None:
    try:
        out = pair.response(body, ctx(False))
    except UpstreamFormatError as exc:
        assert exc.message
        return
    dumps(out)


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
@FUZZ
@given(events=st.lists(st.tuples(st.sampled_from(EVENTS), objects), max_size=8))
def test_stream_translation_never_crashes(pair: Pair, events: list[tuple[str, dict[str, Any]]]) -> None:
    stream = pair.stream(ctx(True))
    try:
        for name, data in events:
            frames = stream.feed(name, data)
            assert all(isinstance(f, bytes) and f.endswith(b"\n\n") for f in frames)
        if not stream.done:
            assert all(isinstance(f, bytes) for f in stream.finish())
    except UpstreamFormatError as exc:
        assert exc.message


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_deeply_nested_tool_arguments_are_an_error_or_dropped_never_a_crash(pair: Pair) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    nested: Any = {}
    for _ in range(2_000):
        nested = {"a": nested}
    bodies = [
        {"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": deep}}]},
            {"role": "tool", "tool_call_id": "c", "content": "r"}]},
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [
            {"type": "tool_use", "id": "c", "name": "f", "input": nested}]}]},
        {"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": deep}]},
        {"model": "m", "messages": [{"role": "user", "content": "x"}],
         "tools": [{"name": "f", "input_schema": nested, "type": "function", "function": {"name": "f",
                                                                                        "parameters": nested}}]},
    ]
    for body in bodies:
        try:
            dumps(pair.request(body, ctx(False)).body)
        except TranslationError:
            pass
    for response in ({"choices": [{"message": {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": deep}}]}}]},
                     {"content": [{"type": "tool_use", "id": "c", "name": "f", "input": nested}]},
                     {"output": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": deep}]}):
        try:
            dumps(pair.response(response, ctx(False)))
        except UpstreamFormatError:
            pass


def _events(parser: SSEParser, pieces: list[bytes]) -> list[tuple[str, str]]:
    out = [(e, d) for piece in pieces for e, d, _ in parser.feed(piece)]
    return out + [(e, d) for e, d, _ in parser.flush()]


sse_bytes = st.lists(st.sampled_from([b"event: ", b"data: ", b"id: 1", b": ping", b"\n", b"\r\n", b"\r", b"\n\n",
                                      b"message_start", b'{"a":1}', b"[DONE]", b"\xc3\xa9", b"\xe2\x82", b"\xff",
                                      b"event:x", b"data:y", b" "]) | st.binary(max_size=4),
                     max_size=40).map(b"".join)


@FUZZ
@given(raw=sse_bytes, cuts=st.lists(st.integers(0, 400), max_size=8))
def test_sse_parser_never_raises_and_splits_do_not_change_events(raw: bytes, cuts: list[int]) -> None:
    whole = _events(SSEParser(), [raw])
    points = sorted({c for c in cuts if c <= len(raw)})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert _events(SSEParser(), pieces) == whole


_NOT_STRINGS = [[], {}, 1, 1.5, True, ["text"], {"a": 1}]


def _typed_somewhere(t: Any) -> list[dict[str, Any]]:
    """Request bodies with `t` as the `type` of each kind of thing a translator looks a type up for."""
    hi = [{"role": "user", "content": "hi"}]
    return [
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": t, "text": "x"}]}]},
        {"model": "m", "max_tokens": 5, "messages": [*hi, {"role": "assistant", "content": [{"type": t}]}]},
        {"model": "m", "max_tokens": 5, "messages": hi, "tools": [{"type": t, "name": "f"}]},
        {"model": "m", "max_tokens": 5, "messages": hi, "tool_choice": {"type": t}},
        {"model": "m", "max_tokens": 5, "messages": hi, "thinking": {"type": t, "budget_tokens": 2000}},
        {"model": "m", "messages": hi, "response_format": {"type": t}},
        {"model": "m", "messages": hi, "tools": [{"type": t, "function": {"name": "f"}}]},
        {"model": "m", "messages": [*hi, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a", "type": t, "function": {"name": "f", "arguments": "{}"}}]}]},
        {"model": "m", "input": [{"type": t, "role": "user", "content": "hi"}]},
        {"model": "m", "input": [{"role": "user", "content": [{"type": t, "text": "x"}]}]},
        {"model": "m", "input": "hi", "tools": [{"type": t, "name": "f"}]},
        {"model": "m", "input": "hi", "text": {"format": {"type": t}}},
        {"model": "m", "input": "hi", "tool_choice": {"type": t}},
        {"model": "m", "input": "hi", "reasoning": {"effort": t}},
    ]


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_a_type_that_is_not_a_string_is_a_translation_error_never_a_crash(pair: Pair) -> None:
    # Found by the end-to-end fuzz (test_proxy_fuzz.py): `{"type": []}` in a Messages content block sent to
    # an OpenAI model was looked up in a set and raised TypeError (a 500).
    for t in _NOT_STRINGS:
        for body in _typed_somewhere(t):
            for stream in (False, True):
                try:
                    out = pair.request(body, ctx(stream))
                except TranslationError as exc:
                    assert exc.message
                else:
                    dumps(out.body)

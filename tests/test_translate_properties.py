"""Property tests: translated requests are valid Anthropic requests; streamed and non-streamed
translations of the same Anthropic message tell an OpenAI client the same thing."""

from __future__ import annotations

import base64
import collections.abc
import functools
import itertools
import json
from typing import Any

import anthropic.types
import pydantic
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from iron_tui.core.translate import (
    AnthropicStreamTranslator,
    anthropic_to_openai_response,
    openai_to_anthropic_request,
)

SETTINGS = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
ANTHROPIC_REQUEST = pydantic.TypeAdapter(MessageCreateParamsNonStreaming)
CREATED = 1_700_000_000


@functools.cache
def param_adapter(model_name: str) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(getattr(anthropic.types, model_name + "Param"))


def materialize(value: Any) -> Any:
    """Plain data from a pydantic-validated value, dropping fields the SDK types do not know.

    The SDK TypedDicts ignore unknown keys and declare `Iterable` fields (validated lazily), so the
    result is walked in full and the caller compares it with the input: a dropped key shows up as a
    difference. Content unions also accept response models (TextBlock…); such a value is re-checked
    against its request twin (TextBlockParam…), which knows request-only fields like cache_control.
    """
    if isinstance(value, pydantic.BaseModel):
        raw = {name: getattr(value, name) for name in value.model_fields_set} | (value.model_extra or {})
        return materialize(param_adapter(type(value).__name__).validate_python(raw))
    if isinstance(value, dict):
        return {k: materialize(v) for k, v in value.items()}
    if isinstance(value, list | tuple | collections.abc.Iterator):
        return [materialize(v) for v in value]
    return value


# -- property 1: OpenAI request → valid Anthropic request ---------------------------------------------------

texts = st.sampled_from(["", " ", "\n", "hello ", "  trailing  ", "Grüße 👋"]) | st.text(max_size=8)
cache = st.none() | st.just({"type": "ephemeral"})
names = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=10)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=3)


def with_cache(part: dict[str, Any], cache_control: dict[str, Any] | None) -> dict[str, Any]:
    return {**part, "cache_control": cache_control} if cache_control else part


@st.composite
def text_parts(draw: st.DrawFn) -> dict[str, Any]:
    return with_cache({"type": "text", "text": draw(texts)}, draw(cache))


@st.composite
def image_parts(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        media = draw(st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"]))
        data = base64.b64encode(draw(st.binary(min_size=1, max_size=12))).decode()
        url = f"data:{media};base64,{data}"
    else:
        url = "https://img.test/" + draw(names) + ".png"
    return {"type": "image_url", "image_url": {"url": url, "detail": draw(st.sampled_from(["auto", "low"]))}}


def content(parts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    return texts | st.lists(parts, max_size=2)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    call_number = 0
    for _ in range(draw(st.integers(1, 5))):
        step = draw(st.sampled_from(["system", "developer", "user", "user", "assistant", "tools"]))
        if step in ("system", "developer"):
            messages.append({"role": step, "content": draw(content(text_parts()))})
        elif step == "user":
            messages.append(
                with_cache(
                    {"role": "user", "content": draw(content(text_parts() | image_parts()))}, draw(cache)
                )
            )
        elif step == "assistant":
            messages.append({"role": "assistant", "content": draw(st.none() | content(text_parts()))})
        else:
            calls = []
            for _ in range(draw(st.integers(1, 2))):
                call_number += 1
                arguments = draw(json_objects.map(json.dumps) | st.sampled_from(["", "{bad", "[1]"]))
                calls.append(
                    {
                        "id": f"call_{call_number}",
                        "type": "function",
                        "function": {"name": draw(names), "arguments": arguments},
                    }
                )
            messages.append({"role": "assistant", "content": draw(st.none() | texts), "tool_calls": calls})
            results = [
                {"role": "tool", "tool_call_id": c["id"], "content": draw(content(text_parts()))}
                for c in calls
            ]
            messages.extend(draw(st.permutations(results)))
            if draw(st.booleans()):
                messages.append({"role": "user", "content": draw(texts)})
    # Anthropic needs one non-empty message (tool results always are one); without a final user
    # message the conversation may end in an assistant prefill.
    if call_number == 0 or draw(st.booleans()):
        messages.append({"role": "user", "content": "go"})
    return messages


@st.composite
def openai_requests(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "claude-sonnet-4-5", "messages": draw(conversations())}
    optional = {
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "max_tokens": st.integers(1, 64_000),
        "max_completion_tokens": st.integers(1, 64_000),
        "stop": texts | st.lists(texts, max_size=4),
        "user": names,
        "seed": st.integers(0, 100),
        "stream": st.booleans(),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            body[key] = draw(strategy)
    if draw(st.booleans()):
        tool_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
        body["tools"] = [
            with_cache(
                {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": draw(texts),
                        "parameters": draw(
                            st.none() | st.just({"type": "object", "properties": {"q": {"type": "string"}}})
                        ),
                    },
                },
                draw(cache),
            )
            for name in tool_names
        ]
        body["tool_choice"] = draw(
            st.sampled_from(
                [None, "auto", "required", "none", {"type": "function", "function": {"name": tool_names[0]}}]
            )
        )
        body["parallel_tool_calls"] = draw(st.sampled_from([None, True, False]))
    return body


@SETTINGS
@given(openai_requests())
def test_translated_request_is_a_valid_anthropic_request(request: dict[str, Any]) -> None:
    translated = openai_to_anthropic_request(request)
    body = translated.body
    checked = dict(body)
    checked.pop("stream", None)  # validated against the non-streaming type, which has stream: false
    # SDK 2.x types follow API version 2026-10-21, which removed sampling parameters; the proxy speaks
    # 2023-06-01, where they exist. Their values are checked below instead.
    for name in ("temperature", "top_p", "top_k"):
        checked.pop(name, None)
    assert materialize(ANTHROPIC_REQUEST.validate_python(checked)) == checked

    turns = body["messages"]
    assert turns[0]["role"] == "user"
    assert all(a["role"] != b["role"] for a, b in itertools.pairwise(turns))
    for i, turn in enumerate(turns):
        blocks = turn["content"]
        assert blocks, "Anthropic rejects empty messages"
        assert all(b["text"].strip() for b in blocks if b["type"] == "text"), "Anthropic rejects blank text"
        result_ids = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
        if result_ids:
            assert turn["role"] == "user"
            assert [b["type"] for b in blocks[: len(result_ids)]] == ["tool_result"] * len(result_ids)
            previous = turns[i - 1]
            assert previous["role"] == "assistant"
            assert set(result_ids) == {b["id"] for b in previous["content"] if b["type"] == "tool_use"}
    if turns[-1]["role"] == "assistant" and turns[-1]["content"][-1]["type"] == "text":
        assert turns[-1]["content"][-1]["text"] == turns[-1]["content"][-1]["text"].rstrip()

    if "temperature" in body:
        assert 0 <= body["temperature"] <= 1
        assert "top_p" not in body
    elif "top_p" in request:
        assert body["top_p"] == request["top_p"]
    assert all(s.strip() for s in body.get("stop_sequences", []))
    expected_max = request.get("max_completion_tokens", request.get("max_tokens", 4096))
    assert body["max_tokens"] == expected_max
    system = body.get("system")
    if isinstance(system, list):
        assert any("cache_control" in b for b in system)
        assert all(b["text"].strip() for b in system)


# -- property 2: streaming and non-streaming responses agree ------------------------------------------------

STOP_REASONS = [
    None,
    "end_turn",
    "stop_sequence",
    "max_tokens",
    "tool_use",
    "refusal",
    "model_context_window_exceeded",
    "pause_turn",
]
token_counts = st.integers(0, 100_000)


@st.composite
def anthropic_messages(draw: st.DrawFn) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    for i in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            blocks.append({"type": "text", "text": draw(texts), "citations": None})
        else:
            blocks.append(
                {"type": "tool_use", "id": f"toolu_{i:02d}", "name": draw(names), "input": draw(json_objects)}
            )
    usage: dict[str, Any] = {"input_tokens": draw(token_counts), "output_tokens": draw(token_counts)}
    for field in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        usage[field] = draw(st.none() | token_counts)
    return {
        "id": "msg_" + draw(st.text(alphabet="abcXYZ0189", min_size=8, max_size=8)),
        "type": "message",
        "role": "assistant",
        "model": draw(st.sampled_from(["claude-sonnet-4-5-20250929", "claude-haiku-4-5"])),
        "content": blocks,
        "stop_reason": draw(st.sampled_from(STOP_REASONS)),
        "stop_sequence": None,
        "usage": usage,
    }


def pieces(s: str, size: int) -> list[str]:
    return [s[i : i + size] for i in range(0, len(s), size)] or [""]


def message_to_events(message: dict[str, Any], piece: int = 4) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events Anthropic sends for `message` when streaming (text and tool_use blocks)."""
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": min(1, usage["output_tokens"])}
    shell = {**message, "content": [], "stop_reason": None, "usage": start_usage}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": shell}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"], piece)]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            raw = json.dumps(block["input"]) if block["input"] else ""
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces(raw, piece)]
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
        )
        events.extend(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


@SETTINGS
@given(anthropic_messages(), st.integers(2, 16), st.booleans())
def test_stream_and_non_stream_translations_agree(
    message: dict[str, Any], piece: int, include_usage: bool
) -> None:
    expected = ChatCompletion.model_validate(anthropic_to_openai_response(message, created=CREATED))

    translator = AnthropicStreamTranslator(created=CREATED, include_usage=include_usage)
    chunks = [c for kind, data in message_to_events(message, piece) for c in translator.feed(kind, data)]
    assert translator.done and translator.error is None

    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()  # the OpenAI SDK's own accumulator
    for raw in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(raw))
        assert (raw["id"], raw["created"], raw["model"]) == (expected.id, CREATED, expected.model)
        assert ("usage" in raw) is include_usage
    # The snapshot, not get_final_completion(): the latter raises on finish_reason length/content_filter.
    streamed = state.current_completion_snapshot

    got, want = streamed.choices[0], expected.choices[0]
    assert (got.message.content or None) == (want.message.content or None)
    assert got.finish_reason == want.finish_reason == translator.finish_reason
    got_calls = [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in got.message.tool_calls or []
    ]
    want_calls = [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in want.message.tool_calls or []
    ]
    assert got_calls == want_calls

    # Tool-call indexes count tool calls from 0, whatever the Anthropic block index was.
    indexes = [
        tc["index"]
        for raw in chunks
        if raw["choices"]
        for tc in raw["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert sorted(set(indexes)) == list(range(len(want_calls)))

    if include_usage:
        assert chunks[-1]["choices"] == [] and all(c["usage"] is None for c in chunks[:-1])
        assert streamed.usage == expected.usage
    else:
        assert streamed.usage is None

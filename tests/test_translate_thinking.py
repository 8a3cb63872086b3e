"""Extended thinking through the OpenAI chat → Claude translation, both ways, and the fields Anthropic's own
OpenAI layer accepts and ignores."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming

from iron_tui.core.translate import (
    AnthropicStreamTranslator,
    TranslationError,
    anthropic_to_openai_response,
    openai_to_anthropic_request,
)
from tests.sdk_replay import openai_stream_snapshot

ANTHROPIC_REQUEST = pydantic.TypeAdapter(MessageCreateParamsNonStreaming)
USER = {"role": "user", "content": "What is 27 * 453?"}
TOOLS = [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}]


def translate(**fields: Any) -> tuple[dict[str, Any], list[str]]:
    tr = openai_to_anthropic_request({"model": "claude-sonnet-4-5", "messages": [USER], **fields})
    ANTHROPIC_REQUEST.validate_python(tr.body)
    return tr.body, tr.warnings


@pytest.mark.parametrize(("effort", "cap", "budget"), [
    ("low", 8000, 1024), ("medium", 8000, 4096), ("high", 8000, 6000), ("high", 64000, 16384),
    ("xhigh", 64000, 32768), ("low", 1400, 1024), ("medium", 1400, 1050),
])
def test_reasoning_effort_becomes_a_thinking_budget_below_max_tokens(effort: str, cap: int, budget: int) -> None:
    body, _ = translate(reasoning_effort=effort, max_completion_tokens=cap)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == cap and budget < cap


def test_without_a_client_cap_the_answer_keeps_its_room() -> None:
    body, _ = translate(reasoning_effort="high")
    assert body["thinking"]["budget_tokens"] == 16384 and body["max_tokens"] == 16384 + 4096


@pytest.mark.parametrize("effort", ["none", "minimal"])
def test_no_thinking_efforts(effort: str) -> None:
    assert "thinking" not in translate(reasoning_effort=effort)[0]


def test_a_cap_too_small_for_thinking_answers_without_it() -> None:
    body, warnings = translate(reasoning_effort="high", max_tokens=1000)
    assert "thinking" not in body and body["max_tokens"] == 1000
    assert any("minimum" in w for w in warnings)


def test_thinking_drops_what_anthropic_refuses_with_it() -> None:
    body, warnings = translate(reasoning_effort="medium", temperature=0.2, top_k=5)
    assert "thinking" in body and "temperature" not in body and "top_k" not in body
    assert any("temperature" in w for w in warnings)
    body, warnings = translate(reasoning_effort="medium", tools=TOOLS, tool_choice="required")
    assert "thinking" not in body and body["tool_choice"] == {"type": "any"}


def test_thinking_object_passes_through() -> None:
    body, _ = translate(thinking={"type": "enabled", "budget_tokens": 2048}, max_tokens=4096)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    with pytest.raises(TranslationError) as err:
        translate(thinking={"type": "sometimes"})
    assert err.value.param == "thinking"
    with pytest.raises(TranslationError) as err:
        translate(reasoning_effort="extreme")
    assert err.value.param == "reasoning_effort"


def test_multi_turn_tool_loop_keeps_thinking_signatures() -> None:
    """Claude thinks, calls a tool; the client sends the assistant message back as the openai SDK gives it
    (with reasoning_content and thinking_blocks) plus the tool result: the next request opens the
    assistant turn with the very same signed thinking blocks, as Anthropic requires."""
    reply = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "I should use the calculator.", "signature": "EqQBCkYIAx...sig"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy...opaque"},
            {"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {"expr": "27*453"}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 30},
    }
    message = anthropic_to_openai_response(reply, created=1)["choices"][0]["message"]
    assert message["reasoning_content"] == "I should use the calculator."
    body, _ = translate(reasoning_effort="low", tools=TOOLS, messages=[
        USER, message, {"role": "tool", "tool_call_id": "toolu_1", "content": "12231"}])
    assistant = body["messages"][1]["content"]
    assert assistant[:2] == reply["content"][:2]  # thinking with its signature, redacted kept opaque
    assert assistant[2]["type"] == "tool_use"
    assert body["messages"][2]["content"][0]["type"] == "tool_result"


def test_reasoning_content_alone_is_not_sent_back_and_bad_blocks_are_refused() -> None:
    body, _ = translate(messages=[USER, {"role": "assistant", "content": "1", "reasoning_content": "hm"}, USER])
    assert body["messages"][1]["content"] == [{"type": "text", "text": "1"}]
    with pytest.raises(TranslationError) as err:
        translate(messages=[USER, {"role": "assistant", "content": "1",
                                   "thinking_blocks": [{"type": "thinking", "thinking": "x"}]}])
    assert err.value.param == "messages[1].thinking_blocks[0]"


def test_streamed_thinking_reaches_the_openai_sdk_accumulator_whole() -> None:
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "model": "claude-sonnet-4-5",
                                                                "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "Let me "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "think."}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "signature_delta", "signature": "sig-A"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "redacted_thinking", "data": "opaque"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("content_block_start", {"type": "content_block_start", "index": 2,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2,
                                 "delta": {"type": "text_delta", "text": "12231"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 20}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    tr = AnthropicStreamTranslator(created=1, include_usage=False)
    chunks = [c for name, data in events for c in tr.feed(name, data)]
    message = openai_stream_snapshot(chunks).choices[0].message
    extra = message.model_extra or {}
    assert message.content == "12231" and extra["reasoning_content"] == "Let me think."
    assert extra["thinking_blocks"] == [
        {"index": 0, "type": "thinking", "thinking": "Let me think.", "signature": "sig-A"},
        {"index": 1, "type": "redacted_thinking", "data": "opaque"},
    ]
    # ... and that accumulated message is accepted back on the next request (the index is dropped).
    body, _ = translate(messages=[USER, message.model_dump(exclude_none=True), USER])
    assert body["messages"][1]["content"][:2] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig-A"},
        {"type": "redacted_thinking", "data": "opaque"}]


def test_fields_anthropics_openai_layer_ignores_are_accepted_and_ignored() -> None:
    body, warnings = translate(logprobs=True, top_logprobs=2, logit_bias={"1": 5}, audio={"voice": "alloy"},
                               modalities=["text", "audio"])
    assert not {"logprobs", "top_logprobs", "logit_bias", "audio", "modalities"} & body.keys()
    assert any("ignored" in w and "logprobs" in w for w in warnings)
    with pytest.raises(TranslationError):
        translate(n=2)

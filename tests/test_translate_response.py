"""Golden tests: Anthropic message → OpenAI chat.completion, usage, and error mappings."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from iron_tui.core.translate import (
    TranslationError,
    anthropic_error_to_openai,
    anthropic_stream_error_status,
    anthropic_to_openai_response,
    anthropic_usage_to_openai,
    finish_reason_for,
    openai_error_type_for_status,
)

CREATED = 1_700_000_000


def message(
    content: list[dict[str, Any]], stop_reason: str | None = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        "id": "msg_01ABC",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


STOP_REASONS = [
    ("end_turn", "stop"),
    ("stop_sequence", "stop"),
    ("max_tokens", "length"),
    ("tool_use", "tool_calls"),
    ("refusal", "content_filter"),
    ("model_context_window_exceeded", "length"),
    ("pause_turn", "stop"),
    (None, "stop"),
    ("some_future_reason", "stop"),
]


@pytest.mark.parametrize(("stop_reason", "finish_reason"), STOP_REASONS)
def test_every_stop_reason_maps(stop_reason: str | None, finish_reason: str) -> None:
    out = anthropic_to_openai_response(message([{"type": "text", "text": "x"}], stop_reason), created=CREATED)
    assert out["choices"][0]["finish_reason"] == finish_reason
    assert finish_reason_for(stop_reason) == finish_reason
    ChatCompletion.model_validate(out)


def test_missing_stop_reason_key_maps_to_stop() -> None:
    msg = message([{"type": "text", "text": "x"}])
    del msg["stop_reason"]
    assert anthropic_to_openai_response(msg, created=CREATED)["choices"][0]["finish_reason"] == "stop"


def test_golden_text_and_tool_use_response() -> None:
    msg = message(
        [
            {"type": "thinking", "thinking": "let me think", "signature": "sig"},
            {"type": "text", "text": "Let me check ", "citations": None},
            {"type": "text", "text": "the weather."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Zürich"}},
            {"type": "tool_use", "id": "toolu_02", "name": "now", "input": {}},
        ],
        "tool_use",
        cache_creation_input_tokens=100,
        cache_read_input_tokens=1000,
    )
    out = anthropic_to_openai_response(msg, created=CREATED)
    assert out == {
        "id": "chatcmpl-msg_01ABC",
        "object": "chat.completion",
        "created": CREATED,
        "model": "claude-sonnet-4-5-20250929",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check the weather.",
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "toolu_01",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Zürich"}'},
                        },
                        {
                            "id": "toolu_02",
                            "type": "function",
                            "function": {"name": "now", "arguments": "{}"},
                        },
                    ],
                    # Thinking, with its signature, in the fields LiteLLM/DeepSeek/LangChain read.
                    "reasoning_content": "let me think",
                    "thinking_blocks": [{"type": "thinking", "thinking": "let me think", "signature": "sig"}],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 1110,
            "completion_tokens": 5,
            "total_tokens": 1115,
            "prompt_tokens_details": {"cached_tokens": 1000},
        },
    }
    parsed = ChatCompletion.model_validate(out)
    assert parsed.choices[0].message.tool_calls is not None


def test_tool_use_only_reply_has_null_content() -> None:
    out = anthropic_to_openai_response(
        message([{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}], "tool_use"),
        created=CREATED,
    )
    choice = out["choices"][0]
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert choice["finish_reason"] == "tool_calls"
    ChatCompletion.model_validate(out)


def test_text_only_reply_has_no_tool_calls_key() -> None:
    out = anthropic_to_openai_response(message([{"type": "text", "text": "Hello"}]), created=CREATED)
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "Hello", "refusal": None}


def test_thinking_only_reply_has_null_content() -> None:
    out = anthropic_to_openai_response(
        message([{"type": "redacted_thinking", "data": "xx"}, {"type": "thinking", "thinking": "t"}]),
        created=CREATED,
    )
    assert out["choices"][0]["message"]["content"] is None


USAGE_ROWS = [
    ({"input_tokens": 10, "output_tokens": 5}, (10, 5, 15, 0)),
    ({"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 20}, (30, 5, 35, 0)),
    ({"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 300}, (310, 5, 315, 300)),
    (
        {
            "input_tokens": 3,
            "output_tokens": 7,
            "cache_creation_input_tokens": 40,
            "cache_read_input_tokens": 50,
        },
        (93, 7, 100, 50),
    ),
    (
        {
            "input_tokens": 3,
            "output_tokens": 7,
            "cache_creation_input_tokens": None,
            "cache_read_input_tokens": None,
        },
        (3, 7, 10, 0),
    ),
    ({}, (0, 0, 0, 0)),
]


@pytest.mark.parametrize(("usage", "expected"), USAGE_ROWS)
def test_usage_counts_cache_tokens_into_prompt(
    usage: dict[str, Any], expected: tuple[int, int, int, int]
) -> None:
    prompt, completion, total, cached = expected
    assert anthropic_usage_to_openai(usage) == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


# -- errors ------------------------------------------------------------------------------------------------

STATUS_TYPES = [
    (400, "invalid_request_error"),
    (401, "authentication_error"),
    (403, "permission_error"),
    (404, "not_found_error"),
    (413, "request_too_large"),
    (429, "rate_limit_error"),
    (500, "api_error"),
    (529, "overloaded_error"),
    (422, "invalid_request_error"),
    (503, "api_error"),
]


@pytest.mark.parametrize(("status", "error_type"), STATUS_TYPES)
def test_status_maps_to_openai_error_type(status: int, error_type: str) -> None:
    assert openai_error_type_for_status(status) == error_type


@pytest.mark.parametrize(("status", "error_type"), STATUS_TYPES[:8])
def test_anthropic_error_body_becomes_openai_error(status: int, error_type: str) -> None:
    body = {
        "type": "error",
        "error": {"type": error_type, "message": f"boom {status}"},
        "request_id": "req_1",
    }
    assert anthropic_error_to_openai(status, body) == {
        "error": {"message": f"boom {status}", "type": error_type, "param": None, "code": error_type}
    }


def test_error_without_json_body_uses_fallback_message() -> None:
    assert anthropic_error_to_openai(502, None, fallback_message="upstream unreachable") == {
        "error": {"message": "upstream unreachable", "type": "api_error", "param": None, "code": None}
    }
    assert (
        anthropic_error_to_openai(500, {"unexpected": True})["error"]["message"]
        == "Anthropic API returned HTTP 500"
    )


def test_status_outside_the_table_keeps_anthropic_error_type() -> None:
    body = {"type": "error", "error": {"type": "billing_error", "message": "no credit"}}
    assert anthropic_error_to_openai(402, body)["error"]["type"] == "billing_error"


def test_bare_stream_error_object_is_accepted() -> None:
    err = {"type": "overloaded_error", "message": "Overloaded"}
    assert anthropic_error_to_openai(529, err)["error"] == {
        "message": "Overloaded",
        "type": "overloaded_error",
        "param": None,
        "code": "overloaded_error",
    }


@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        ("overloaded_error", 529),
        ("rate_limit_error", 429),
        ("api_error", 500),
        ("invalid_request_error", 400),
        ("authentication_error", 401),
        ("permission_error", 403),
        ("not_found_error", 404),
        ("request_too_large", 413),
        ("timeout_error", 504),
        ("billing_error", 402),
        ("mystery_error", 500),
    ],
)
def test_stream_error_event_status(error_type: str, status: int) -> None:
    assert anthropic_stream_error_status({"type": error_type, "message": "m"}) == status
    assert (
        anthropic_stream_error_status({"type": "error", "error": {"type": error_type, "message": "m"}})
        == status
    )


def test_translation_error_carries_its_fields() -> None:
    err = TranslationError("bad n", "n", "unsupported_parameter")
    assert (str(err), err.message, err.param, err.code) == ("bad n", "bad n", "n", "unsupported_parameter")

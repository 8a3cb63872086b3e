"""Anthropic Messages response → OpenAI `chat.completion` (non-streaming), plus shared usage/stop mappings.

`text` blocks → `content`, `tool_use` → `tool_calls`, `thinking` / `redacted_thinking` →
`reasoning_content` + `thinking_blocks` (thinking.py). Server-tool blocks (`server_tool_use`,
`web_search_tool_result`…) are left out of the OpenAI message; `citations` on text blocks are dropped
while the text is kept. A body that is not a message (content not a list, blocks of the wrong types)
is an UpstreamFormatError.
"""

from __future__ import annotations

from typing import Any

from iron_tui.core.bounded_json import dumps_text
from iron_tui.core.translate.errors import UpstreamFormatError
from iron_tui.core.translate.thinking import response_thinking_fields

__all__ = [
    "anthropic_to_openai_response",
    "anthropic_usage_to_openai",
    "finish_reason_for",
    "openai_id_for",
]

# reference/translation.md, "Response (non-stream)". Unknown future values fall back to "stop".
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
    "pause_turn": "stop",
}


def finish_reason_for(stop_reason: object) -> str:
    """OpenAI `finish_reason` for an Anthropic `stop_reason` (None or unknown → "stop")."""
    if isinstance(stop_reason, str):
        return FINISH_REASONS.get(stop_reason, "stop")
    return "stop"


def openai_id_for(anthropic_id: object) -> str:
    """`chatcmpl-` + the Anthropic message id, so a client's logs can be matched with Anthropic's."""
    return (
        f"chatcmpl-{anthropic_id}" if isinstance(anthropic_id, str) and anthropic_id else "chatcmpl-unknown"
    )


def _int(value: object) -> int:
    # Anthropic sends null for cache fields when caching is not involved.
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def anthropic_usage_to_openai(usage: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI usage from Anthropic usage.

    Anthropic's `input_tokens` excludes cached tokens, so the OpenAI prompt count adds cache writes and
    reads back in; `prompt_tokens_details.cached_tokens` is the cache-read part (what OpenAI calls cached).
    """
    if not isinstance(usage, dict):
        usage = {}
    cache_read = _int(usage.get("cache_read_input_tokens"))
    prompt = _int(usage.get("input_tokens")) + _int(usage.get("cache_creation_input_tokens")) + cache_read
    completion = _int(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }


def tool_arguments_json(tool_input: object) -> str:
    """The OpenAI `arguments` string for a tool_use `input` (compact JSON, non-ASCII kept readable)."""
    try:
        return dumps_text(tool_input if tool_input is not None else {})
    except ValueError as exc:
        raise UpstreamFormatError(f"a tool_use input cannot be serialised: {exc}") from None


def anthropic_to_openai_response(message: dict[str, Any], *, created: int) -> dict[str, Any]:
    """Build an OpenAI `chat.completion` dict from an Anthropic `message` response body.

    `content` is the concatenation of all text blocks, or None when there is none (a reply with only
    tool calls is valid). `created` comes from the caller's clock so the function stays pure.
    """
    if not isinstance(message, dict):
        raise UpstreamFormatError("the upstream response is not a JSON object")
    content = message.get("content")
    if content is None:
        content = []
    if not isinstance(content, list):
        raise UpstreamFormatError("the upstream message's content is not a list")
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            texts.append(text if isinstance(text, str) else "")
        elif kind == "tool_use":
            call_id, name = block.get("id"), block.get("name")
            tool_calls.append(
                {
                    "id": call_id if isinstance(call_id, str) else "",
                    "type": "function",
                    "function": {
                        "name": name if isinstance(name, str) else "",
                        "arguments": tool_arguments_json(block.get("input")),
                    },
                }
            )
        # server tool blocks: no OpenAI chat equivalent; skipped. Thinking: below.
    out_message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if tool_calls:
        out_message["tool_calls"] = tool_calls
    out_message.update(response_thinking_fields(content))
    return {
        "id": openai_id_for(message.get("id")),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model") if isinstance(message.get("model"), str) else "",
        "choices": [
            {
                "index": 0,
                "message": out_message,
                "finish_reason": finish_reason_for(message.get("stop_reason")),
                "logprobs": None,
            }
        ],
        "usage": anthropic_usage_to_openai(message.get("usage")),
    }

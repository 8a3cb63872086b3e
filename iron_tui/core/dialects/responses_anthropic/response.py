"""Anthropic Messages response → Responses `response` object (non-streaming), and the shared mappings.

Content blocks become output items in order: text → a `message` item (one per block), thinking and
redacted_thinking → a `reasoning` item whose `encrypted_content` carries the block verbatim (its summary
is the thinking text when the client asked for a summary), tool_use → `function_call`, or
`custom_tool_call` for the client's free-form tools. Server-tool blocks are not requested, so not expected.

Stop reasons: max_tokens and model_context_window_exceeded → status "incomplete" with reason
"max_output_tokens", refusal → "incomplete" with "content_filter", anything else → "completed".
Usage: `input_tokens` adds cache reads and writes back in (Anthropic counts them apart); reasoning tokens
are estimated from the thinking text (Anthropic does not count them separately).
"""

from __future__ import annotations

from typing import Any

from iron_tui.core.bounded_json import dumps_text
from iron_tui.core.dialects.base import RequestContext, UpstreamFormatError
from iron_tui.core.dialects.responses.output import (
    count_of,
    custom_call_item,
    custom_input_text,
    encode_reasoning,
    function_call_item,
    id_source,
    message_item,
    reasoning_item,
    response_object,
    state_of,
    text_of,
    usage_object,
)

__all__ = ["incomplete_reason", "thinking_block", "translate_response", "usage_of"]


def usage_of(usage: object, reasoning_chars: int) -> dict[str, Any]:
    u = usage if isinstance(usage, dict) else {}
    read, write = count_of(u.get("cache_read_input_tokens")), count_of(u.get("cache_creation_input_tokens"))
    output = count_of(u.get("output_tokens"))
    return usage_object(count_of(u.get("input_tokens")) + read + write, read, write, output,
                        (reasoning_chars + 3) // 4)


def incomplete_reason(stop_reason: object) -> str | None:
    if stop_reason in ("max_tokens", "model_context_window_exceeded"):
        return "max_output_tokens"
    if stop_reason == "refusal":
        return "content_filter"
    return None


def thinking_block(block: dict[str, Any]) -> dict[str, Any]:
    """The part of a thinking block Anthropic needs back, unchanged."""
    if block.get("type") == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data") if isinstance(block.get("data"), str) else ""}
    return {"type": "thinking", "thinking": block.get("thinking") if isinstance(block.get("thinking"), str) else "",
            "signature": block.get("signature") if isinstance(block.get("signature"), str) else ""}


def translate_response(message: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise UpstreamFormatError("Anthropic response is not a JSON object")
    content = message.get("content")
    if not isinstance(content, list):
        raise UpstreamFormatError("Anthropic response has no 'content' list")
    state = state_of(ctx)
    mid = message.get("id")
    ids = id_source(ctx, mid if isinstance(mid, str) else "")
    response_id = ids("resp")
    output: list[dict[str, Any]] = []
    reasoning_chars = 0
    for block in content:
        if not isinstance(block, dict):
            raise UpstreamFormatError("Anthropic content blocks must be objects")
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            output.append(message_item(ids("msg"), text if isinstance(text, str) else ""))
        elif kind in ("thinking", "redacted_thinking"):
            kept = thinking_block(block)
            thought = kept.get("thinking", "")
            reasoning_chars += len(thought)
            output.append(reasoning_item(ids("rs"), summary=thought if state.options.summary else None,
                                         encrypted=encode_reasoning([kept])))
        elif kind == "tool_use":
            wire, call_id = text_of(block.get("name")), text_of(block.get("id"))
            name, namespace = state.tools.client_name(wire)
            if state.tools.kind_of(wire) == "custom":
                output.append(custom_call_item(ids("ctc"), call_id, name, namespace,
                                               custom_input_text(block.get("input"))))
            else:
                args = block.get("input")
                try:
                    arguments = dumps_text(args if args is not None else {})
                except ValueError as exc:
                    raise UpstreamFormatError(f"a tool_use input cannot be serialised: {exc}") from None
                output.append(function_call_item(ids("fc"), call_id, name, namespace, arguments))
    reason = incomplete_reason(message.get("stop_reason"))
    if reason and output and output[-1]["type"] == "message":
        output[-1]["status"] = "incomplete"  # the answer was cut, as OpenAI marks it
    return response_object(state, ctx, response_id, status="incomplete" if reason else "completed",
                           output=output, usage=usage_of(message.get("usage"), reasoning_chars),
                           incomplete_reason=reason)

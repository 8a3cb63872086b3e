"""OpenAI `chat.completion` → Anthropic `message` (non-stream), plus the mappings the stream shares.

- content: `reasoning_content` (DeepSeek, vLLM, LiteLLM…) or `reasoning` (OpenRouter) → a `thinking`
  block (empty signature: no Anthropic signature exists for it), then the text, then one `tool_use`
  per tool call (`input` = parsed `arguments`; text that is not a JSON object → `{}`); a `refusal` is
  a text block with stop_reason "refusal".
- `finish_reason` → `stop_reason`: stop → end_turn, length → max_tokens, tool_calls / function_call →
  tool_use, content_filter → refusal; missing or unknown → end_turn.
- usage: OpenAI's `prompt_tokens` includes cached tokens, Anthropic's `input_tokens` does not:
  input_tokens = prompt − cached, cache_read_input_tokens = cached, cache_creation_input_tokens = 0.
- `id` is `msg_` + the upstream id; `model` is the name the client asked for.
"""

from __future__ import annotations

from typing import Any

from iron_tui.core.bounded_json import parse_object
from iron_tui.core.dialects.base import RequestContext, UpstreamFormatError

__all__ = [
    "anthropic_usage",
    "chat_to_message_response",
    "message_id_for",
    "reasoning_text",
    "stop_reason_for",
    "tool_input",
]

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason_for(finish_reason: object) -> str:
    return STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def message_id_for(upstream_id: object, ctx: RequestContext) -> str:
    if isinstance(upstream_id, str) and upstream_id:
        return "msg_" + upstream_id.removeprefix("chatcmpl-")[:200]
    return ctx.new_id("msg") if ctx.new_id is not None else "msg_unknown"


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def anthropic_usage(usage: object) -> dict[str, int]:
    """Anthropic usage for an OpenAI usage object (anything else counts as zero)."""
    if not isinstance(usage, dict):
        usage = {}
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    prompt = _int(usage.get("prompt_tokens"))
    return {
        "input_tokens": max(prompt - cached, 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": min(cached, prompt),
        "output_tokens": _int(usage.get("completion_tokens")),
    }


def reasoning_text(message: dict[str, Any]) -> str:
    """Reasoning text an OpenAI-compatible provider returned beside the content ("" when none)."""
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def tool_input(arguments: object) -> dict[str, Any]:
    """Anthropic tool_use `input` for OpenAI `arguments` text ({} when it is not a JSON object)."""
    if isinstance(arguments, dict):
        return arguments
    parsed = parse_object(arguments)
    return parsed if parsed is not None else {}


def _tool_uses(calls: object, ctx: RequestContext) -> list[dict[str, Any]]:
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise UpstreamFormatError("message.tool_calls is not a list")
    blocks: list[dict[str, Any]] = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(function, dict):
            raise UpstreamFormatError("a tool call has no function object")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise UpstreamFormatError("a tool call has no function name")
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            # Some OpenAI-compatible servers omit ids; Anthropic clients need one to answer the call.
            call_id = ctx.new_id("toolu") if ctx.new_id is not None else f"toolu_{len(blocks)}"
        blocks.append(
            {"type": "tool_use", "id": call_id, "name": name, "input": tool_input(function.get("arguments"))}
        )
    return blocks


def chat_to_message_response(body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    """Translate an OpenAI chat.completion body into an Anthropic Messages response body."""
    if not isinstance(body, dict):
        raise UpstreamFormatError("the upstream response is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamFormatError("the upstream response has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise UpstreamFormatError("the upstream choice has no message")
    content: list[dict[str, Any]] = []
    thinking = reasoning_text(message)
    if thinking:
        content.append({"type": "thinking", "thinking": thinking, "signature": ""})
    text = message.get("content")
    if isinstance(text, list):  # a few compatible servers answer with parts
        text = "".join(p["text"] for p in text if isinstance(p, dict) and isinstance(p.get("text"), str))
    elif text is not None and not isinstance(text, str):
        raise UpstreamFormatError("message.content is neither text nor null")
    refusal = message.get("refusal")
    stop_reason = stop_reason_for(choice.get("finish_reason"))
    if isinstance(refusal, str) and refusal and not text:
        text, stop_reason = refusal, "refusal"
    if text:
        content.append({"type": "text", "text": text})
    legacy = message.get("function_call")
    calls = message.get("tool_calls")
    if calls is None and isinstance(legacy, dict):
        calls = [{"id": None, "function": legacy}]
    tool_uses = _tool_uses(calls, ctx)
    content.extend(tool_uses)
    if tool_uses and stop_reason == "end_turn":
        stop_reason = "tool_use"  # some servers report "stop" with tool calls; Anthropic clients need this
    return {
        "id": message_id_for(body.get("id"), ctx),
        "type": "message",
        "role": "assistant",
        "model": ctx.client_model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": anthropic_usage(body.get("usage")),
    }

"""The Responses `response` object and its output items, built the same way for every provider.

Shapes follow the official SDK types (`openai/types/responses/response.py` and the item types) and real
recordings (`tests/cassettes/openai_responses/`). The request's own settings are echoed back the way
OpenAI does (`instructions`, `tools`, `tool_choice`, `text`, `reasoning`, `store`, …).

Reasoning kept across turns: a provider's reasoning that must be replayed verbatim later (Anthropic
thinking blocks and their signatures) travels in the reasoning item's `encrypted_content`, always set
(the Agents SDK and Codex send it back whether or not they asked with `include`). It is
`iron-tui.v1:` + base64url(JSON list of the provider's blocks), opaque to clients like OpenAI's own.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from iron_tui.core.dialects.base import RequestContext
from iron_tui.core.dialects.responses.request import Options
from iron_tui.core.dialects.responses.tools import CUSTOM_INPUT, ToolSet

__all__ = [
    "ResponsesState",
    "count_of",
    "custom_call_item",
    "custom_input_text",
    "decode_reasoning",
    "encode_reasoning",
    "function_call_item",
    "id_source",
    "message_item",
    "obj_of",
    "reasoning_item",
    "response_object",
    "state_of",
    "text_of",
    "usage_object",
]

_REASONING_PREFIX = "iron-tui.v1:"
_ECHOED = ("instructions", "max_output_tokens", "max_tool_calls", "previous_response_id", "prompt_cache_key",
           "safety_identifier", "user")


def obj_of(value: object) -> dict[str, Any]:
    """`value` if it is an object, else {} (for fields an upstream may send with the wrong type)."""
    return value if isinstance(value, dict) else {}


def count_of(value: object) -> int:
    """`value` if it is a positive integer token count, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def text_of(value: object) -> str:
    """`value` if it is a string, else "" (for fields an upstream may send with the wrong type)."""
    return value if isinstance(value, str) else ""


@dataclass(slots=True)
class ResponsesState:
    """What a Responses pair learns from the request and needs again for the response or stream."""

    options: Options
    tools: ToolSet
    echo: dict[str, Any] = field(default_factory=dict)  # request settings the response object repeats
    body: dict[str, Any] = field(default_factory=dict)  # the client's request (kept for previous_response_id)

    @classmethod
    def of(cls, body: dict[str, Any], options: Options, tools: ToolSet) -> ResponsesState:
        echo: dict[str, Any] = {k: body.get(k) for k in _ECHOED}
        reasoning = obj_of(body.get("reasoning"))
        text = obj_of(body.get("text"))
        echo.update(
            metadata=body.get("metadata") if isinstance(body.get("metadata"), dict) else {},
            parallel_tool_calls=body.get("parallel_tool_calls") is not False,
            reasoning={"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            store=body.get("store") is not False,
            temperature=body.get("temperature", 1.0),
            text={"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity", "medium")},
            tool_choice=body.get("tool_choice", "auto"),
            tools=body.get("tools") if isinstance(body.get("tools"), list) else [],
            top_p=body.get("top_p", 1.0),
            truncation=body.get("truncation") or "disabled",
            top_logprobs=body.get("top_logprobs") or 0,
        )
        return cls(options, tools, echo, body)


def state_of(ctx: RequestContext) -> ResponsesState:
    """The state `request` left for this call (a bare default when there is none)."""
    state = ctx.state
    return state if isinstance(state, ResponsesState) else ResponsesState.of({}, Options(), ToolSet())


def custom_input_text(tool_input: object) -> str:
    """The free-form input of a custom tool call from the `{"input": …}` object Claude filled in."""
    if isinstance(tool_input, dict):
        value = tool_input.get(CUSTOM_INPUT)
        if isinstance(value, str):
            return value
    return json.dumps(tool_input, ensure_ascii=False) if tool_input not in (None, {}) else ""


def id_source(ctx: RequestContext, fallback: str) -> Callable[[str], str]:
    """Ids for the response and its items: the engine's id source, else derived from `fallback`
    (the upstream's own response id) so they stay unique per call and deterministic in tests."""
    if ctx.new_id is not None:
        return ctx.new_id
    counter = iter(range(1_000_000))
    tail = "".join(c for c in fallback if c.isalnum())[-24:] or "0"
    return lambda prefix: f"{prefix}_{tail}{next(counter):03d}"


def response_object(
    state: ResponsesState,
    ctx: RequestContext,
    response_id: str,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    done = status in ("completed", "incomplete")
    return {
        "id": response_id,
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "background": False,
        "completed_at": ctx.created if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": incomplete_reason} if status == "incomplete" else None,
        "model": ctx.client_model,
        "output": output,
        "service_tier": "default",
        "usage": usage if done else None,
        **state.echo,
    }


def usage_object(
    input_total: int, cached: int, cache_write: int, output: int, reasoning: int
) -> dict[str, Any]:
    """Responses usage: `input_tokens` includes cached and cache-written tokens, like OpenAI's."""
    return {
        "input_tokens": input_total,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": cache_write},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": min(reasoning, output)},
        "total_tokens": input_total + output,
    }


def message_item(item_id: str, text: str, *, status: str = "completed", refusal: bool = False) -> dict[str, Any]:
    part: dict[str, Any] = (
        {"type": "refusal", "refusal": text} if refusal
        else {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    )
    return {"id": item_id, "type": "message", "status": status, "content": [] if status == "in_progress" else [part],
            "role": "assistant"}


def function_call_item(
    item_id: str, call_id: str, name: str, namespace: str | None, arguments: str, *, status: str = "completed"
) -> dict[str, Any]:
    item = {"id": item_id, "type": "function_call", "status": status, "arguments": arguments, "call_id": call_id,
            "name": name}
    if namespace:
        item["namespace"] = namespace
    return item


def custom_call_item(
    item_id: str, call_id: str, name: str, namespace: str | None, text: str, *, status: str = "completed"
) -> dict[str, Any]:
    item = {"id": item_id, "type": "custom_tool_call", "status": status, "call_id": call_id, "input": text,
            "name": name}
    if namespace:
        item["namespace"] = namespace
    return item


def reasoning_item(
    item_id: str, *, summary: str | None, encrypted: str | None, text: str | None = None
) -> dict[str, Any]:
    """`summary` None: the client asked for no summary (OpenAI then sends `summary: []`)."""
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": summary}] if summary else [],
        "encrypted_content": encrypted,
    }
    if text:
        item["content"] = [{"type": "reasoning_text", "text": text}]
    return item


def encode_reasoning(blocks: list[dict[str, Any]]) -> str:
    return _REASONING_PREFIX + base64.urlsafe_b64encode(orjson.dumps(blocks)).decode()


def decode_reasoning(encrypted: str | None) -> list[dict[str, Any]] | None:
    """The provider blocks carried by `encrypted_content`; None when it is not ours (e.g. OpenAI's own)."""
    if not encrypted or not encrypted.startswith(_REASONING_PREFIX):
        return None
    try:
        blocks = orjson.loads(base64.urlsafe_b64decode(encrypted[len(_REASONING_PREFIX):]))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        return None
    return blocks

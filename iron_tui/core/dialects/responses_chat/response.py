"""OpenAI Chat Completions response → Responses `response` object (non-streaming).

The choice's reasoning (`reasoning_content`, or `reasoning` as Ollama and vLLM name it) → a reasoning
item with the raw text as `reasoning_text` content; `content` → a message item (`refusal` → a refusal
part); `tool_calls` → function calls, or custom tool calls for the client's free-form tools.
finish_reason length → "incomplete" (max_output_tokens), content_filter → "incomplete"
(content_filter), anything else → "completed".
"""

from __future__ import annotations

from typing import Any

from iron_tui.core.bounded_json import loads_exact
from iron_tui.core.dialects.base import RequestContext, UpstreamFormatError
from iron_tui.core.dialects.responses.output import (
    count_of,
    custom_call_item,
    custom_input_text,
    function_call_item,
    id_source,
    message_item,
    obj_of,
    reasoning_item,
    response_object,
    state_of,
    text_of,
    usage_object,
)

__all__ = ["chat_reasoning", "incomplete_reason", "translate_response", "usage_of"]


def usage_of(usage: object) -> dict[str, Any]:
    u = obj_of(usage)
    return usage_object(count_of(u.get("prompt_tokens")), count_of(obj_of(u.get("prompt_tokens_details")).get("cached_tokens")),
                        0, count_of(u.get("completion_tokens")),
                        count_of(obj_of(u.get("completion_tokens_details")).get("reasoning_tokens")))


def incomplete_reason(finish: object) -> str | None:
    return {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish) if isinstance(
        finish, str) else None


def chat_reasoning(obj: dict[str, Any]) -> str:
    """Reasoning text of a chat message or delta, under either name compatible servers use."""
    for key in ("reasoning_content", "reasoning"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def custom_input_of(arguments: str) -> str:
    try:
        parsed = loads_exact(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments
    return custom_input_text(parsed)


def translate_response(body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise UpstreamFormatError("chat completion is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamFormatError("chat completion has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise UpstreamFormatError("chat completion choice has no message")
    state = state_of(ctx)
    cid = body.get("id")
    ids = id_source(ctx, cid if isinstance(cid, str) else "")
    response_id = ids("resp")
    output: list[dict[str, Any]] = []
    thought = chat_reasoning(message)
    if thought:
        output.append(reasoning_item(ids("rs"), summary=None, encrypted=None, text=thought))
    content, refusal = message.get("content"), message.get("refusal")
    if isinstance(content, str) and content:
        output.append(message_item(ids("msg"), content))
    if isinstance(refusal, str) and refusal:
        output.append(message_item(ids("msg"), refusal, refusal=True))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        fn = obj_of(obj_of(call).get("function"))
        wire, args = text_of(fn.get("name")), text_of(fn.get("arguments"))
        call_id = text_of(obj_of(call).get("id")) or ids("call")
        name, namespace = state.tools.client_name(wire)
        if state.tools.kind_of(wire) == "custom":
            output.append(custom_call_item(ids("ctc"), call_id, name, namespace, custom_input_of(args)))
        else:
            output.append(function_call_item(ids("fc"), call_id, name, namespace, args or "{}"))
    reason = incomplete_reason(choices[0].get("finish_reason"))
    return response_object(state, ctx, response_id, status="incomplete" if reason else "completed",
                           output=output, usage=usage_of(body.get("usage")), incomplete_reason=reason)

"""Responses request → OpenAI Chat Completions request, for chat-only OpenAI-compatible providers
(Ollama, vLLM, Groq, LM Studio, …).

- `instructions`, system and developer messages → `system` messages in place (many compatible servers
  do not know the `developer` role).
- Consecutive function calls join one assistant message's `tool_calls` (with the text before them);
  outputs → `tool` messages. Custom tools → functions with one string parameter `input`.
- Reasoning items are not sent: chat APIs take no reasoning back (DeepSeek refuses it).
- `text.format` → `response_format`; `reasoning.effort` → `reasoning_effort`; `max_output_tokens` →
  `max_tokens` (the field every compatible server reads); the stream always asks for usage.
"""

from __future__ import annotations

import json
from typing import Any

from iron_tui.core.dialects.base import RequestContext, Translated, TranslationError
from iron_tui.core.dialects.responses.items import Message, Part, Reasoning, ToolCall, ToolOutput, parse_input
from iron_tui.core.dialects.responses.output import ResponsesState
from iron_tui.core.dialects.responses.request import parse_options
from iron_tui.core.dialects.responses.tools import (
    CUSTOM_INPUT,
    ToolChoice,
    ToolSet,
    custom_input_schema,
    parse_tool_choice,
    parse_tools,
)

__all__ = ["translate_request"]

FAMILY = "chat-completions models"


def _content(parts: list[Part], *, media: bool) -> str | list[dict[str, Any]]:
    if all(p.kind == "text" for p in parts):
        return "".join(p.text for p in parts)
    out: list[dict[str, Any]] = []
    for p in parts:
        if p.kind == "text":
            out.append({"type": "text", "text": p.text})
        elif not media:
            raise TranslationError("only text is allowed here", p.param, "unsupported_value")
        elif p.kind == "image":
            if p.url is None:
                raise TranslationError("file_id inputs refer to files uploaded to OpenAI; send the image as a "
                                       "data URL or an http(s) URL", p.param, "unsupported_value")
            image: dict[str, Any] = {"url": p.url}
            if p.detail:
                image["detail"] = p.detail
            out.append({"type": "image_url", "image_url": image})
        else:
            file: dict[str, Any] = {}
            if p.url is not None and p.url.startswith("data:"):
                file["file_data"] = p.url
            elif p.file_id is not None:
                file["file_id"] = p.file_id
            else:
                raise TranslationError("file URLs cannot be sent to a chat-completions provider; send "
                                       "file_data", p.param, "unsupported_value")
            if p.filename:
                file["filename"] = p.filename
            out.append({"type": "file", "file": file})
    return out


def _arguments(call: ToolCall) -> str:
    if call.kind == "custom":
        return json.dumps({CUSTOM_INPUT: call.payload}, ensure_ascii=False)
    return call.payload or "{}"


def _messages(items: list[Any], tools: ToolSet, instructions: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if instructions:
        out.append({"role": "system", "content": instructions})
    for item in items:
        if isinstance(item, Message):
            content = _content(item.parts, media=item.role == "user")
            if item.role == "assistant":
                if content:
                    out.append({"role": "assistant", "content": content})
            elif content or item.role == "user":
                out.append({"role": item.role, "content": content})
        elif isinstance(item, ToolCall):
            call = {"id": item.call_id, "type": "function",
                    "function": {"name": tools.wire_name(item.name, item.namespace), "arguments": _arguments(item)}}
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and not last.get("_closed"):
                last.setdefault("tool_calls", []).append(call)
                last.setdefault("content", None)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, ToolOutput):
            if out and out[-1]["role"] == "assistant":
                out[-1]["_closed"] = True  # later calls start a new assistant message
            output = item.output if isinstance(item.output, str) else _content(item.output, media=False)
            out.append({"role": "tool", "tool_call_id": item.call_id, "content": output})
        elif isinstance(item, Reasoning):
            continue
    for m in out:
        m.pop("_closed", None)
    if not out:
        raise TranslationError("'input' must contain at least one message", "input", "invalid_value")
    return out


def _tools(tools: ToolSet, choice: ToolChoice | None) -> list[dict[str, Any]]:
    out = []
    for tool in tools.sent(choice):
        fn: dict[str, Any] = {"name": tool.wire_name}
        if tool.description:
            fn["description"] = tool.description
        if tool.kind == "custom":
            fn["parameters"] = custom_input_schema(tool)
        else:
            fn["parameters"] = tool.parameters or {"type": "object", "properties": {}}
            if tool.strict is not None:
                fn["strict"] = tool.strict
        out.append({"type": "function", "function": fn})
    return out


def translate_request(body: dict[str, Any], ctx: RequestContext) -> Translated:
    opt = parse_options(body, FAMILY)
    tools = parse_tools(body, FAMILY)
    choice = parse_tool_choice(body, tools)
    items = parse_input(body, ctx.previous_items)
    warnings = [*opt.warnings, *tools.warnings]
    out: dict[str, Any] = {"model": ctx.model, "messages": _messages(items, tools, opt.instructions)}
    chat_tools = _tools(tools, choice)
    if chat_tools:
        out["tools"] = chat_tools
        if choice is not None:
            out["tool_choice"] = (
                {"type": "function", "function": {"name": choice.wire_name}} if choice.mode == "tool"
                else choice.mode
            )
        if opt.parallel_tool_calls is not None:
            out["parallel_tool_calls"] = opt.parallel_tool_calls
    if opt.format_kind == "json_schema":
        spec: dict[str, Any] = {"name": opt.schema_name or "response", "schema": opt.schema}
        if opt.schema_strict is not None:
            spec["strict"] = opt.schema_strict
        out["response_format"] = {"type": "json_schema", "json_schema": spec}
    elif opt.format_kind == "json_object":
        out["response_format"] = {"type": "json_object"}
    if opt.effort is not None:
        out["reasoning_effort"] = opt.effort
    if opt.max_output_tokens is not None:
        out["max_tokens"] = opt.max_output_tokens
    for name in ("temperature", "top_p"):
        value = getattr(opt, name)
        if value is not None:
            out[name] = value
    if opt.user:
        out["user"] = opt.user
    if opt.stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # the final response.completed carries usage
    return Translated(out, "/v1/chat/completions", warnings=warnings, state=ResponsesState.of(body, opt, tools))

"""Responses request → Anthropic Messages request.

- `instructions`, then system and developer messages (in order) → top-level `system`.
- Messages, tool calls, tool outputs and reasoning → alternating user/assistant turns: consecutive items
  of one side share a turn, tool results come first in their user turn (Anthropic requires them right
  after the tool_use turn), a conversation starting with the assistant gets a "." user turn in front.
- Reasoning items we produced carry Anthropic's thinking blocks (with signatures) in
  `encrypted_content` and are rebuilt verbatim; anyone else's reasoning (e.g. OpenAI's) is left out.
- `reasoning.effort` → `thinking.budget_tokens` (low 1024 … xhigh/max 32768, within 3/4 of `max_tokens`);
  "none", "minimal" or no effort: no thinking. Thinking is dropped, with a warning, where Anthropic would refuse it: a forced
  tool_choice, a cap too small for the 1024-token minimum, or a tool loop whose last assistant turn
  lost its thinking block. With thinking, temperature and top_p are not sent (Anthropic requires the
  defaults), and thinking blocks are sent only when thinking is on.
- `text.format` json_schema → `output_config.format`; json_object → a system instruction (warning).
- `prompt_cache_key` (Codex sends one per session) → prompt-cache breakpoints on the last tool, the
  system prompt and the newest turn, so long agent loops are read from Anthropic's cache.
- `max_output_tokens` → `max_tokens`; none given → the model's maximum output (`ctx.max_output_tokens`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from iron_tui.core.dialects.base import RequestContext, Translated, TranslationError
from iron_tui.core.dialects.responses.items import (
    Item,
    Message,
    Part,
    Reasoning,
    ToolCall,
    ToolOutput,
    parse_input,
)
from iron_tui.core.dialects.responses.output import ResponsesState, decode_reasoning
from iron_tui.core.dialects.responses.request import Options, parse_options
from iron_tui.core.dialects.responses.tools import (
    CUSTOM_INPUT,
    ToolChoice,
    ToolSet,
    custom_input_schema,
    parse_tool_choice,
    parse_tools,
)

__all__ = ["EFFORT_BUDGETS", "translate_request"]

FAMILY = "Claude models"
MIN_THINKING = 1024
# reasoning.effort → thinking budget, the table the chat translation uses too ("none" and "minimal":
# no thinking). Anthropic's minimum is 1024, and the budget stays within 3/4 of max_tokens.
EFFORT_BUDGETS: dict[str, int] = {"low": 1024, "medium": 4096, "high": 16_384, "xhigh": 32_768, "max": 32_768}
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_TOOL_ID = re.compile(r"[^a-zA-Z0-9_-]")
_EPHEMERAL = {"type": "ephemeral"}
_THINKING_TYPES = ("thinking", "redacted_thinking")


class _Turn:
    __slots__ = ("blocks", "results", "role")

    def __init__(self, role: str) -> None:
        self.role = role
        self.results: list[dict[str, Any]] = []
        self.blocks: list[dict[str, Any]] = []


def _tool_id(call_id: str) -> str:
    # Anthropic ids match ^[a-zA-Z0-9_-]+$; ids minted elsewhere are mapped the same way on both sides.
    return _TOOL_ID.sub("_", call_id)


def _data_uri(url: str, param: str) -> tuple[str, str]:
    header, sep, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64":
        raise TranslationError("data URLs must be base64-encoded", param, "invalid_value")
    return media_type, data


def _media(part: Part) -> dict[str, Any]:
    if part.url is None:
        raise TranslationError("file_id inputs refer to files uploaded to OpenAI, which Claude cannot read: "
                               "send the content as a data URL or an http(s) URL", part.param,
                               "unsupported_value")
    url = part.url
    if part.kind == "image":
        if url.startswith("data:"):
            media_type, data = _data_uri(url, part.param)
            if media_type not in _IMAGE_TYPES:
                raise TranslationError(f"image type '{media_type}' is not supported by Claude (use jpeg, png, "
                                       "gif or webp)", part.param, "unsupported_value")
            return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
        if url.startswith(("http://", "https://")):
            return {"type": "image", "source": {"type": "url", "url": url}}
        raise TranslationError("image URLs must be http(s) or data URLs", part.param, "invalid_value")
    block: dict[str, Any]
    if url.startswith("data:"):
        media_type, data = _data_uri(url, part.param)
        if media_type == "application/pdf":
            block = {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}
        elif media_type.startswith("text/"):
            try:
                text = base64.b64decode(data, validate=True).decode("utf-8")
            except (binascii.Error, ValueError) as exc:
                raise TranslationError("file_data is not valid base64 UTF-8 text", part.param,
                                       "invalid_value") from exc
            block = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}}
        else:
            raise TranslationError(f"file type '{media_type}' is not supported by Claude (PDF or text)",
                                   part.param, "unsupported_value")
    elif url.startswith(("http://", "https://")):
        block = {"type": "document", "source": {"type": "url", "url": url}}
    else:
        raise TranslationError("file URLs must be http(s) or data URLs", part.param, "invalid_value")
    if part.filename:
        block["title"] = part.filename
    return block


def _blocks(parts: list[Part], *, media: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        if part.kind == "text":
            if part.text.strip():  # Anthropic rejects empty and whitespace-only text blocks
                out.append({"type": "text", "text": part.text})
        elif media:
            out.append(_media(part))
        else:
            raise TranslationError("only text is allowed here", part.param, "unsupported_value")
    return out


def _tool_input(call: ToolCall, warnings: list[str]) -> dict[str, Any]:
    if call.kind == "custom":
        return {CUSTOM_INPUT: call.payload}
    try:
        value = json.loads(call.payload) if call.payload.strip() else {}
    except ValueError:
        value = None
    if not isinstance(value, dict):
        warnings.append(f"{call.param}: arguments of call {call.call_id!r} are not a JSON object; sent as {{}}")
        value = {}
    return value


def _result(out: ToolOutput) -> dict[str, Any]:
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(out.call_id)}
    if isinstance(out.output, str):
        if out.output.strip():
            result["content"] = out.output
    else:
        blocks = _blocks(out.output, media=True)
        if blocks:
            result["content"] = blocks
    return result


def _conversation(
    items: list[Item], tools: ToolSet, warnings: list[str]
) -> tuple[list[dict[str, Any]], list[_Turn]]:
    system: list[dict[str, Any]] = []
    turns: list[_Turn] = []
    foreign_reasoning = False

    def turn(role: str) -> _Turn:
        if not turns or turns[-1].role != role:
            turns.append(_Turn(role))
        return turns[-1]

    for item in items:
        if isinstance(item, Message):
            if item.role == "system":
                system.extend(_blocks(item.parts, media=False))
            else:
                blocks = _blocks(item.parts, media=item.role == "user")
                if blocks:
                    turn(item.role).blocks.extend(blocks)
        elif isinstance(item, ToolCall):
            name = tools.wire_name(item.name, item.namespace)
            turn("assistant").blocks.append({"type": "tool_use", "id": _tool_id(item.call_id), "name": name,
                                             "input": _tool_input(item, warnings)})
        elif isinstance(item, ToolOutput):
            turn("user").results.append(_result(item))
        elif isinstance(item, Reasoning):
            kept = decode_reasoning(item.encrypted)
            if kept is None:
                foreign_reasoning = foreign_reasoning or bool(item.summary or item.encrypted or item.text)
                continue
            turn("assistant").blocks.extend(b for b in kept if b.get("type") in _THINKING_TYPES)
    if foreign_reasoning:
        warnings.append("reasoning items from another provider cannot be replayed to Claude; left out")
    return system, turns


def _merge(turns: list[_Turn]) -> list[_Turn]:
    """Drop empty turns and join neighbours of one role (Anthropic requires strict alternation)."""
    merged: list[_Turn] = []
    for t in turns:
        if not t.results and not t.blocks:
            continue
        if merged and merged[-1].role == t.role:
            merged[-1].results.extend(t.results)
            merged[-1].blocks.extend(t.blocks)
        else:
            merged.append(t)
    return merged


def _messages(turns: list[_Turn], warnings: list[str]) -> list[dict[str, Any]]:
    if turns and turns[-1].role == "assistant":
        last = turns[-1].blocks  # a prefill: Anthropic rejects one that ends in whitespace
        if last and last[-1]["type"] == "text":
            stripped = last[-1]["text"].rstrip()
            if stripped:
                last[-1] = {**last[-1], "text": stripped}
            else:
                last.pop()
        turns = _merge(turns)
    out = [{"role": t.role, "content": t.results + t.blocks} for t in turns]
    if not out:
        raise TranslationError("'input' must contain at least one non-empty message", "input", "invalid_value")
    if out[0]["role"] == "assistant":
        warnings.append("conversation starts with an assistant message; a '.' user turn was inserted before it")
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": "."}]})
    return out


def _tools(tools: ToolSet, choice: ToolChoice | None) -> list[dict[str, Any]]:
    out = []
    for tool in tools.sent(choice):
        if tool.kind == "custom":
            schema = custom_input_schema(tool)
        elif not tool.parameters:
            schema = {"type": "object", "properties": {}}
        elif "type" not in tool.parameters:
            schema = {"type": "object", **tool.parameters}
        else:
            schema = tool.parameters
        entry: dict[str, Any] = {"name": tool.wire_name, "input_schema": schema}
        if tool.description:
            entry["description"] = tool.description
        out.append(entry)
    return out


def _tool_choice(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None:
        return {"type": "auto", "disable_parallel_tool_use": True} if parallel is False else None
    if choice.mode == "none":
        return {"type": "none"}
    result: dict[str, Any] = {"type": {"auto": "auto", "required": "any", "tool": "tool"}[choice.mode]}
    if choice.mode == "tool":
        result["name"] = choice.wire_name
    if parallel is False:
        result["disable_parallel_tool_use"] = True
    return result


def _thinking(opt: Options, max_tokens: int, out: dict[str, Any], warnings: list[str]) -> bool:
    if opt.effort not in EFFORT_BUDGETS:
        return False
    choice = out.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        warnings.append("reasoning not sent: Claude cannot think when tool_choice forces a tool call")
        return False
    assert opt.effort is not None
    budget = min(EFFORT_BUDGETS[opt.effort], max_tokens * 3 // 4)
    if budget < MIN_THINKING:
        warnings.append(f"reasoning not sent: max_output_tokens {max_tokens} leaves no room for Claude's "
                        f"{MIN_THINKING}-token minimum thinking budget")
        return False
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return True


def _loop_keeps_thinking(turns: list[_Turn]) -> bool:
    """With thinking on, the assistant turn answered by the final tool results must start with thinking."""
    if len(turns) < 2 or turns[-1].role != "user" or not turns[-1].results or turns[-2].role != "assistant":
        return True
    blocks = turns[-2].blocks
    return bool(blocks) and blocks[0].get("type") in _THINKING_TYPES


def _sampling(opt: Options, out: dict[str, Any], thinking: bool, warnings: list[str]) -> None:
    if thinking:
        if opt.temperature not in (None, 1.0) or opt.top_p not in (None, 1.0):
            warnings.append("temperature/top_p not sent: Claude requires the defaults while thinking")
        return
    if opt.temperature is not None:
        out["temperature"] = min(opt.temperature, 1.0)  # OpenAI allows 0–2, Anthropic 0–1
        if opt.top_p is not None:
            warnings.append("top_p not sent: Claude models accept temperature or top_p, not both")
        return
    if opt.top_p is not None:
        out["top_p"] = opt.top_p


def _cache_breakpoints(out: dict[str, Any]) -> None:
    if out.get("tools"):
        out["tools"][-1] = {**out["tools"][-1], "cache_control": _EPHEMERAL}
    system: list[dict[str, Any]] | None = out.get("system")
    if system:
        system[-1] = {**system[-1], "cache_control": _EPHEMERAL}
    content = out["messages"][-1]["content"]
    for k in range(len(content) - 1, -1, -1):
        if content[k].get("type") not in _THINKING_TYPES:
            content[k] = {**content[k], "cache_control": _EPHEMERAL}
            break


def translate_request(body: dict[str, Any], ctx: RequestContext) -> Translated:
    opt = parse_options(body, FAMILY)
    tools = parse_tools(body, FAMILY)
    choice = parse_tool_choice(body, tools)
    items = parse_input(body, ctx.previous_items)
    warnings = [*opt.warnings, *tools.warnings]
    system, turns = _conversation(items, tools, warnings)
    if opt.instructions and opt.instructions.strip():
        system.insert(0, {"type": "text", "text": opt.instructions})
    turns = _merge(turns)
    max_tokens = opt.max_output_tokens or ctx.max_output_tokens or 4096
    out: dict[str, Any] = {"model": ctx.model, "max_tokens": max_tokens}
    if opt.format_kind == "json_schema":
        out["output_config"] = {"format": {"type": "json_schema", "schema": opt.schema}}
    elif opt.format_kind == "json_object":
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
        warnings.append("text.format json_object is not enforced by Claude; a system instruction asks for JSON")
    anthropic_tools = _tools(tools, choice)
    if anthropic_tools:
        out["tools"] = anthropic_tools
        tc = _tool_choice(choice, opt.parallel_tool_calls)
        if tc is not None:
            out["tool_choice"] = tc
    thinking = _thinking(opt, max_tokens, out, warnings)
    if thinking and not _loop_keeps_thinking(turns):
        warnings.append("reasoning not sent: the last assistant turn of this tool loop has no thinking block "
                        "(send reasoning items back, or keep previous_response_id)")
        del out["thinking"]
        thinking = False
    if not thinking:  # thinking blocks only mean something to a request that thinks
        for t in turns:
            t.blocks = [b for b in t.blocks if b.get("type") not in _THINKING_TYPES]
        turns = _merge(turns)
    out["messages"] = _messages(turns, warnings)
    if system:
        out["system"] = system
    _sampling(opt, out, thinking, warnings)
    if opt.user:
        out["metadata"] = {"user_id": opt.user}
    if opt.prompt_cache_key:
        _cache_breakpoints(out)
    if opt.stream:
        out["stream"] = True
    return Translated(out, "/v1/messages", warnings=warnings, state=ResponsesState.of(body, opt, tools))

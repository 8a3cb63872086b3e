"""Anthropic tools → OpenAI Chat Completions tools: tool definitions, `tool_choice`, and assistant
`tool_use` blocks as `tool_calls` (the table in request.py says what maps to what)."""

from __future__ import annotations

from typing import Any

from iron_tui.core.bounded_json import dumps_text, nesting_exceeds
from iron_tui.core.dialects.base import TranslationError


def _bad(message: str, param: str | None, code: str = "invalid_request_error") -> TranslationError:
    return TranslationError(message, param, code)


def tool_use_to_call(block: dict[str, Any], param: str) -> dict[str, Any]:
    call_id, name, tool_input = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise _bad("tool_use needs an 'id' and a 'name'", param)
    if not isinstance(tool_input, dict):
        raise _bad("tool_use.input must be an object", f"{param}.input")
    try:
        arguments = dumps_text(tool_input)
    except ValueError as exc:
        raise _bad(f"tool_use.input cannot be serialised: {exc}", f"{param}.input") from None
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tools_to_chat(tools: object, choice: object, warnings: list[str]) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _bad("tools must be a list", "tools")
    out: list[dict[str, Any]] = []
    chosen = choice.get("name") if isinstance(choice, dict) else None
    deferred = 0
    for k, tool in enumerate(tools):
        param = f"tools.{k}"
        if not isinstance(tool, dict):
            raise _bad("each tool must be an object", param)
        if tool.get("defer_loading") is True and tool.get("name") != chosen:
            # Anthropic keeps a deferred tool out of the model's context until its tool search loads it;
            # no OpenAI model has that search, so it stays out (Claude Code's placeholder among them).
            deferred += 1
            continue
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise _bad(f"tool type {kind!r} is an Anthropic server tool and is not available for this model; "
                       "only custom tools (name, description, input_schema) are", param)
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not name:
            raise _bad("tool needs a 'name'", f"{param}.name")
        if not isinstance(schema, dict):
            raise _bad("tool needs an 'input_schema' object", f"{param}.input_schema")
        if nesting_exceeds(schema):
            raise _bad("input_schema is nested too deeply", f"{param}.input_schema")
        function: dict[str, Any] = {"name": name, "parameters": schema}
        description = tool.get("description")
        if isinstance(description, str) and description:
            function["description"] = description
        out.append({"type": "function", "function": function})
    if deferred:
        warnings.append(f"{deferred} deferred tool(s) (defer_loading) left out: tool search is Anthropic's")
    return out


def tool_choice_to_chat(choice: object, out: dict[str, Any]) -> None:
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or kind not in ("auto", "any", "tool", "none"):
        raise _bad("tool_choice type must be one of 'auto', 'any', 'tool', 'none'", "tool_choice")
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise _bad("tool_choice of type 'tool' needs a 'name'", "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        out["parallel_tool_calls"] = False

"""A Responses request's `tools` and `tool_choice` as neutral tools, with the names sent upstream.

- `function` tools map one to one. `namespace` tools (Codex groups its sub-agent tools this way) are
  flattened: each inner tool goes upstream as `<namespace>__<name>` and comes back with its namespace.
- `custom` (free-form) tools have no equivalent in chat-style APIs: they go upstream as a function with
  one string parameter `input` (a grammar, when given, is described to the model, not enforced), and
  the call comes back as a `custom_tool_call` whose `input` is that string.
- Hosted tools run on OpenAI's servers and are refused by name, except Codex's default cached-only
  `web_search` (`external_web_access: false`), which is left out with a warning: the model simply has
  no search, as when it chooses not to search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from iron_tui.core.dialects.base import TranslationError

__all__ = ["Tool", "ToolChoice", "ToolSet", "custom_input_schema", "parse_tool_choice", "parse_tools"]

CUSTOM_INPUT = "input"
_NS_SEP = "__"
_HOSTED = frozenset({
    "web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11",
    "file_search", "code_interpreter", "computer_use_preview", "computer", "image_generation", "mcp",
    "local_shell", "shell", "apply_patch", "tool_search", "programmatic_tool_calling",
})  # fmt: skip


@dataclass(slots=True)
class Tool:
    kind: Literal["function", "custom"]
    wire_name: str  # the name sent upstream (and seen in its tool calls)
    name: str  # the client's name
    namespace: str | None
    description: str | None
    parameters: dict[str, Any] | None  # function tools: the JSON schema as the client sent it
    strict: bool | None
    grammar: str | None = None  # custom tools: a description of the grammar the input must follow


@dataclass(slots=True)
class ToolSet:
    tools: list[Tool] = field(default_factory=list)
    by_wire: dict[str, Tool] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def wire_name(self, name: str, namespace: str | None) -> str:
        return f"{namespace}{_NS_SEP}{name}" if namespace else name

    def kind_of(self, wire_name: str) -> Literal["function", "custom"]:
        tool = self.by_wire.get(wire_name)
        return tool.kind if tool is not None else "function"

    def sent(self, choice: ToolChoice | None) -> list[Tool]:
        """The tools to send upstream: all of them, or those `allowed_tools` names."""
        allowed = choice.allowed if choice is not None else None
        return [t for t in self.tools if allowed is None or t.wire_name in allowed]

    def client_name(self, wire_name: str) -> tuple[str, str | None]:
        """(name, namespace) of an upstream tool call; unknown names are passed on as they are."""
        tool = self.by_wire.get(wire_name)
        return (tool.name, tool.namespace) if tool is not None else (wire_name, None)


@dataclass(slots=True)
class ToolChoice:
    mode: Literal["auto", "none", "required", "tool"]
    wire_name: str | None = None  # mode "tool": the one tool that must be called
    allowed: set[str] | None = None  # allowed_tools: the wire names the model may call


def custom_input_schema(tool: Tool) -> dict[str, Any]:
    desc = "The free-form input of this tool, as plain text."
    if tool.grammar:
        desc += " It must follow this grammar: " + tool.grammar
    return {"type": "object", "properties": {CUSTOM_INPUT: {"type": "string", "description": desc}},
            "required": [CUSTOM_INPUT], "additionalProperties": False}


def _grammar(fmt: object, param: str) -> str | None:
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise TranslationError("'format' must be an object", param, "invalid_type")
    if fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "grammar":
        syntax, definition = fmt.get("syntax"), fmt.get("definition")
        if not isinstance(definition, str) or not definition:
            raise TranslationError("a grammar format needs a 'definition'", f"{param}.definition",
                                   "invalid_value")
        return f"({syntax if isinstance(syntax, str) else 'grammar'}) {definition}"
    raise TranslationError(f"custom tool format '{fmt.get('type')}' is not supported", f"{param}.type",
                           "unsupported_value")


def _add(out: ToolSet, raw: dict[str, Any], param: str, namespace: str | None) -> None:
    kind = raw.get("type")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise TranslationError("each tool needs a 'name'", f"{param}.name", "missing_required_parameter")
    description = raw.get("description") if isinstance(raw.get("description"), str) else None
    if kind == "function":
        params = raw.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise TranslationError("'parameters' must be an object", f"{param}.parameters", "invalid_type")
        strict = raw.get("strict")
        tool = Tool("function", out.wire_name(name, namespace), name, namespace, description, params,
                    strict if isinstance(strict, bool) else None)
    elif kind == "custom":
        tool = Tool("custom", out.wire_name(name, namespace), name, namespace, description, None, None,
                    _grammar(raw.get("format"), f"{param}.format"))
    else:
        raise TranslationError(f"tool type '{kind}' is not supported inside a namespace", f"{param}.type",
                               "unsupported_value")
    if tool.wire_name in out.by_wire:
        raise TranslationError(f"tool name '{tool.wire_name}' is used twice", f"{param}.name",
                               "invalid_value")
    out.tools.append(tool)
    out.by_wire[tool.wire_name] = tool


def parse_tools(body: dict[str, Any], model_family: str) -> ToolSet:
    """The client's tools; `model_family` names the target in refusals ("Claude models", …)."""
    raw = body.get("tools")
    out = ToolSet()
    if raw is None:
        return out
    if not isinstance(raw, list):
        raise TranslationError("'tools' must be a list", "tools", "invalid_type")
    for i, tool in enumerate(raw):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise TranslationError("each tool must be an object", param, "invalid_type")
        kind = tool.get("type")
        if kind in ("function", "custom"):
            _add(out, tool, param, None)
        elif kind == "namespace":
            ns, inner = tool.get("name"), tool.get("tools")
            if not isinstance(ns, str) or not ns or not isinstance(inner, list):
                raise TranslationError("a namespace tool needs a 'name' and a 'tools' list", param,
                                       "invalid_value")
            for j, sub in enumerate(inner):
                if not isinstance(sub, dict):
                    raise TranslationError("each tool must be an object", f"{param}.tools[{j}]",
                                           "invalid_type")
                _add(out, sub, f"{param}.tools[{j}]", ns)
        elif kind == "web_search" and tool.get("external_web_access") is False:
            out.warnings.append(f"{param}: cached web_search is not available for {model_family}; left out")
        elif isinstance(kind, str) and kind in _HOSTED:
            raise TranslationError(
                f"the hosted tool '{kind}' runs on OpenAI's servers and is not available for {model_family}; "
                "remove it from 'tools' (or use an OpenAI model)", f"{param}.type", "unsupported_value")
        else:
            raise TranslationError(f"tool type '{kind}' is not supported", f"{param}.type",
                                   "unsupported_value")
    return out


def parse_tool_choice(body: dict[str, Any], tools: ToolSet) -> ToolChoice | None:
    """The client's tool_choice (None: not given, or given without tools)."""
    choice = body.get("tool_choice")
    if choice is None or not tools.tools:
        return None
    if choice in ("auto", "none", "required"):
        return ToolChoice(choice)
    if not isinstance(choice, dict):
        raise TranslationError("unsupported 'tool_choice' value", "tool_choice", "invalid_value")
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = choice.get("name")
        ns = choice.get("namespace")
        wire = tools.wire_name(name, ns if isinstance(ns, str) else None) if isinstance(name, str) else ""
        if wire not in tools.by_wire:
            raise TranslationError(f"tool_choice names '{name}', which is not in 'tools'", "tool_choice",
                                   "invalid_value")
        return ToolChoice("tool", wire)
    if kind == "allowed_tools":
        mode = choice.get("mode", "auto")
        listed = choice.get("tools")
        if mode not in ("auto", "required") or not isinstance(listed, list):
            raise TranslationError("allowed_tools needs a mode (auto or required) and a 'tools' list",
                                   "tool_choice", "invalid_value")
        allowed = {tools.wire_name(t.get("name", ""), t.get("namespace")) for t in listed
                   if isinstance(t, dict) and t.get("type") in ("function", "custom")}
        return ToolChoice("required" if mode == "required" else "auto", allowed=allowed & set(tools.by_wire))
    raise TranslationError(f"tool_choice type '{kind}' (a hosted tool) is not available here",
                           "tool_choice", "unsupported_value")

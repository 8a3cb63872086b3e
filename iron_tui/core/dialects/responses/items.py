"""A Responses request's `input` as neutral, validated items (what every Responses pair translates from).

`input` is a string (one user message) or a list of items: messages (`role` user / assistant / system /
developer, content a string or parts), `function_call` / `function_call_output`, `custom_tool_call` /
`custom_tool_call_output`, and `reasoning`. With `previous_response_id` the stored items of the earlier
responses come first (`RequestContext.previous_items`). Items that only a hosted OpenAI tool produces
(web_search_call, computer_call, …) and `item_reference` cannot be served and are refused by name.

Checks OpenAI itself makes and that would otherwise surface as a confusing upstream error are made here
with OpenAI's own wording: every function call needs its output and every output its call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from iron_tui.core.dialects.base import TranslationError

__all__ = [
    "Item",
    "Message",
    "Part",
    "Reasoning",
    "ToolCall",
    "ToolOutput",
    "parse_input",
]

PartKind = Literal["text", "image", "file"]


@dataclass(slots=True)
class Part:
    """One content part: text, an image or a file (`url` is http(s) or a `data:` URI)."""

    kind: PartKind
    text: str = ""
    url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    detail: str | None = None
    param: str = ""


@dataclass(slots=True)
class Message:
    role: Literal["user", "assistant", "system"]  # developer messages are system messages
    parts: list[Part]
    param: str
    refusal: bool = False  # an assistant refusal part


@dataclass(slots=True)
class ToolCall:
    kind: Literal["function", "custom"]
    call_id: str
    name: str
    namespace: str | None
    payload: str  # function: the arguments JSON text; custom: the free-form input
    param: str


@dataclass(slots=True)
class ToolOutput:
    kind: Literal["function", "custom"]
    call_id: str
    output: str | list[Part]
    param: str


@dataclass(slots=True)
class Reasoning:
    """A reasoning item: its summary text and its opaque `encrypted_content` (None when absent)."""

    summary: str
    encrypted: str | None
    text: str  # `content` reasoning_text parts (raw reasoning), joined
    param: str


Item = Message | ToolCall | ToolOutput | Reasoning

_ROLES: dict[object, Literal["user", "assistant", "system"]] = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
}
# Items a hosted OpenAI tool (or an OpenAI-side store) produced: nothing outside OpenAI can replay them.
_HOSTED_ITEMS = frozenset({
    "web_search_call", "file_search_call", "computer_call", "computer_call_output", "code_interpreter_call",
    "image_generation_call", "local_shell_call", "local_shell_call_output", "shell_call", "shell_call_output",
    "apply_patch_call", "apply_patch_call_output", "mcp_list_tools", "mcp_approval_request",
    "mcp_approval_response", "mcp_call", "tool_search_call", "tool_search_output", "compaction",
})  # fmt: skip


def _bad(message: str, param: str, code: str = "invalid_value") -> TranslationError:
    return TranslationError(message, param, code)


def _str(obj: dict[str, Any], key: str, param: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return ""
    raise _bad(f"'{key}' must be a non-empty string", f"{param}.{key}", "invalid_type")


def _parts(content: object, param: str, *, role: str) -> tuple[list[Part], bool]:
    """(parts, refusal) of a message `content` or a tool `output` list."""
    if isinstance(content, str):
        return ([Part("text", content, param=param)] if content else []), False
    if not isinstance(content, list):
        raise _bad("content must be a string or a list of content parts", param, "invalid_type")
    parts: list[Part] = []
    refusal = False
    for j, raw in enumerate(content):
        p = f"{param}[{j}]"
        if not isinstance(raw, dict):
            raise _bad("content parts must be objects", p, "invalid_type")
        kind = raw.get("type")
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            parts.append(Part("text", _str(raw, "text", p, required=False), param=p))
        elif kind == "refusal":
            parts.append(Part("text", _str(raw, "refusal", p, required=False), param=p))
            refusal = True
        elif kind == "input_image" and role != "assistant":
            url, file_id = raw.get("image_url"), raw.get("file_id")
            if not isinstance(url, str) and not isinstance(file_id, str):
                raise _bad("input_image needs an 'image_url' or a 'file_id'", p)
            detail = raw.get("detail")
            parts.append(Part("image", url=url if isinstance(url, str) else None,
                              file_id=file_id if isinstance(file_id, str) else None,
                              detail=detail if isinstance(detail, str) else None, param=p))
        elif kind == "input_file" and role != "assistant":
            data, url, file_id = raw.get("file_data"), raw.get("file_url"), raw.get("file_id")
            name = raw.get("filename")
            chosen = data if isinstance(data, str) else url if isinstance(url, str) else None
            if chosen is None and not isinstance(file_id, str):
                raise _bad("input_file needs 'file_data', 'file_url' or 'file_id'", p)
            if isinstance(data, str) and not data.startswith("data:"):
                # OpenAI accepts bare base64 with a filename; keep it as a data URI for the renderers.
                chosen = "data:" + _media_type_for(name) + ";base64," + data
            parts.append(Part("file", url=chosen, file_id=file_id if isinstance(file_id, str) else None,
                              filename=name if isinstance(name, str) else None, param=p))
        elif kind == "input_audio":
            raise _bad("audio input is not supported by this translation", p, "unsupported_value")
        else:
            raise _bad(f"content part type '{kind}' is not supported here", f"{p}.type", "unsupported_value")
    return parts, refusal


def _media_type_for(filename: object) -> str:
    name = filename.lower() if isinstance(filename, str) else ""
    if name.endswith(".pdf"):
        return "application/pdf"
    if name.endswith((".txt", ".md", ".csv", ".json", ".py")):
        return "text/plain"
    return "application/octet-stream"


def _tool_output(raw: dict[str, Any], p: str) -> str | list[Part]:
    out = raw.get("output")
    if isinstance(out, str):
        return out
    if isinstance(out, list):
        return _parts(out, f"{p}.output", role="tool")[0]
    if out is None:
        return ""
    raise _bad("'output' must be a string or a list of content parts", f"{p}.output", "invalid_type")


def _item(raw: object, p: str) -> Item | None:
    if isinstance(raw, str):  # tolerated, like the API: a bare string is a user message
        return Message("user", [Part("text", raw, param=p)], p)
    if not isinstance(raw, dict):
        raise _bad("each input item must be an object", p, "invalid_type")
    kind = raw.get("type")
    if kind is None or kind == "message":
        role_name = raw.get("role")
        role = _ROLES.get(role_name) if isinstance(role_name, str) else None
        if role is None:
            raise _bad(f"message role '{raw.get('role')}' is not supported; use user, assistant, system or "
                       "developer", f"{p}.role")
        parts, refusal = _parts(raw.get("content"), f"{p}.content", role=role)
        return Message(role, parts, p, refusal)
    if kind in ("function_call", "custom_tool_call"):
        is_fn = kind == "function_call"
        payload = raw.get("arguments" if is_fn else "input")
        namespace = raw.get("namespace")
        return ToolCall("function" if is_fn else "custom", _str(raw, "call_id", p), _str(raw, "name", p),
                        namespace if isinstance(namespace, str) and namespace else None,
                        payload if isinstance(payload, str) else "", p)
    if kind in ("function_call_output", "custom_tool_call_output"):
        return ToolOutput("function" if kind == "function_call_output" else "custom",
                          _str(raw, "call_id", p), _tool_output(raw, p), p)
    if kind == "reasoning":
        summary = raw.get("summary")
        texts = [s.get("text") for s in summary if isinstance(s, dict)] if isinstance(summary, list) else []
        content = raw.get("content")
        raw_texts = [c.get("text") for c in content if isinstance(c, dict)] if isinstance(content, list) else []
        enc = raw.get("encrypted_content")
        return Reasoning("\n\n".join(t for t in texts if isinstance(t, str)),
                         enc if isinstance(enc, str) and enc else None,
                         "\n\n".join(t for t in raw_texts if isinstance(t, str)), p)
    if kind == "item_reference":
        raise _bad("item_reference items cannot be resolved for this model: send the items themselves, or "
                   "use previous_response_id", p, "unsupported_value")
    if isinstance(kind, str) and kind in _HOSTED_ITEMS:
        raise _bad(f"'{kind}' items come from a hosted OpenAI tool and cannot be sent to this model",
                   f"{p}.type", "unsupported_value")
    raise _bad(f"input item type '{kind}' is not supported", f"{p}.type", "unsupported_value")


@dataclass(slots=True)
class _Pairing:
    calls: dict[str, ToolCall] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)


def parse_input(body: dict[str, Any], previous: list[dict[str, Any]] | None) -> list[Item]:
    """The conversation as neutral items: the stored history first, then this request's `input`."""
    raw = body.get("input")
    items: list[Item] = []
    for i, stored in enumerate(previous or ()):
        item = _item(stored, f"previous_response_id[{i}]")
        if item is not None:
            items.append(item)
    if isinstance(raw, str):
        items.append(Message("user", [Part("text", raw, param="input")], "input"))
    elif isinstance(raw, list):
        for i, entry in enumerate(raw):
            item = _item(entry, f"input[{i}]")
            if item is not None:
                items.append(item)
    elif raw is not None:
        raise _bad("'input' must be a string or a list of items", "input", "invalid_type")
    _check_pairing(items)
    return items


def _check_pairing(items: list[Item]) -> None:
    """OpenAI's own 400s for a broken tool history (the upstream would refuse it less clearly)."""
    seen = _Pairing()
    for item in items:
        if isinstance(item, ToolCall):
            seen.calls[item.call_id] = item
        elif isinstance(item, ToolOutput):
            if item.call_id not in seen.calls:
                raise _bad(f"No tool call found for function call output with call_id {item.call_id}.",
                           "input")
            seen.answered.add(item.call_id)
    for call_id in seen.calls:
        if call_id not in seen.answered:
            raise _bad(f"No tool output found for function call {call_id}.", "input")

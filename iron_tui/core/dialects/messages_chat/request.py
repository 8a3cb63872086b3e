"""Anthropic Messages request → OpenAI Chat Completions request (for a non-Claude model on /v1/messages).

| Anthropic | OpenAI chat |
|---|---|
| `system` (string or text blocks) | a leading `system` message |
| mid-conversation `role: "system"` messages (Claude Code) | `system` messages in place for OpenAI models; folded into the leading system message for other providers (many chat templates refuse a late system message) |
| text / image (base64, url) / document (PDF base64, plain text) blocks | text / `image_url` / `file` parts |
| assistant `tool_use` blocks | `tool_calls` (`arguments` = JSON text of `input`) |
| user `tool_result` blocks | one `tool` message each, right after the assistant turn; `is_error` → text prefixed "Error: "; images in a result go in a user message after the tool messages |
| `thinking` / `redacted_thinking` blocks in the history | dropped (no Chat Completions equivalent) |
| tools `{name, description, input_schema}` | `{type: function, function: {name, description, parameters}}` |
| `tool_choice` auto / any / tool / none, `disable_parallel_tool_use` | "auto" / "required" / `{function: {name}}` / "none", `parallel_tool_calls: false` |
| `max_tokens` | `max_completion_tokens` |
| `stop_sequences` | `stop` (at most 4; not sent to reasoning models, which refuse it) |
| `temperature`, `top_p` | same (not sent to reasoning models); `top_k` dropped |
| `metadata.user_id` | `user` (hashed when longer than 64 characters) |
| `thinking` / `output_config.effort` | `reasoning_effort` for reasoning models (o-series, gpt-5); dropped for others |
| `output_config.format` json_schema | `response_format` json_schema |
| `stream: true` | `stream: true` + `stream_options.include_usage` (usage is always asked for) |
| `cache_control` anywhere, `service_tier`, `context_management` | dropped |
| server tools (web search, code execution, bash…), `mcp_servers`, `container`, server-tool blocks | TranslationError: they run on Anthropic's servers |
"""

from __future__ import annotations

import hashlib
from typing import Any

from iron_tui.core.bounded_json import nesting_exceeds
from iron_tui.core.dialects.base import RequestContext, Translated, TranslationError
from iron_tui.core.dialects.messages_chat.models import is_openai_family, is_reasoning_model
from iron_tui.core.dialects.messages_chat.tools import tool_choice_to_chat, tool_use_to_call, tools_to_chat

__all__ = ["messages_to_chat_request", "reasoning_effort_for"]

_MAX_STOP = 4  # OpenAI's limit on `stop` entries
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_SERVER_BLOCKS = frozenset(
    {"server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
     "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "mcp_tool_use",
     "mcp_tool_result", "container_upload", "tool_search_tool_result"}
)  # fmt: skip
_REFUSED_KEYS = {"mcp_servers": "MCP connectors", "container": "code-execution containers"}
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high"}


def _bad(message: str, param: str | None, code: str = "invalid_request_error") -> TranslationError:
    return TranslationError(message, param, code)


def reasoning_effort_for(thinking: object, output_config: object) -> str | None:
    """OpenAI `reasoning_effort` for Anthropic's `thinking` / `output_config.effort`, or None."""
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    if isinstance(effort, str) and effort in _EFFORTS:
        return _EFFORTS[effort]
    if not isinstance(thinking, dict):
        return None
    kind = thinking.get("type")
    if kind == "adaptive":
        return "medium"
    if kind != "enabled":
        return None  # "disabled": the provider's default, never a guess at a "none" level
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        return "medium"
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def _text_of(blocks: list[dict[str, Any]]) -> str:
    return "\n\n".join(b["text"] for b in blocks if b.get("type") == "text")


def _image_part(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        media, data = source.get("media_type"), source.get("data")
        if media not in _IMAGE_TYPES or not isinstance(data, str) or not data:
            raise _bad("image source needs a supported media_type (jpeg, png, gif, webp) and data",
                       f"{param}.source")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise _bad(f"image source type {kind!r} cannot be sent to this model (use base64 or url)",
               f"{param}.source")


def _document_parts(block: dict[str, Any], param: str) -> list[dict[str, Any]]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict) and source.get("media_type") == "application/pdf" \
            and isinstance(source.get("data"), str):
        name = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
        data = f"data:application/pdf;base64,{source['data']}"
        return [{"type": "file", "file": {"filename": name, "file_data": data}}]
    if kind == "text" and isinstance(source, dict) and isinstance(source.get("data"), str):
        return [{"type": "text", "text": source["data"]}] if source["data"] else []
    if kind == "content" and isinstance(source, dict) and isinstance(source.get("content"), list | str):
        return _parts(source["content"], f"{param}.source.content")
    raise _bad(f"document source type {kind!r} cannot be sent to this model (use base64 PDF or text)",
               f"{param}.source")


def _block_type(block: dict[str, Any], param: str) -> str | None:
    """A content block's `type`: a string, or absent (then no known type matches)."""
    kind = block.get("type")
    if kind is not None and not isinstance(kind, str):  # (a list or an object cannot be looked up in a set)
        raise _bad(f"a content block's 'type' must be a string, not {type(kind).__name__}", f"{param}.type")
    return kind


def _parts(content: object, param: str) -> list[dict[str, Any]]:
    """OpenAI content parts for user-side Anthropic blocks (text, image, document)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise _bad("content must be a string or a list of content blocks", param)
    out: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        bparam = f"{param}.{j}"
        if not isinstance(block, dict):
            raise _bad("content blocks must be objects", bparam)
        kind = _block_type(block, bparam)
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise _bad("text block needs a string 'text'", bparam)
            if block["text"]:
                out.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            out.append(_image_part(block, bparam))
        elif kind == "document":
            out.extend(_document_parts(block, bparam))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        elif kind in _SERVER_BLOCKS:
            raise _bad(f"'{kind}' blocks come from Anthropic server tools and cannot be sent to this model",
                       bparam)
        else:
            raise _bad(f"content block type {kind!r} is not supported for this model", bparam)
    return out


def _single_text(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    # One text part as a plain string: the form every OpenAI-compatible server accepts.
    return parts[0]["text"] if len(parts) == 1 and parts[0]["type"] == "text" else parts


class _Conversation:
    __slots__ = ("late_system", "messages", "openai", "system", "warnings")

    def __init__(self, openai: bool, warnings: list[str]) -> None:
        self.openai = openai
        self.system: list[str] = []
        self.late_system: list[str] = []  # folded into the leading system message (non-OpenAI targets)
        self.messages: list[dict[str, Any]] = []
        self.warnings = warnings

    def add_system(self, content: object, param: str) -> None:
        parts = _parts(content, param)
        if any(p["type"] != "text" for p in parts):
            raise _bad("system messages may only contain text", param)
        text = _text_of(parts)
        if not text:
            return
        if self.openai:
            self.messages.append({"role": "system", "content": text})
        else:
            self.late_system.append(text)

    def add_user(self, content: object, param: str) -> None:
        if isinstance(content, str):
            if content:
                self.messages.append({"role": "user", "content": content})
            return
        if not isinstance(content, list):
            raise _bad("content must be a string or a list of content blocks", f"{param}.content")
        rest: list[Any] = []
        images: list[dict[str, Any]] = []
        for j, block in enumerate(content):
            if isinstance(block, dict) and block.get("type") == "tool_result":
                images.extend(self._tool_result(block, f"{param}.content.{j}"))
            else:
                rest.append(block)
        parts = images + _parts(rest, f"{param}.content")
        if parts:
            self.messages.append({"role": "user", "content": _single_text(parts)})

    def _tool_result(self, block: dict[str, Any], param: str) -> list[dict[str, Any]]:
        call_id = block.get("tool_use_id")
        if not isinstance(call_id, str) or not call_id:
            raise _bad("tool_result needs a 'tool_use_id'", f"{param}.tool_use_id")
        content = block.get("content")
        parts = _parts(content, f"{param}.content") if content is not None else []
        text = _text_of(parts)
        images = [p for p in parts if p["type"] != "text"]
        if block.get("is_error") is True:
            text = f"Error: {text}" if text else "Error"
        if images:
            note = f"(the result of tool call {call_id} includes {len(images)} attachment(s), below)"
            text = f"{text}\n{note}" if text else note
            self.warnings.append(f"{param}: tool result attachments sent in a user message")
            images = [{"type": "text", "text": f"Attachments from tool call {call_id}:"}, *images]
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
        return images

    def add_assistant(self, content: object, param: str) -> None:
        if isinstance(content, str):
            if content:
                self.messages.append({"role": "assistant", "content": content})
            return
        if not isinstance(content, list):
            raise _bad("content must be a string or a list of content blocks", f"{param}.content")
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for j, block in enumerate(content):
            bparam = f"{param}.content.{j}"
            if not isinstance(block, dict):
                raise _bad("content blocks must be objects", bparam)
            kind = _block_type(block, bparam)
            if kind == "text" and isinstance(block.get("text"), str):
                if block["text"]:
                    texts.append(block["text"])
            elif kind == "tool_use":
                calls.append(tool_use_to_call(block, bparam))
            elif kind in ("thinking", "redacted_thinking"):
                continue  # Chat Completions has no way to hand reasoning back
            elif kind in _SERVER_BLOCKS:
                raise _bad(f"'{kind}' blocks come from Anthropic server tools and cannot be sent to this "
                           "model", bparam)
            else:
                raise _bad(f"content block type {kind!r} is not allowed in an assistant message", bparam)
        if not texts and not calls:
            return
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
        if calls:
            message["tool_calls"] = calls
        self.messages.append(message)


def _number(body: dict[str, Any], name: str) -> float | int | None:
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _bad(f"{name} must be a number", name)
    return value


def _sampling(body: dict[str, Any], out: dict[str, Any], reasoning: bool, warnings: list[str]) -> None:
    temperature, top_p = _number(body, "temperature"), _number(body, "top_p")
    if body.get("top_k") is not None:
        warnings.append("top_k not sent: OpenAI chat has no top_k")
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise _bad("stop_sequences must be a list of strings", "stop_sequences")
    if reasoning:
        dropped = [n for n, v in (("temperature", temperature), ("top_p", top_p), ("stop_sequences", stops))
                   if v not in (None, [])]
        if dropped:
            warnings.append(f"not sent to a reasoning model (it refuses them): {', '.join(dropped)}")
        return
    if temperature is not None:
        out["temperature"] = temperature
    if top_p is not None:
        out["top_p"] = top_p
    if stops:
        if len(stops) > _MAX_STOP:
            warnings.append(f"stop_sequences: only the first {_MAX_STOP} were sent (OpenAI's limit)")
        out["stop"] = stops[:_MAX_STOP]


def _structured_output(output_config: object, out: dict[str, Any]) -> None:
    fmt = output_config.get("format") if isinstance(output_config, dict) else None
    if fmt is None:
        return
    schema = fmt.get("schema") if isinstance(fmt, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(schema, dict) \
            or nesting_exceeds(schema):
        raise _bad("output_config.format must be {type: json_schema, schema: {...}}", "output_config.format")
    out["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def _user(metadata: object) -> str | None:
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user, str) or not user:
        return None
    # OpenAI caps end-user identifiers at 64 characters; Claude Code's are longer. A digest keeps
    # them distinct and stable without sending a truncated (colliding) prefix.
    return user if len(user) <= 64 else hashlib.sha256(user.encode()).hexdigest()


def messages_to_chat_request(body: dict[str, Any], ctx: RequestContext) -> Translated:
    """Translate an Anthropic Messages body for `ctx.model` on an OpenAI Chat Completions provider."""
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object", None)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: at least one message is required", "messages")
    for key, what in _REFUSED_KEYS.items():
        if body.get(key) is not None:
            raise _bad(f"{key}: {what} run on Anthropic's servers and are not available for model "
                       f"{ctx.client_model!r}", key)
    warnings: list[str] = []
    conv = _Conversation(is_openai_family(ctx.model), warnings)
    system = body.get("system")
    if system is not None:
        parts = _parts(system, "system")
        if any(p["type"] != "text" for p in parts):
            raise _bad("system may only contain text blocks", "system")
        conv.system.append(_text_of(parts))
    for i, message in enumerate(messages):
        param = f"messages.{i}"
        if not isinstance(message, dict):
            raise _bad("each message must be an object", param)
        role, content = message.get("role"), message.get("content")
        if role == "user":
            conv.add_user(content, param)
        elif role == "assistant":
            conv.add_assistant(content, param)
        elif role == "system":
            conv.add_system(content, f"{param}.content")
        else:
            raise _bad("role must be 'user', 'assistant' or 'system'", f"{param}.role")
    if conv.late_system:
        warnings.append("mid-conversation system messages were folded into the first system message")
    leading = "\n\n".join(t for t in conv.system + conv.late_system if t)
    chat_messages = ([{"role": "system", "content": leading}] if leading else []) + conv.messages
    if not any(m["role"] != "system" for m in chat_messages):
        raise _bad("messages: all messages are empty", "messages")
    if chat_messages[-1]["role"] == "assistant":
        warnings.append("a final assistant message (prefill) is sent as history; OpenAI does not continue it")

    reasoning = is_reasoning_model(ctx.model)
    out: dict[str, Any] = {"model": ctx.model, "messages": chat_messages}
    max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise _bad("max_tokens must be a positive integer", "max_tokens")
        out["max_completion_tokens"] = max_tokens
    _sampling(body, out, reasoning, warnings)
    effort = reasoning_effort_for(body.get("thinking"), body.get("output_config"))
    if effort is not None:
        if reasoning:
            out["reasoning_effort"] = effort
        else:
            warnings.append(f"thinking not sent: {ctx.model} is not a reasoning model")
    _structured_output(body.get("output_config"), out)
    user = _user(body.get("metadata"))
    if user is not None:
        out["user"] = user
    tools = body.get("tools")
    if tools:
        out["tools"] = tools_to_chat(tools, body.get("tool_choice"), warnings)
        if not out["tools"]:
            del out["tools"]
        else:
            tool_choice_to_chat(body.get("tool_choice"), out)
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return Translated(out, "/v1/chat/completions", True, warnings)

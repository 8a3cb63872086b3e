"""Opt-in prompt and completion capture (`otel_capture_content`): the GenAI convention's
`gen_ai.system_instructions`, `gen_ai.input.messages` and `gen_ai.output.messages` attributes,
as JSON text, built from the stored request and response previews. Those previews are already
truncated and key-redacted like everything iron-tui stores; the JSON is redacted once more after
it is rebuilt. A preview cut short (a long conversation) gives what it holds, or nothing.

Recognises Chat Completions, Anthropic Messages and Responses shapes by their keys, so it serves
every dialect pair without knowing which one ran.
"""

from __future__ import annotations

from typing import Any

import orjson

from iron_tui.core.events import RequestRecord
from iron_tui.core.redact import redact_text

MAX_ATTRIBUTE_CHARS = 32_768
Part = dict[str, Any]


def content_attributes(rec: RequestRecord) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    body = _json(rec.request_body)
    if isinstance(body, dict):
        system = _system(body)
        if system:
            out.append(("gen_ai.system_instructions", _dump(system)))
        messages = _input_messages(body)
        if messages:
            out.append(("gen_ai.input.messages", _dump(messages)))
    output = _output_messages(rec.upstream_response or "", rec.stream) if rec.state == "ok" else []
    if output:
        out.append(("gen_ai.output.messages", _dump(output)))
    return out


def _dump(value: Any) -> str:
    text = redact_text(orjson.dumps(value).decode())
    return text if len(text) <= MAX_ATTRIBUTE_CHARS else text[:MAX_ATTRIBUTE_CHARS] + "…"


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except (ValueError, RecursionError):
        return None


def _parts(content: Any) -> list[Part]:
    """Message content (a string, or a list of typed blocks in any of the three APIs) as parts."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[Part] = []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if isinstance(block.get("text"), str):  # text, input_text, output_text
            parts.append({"type": "text", "content": block["text"]})
        elif kind in ("tool_use", "function_call"):
            parts.append({"type": "tool_call", "id": block.get("id") or block.get("call_id"),
                          "name": block.get("name"), "arguments": block.get("input", block.get("arguments"))})
        elif kind in ("tool_result", "function_call_output"):
            parts.append({"type": "tool_call_response", "id": block.get("tool_use_id") or block.get("call_id"),
                          "response": block.get("content", block.get("output"))})
    return parts


def _system(body: dict[str, Any]) -> list[Part]:
    return _parts(body.get("system", body.get("instructions")))


def _input_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("messages", body.get("input"))
    if isinstance(items, str):
        return [{"role": "user", "parts": _parts(items)}]
    out: list[dict[str, Any]] = []
    for m in items if isinstance(items, list) else ():
        if not isinstance(m, dict):
            continue
        if "role" not in m:  # a Responses API item such as function_call / function_call_output
            parts = _parts([m])
            if parts:
                out.append({"role": "tool" if parts[0]["type"] == "tool_call_response" else "assistant",
                            "parts": parts})
            continue
        parts = _parts(m.get("content"))
        for call in m.get("tool_calls") or ():  # Chat Completions assistant tool calls
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                parts.append({"type": "tool_call", "id": call.get("id"), "name": call["function"].get("name"),
                              "arguments": call["function"].get("arguments")})
        if m.get("role") == "tool":
            parts = [{"type": "tool_call_response", "id": m.get("tool_call_id"), "response": m.get("content")}]
        out.append({"role": m.get("role"), "parts": parts})
    return out


def _output_messages(text: str, stream: bool) -> list[dict[str, Any]]:
    if stream:
        return _stream_output(text)
    body = _json(text)
    if not isinstance(body, dict):
        return []
    if isinstance(body.get("choices"), list):  # Chat Completions
        out = []
        for c in body["choices"]:
            msg = c.get("message") if isinstance(c, dict) else None
            if isinstance(msg, dict):
                out.append({"role": msg.get("role") or "assistant",
                            "parts": _input_messages({"messages": [msg]})[0]["parts"],
                            "finish_reason": c.get("finish_reason")})
        return out
    if isinstance(body.get("content"), list):  # Anthropic Messages
        return [{"role": "assistant", "parts": _parts(body["content"]), "finish_reason": body.get("stop_reason")}]
    if isinstance(body.get("output"), list):  # Responses
        parts: list[Part] = []
        for item in body["output"]:
            if isinstance(item, dict):
                parts.extend(_parts(item.get("content")) if item.get("type") == "message" else _parts([item]))
        return [{"role": "assistant", "parts": parts, "finish_reason": body.get("status")}]
    return []


def _stream_output(text: str) -> list[dict[str, Any]]:
    """The text a relayed SSE stream carried, as one assistant message."""
    chunks: list[str] = []
    reason: Any = None
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        obj = _json(line[5:].strip())
        if not isinstance(obj, dict):
            continue
        for c in obj.get("choices") or ():  # Chat Completions chunk
            if isinstance(c, dict):
                delta = c.get("delta")
                if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                    chunks.append(delta["content"])
                reason = c.get("finish_reason") or reason
        delta = obj.get("delta")
        if isinstance(delta, dict):  # Anthropic content_block_delta / message_delta
            if isinstance(delta.get("text"), str):
                chunks.append(delta["text"])
            reason = delta.get("stop_reason") or reason
        elif obj.get("type") == "response.output_text.delta" and isinstance(delta, str):
            chunks.append(delta)
        elif str(obj.get("type", "")).startswith("response.") and isinstance(obj.get("response"), dict):
            reason = obj["response"].get("status") or reason
    if not chunks:
        return []
    return [{"role": "assistant", "parts": [{"type": "text", "content": "".join(chunks)}],
             "finish_reason": reason}]

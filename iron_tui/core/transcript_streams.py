"""Assembling the answer from a recorded SSE stream, for each dialect's event format."""

from __future__ import annotations

import json
from typing import Any

from iron_tui.core.proxy.sse import SSEParser
from iron_tui.core.transcript import (
    Block,
    Transcript,
    Turn,
    as_dict,
    as_int,
    as_list,
    as_text,
    pretty_args,
    with_notes,
)
from iron_tui.core.transcript_bodies import anthropic_blocks_of, responses_response

# --- recorded streams ----------------------------------------------------------------------------


def sse_events(text: str) -> list[tuple[str, Any]]:
    """(event name, parsed JSON data or None when not JSON) of a recorded stream; `[DONE]` dropped."""
    parser = SSEParser()
    raw = parser.feed(text.encode("utf-8", "replace")) + parser.flush()
    out: list[tuple[str, Any]] = []
    for name, data, _ in raw:
        if data.strip() == "[DONE]":
            continue
        try:
            out.append((name, json.loads(data)))
        except ValueError:
            out.append((name, None))
    return out


def parse_stream(text: str, hint: str | None) -> Transcript:
    events = sse_events(text)
    names = {name for name, _ in events} | {as_text(as_dict(d).get("type")) for _, d in events}
    responses = any(n.startswith("response.") for n in names)
    if "message_start" in names or "content_block_delta" in names or (hint == "anthropic.messages"
                                                                       and not responses):
        t = _anthropic_stream(events)
    elif responses:
        t = _responses_stream(events)
    else:
        t = _chat_stream(events)
    bad = sum(1 for _, data in events if data is None)
    if bad:
        t = with_notes(t, [f"{bad} stream events were not JSON (cut off?)"])
    return t


def _chat_stream(events: list[tuple[str, Any]]) -> Transcript:
    content: list[str] = []
    thinking: list[str] = []
    tools: dict[int, dict[str, str]] = {}
    stop = model = None
    usage: dict[str, Any] | None = None
    notes: list[str] = []
    for _name, data in events:
        d = as_dict(data)
        if "error" in d:
            notes.append(f"stream error: {as_text(as_dict(d['error']).get('message') or d['error'])}")
            continue
        model = model or (as_text(d.get("model")) or None)
        if d.get("usage"):
            usage = as_dict(d.get("usage"))
        for c in as_list(d.get("choices")):
            c = as_dict(c)
            delta = as_dict(c.get("delta"))
            if delta.get("content"):
                content.append(as_text(delta["content"]))
            if delta.get("reasoning_content") or delta.get("reasoning"):
                thinking.append(as_text(delta.get("reasoning_content") or delta.get("reasoning")))
            for tc in as_list(delta.get("tool_calls")):
                tc = as_dict(tc)
                slot = tools.setdefault(as_int(tc.get("index")), {"id": "", "name": "", "args": ""})
                fn = as_dict(tc.get("function"))
                slot["id"] = slot["id"] or as_text(tc.get("id"))
                slot["name"] += as_text(fn.get("name"))
                slot["args"] += as_text(fn.get("arguments"))
            stop = stop or (as_text(c.get("finish_reason")) or None)
    blocks: list[Block] = []
    if thinking:
        blocks.append(Block("thinking", "".join(thinking)))
    if content:
        blocks.append(Block("text", "".join(content)))
    for _, slot in sorted(tools.items()):
        blocks.append(Block("tool_call", pretty_args(slot["args"]), name=slot["name"] or "?", ref=slot["id"] or None))
    return Transcript("openai.chat", "response", (Turn("assistant", tuple(blocks)),), model, stop_reason=stop,
                      usage=usage, streamed=True, notes=tuple(notes))


def _anthropic_stream(events: list[tuple[str, Any]]) -> Transcript:
    blocks: dict[int, dict[str, Any]] = {}
    stop = model = None
    usage: dict[str, Any] = {}
    notes: list[str] = []
    for name, data in events:
        d = as_dict(data)
        kind = d.get("type") or name
        if kind == "message_start":
            msg = as_dict(d.get("message"))
            model = as_text(msg.get("model")) or None
            usage.update(as_dict(msg.get("usage")))
        elif kind == "content_block_start":
            blocks[as_int(d.get("index"))] = dict(as_dict(d.get("content_block")))
        elif kind == "content_block_delta":
            b = blocks.setdefault(as_int(d.get("index")), {"type": "text", "text": ""})
            delta = as_dict(d.get("delta"))
            dk = delta.get("type")
            if dk == "text_delta":
                b["text"] = as_text(b.get("text")) + as_text(delta.get("text"))
            elif dk == "thinking_delta":
                b["thinking"] = as_text(b.get("thinking")) + as_text(delta.get("thinking"))
            elif dk == "input_json_delta":
                b["_json"] = as_text(b.get("_json")) + as_text(delta.get("partial_json"))
        elif kind == "message_delta":
            stop = as_text(as_dict(d.get("delta")).get("stop_reason")) or stop
            usage.update(as_dict(d.get("usage")))
        elif kind == "error":
            notes.append(f"stream error: {as_text(as_dict(d.get('error')).get('message') or d)}")
    content = []
    for _, b in sorted(blocks.items()):
        if "_json" in b:
            raw = b.pop("_json")
            try:
                b["input"] = json.loads(raw) if raw else b.get("input", {})
            except ValueError:
                b["input"] = raw
        content.append(b)
    turn = Turn("assistant", tuple(anthropic_blocks_of(content)))
    return Transcript("anthropic.messages", "response", (turn,), model, stop_reason=stop or None,
                      usage=usage or None, streamed=True, notes=tuple(notes))


def _responses_stream(events: list[tuple[str, Any]]) -> Transcript:
    final: dict[str, Any] | None = None
    items: dict[int, Any] = {}
    texts: dict[int, list[str]] = {}
    notes: list[str] = []
    for name, data in events:
        d = as_dict(data)
        kind = d.get("type") or name
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            final = as_dict(d.get("response"))
        elif kind == "response.output_item.done":
            items[as_int(d.get("output_index"))] = d.get("item")
        elif kind == "response.output_text.delta":
            texts.setdefault(as_int(d.get("output_index")), []).append(as_text(d.get("delta")))
        elif kind in ("error", "response.error"):
            notes.append(f"stream error: {as_text(d.get('message') or as_dict(d.get('error')).get('message') or d)}")
    if final and final.get("output"):
        t = responses_response(final)
    else:
        for i, parts in texts.items():
            items.setdefault(i, {"type": "message", "role": "assistant",
                                 "content": [{"type": "output_text", "text": "".join(parts)}]})
        base = final or {}
        t = responses_response({**base, "output": [items[i] for i in sorted(items)]})
    return Transcript(t.dialect, "response", t.turns, t.model, (), (), t.stop_reason, t.usage, True,
                      (*t.notes, *notes))


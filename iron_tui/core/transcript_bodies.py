"""Reading request and response bodies of each dialect (OpenAI Chat Completions, OpenAI Responses,
Anthropic Messages) into transcripts. The dialect is recognised from the body itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iron_tui.core.transcript import (
    Block,
    Dialect,
    Transcript,
    Turn,
    as_dict,
    as_list,
    as_text,
    b64_size,
    image_block,
    pretty_args,
    read_parts,
)

# --- detection -----------------------------------------------------------------------------------


def detect(obj: dict[str, Any], hint: str | None = None) -> Dialect:
    """Which API a JSON body belongs to (request or response)."""
    if obj.get("object") == "response" or isinstance(obj.get("output"), list) or "input" in obj \
            or "instructions" in obj:
        return "openai.responses"
    if obj.get("type") == "message" or (obj.get("type") == "error" and "error" in obj):
        return "anthropic.messages"
    if "choices" in obj or obj.get("object") == "chat.completion":
        return "openai.chat"
    if "messages" in obj:
        if "system" in obj or _anthropic_blocks(obj["messages"]):
            return "anthropic.messages"
        if hint in ("openai.chat", "anthropic.messages"):
            return hint  # type: ignore[return-value]
        return "openai.chat"
    if hint in ("openai.chat", "openai.responses", "anthropic.messages"):
        return hint  # type: ignore[return-value]
    return "unknown"


def _anthropic_blocks(messages: Any) -> bool:
    for m in as_list(messages):
        for b in as_list(as_dict(m).get("content")):
            if as_dict(b).get("type") in ("tool_use", "tool_result", "thinking", "redacted_thinking", "image"):
                return True
    return False


def parse_object(obj: dict[str, Any], hint: str | None) -> Transcript:
    dialect = detect(obj, hint)
    if "error" in obj and not any(k in obj for k in ("messages", "choices", "output", "content", "input")):
        err = as_dict(obj.get("error"))
        text = as_text(err.get("message")) or as_text(obj.get("error"))
        kind = as_text(err.get("type") or err.get("code"))
        return Transcript(dialect, "response", (Turn("error", (Block("text", text, name=kind or None),)),))
    if dialect == "openai.chat":
        return _chat_response(obj) if "choices" in obj else _chat_request(obj)
    if dialect == "openai.responses":
        return responses_response(obj) if "output" in obj or obj.get("object") == "response" \
            else _responses_request(obj)
    if dialect == "anthropic.messages":
        is_response = obj.get("type") == "message" or ("role" in obj and "content" in obj and "messages" not in obj)
        return _anthropic_response(obj) if is_response else _anthropic_request(obj)
    return Transcript("unknown", "request", notes=("not a chat request or response: see the raw body",))


_SETTINGS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "temperature", "top_p", "stream",
             "tool_choice", "reasoning_effort", "previous_response_id", "store")


def _settings(obj: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    out = [(k, as_text(obj[k])) for k in _SETTINGS if k in obj]
    thinking = obj.get("thinking") or obj.get("reasoning")
    if thinking is not None:
        out.append(("thinking" if "thinking" in obj else "reasoning", as_text(thinking)))
    return tuple(out)


def _tool_names(tools: Any) -> tuple[str, ...]:
    names = []
    for t in as_list(tools):
        t = as_dict(t)
        names.append(as_text(as_dict(t.get("function")).get("name") or t.get("name") or t.get("type") or "?"))
    return tuple(names)


# --- OpenAI Chat Completions ---------------------------------------------------------------------


def _file(p: dict[str, Any]) -> Block:
    f = as_dict(p.get("file")) or p
    return Block("file", as_text(f.get("filename") or f.get("file_id") or f.get("title") or "file"))


_CHAT_PARTS: dict[str, Callable[[dict[str, Any]], Block]] = {
    "text": lambda p: Block("text", as_text(p.get("text"))),
    "image_url": lambda p: image_block(as_text(as_dict(p.get("image_url")).get("url") or p.get("image_url"))),
    "input_audio": lambda p: Block("audio", as_text(as_dict(p.get("input_audio")).get("format") or "audio")),
    "file": _file,
    "refusal": lambda p: Block("refusal", as_text(p.get("refusal"))),
}


def _chat_content(content: Any) -> list[Block]:
    return read_parts(content, _CHAT_PARTS)


def _chat_message(m: dict[str, Any]) -> Turn:
    role = as_text(m.get("role") or "?")
    blocks: list[Block] = []
    thinking = m.get("reasoning_content") or m.get("reasoning")
    if thinking:
        blocks.append(Block("thinking", as_text(thinking)))
    if role == "tool":
        text = "\n".join(b.text for b in _chat_content(m.get("content")))
        return Turn("tool", (Block("tool_result", text, ref=as_text(m.get("tool_call_id")) or None),))
    blocks.extend(_chat_content(m.get("content")))
    if m.get("refusal"):
        blocks.append(Block("refusal", as_text(m.get("refusal"))))
    for tc in as_list(m.get("tool_calls")):
        tc = as_dict(tc)
        fn = as_dict(tc.get("function"))
        blocks.append(Block("tool_call", pretty_args(fn.get("arguments")), name=as_text(fn.get("name")) or "?",
                            ref=as_text(tc.get("id")) or None))
    fc = m.get("function_call")
    if isinstance(fc, dict):
        blocks.append(Block("tool_call", pretty_args(fc.get("arguments")), name=as_text(fc.get("name")) or "?"))
    return Turn(role, tuple(blocks))


def _chat_request(obj: dict[str, Any]) -> Transcript:
    turns = tuple(_chat_message(as_dict(m)) for m in as_list(obj.get("messages")))
    return Transcript("openai.chat", "request", turns, as_text(obj.get("model")) or None, _settings(obj),
                      _tool_names(obj.get("tools")))


def _chat_response(obj: dict[str, Any]) -> Transcript:
    choices = as_list(obj.get("choices"))
    turns: list[Turn] = []
    stop = None
    for c in choices:
        c = as_dict(c)
        turns.append(_chat_message({"role": "assistant", **as_dict(c.get("message"))}))
        stop = stop or (as_text(c.get("finish_reason")) or None)
    notes = (f"{len(choices)} choices",) if len(choices) > 1 else ()
    return Transcript("openai.chat", "response", tuple(turns), as_text(obj.get("model")) or None, stop_reason=stop,
                      usage=as_dict(obj.get("usage")) or None, notes=notes)


# --- OpenAI Responses ----------------------------------------------------------------------------


_RESPONSES_PARTS: dict[str, Callable[[dict[str, Any]], Block]] = {
    **dict.fromkeys(("input_text", "output_text", "text", "summary_text"),
                    lambda p: Block("text", as_text(p.get("text")))),
    "input_image": lambda p: image_block(as_text(p.get("image_url") or p.get("file_id") or "image")),
    "input_file": _file,
    "input_audio": lambda p: Block("audio", "audio"),
    "refusal": lambda p: Block("refusal", as_text(p.get("refusal"))),
}


def _responses_content(content: Any) -> list[Block]:
    return read_parts(content, _RESPONSES_PARTS)


def _responses_items(items: Any, default_role: str) -> list[Turn]:
    if isinstance(items, str):
        return [Turn("user", (Block("text", items),))]
    turns: list[Turn] = []
    for item in as_list(items):
        it = as_dict(item)
        kind = it.get("type")
        if kind in (None, "message"):
            turns.append(Turn(as_text(it.get("role") or default_role), tuple(_responses_content(it.get("content")))))
        elif kind in ("function_call", "custom_tool_call"):
            args = it.get("arguments") if kind == "function_call" else it.get("input")
            turns.append(Turn("assistant", (Block("tool_call", pretty_args(args), name=as_text(it.get("name")) or "?",
                                                  ref=as_text(it.get("call_id")) or None),)))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            turns.append(Turn("tool", (Block("tool_result", as_text(it.get("output")),
                                             ref=as_text(it.get("call_id")) or None),)))
        elif kind == "reasoning":
            text = "\n".join(as_text(as_dict(s).get("text")) for s in as_list(it.get("summary")))
            turns.append(Turn("assistant", (Block("thinking", text or "(reasoning not shown by the provider)"),)))
        else:
            turns.append(Turn(default_role, (Block("other", as_text(item), name=as_text(kind)),)))
    return _merge_adjacent(turns)


def _merge_adjacent(turns: list[Turn]) -> list[Turn]:
    """Consecutive items of the same assistant turn (reasoning, text, tool calls) read as one turn."""
    out: list[Turn] = []
    for t in turns:
        if out and t.role == "assistant" and out[-1].role == "assistant":
            out[-1] = Turn("assistant", out[-1].blocks + t.blocks)
        else:
            out.append(t)
    return out


def _responses_request(obj: dict[str, Any]) -> Transcript:
    turns: list[Turn] = []
    if obj.get("instructions"):
        turns.append(Turn("system", (Block("text", as_text(obj.get("instructions"))),)))
    turns.extend(_responses_items(obj.get("input"), "user"))
    return Transcript("openai.responses", "request", tuple(turns), as_text(obj.get("model")) or None,
                      _settings(obj), _tool_names(obj.get("tools")))


def responses_response(obj: dict[str, Any]) -> Transcript:
    turns = _responses_items(obj.get("output"), "assistant")
    status = as_text(obj.get("status")) or None
    reason = as_text(as_dict(obj.get("incomplete_details")).get("reason")) or None
    stop = f"{status}: {reason}" if status and reason else status
    notes: tuple[str, ...] = ()
    if obj.get("error"):
        notes = (f"error: {as_text(as_dict(obj.get('error')).get('message') or obj.get('error'))}",)
    return Transcript("openai.responses", "response", tuple(turns), as_text(obj.get("model")) or None,
                      stop_reason=stop, usage=as_dict(obj.get("usage")) or None, notes=notes)


# --- Anthropic Messages --------------------------------------------------------------------------


def _anthropic_image(p: dict[str, Any]) -> Block:
    src = as_dict(p.get("source"))
    if src.get("type") == "base64":
        media = as_text(src.get("media_type")) or "image"
        return Block("image", f"{media} · {b64_size(len(as_text(src.get('data'))))} inline", name=media)
    return image_block(as_text(src.get("url") or src.get("file_id") or "image"))


def _anthropic_tool_result(p: dict[str, Any]) -> Block:
    inner = p.get("content")
    text = inner if isinstance(inner, str) else "\n".join(b.text for b in anthropic_blocks_of(inner))
    return Block("tool_result", text, ref=as_text(p.get("tool_use_id")) or None, error=p.get("is_error") is True)


def _anthropic_tool_use(p: dict[str, Any]) -> Block:
    return Block("tool_call", pretty_args(p.get("input")), name=as_text(p.get("name")) or "?",
                 ref=as_text(p.get("id")) or None)


_ANTHROPIC_PARTS: dict[str, Callable[[dict[str, Any]], Block]] = {
    "text": lambda p: Block("text", as_text(p.get("text"))),
    "thinking": lambda p: Block("thinking", as_text(p.get("thinking"))),
    "redacted_thinking": lambda p: Block("thinking", "(redacted by the provider)"),
    "image": _anthropic_image,
    "document": lambda p: Block("file", as_text(p.get("title") or as_dict(p.get("source")).get("media_type")
                                                or "document")),
    "tool_use": _anthropic_tool_use,
    "server_tool_use": _anthropic_tool_use,
    "tool_result": _anthropic_tool_result,
}


def anthropic_blocks_of(content: Any) -> list[Block]:
    return read_parts(content, _ANTHROPIC_PARTS)


def _anthropic_request(obj: dict[str, Any]) -> Transcript:
    turns: list[Turn] = []
    system = obj.get("system")
    if system:
        turns.append(Turn("system", tuple(anthropic_blocks_of(system))))
    for m in as_list(obj.get("messages")):
        m = as_dict(m)
        blocks = anthropic_blocks_of(m.get("content"))
        role = as_text(m.get("role") or "?")
        if role == "user" and blocks and all(b.kind == "tool_result" for b in blocks):
            role = "tool"  # results the agent sends back read as tool turns, as in the other dialects
        turns.append(Turn(role, tuple(blocks)))
    return Transcript("anthropic.messages", "request", tuple(turns), as_text(obj.get("model")) or None,
                      _settings(obj), _tool_names(obj.get("tools")))


def _anthropic_response(obj: dict[str, Any]) -> Transcript:
    turn = Turn(as_text(obj.get("role") or "assistant"), tuple(anthropic_blocks_of(obj.get("content"))))
    return Transcript("anthropic.messages", "response", (turn,), as_text(obj.get("model")) or None,
                      stop_reason=as_text(obj.get("stop_reason")) or None, usage=as_dict(obj.get("usage")) or None)


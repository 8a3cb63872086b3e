"""The transcript model every front end renders: turns of blocks (text, thinking, tool calls and
results, images and files as placeholders), plus forgiving accessors the dialect readers share.

Readers of bodies: `transcript_bodies.py`; of recorded streams: `transcript_streams.py`; entry points:
`conversation.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Dialect = Literal["openai.chat", "openai.responses", "anthropic.messages", "unknown"]
BlockKind = Literal["text", "thinking", "image", "tool_call", "tool_result", "file", "audio", "refusal", "other"]
TRUNCATED_MARK = "\n… [truncated:"


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    text: str = ""
    name: str | None = None  # tool name, media type
    ref: str | None = None  # tool call id
    error: bool = False  # a tool result that reports an error


@dataclass(frozen=True)
class Turn:
    role: str  # system, developer, user, assistant, tool
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Transcript:
    dialect: Dialect
    kind: Literal["request", "response"]
    turns: tuple[Turn, ...] = ()
    model: str | None = None
    settings: tuple[tuple[str, str], ...] = ()  # max_tokens, temperature, stream, ...
    tools: tuple[str, ...] = ()  # tools offered to the model
    stop_reason: str | None = None
    usage: dict[str, Any] | None = None
    streamed: bool = False
    notes: tuple[str, ...] = ()


# --- small, forgiving accessors ------------------------------------------------------------------


def as_dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def as_list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def as_text(x: Any) -> str:
    if x is None:
        return ""
    return x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)


def pretty_args(raw: Any) -> str:
    """Tool arguments as pretty JSON when they are JSON (OpenAI sends them as a string)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return raw
    return json.dumps(raw, indent=2, ensure_ascii=False)


def b64_size(n_chars: int) -> str:
    n = n_chars * 3 // 4  # base64 → bytes
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def image_block(url: str) -> Block:
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media = head[5:].split(";", 1)[0] or "image"
        return Block("image", f"{media} · {b64_size(len(data))} inline", name=media)
    return Block("image", url if len(url) <= 120 else url[:117] + "…")



def read_parts(content: Any, readers: Mapping[str, Callable[[dict[str, Any]], Block]]) -> list[Block]:
    """A message's content (a string, or a list of typed parts) as blocks, each part by its `type`."""
    if isinstance(content, str):
        return [Block("text", content)] if content else []
    out: list[Block] = []
    for part in as_list(content):
        p = as_dict(part)
        read = readers.get(as_text(p.get("type")))
        out.append(read(p) if read is not None else Block("other", as_text(part), name=as_text(p.get("type")) or None))
    return out


def as_int(x: Any) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) else 0


def with_notes(t: Transcript, notes: list[str]) -> Transcript:
    if not notes:
        return t
    return Transcript(t.dialect, t.kind, t.turns, t.model, t.settings, t.tools, t.stop_reason, t.usage,
                      t.streamed, (*notes, *t.notes))


# --- plain text lines (the diff's "transcript" mode, exports) ------------------------------------


def block_lines(b: Block, unfold_thinking: bool = False) -> list[str]:
    if b.kind == "text":
        return b.text.splitlines() or [""]
    if b.kind == "tool_call":
        return [f"[tool call {b.name}{f' ({b.ref})' if b.ref else ''}]", *b.text.splitlines()]
    if b.kind == "tool_result":
        head = f"[tool result{f' ({b.ref})' if b.ref else ''}{' – error' if b.error else ''}]"
        return [head, *b.text.splitlines()]
    if b.kind == "thinking":
        head = f"[thinking: {len(b.text):,} characters]"
        return [head, *b.text.splitlines()] if unfold_thinking else [head]
    return [f"[{b.kind}: {b.text}]"]


def transcript_lines(t: Transcript | None, unfold_thinking: bool = False) -> list[str]:
    if t is None:
        return []
    lines: list[str] = []
    if t.model:
        lines.append(f"model: {t.model}")
    lines.extend(f"{k}: {v}" for k, v in t.settings)
    if t.tools:
        lines.append("tools: " + ", ".join(t.tools))
    for turn in t.turns:
        lines.append(f"── {turn.role}")
        for b in turn.blocks:
            lines.extend(block_lines(b, unfold_thinking))
    if t.stop_reason:
        lines.append(f"stop: {t.stop_reason}")
    return lines


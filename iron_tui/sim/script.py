"""Deterministic content for the simulated providers: directives, reply text, tool arguments, tokens.

Everything here is pure so both provider simulators (and translation tests comparing them) produce
the same reply for the same conversation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

DIRECTIVE_RE = re.compile(r"\[\[sim:([a-z_]+)(?:=([^\]]*))?\]\]")
_MARK = "[[sim:"


@dataclass(frozen=True, slots=True)
class Directives:
    """Behaviour switches read from `[[sim:...]]` markers in the last user message."""

    error: int | None = None
    midstream_error: bool = False
    prestream_error: bool = False
    tools: int | None = None
    searches: int | None = None  # web searches a request with a web search tool runs
    latency_ms: float | None = None
    words: int | None = None
    hang: bool = False
    stall: bool = False
    disconnect: bool = False
    slow_stream_ms: float | None = None
    no_usage: bool = False
    retry_after: str | None = None  # only set by faults; directives use the default
    # `[[sim:call=NAME(ARG)]]`, in order (repeatable): call tool NAME, ARG in its first required string
    calls: tuple[tuple[str, str | None], ...] = ()


NO_DIRECTIVES = Directives()
_FLAGS = ("midstream_error", "prestream_error", "hang", "stall", "disconnect", "no_usage")
_INTS = ("error", "tools", "searches", "words")
_FLOATS = ("latency_ms", "slow_stream_ms")
_ALIASES = {"latency": "latency_ms", "slow_stream": "slow_stream_ms"}
_CALL = re.compile(r"^([a-zA-Z0-9_-]{1,128})(?:\((.*)\))?$", re.DOTALL)


def parse_directives(text: str) -> tuple[Directives, str]:
    """Return the directives found in `text` and the text with the markers removed."""
    if _MARK not in text:
        return NO_DIRECTIVES, text
    found: dict[str, Any] = {}
    calls: list[tuple[str, str | None]] = []
    for match in DIRECTIVE_RE.finditer(text):
        name = _ALIASES.get(match.group(1), match.group(1))
        value = match.group(2)
        try:
            if name == "call" and value is not None and (call := _CALL.match(value.strip())):
                calls.append((call.group(1), call.group(2)))
            elif name in _FLAGS:
                found[name] = True
            elif name in _INTS and value is not None:
                found[name] = int(value)
            elif name in _FLOATS and value is not None:
                found[name] = float(value)
        except ValueError:
            continue  # a malformed directive is ignored, like an unknown one
    if calls:
        found["calls"] = tuple(calls)
    return replace(NO_DIRECTIVES, **found), DIRECTIVE_RE.sub("", text)


LEAD = ("Simulated", "reply", "to:")
TOOL_LEAD = ("Simulated", "reply", "to", "tool", "result:")
_FILLER = (
    "the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while",
    "seven", "wizards", "box", "jolly", "quartz", "nymphs",
)  # fmt: skip
_ECHO_WORDS = 8


def reply_words(prompt: str, count: int, lead: tuple[str, ...] = LEAD) -> list[str]:
    """`lead` + the first words of `prompt`, padded with filler (or cut) to exactly `count` words."""
    words = [*lead, *prompt.split()[:_ECHO_WORDS]]
    if count <= len(words):
        return words[: max(count, 0)]
    n = len(_FILLER)
    words.extend(_FILLER[i % n] for i in range(count - len(words)))
    return words


@dataclass(slots=True)
class TextReply:
    text: str
    pieces: list[str]  # the streamed deltas; "".join(pieces) == text, one token each
    tokens: int
    finish: str  # "stop" | "length" | "stop_sequence"
    stop_sequence: str | None = None


_CACHE: dict[tuple[Any, ...], TextReply] = {}
_CACHE_SIZE = 2048


def make_text(
    prompt: str,
    words: int,
    max_tokens: int | None = None,
    stops: list[str] | None = None,
    lead: tuple[str, ...] = LEAD,
) -> TextReply:
    """The reply for `prompt`: `words` tokens, cut by `max_tokens` (finish "length") or at the first
    stop sequence (finish "stop_sequence", the text excludes the sequence). Treat the result as frozen:
    replies are memoised because benchmarks repeat prompts."""
    key = (prompt, words, max_tokens, tuple(stops) if stops else None, lead)
    reply = _CACHE.get(key)
    if reply is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        reply = _CACHE[key] = _make_text(prompt, words, max_tokens, stops, lead)
    return reply


def _make_text(
    prompt: str, words: int, max_tokens: int | None, stops: list[str] | None, lead: tuple[str, ...]
) -> TextReply:
    ws = reply_words(prompt, words, lead)
    finish = "stop"
    if max_tokens is not None and max_tokens < len(ws):
        ws = ws[: max(max_tokens, 0)]
        finish = "length"
    pieces = [w if i == 0 else " " + w for i, w in enumerate(ws)]
    text = "".join(pieces)
    if stops:
        best: tuple[int, str] | None = None
        for seq in stops:
            if seq:
                at = text.find(seq)
                if at >= 0 and (best is None or at < best[0]):
                    best = (at, seq)
        if best is not None:
            cut, seq = best
            kept: list[str] = []
            pos = 0
            for piece in pieces:
                if pos + len(piece) <= cut:
                    kept.append(piece)
                elif pos < cut:
                    kept.append(piece[: cut - pos])
                pos += len(piece)
            return TextReply(text[:cut], kept, len(kept), "stop_sequence", seq)
    return TextReply(text, pieces, len(pieces), finish)


def tokens_for_chars(chars: int) -> int:
    """The sim's tokenizer: one token per four characters, at least one."""
    return max(1, (chars + 3) // 4)


def tool_schema_chars(name: Any, description: Any, schema: Any) -> int:
    """Characters a tool definition contributes to the prompt; the same for both API shapes."""
    n = len(name) if isinstance(name, str) else 0
    n += len(description) if isinstance(description, str) else 0
    if schema:
        n += len(json.dumps(schema))
    return n


def _value_for(name: str, spec: Any) -> Any:
    if not isinstance(spec, dict):
        return "sim"
    enum = spec.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return {
        "integer": 1,
        "number": 1.5,
        "boolean": True,
        "array": [],
        "object": {},
        "null": None,
    }.get(kind if isinstance(kind, str) else "string", f"sim-{name}")


def tool_arguments(schema: Any) -> dict[str, Any]:
    """Simple arguments with the schema's property names (enum → first value, string → "sim-<name>")."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return {}
    return {str(k): _value_for(str(k), v) for k, v in props.items()}


def directed_arguments(schema: Any, arg: str | None) -> dict[str, Any]:
    """Arguments for a `[[sim:call=NAME(ARG)]]` call: only the schema's required properties (what a
    model sends for a plain request, e.g. Claude Code's Read with `file_path` and no `limit`), with
    ARG in the first required string property and the others as `tool_arguments` fills them. An ARG
    that is a JSON object gives the arguments itself (over those defaults)."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    required = schema.get("required") if isinstance(schema, dict) else None
    if not isinstance(props, dict) or not isinstance(required, list):
        props, required = {}, []
    given = _json_object(arg)
    if given is not None:
        return {**{str(r): _value_for(str(r), props[r]) for r in required if r in props}, **given}
    out: dict[str, Any] = {}
    for name in (str(r) for r in required if r in props):
        spec = props[name]
        if arg is not None and isinstance(spec, dict) and spec.get("type") == "string" and "enum" not in spec:
            out[name], arg = arg, None
        else:
            out[name] = _value_for(name, spec)
    return out


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None or not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def directed_calls(d: Directives, offered: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(tool name, arguments) for each `[[sim:call=...]]` whose tool is offered (name → input schema);
    a model cannot call a tool it was not given, so other names are left out."""
    return [(name, directed_arguments(offered[name], arg)) for name, arg in d.calls if name in offered]


def split_json(text: str, parts: int = 3) -> list[str]:
    """Split a JSON text into `parts` pieces (as providers stream tool arguments)."""
    if not text:
        return []
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def tool_tokens(name: str, arguments_json: str) -> int:
    return tokens_for_chars(len(name) + len(arguments_json))

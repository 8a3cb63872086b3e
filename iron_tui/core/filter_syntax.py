"""The filter language over request summaries, in the spirit of mitmproxy's, and its parser: the
parsed form (`Node`) that `filter_match` evaluates in memory and `filter_sql` compiles to SQLite.

    gpt-4o                       free text: id, model, provider, api, path, agent, status, error
                                 (and the request/response bodies when the caller can supply them)
    "rate limit"                 a quoted phrase
    model:claude provider:openai api:responses agent:replay id:req_ path:/v1/messages error:timeout
    status:429  status:4  status:4xx  status:err  status:ok  status:pending
    latency>500  latency>=2s  ttft<300ms  cost>0.01  cost>$0.5  tokens>=1k  in>2000  out<10  status>=500
    is:translated is:stream is:error is:ok is:pending is:capped is:unpriced is:estimated
    is:interrupted is:retried is:fallback is:alias is:thinking is:replay   (also ~translated, ~error, ...)
    !x  not x  -x                negation
    a b   a and b   a & b        both (juxtaposition is "and")
    a or b   a | b               either; "and" binds tighter; parentheses group

Latency and TTFT are in milliseconds (`s`/`ms` suffixes accepted), cost in US dollars, tokens
`k`/`m` suffixes. Text matching is case-insensitive. A comparison with an unknown value (a pending
call has no latency) is false, in memory and in SQL alike.

States other work adds to the summary (capped by budget, interrupted, retries, thinking) are read
from `capped`/`capped_max_tokens`, `interrupted`, `attempts` (the list of tries) and `thinking_tokens`
when present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TEXT_FIELDS: dict[str, str] = {
    "model": "model", "provider": "provider", "api": "api", "agent": "agent_id", "id": "id",
    "error": "error", "path": "path",
}
# Free text looks at these summary fields (plus the status as shown and, when given, the bodies).
FREE_TEXT_FIELDS = ("id", "model", "provider", "api", "path", "agent_id", "error")
# Numeric keys → the summary field each compares ("tokens" is input + output), in memory and in SQL.
NUMERIC_SUMMARY_FIELDS: dict[str, str] = {
    "latency": "latency_ms", "ttft": "ttft_ms", "cost": "cost_usd", "in": "input_tokens", "out": "output_tokens",
    "status": "status", "cache_read": "cache_read_tokens", "cache_write": "cache_write_tokens",
}
NUMERIC_FIELDS = ("latency", "ttft", "cost", "tokens", "in", "out", "status", "cache_read", "cache_write")
FLAGS = ("translated", "stream", "error", "ok", "pending", "capped", "unpriced", "estimated", "interrupted",
         "retried", "fallback", "alias", "thinking", "replay")
_OPS = (">=", "<=", "!=", ">", "<", "=")
_COMPARE = re.compile(r"^([a-z_]+)(>=|<=|!=|>|<|=)(.+)$")
_NUMBER = re.compile(r"^\$?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([a-z]*)$")


class FilterError(ValueError):
    """A filter that cannot be parsed; `position` is the character offset the problem is at."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


# --- the tree -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    value: str  # lower-case


@dataclass(frozen=True)
class Field:
    key: str  # a TEXT_FIELDS key, or "status"
    value: str  # lower-case


@dataclass(frozen=True)
class Compare:
    key: str  # a NUMERIC_FIELDS entry
    op: str
    number: float


@dataclass(frozen=True)
class Flag:
    name: str


@dataclass(frozen=True)
class Not:
    node: Node


@dataclass(frozen=True)
class All:
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Any_:
    nodes: tuple[Node, ...]


Node = Text | Field | Compare | Flag | Not | All | Any_


# --- parsing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tok:
    kind: str  # "(" ")" "!" "and" "or" "word"
    text: str
    pos: int
    quoted: bool = False


def _tokens(src: str) -> list[_Tok]:
    out: list[_Tok] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
            continue
        if c in "()":
            out.append(_Tok(c, c, i))
            i += 1
            continue
        if c == "!" or (c == "-" and i + 1 < n and not src[i + 1].isspace() and not src[i + 1].isdigit()):
            out.append(_Tok("!", c, i))
            i += 1
            continue
        if c == "&":
            out.append(_Tok("and", c, i))
            i += 1
            continue
        if c == "|":
            out.append(_Tok("or", c, i))
            i += 1
            continue
        start, buf, quoted = i, [], False
        while i < n and not src[i].isspace() and src[i] not in "()":
            if src[i] in "\"'":
                q = src[i]
                end = src.find(q, i + 1)
                if end < 0:
                    raise FilterError(f"unclosed {q} quote", i)
                buf.append(src[i + 1:end])
                quoted = True
                i = end + 1
            else:
                buf.append(src[i])
                i += 1
        word = "".join(buf)
        low = word.lower()
        if not quoted and low in ("and", "or", "not"):
            out.append(_Tok("!" if low == "not" else low, word, start))
        else:
            out.append(_Tok("word", word, start, quoted))
    return out


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = _tokens(src)
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node | None:
        if not self.toks:
            return None
        node = self.or_()
        tok = self.peek()
        if tok is not None:
            raise FilterError(f"unexpected {tok.text!r}" + (" (no matching '(')" if tok.kind == ")" else ""),
                              tok.pos)
        return node

    def or_(self) -> Node:
        nodes = [self.and_()]
        while (tok := self.peek()) is not None and tok.kind == "or":
            self.take()
            nodes.append(self.and_())
        return nodes[0] if len(nodes) == 1 else Any_(tuple(nodes))

    def and_(self) -> Node:
        nodes = [self.not_()]
        while (tok := self.peek()) is not None and tok.kind not in ("or", ")"):
            if tok.kind == "and":
                self.take()
            nodes.append(self.not_())
        return nodes[0] if len(nodes) == 1 else All(tuple(nodes))

    def not_(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise FilterError("expression ends too early", len(self.src))
        if tok.kind == "!":
            self.take()
            return Not(self.not_())
        return self.atom()

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind == "(":
            node = self.or_()
            close = self.peek()
            if close is None or close.kind != ")":
                raise FilterError("missing ')'", tok.pos)
            self.take()
            return node
        if tok.kind != "word":
            raise FilterError(f"unexpected {tok.text!r}", tok.pos)
        return _term(tok)


def parse_node(src: str) -> Node | None:
    """The tree of `src` (None for an empty expression); raises FilterError with the position."""
    return _Parser(src).parse()


def _term(tok: _Tok) -> Node:
    word = tok.text
    low = word.lower()
    if tok.quoted and not _has_prefix(low):
        return Text(low)
    if low.startswith("~") and len(low) > 1:
        return _flag(low[1:], tok.pos)
    m = _COMPARE.match(low)
    if m and m.group(1) in NUMERIC_FIELDS:
        key, op, raw = m.groups()
        return Compare(key, op, _number(key, raw, tok.pos))
    if m and m.group(1) in (*TEXT_FIELDS, "is"):
        raise FilterError(f"{m.group(1)} takes ':' (e.g. {m.group(1)}:value), not a comparison", tok.pos)
    key, sep, value = low.partition(":")
    if sep and key == "is":
        return _flag(value, tok.pos)
    if sep and (key in TEXT_FIELDS or key == "status"):
        if not value:
            raise FilterError(f"{key}: needs a value", tok.pos)
        return Field(key, value)
    return Text(low)


def _has_prefix(low: str) -> bool:
    key, sep, _ = low.partition(":")
    return bool(sep) and (key in TEXT_FIELDS or key in ("status", "is"))


def _flag(name: str, pos: int) -> Flag:
    if name not in FLAGS:
        raise FilterError(f"unknown flag {name!r} (flags: {', '.join(FLAGS)})", pos)
    return Flag(name)


def _number(key: str, raw: str, pos: int) -> float:
    m = _NUMBER.match(raw)
    if m is None:
        raise FilterError(f"{key} needs a number, got {raw!r}", pos)
    value, unit = float(m.group(1)), m.group(2)
    if key in ("latency", "ttft"):
        scale = {"": 1.0, "ms": 1.0, "s": 1000.0, "m": 60_000.0}.get(unit)
    elif key in ("tokens", "in", "out", "cache_read", "cache_write"):
        scale = {"": 1.0, "k": 1e3, "m": 1e6}.get(unit)
    else:  # cost (USD), status
        scale = 1.0 if unit == "" else None
    if scale is None:
        raise FilterError(f"unknown unit {unit!r} for {key}", pos)
    return value * scale

"""Filter expressions over request summaries, in the spirit of mitmproxy's: parse once, then match
in memory (`Filter.matches`) or in SQLite over the on-disk history (`Filter.sql`), with one meaning.

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
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TEXT_FIELDS: dict[str, str] = {
    "model": "model", "provider": "provider", "api": "api", "agent": "agent_id", "id": "id",
    "error": "error", "path": "path",
}
# Free text looks at these summary fields (plus the status as shown and, when given, the bodies).
FREE_TEXT_FIELDS = ("id", "model", "provider", "api", "path", "agent_id", "error")
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


# --- evaluation in memory -------------------------------------------------------------------------


def status_text(r: dict[str, Any]) -> str:
    """The status as the tables show it: `…` in flight, the code, or `err` for a call with none."""
    if r.get("state") == "pending":
        return "…"
    status = r.get("status")
    return str(status) if status is not None else "err"


def is_failed(r: dict[str, Any]) -> bool:
    status = r.get("status")
    return r.get("state") == "error" or (isinstance(status, int) and status >= 400)


def tries(r: dict[str, Any]) -> int:
    """How many upstream tries a call took: the summary's `attempts` lists them when there was more
    than one (retries, fallbacks)."""
    attempts = r.get("attempts")
    if isinstance(attempts, list):
        return max(1, len(attempts))
    return attempts if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 1 else 1


def fell_back(r: dict[str, Any]) -> bool:
    """Served by a fallback: a try went to another provider or model than the one that answered."""
    attempts = r.get("attempts")
    if not isinstance(attempts, list):
        return False
    served = (r.get("provider"), r.get("model"))
    return any(isinstance(a, dict) and (a.get("provider"), a.get("model")) != served for a in attempts)


def aliased(r: dict[str, Any]) -> bool:
    """The client named another model (a `[models]` alias) than the one that served the call; a
    `NAME/model` address (the provider column says it) and a fallback (`fell_back`) are not aliases."""
    asked = r.get("client_model")
    if not isinstance(asked, str) or not asked or fell_back(r):
        return False
    provider, model = r.get("provider"), r.get("model")
    return not (isinstance(provider, str) and isinstance(model, str) and asked == f"{provider}/{model}")


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


_FLAG_TESTS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "translated": lambda r: r.get("translated") is True,
    "stream": lambda r: r.get("stream") is True,
    "error": is_failed,
    "ok": lambda r: r.get("state") == "ok" and not is_failed(r),
    "pending": lambda r: r.get("state") == "pending",
    "capped": lambda r: r.get("capped") is True or _positive(r.get("capped_max_tokens")),
    "unpriced": lambda r: r.get("priced") is False,
    "estimated": lambda r: r.get("cost_estimated") is True,
    "interrupted": lambda r: r.get("interrupted") is True,
    "retried": lambda r: tries(r) > 1,
    "fallback": fell_back,
    "alias": aliased,
    "thinking": lambda r: _positive(r.get("thinking_tokens")),
    "replay": lambda r: r.get("agent_id") == "replay",
}


def _numeric(r: dict[str, Any], key: str) -> float | None:
    if key == "tokens":
        a, b = r.get("input_tokens"), r.get("output_tokens")
        return None if a is None or b is None else a + b
    value = r.get({"latency": "latency_ms", "ttft": "ttft_ms", "cost": "cost_usd", "in": "input_tokens",
                   "out": "output_tokens", "status": "status", "cache_read": "cache_read_tokens",
                   "cache_write": "cache_write_tokens"}[key])
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _compare(a: float, op: str, b: float) -> bool:
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == "=":
        return a == b
    return a != b


def _status_matches(r: dict[str, Any], value: str) -> bool:
    if value in ("err", "error", "failed"):
        return is_failed(r)
    if value == "ok":
        return _FLAG_TESTS["ok"](r)
    if value == "pending":
        return r.get("state") == "pending"
    prefix = value.rstrip("x")
    return status_text(r).startswith(prefix)


def _text_of(r: dict[str, Any], key: str) -> str:
    value = r.get(key)
    return "" if value is None else str(value).lower()


def _eval(node: Node, r: dict[str, Any], body: Callable[[], str] | None) -> bool:
    if isinstance(node, Text):
        if any(node.value in _text_of(r, k) for k in FREE_TEXT_FIELDS) or node.value in status_text(r):
            return True
        return body is not None and node.value in body().lower()
    if isinstance(node, Field):
        if node.key == "status":
            return _status_matches(r, node.value)
        return node.value in _text_of(r, TEXT_FIELDS[node.key])
    if isinstance(node, Compare):
        value = _numeric(r, node.key)
        return value is not None and _compare(value, node.op, node.number)
    if isinstance(node, Flag):
        return _FLAG_TESTS[node.name](r)
    if isinstance(node, Not):
        return not _eval(node.node, r, body)
    if isinstance(node, All):
        return all(_eval(n, r, body) for n in node.nodes)
    return any(_eval(n, r, body) for n in node.nodes)


# --- SQL over the history table (summary = the JSON of RequestRecord.summary()) -------------------

_J = "json_extract(summary, '$.{}')"
_NUMERIC_SQL = {
    "latency": _J.format("latency_ms"), "ttft": _J.format("ttft_ms"), "cost": _J.format("cost_usd"),
    "in": _J.format("input_tokens"), "out": _J.format("output_tokens"), "status": _J.format("status"),
    "cache_read": _J.format("cache_read_tokens"), "cache_write": _J.format("cache_write_tokens"),
    "tokens": f"({_J.format('input_tokens')} + {_J.format('output_tokens')})",
}
_FAILED_SQL = f"({_J.format('state')} = 'error' OR coalesce({_J.format('status')}, 0) >= 400)"


def _is_true(key: str) -> str:
    return f"json_type(summary, '$.{key}') = 'true'"


def _positive_sql(key: str) -> str:
    return f"(json_type(summary, '$.{key}') IN ('integer', 'real') AND {_J.format(key)} > 0)"


# A try that went to another provider or model than the one the summary names (fell_back).
_FALLBACK_SQL = (
    "(json_type(summary, '$.attempts') = 'array' AND EXISTS (SELECT 1 FROM json_each(summary, '$.attempts') AS t "
    "WHERE t.type = 'object' AND (json_extract(t.value, '$.provider') IS NOT json_extract(summary, '$.provider') "
    "OR json_extract(t.value, '$.model') IS NOT json_extract(summary, '$.model'))))"
)
_FLAG_SQL = {
    "translated": _is_true("translated"),
    "stream": _is_true("stream"),
    "error": _FAILED_SQL,
    "ok": f"({_J.format('state')} = 'ok' AND NOT {_FAILED_SQL})",
    "pending": f"{_J.format('state')} = 'pending'",
    "capped": f"({_is_true('capped')} OR {_positive_sql('capped_max_tokens')})",
    "unpriced": "json_type(summary, '$.priced') = 'false'",
    "estimated": _is_true("cost_estimated"),
    "interrupted": _is_true("interrupted"),
    "retried": (f"((json_type(summary, '$.attempts') = 'array' AND json_array_length(summary, '$.attempts') > 1)"
                f" OR (json_type(summary, '$.attempts') = 'integer' AND {_J.format('attempts')} > 1))"),
    "fallback": _FALLBACK_SQL,
    "alias": (f"(json_type(summary, '$.client_model') = 'text' AND length({_J.format('client_model')}) > 0 "
              f"AND NOT {_FALLBACK_SQL} AND NOT (json_type(summary, '$.provider') = 'text' AND "
              f"json_type(summary, '$.model') = 'text' AND {_J.format('client_model')} = "
              f"{_J.format('provider')} || '/' || {_J.format('model')}))"),
    "thinking": _positive_sql("thinking_tokens"),
    "replay": f"{_J.format('agent_id')} = 'replay'",
}
# The status as shown (status_text), in SQL.
_STATUS_TEXT_SQL = (f"(CASE WHEN {_J.format('state')} = 'pending' THEN '…' "
                    f"WHEN {_J.format('status')} IS NULL THEN 'err' ELSE CAST({_J.format('status')} AS TEXT) END)")


def _contains(expr: str) -> str:
    # iron_lower is Python's str.lower (registered by `register_sql_functions`): SQLite's lower() only
    # folds ASCII, and the SQL must mean exactly what the in-memory match means.
    return f"instr(iron_lower(coalesce(CAST({expr} AS TEXT), '')), ?) > 0"


def register_sql_functions(db: sqlite3.Connection) -> None:
    """Make a connection able to run `Filter.sql` clauses."""
    db.create_function("iron_lower", 1, lambda s: None if s is None else str(s).lower(), deterministic=True)


def _sql(node: Node, args: list[Any]) -> str:
    if isinstance(node, Text):
        parts = [_contains(_J.format(k)) for k in FREE_TEXT_FIELDS] + [_contains(_STATUS_TEXT_SQL)]
        args.extend([node.value] * len(parts))
        return "(" + " OR ".join(parts) + ")"
    if isinstance(node, Field):
        if node.key != "status":
            args.append(node.value)
            return _contains(_J.format(TEXT_FIELDS[node.key]))
        if node.value in ("err", "error", "failed"):
            return _FAILED_SQL
        if node.value in ("ok", "pending"):
            return _FLAG_SQL[node.value]
        prefix = node.value.rstrip("x")
        args.extend([len(prefix), prefix])
        return f"substr({_STATUS_TEXT_SQL}, 1, ?) = ?"
    if isinstance(node, Compare):
        expr = _NUMERIC_SQL[node.key]
        # json_type guards against booleans (JSON true is 1 in SQL, never a number to the in-memory side).
        base = "tokens" if node.key == "tokens" else None
        guard = "" if base else f"json_type(summary, '$.{_sql_key(node.key)}') IN ('integer', 'real') AND "
        args.append(node.number)
        return f"({guard}{expr} {node.op} ?)"
    if isinstance(node, Flag):
        return _FLAG_SQL[node.name]
    if isinstance(node, Not):
        return f"NOT coalesce({_sql(node.node, args)}, 0)"
    joiner = " AND " if isinstance(node, All) else " OR "
    return "(" + joiner.join(f"coalesce({_sql(n, args)}, 0)" for n in node.nodes) + ")"


def _sql_key(key: str) -> str:
    return {"latency": "latency_ms", "ttft": "ttft_ms", "cost": "cost_usd", "in": "input_tokens",
            "out": "output_tokens", "status": "status", "cache_read": "cache_read_tokens",
            "cache_write": "cache_write_tokens"}[key]


# --- the public object ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """A parsed filter; the empty filter matches everything."""

    text: str = ""
    node: Node | None = None

    @classmethod
    def parse(cls, text: str) -> Filter:
        """Raises FilterError (with the position) for an expression that cannot be read."""
        return cls(text.strip(), _Parser(text).parse())

    @property
    def active(self) -> bool:
        return self.node is not None

    @property
    def uses_text(self) -> bool:
        """Whether free text is part of it (the caller may then supply bodies to search)."""
        return self.node is not None and _has_text(self.node)

    def matches(self, summary: dict[str, Any], body: Callable[[], str] | None = None) -> bool:
        """`body`, when given, returns the call's request and response bodies for free-text search."""
        return self.node is None or _eval(self.node, summary, body)

    def sql(self) -> tuple[str, list[Any]]:
        """A WHERE clause over the history table's `summary` column, and its parameters."""
        if self.node is None:
            return "1", []
        args: list[Any] = []
        return f"coalesce({_sql(self.node, args)}, 0)", args


def _has_text(node: Node) -> bool:
    if isinstance(node, Text):
        return True
    if isinstance(node, Not):
        return _has_text(node.node)
    if isinstance(node, All | Any_):
        return any(_has_text(n) for n in node.nodes)
    return False

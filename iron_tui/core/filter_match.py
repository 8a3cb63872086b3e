"""The in-memory meaning of a parsed filter (`node_matches`), and the summary facts it reads that
the tables show too (status_text, is_failed, tries, fell_back, aliased)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iron_tui.core.filter_syntax import (
    FREE_TEXT_FIELDS,
    NUMERIC_SUMMARY_FIELDS,
    TEXT_FIELDS,
    All,
    Compare,
    Field,
    Flag,
    Node,
    Not,
    Text,
)


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
    value = r.get(NUMERIC_SUMMARY_FIELDS[key])
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



def node_matches(node: Node, r: dict[str, Any], body: Callable[[], str] | None) -> bool:
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
        return not node_matches(node.node, r, body)
    if isinstance(node, All):
        return all(node_matches(n, r, body) for n in node.nodes)
    return any(node_matches(n, r, body) for n in node.nodes)

"""JSON helpers for translators that must never crash: bounded nesting instead of RecursionError.

Translators parse and re-serialise values they do not control (tool-call `arguments`, tool inputs,
schemas). The stdlib `json` recurses in C and raises RecursionError around 1,000 levels; orjson refuses
to parse past 1,024 levels and to serialise past 254. Everything a translator parses or dumps goes
through here, so a hostile or broken value is a plain `None` / `ValueError`, never a crash, and never
a value the pipeline could not serialise afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["MAX_NESTING", "dumps_text", "nesting_exceeds", "parse_object"]

# Far deeper than any real tool input or schema (JSON Schema documents nest a few dozen levels at
# most), and below orjson's serialisation limit (254) so whatever passes can still be sent upstream.
MAX_NESTING = 128


def nesting_exceeds(value: object, limit: int = MAX_NESTING) -> bool:
    """Whether `value` nests dicts/lists deeper than `limit` (iterative: no recursion, no size cost
    beyond one visit of each container)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def parse_object(text: object) -> dict[str, Any] | None:
    """The JSON object in `text` (a str), or None when it is not valid JSON, not an object, or nested
    deeper than MAX_NESTING."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        value = orjson.loads(text)
    except (orjson.JSONDecodeError, ValueError):
        return None
    if not isinstance(value, dict) or nesting_exceeds(value):
        return None
    return value


def dumps_text(value: object) -> str:
    """Compact JSON text of `value` (UTF-8 kept readable, like `json.dumps(ensure_ascii=False,
    separators=(",", ":"))`). Raises ValueError for a value that cannot be serialised (too deep,
    values that are not JSON at all)."""
    if nesting_exceeds(value):
        raise ValueError(f"JSON value nested deeper than {MAX_NESTING} levels")
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: big integers, lone surrogates, non-string keys
        pass
    try:
        return json.dumps(value, separators=(",", ":"))  # ASCII: lone surrogates come out escaped
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None

"""JSON helpers for translators that must never crash: bounded nesting instead of RecursionError.

Translators parse and re-serialise values they do not control (tool-call `arguments`, tool inputs,
schemas). The stdlib `json` recurses in C and raises RecursionError around 1,000 levels; orjson refuses
to parse past 1,024 levels and to serialise past 254. Everything a translator parses or dumps goes
through here, so a hostile or broken value is a plain `None` / `ValueError`, never a crash, and never
a value the pipeline could not serialise afterwards.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["MAX_NESTING", "dumps_text", "loads_exact", "nesting_exceeds", "parse_object"]

# orjson reads an integer beyond 64 bits as a float, silently (-9223372036854775809 becomes
# -9.223372036854776e+18), where the SDKs and the stdlib keep it exact: text with a run of 19 or more
# digits (where int64 ends) is read by the stdlib instead, so a tool's input arrives as the model wrote it.
_LONG_DIGITS = re.compile(r"\d{19}")

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


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_exact(text: str) -> Any:
    """`text` parsed as JSON with every integer exact (see `_LONG_DIGITS`); ValueError when it is not
    JSON (NaN and Infinity included, as orjson has it) or nests too deeply for the parser."""
    if _LONG_DIGITS.search(text) is None:
        return orjson.loads(text)  # (orjson.JSONDecodeError is a ValueError)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def parse_object(text: object) -> dict[str, Any] | None:
    """The JSON object in `text` (a str), or None when it is not valid JSON, not an object, or nested
    deeper than MAX_NESTING."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        value = loads_exact(text)
    except ValueError:
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

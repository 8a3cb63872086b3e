"""A parsed filter as SQL over the history table (summary = the JSON of RequestRecord.summary()),
meaning exactly what `filter_match` means in memory."""

from __future__ import annotations

import sqlite3
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

_J = "json_extract(summary, '$.{}')"
_NUMERIC_SQL = {key: _J.format(field) for key, field in NUMERIC_SUMMARY_FIELDS.items()}
_NUMERIC_SQL["tokens"] = f"({_J.format('input_tokens')} + {_J.format('output_tokens')})"
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


def node_sql(node: Node, args: list[Any]) -> str:
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
        guard = "" if base else f"json_type(summary, '$.{NUMERIC_SUMMARY_FIELDS[node.key]}') IN ('integer', 'real') AND "
        args.append(node.number)
        return f"({guard}{expr} {node.op} ?)"
    if isinstance(node, Flag):
        return _FLAG_SQL[node.name]
    if isinstance(node, Not):
        return f"NOT coalesce({node_sql(node.node, args)}, 0)"
    joiner = " AND " if isinstance(node, All) else " OR "
    return "(" + joiner.join(f"coalesce({node_sql(n, args)}, 0)" for n in node.nodes) + ")"

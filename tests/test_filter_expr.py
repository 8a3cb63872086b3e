"""Filter expressions: what they match, their errors, and the same answer in memory and in SQLite."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iron_tui.core.filter_expr import Filter
from iron_tui.core.filter_sql import register_sql_functions
from iron_tui.core.filter_syntax import FLAGS, FilterError

ROWS: list[dict[str, Any]] = [
    {"id": "req_a1", "model": "gpt-4o-mini", "provider": "openai", "api": "openai.chat",
     "path": "/v1/chat/completions", "agent_id": "agent_1", "state": "ok", "status": 200, "latency_ms": 420.0,
     "ttft_ms": None, "input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.00036, "priced": True,
     "cost_estimated": False, "translated": False, "stream": False, "error": None},
    {"id": "req_b2", "model": "claude-3-5-haiku-latest", "provider": "anthropic", "api": "openai.chat",
     "path": "/v1/chat/completions", "agent_id": None, "state": "ok", "status": 200, "latency_ms": 2300.0,
     "ttft_ms": 310.0, "input_tokens": 15000, "output_tokens": 1800, "cost_usd": 0.0555, "priced": True,
     "cost_estimated": True, "translated": True, "stream": True, "error": None, "capped_max_tokens": 512},
    {"id": "req_c3", "model": "gpt-4o", "provider": "openai", "api": "openai.responses", "path": "/v1/responses",
     "agent_id": "replay", "state": "error", "status": 429, "latency_ms": 95.0, "ttft_ms": None,
     "input_tokens": 0, "output_tokens": 0, "cost_usd": None, "priced": True, "cost_estimated": False,
     "translated": False, "stream": False, "error": "upstream 429: Rate limit reached",
     "attempts": [{"provider": "openai", "model": "gpt-4o", "status": 429}, {"provider": "openai",
                   "model": "gpt-4o", "status": 429}]},
    {"id": "req_d4", "model": "local-llama-3", "provider": "openai", "api": "openai.chat",
     "path": "/v1/chat/completions", "agent_id": "agent_1", "state": "pending", "status": None,
     "latency_ms": None, "ttft_ms": None, "input_tokens": 0, "output_tokens": 0, "cost_usd": None,
     "priced": False, "cost_estimated": False, "translated": False, "stream": True, "error": None,
     "thinking_tokens": 40},
    {"id": "req_e5", "model": "claude-sonnet-4-5", "provider": "anthropic", "api": "anthropic.messages",
     "path": "/v1/messages", "agent_id": "agent_2", "state": "error", "status": 402, "latency_ms": 1.5,
     "ttft_ms": None, "input_tokens": 0, "output_tokens": 0, "cost_usd": None, "priced": True,
     "cost_estimated": False, "translated": False, "stream": False,
     "error": "Iron Cage budget limit exceeded. Spent: $0.02", "interrupted": True, "capped": True},
]


# Retries, fallbacks, aliases and NAME/model addresses (the ↻ ↪ ≈ flags).
_TRY = {"provider": "openai", "model": "gpt-4o", "status": 503}
FALLBACK_ALIAS_ROWS: list[dict[str, Any]] = [
    {**ROWS[0], "id": "req_h1", "model": "claude-3-5-haiku-latest", "provider": "anthropic", "client_model": "gpt-4o",
     "attempts": [_TRY, {"provider": "anthropic", "model": "claude-3-5-haiku-latest", "status": 200}]},
    {**ROWS[0], "id": "req_h2", "model": "gpt-4o", "attempts": [_TRY, {**_TRY, "status": 200}]},
    {**ROWS[0], "id": "req_h3", "model": "qwen2.5-coder", "provider": "ollama", "client_model": "claude-haiku-4-5"},
    {**ROWS[0], "id": "req_h4", "model": "qwen2.5-coder", "provider": "ollama", "client_model": "ollama/qwen2.5-coder"},
    {**ROWS[0], "id": "req_h5", "model": "gpt-4o-mini", "provider": "openai", "client_model": "fast",
     "attempts": [{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "openai", "model": "gpt-4o-mini"}]},
]


@pytest.mark.parametrize(("expr", "expected"), [
    ("is:fallback", ["req_h1"]),
    ("is:retried", ["req_h1", "req_h2", "req_h5"]),
    ("is:retried !is:fallback", ["req_h2", "req_h5"]),
    ("is:alias", ["req_h3", "req_h5"]),  # not the NAME/model address, not the fallback
])
def test_fallbacks_retries_and_aliases(db: sqlite3.Connection, expr: str, expected: list[str]) -> None:
    flt = Filter.parse(expr)
    assert [r["id"] for r in FALLBACK_ALIAS_ROWS if flt.matches(r)] == expected
    assert [i for i in sql_ids(db, flt) if i.startswith("req_h")] == expected  # the history browser's SQL too


def ids(expr: str, body: dict[str, str] | None = None) -> list[str]:
    flt = Filter.parse(expr)
    return [r["id"] for r in ROWS
            if flt.matches(r, (lambda r=r: body.get(r["id"], "")) if body is not None else None)]


@pytest.mark.parametrize(("expr", "expected"), [
    ("", ["req_a1", "req_b2", "req_c3", "req_d4", "req_e5"]),
    ("claude", ["req_b2", "req_e5"]),
    ("CLAUDE", ["req_b2", "req_e5"]),
    ("model:gpt-4o", ["req_a1", "req_c3"]),
    ("provider:anthropic", ["req_b2", "req_e5"]),
    ("status:429", ["req_c3"]),
    ("status:4xx", ["req_c3", "req_e5"]),
    ("status:err", ["req_c3", "req_e5"]),
    ("status:ok", ["req_a1", "req_b2"]),
    ("status:pending", ["req_d4"]),
    ("latency>500", ["req_b2"]),
    ("latency>=2.3s", ["req_b2"]),
    ("latency<100ms", ["req_c3", "req_e5"]),
    ("ttft<400", ["req_b2"]),
    ("cost>0.01", ["req_b2"]),
    ("cost>$0.0001", ["req_a1", "req_b2"]),
    ("tokens>=1.5k", ["req_a1", "req_b2"]),
    ("in>2000 out<=1800", ["req_b2"]),
    ("status>=400", ["req_c3", "req_e5"]),
    ("status!=200", ["req_c3", "req_e5"]),  # a pending call has no status: the comparison is false
    ("is:translated", ["req_b2"]),
    ("~stream", ["req_b2", "req_d4"]),
    ("is:error", ["req_c3", "req_e5"]),
    ("is:capped", ["req_b2", "req_e5"]),
    ("is:unpriced", ["req_d4"]),
    ("is:estimated", ["req_b2"]),
    ("is:interrupted", ["req_e5"]),
    ("is:retried", ["req_c3"]),
    ("is:thinking", ["req_d4"]),
    ("is:replay", ["req_c3"]),
    ("!is:error", ["req_a1", "req_b2", "req_d4"]),
    ("not claude", ["req_a1", "req_c3", "req_d4"]),
    ("-claude -gpt", ["req_d4"]),
    ("provider:openai is:error | is:translated", ["req_b2", "req_c3"]),
    ("provider:openai (is:error or is:translated)", ["req_c3"]),
    ("provider:openai & !(status:ok)", ["req_c3", "req_d4"]),
    ('"rate limit"', ["req_c3"]),
    ("error:budget", ["req_e5"]),
    ("agent:agent_1", ["req_a1", "req_d4"]),
    ("api:responses", ["req_c3"]),
    ("path:/v1/messages", ["req_e5"]),
    ("429", ["req_c3"]),  # free text also looks at the status as shown
])
def test_what_an_expression_matches(expr: str, expected: list[str]) -> None:
    assert ids(expr) == expected


def test_free_text_searches_bodies_when_given_and_only_then() -> None:
    bodies = {"req_a1": '{"messages":[{"role":"user","content":"What is the Weather in Oslo?"}]}'}
    assert ids("oslo") == []
    assert ids("weather oslo", bodies) == ["req_a1"]
    assert ids("model:oslo", bodies) == []  # fields never look at bodies
    assert Filter.parse("oslo").uses_text and not Filter.parse("is:error latency>5").uses_text


@pytest.mark.parametrize(("expr", "message", "position"), [
    ("(is:error", "missing ')'", 0),
    ("is:error)", "unexpected ')'", 8),
    ('model:"gpt', "unclosed \" quote", 6),
    ("is:nonsense", "unknown flag 'nonsense'", 0),
    ("latency>fast", "latency needs a number", 0),
    ("latency>5kg", "unknown unit 'kg'", 0),
    ("model>5", "model takes ':'", 0),
    ("claude and", "expression ends too early", 10),
    ("status:", "status: needs a value", 0),
])
def test_errors_say_what_and_where(expr: str, message: str, position: int) -> None:
    with pytest.raises(FilterError) as info:
        Filter.parse(expr)
    assert message in info.value.message
    assert info.value.position == position


# --- the same meaning in SQLite ------------------------------------------------------------------


def sql_ids(db: sqlite3.Connection, flt: Filter) -> list[str]:
    where, args = flt.sql()
    return [r[0] for r in db.execute(f"SELECT id FROM requests WHERE {where} ORDER BY id", args)]


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    register_sql_functions(conn)
    conn.execute("CREATE TABLE requests (id TEXT PRIMARY KEY, session TEXT, started_at REAL, summary TEXT)")
    extra = [{**ROWS[0], "id": "req_f6", "model": "GPT-ÄÖ-Ünïcode", "error": "ÜBER limit", "status": True,
              "attempts": 3},
             {**ROWS[1], "id": "req_g7", "latency_ms": True, "priced": None, "translated": 1},
             *FALLBACK_ALIAS_ROWS,
             {**ROWS[0], "id": "req_o9", "client_model": 7, "attempts": [3, None, {"model": "gpt-4o-mini"}]}]
    conn.executemany("INSERT INTO requests VALUES (?, '', 0, ?)",
                     [(r["id"], orjson.dumps(r).decode()) for r in ROWS + extra])
    return conn


def py_ids(flt: Filter, db: sqlite3.Connection) -> list[str]:
    rows = [orjson.loads(s) for (s,) in db.execute("SELECT summary FROM requests ORDER BY id")]
    return [r["id"] for r in rows if flt.matches(r)]


_ATOMS = st.sampled_from([
    "claude", "gpt", "ü", "über", "Ünï", "429", "err", "…", "model:gpt", "model:ünï", "provider:openai",
    "status:4", "status:4xx", "status:err", "status:ok", "status:pending", "status:2", "latency>400",
    "latency<=95", "ttft>=310", "cost>0.0004", "cost<0.1", "tokens>1k", "in=0", "out!=0", "status>=429",
    "status=200", "agent:agent", "error:limit", "id:req_", "api:chat", "path:messages", '""',
    *(f"is:{f}" for f in FLAGS),
])


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 4 if depth < 3 else 0))
    if kind == 0:
        return draw(_ATOMS)
    if kind == 1:
        return draw(st.sampled_from(["!", "not ", "-"])) + draw(expressions(depth + 1))
    joiner = draw(st.sampled_from([" ", " and ", " & ", " or ", " | "]))
    parts = [draw(expressions(depth + 1)) for _ in range(draw(st.integers(2, 3)))]
    text = joiner.join(parts)
    return f"({text})" if kind == 4 else text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions())
def test_sql_and_memory_agree(db: sqlite3.Connection, expr: str) -> None:
    try:
        flt = Filter.parse(expr)
    except FilterError:
        return  # e.g. "-" before "(": not an expression either side has to agree on
    assert sql_ids(db, flt) == py_ids(flt, db), expr

"""Browsing and filtering the on-disk history: 100,000 calls in a real SQLite file written by History."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iron_tui.core.clock import iso_utc
from iron_tui.core.filter_expr import Filter
from iron_tui.core.history import PERSISTED_ROWS, History
from iron_tui.core.history_query import HistoryReader

T0 = 1_767_225_600.0
N = PERSISTED_ROWS  # 100,000


def summary(i: int) -> dict[str, Any]:
    failed = i % 50 == 0
    return {
        "id": f"req_{i:06d}", "started_at": iso_utc(T0 + i), "model": "gpt-4o" if i % 3 else "claude-3-5-haiku-latest",
        "provider": "openai" if i % 3 else "anthropic", "api": "openai.chat", "path": "/v1/chat/completions",
        "translated": i % 3 == 0, "stream": i % 2 == 0, "agent_id": None, "state": "error" if failed else "ok",
        "status": 429 if failed else 200, "latency_ms": float(i % 1000), "ttft_ms": None, "input_tokens": 10,
        "output_tokens": 5, "cache_read_tokens": 0, "cache_write_tokens": 0,
        "cost_usd": None if failed else (i % 100) / 10_000, "priced": True, "cost_estimated": False,
        "error": "rate limited" if failed else None,
    }


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hist") / "history.sqlite3"
    older = History(10, path, session="sess_old")
    older.write([(f"old_{i}", T0 - 1000 + i, {**summary(i), "id": f"old_{i}"}) for i in range(10)])
    older.close()
    h = History(10, path, session="sess_now")
    h.write([(f"req_{i:06d}", T0 + i, summary(i)) for i in range(N)])
    h.close()
    return path


def test_pages_newest_first_through_all_of_it(db_path: Path) -> None:
    reader = HistoryReader(db_path)
    flt = Filter()
    assert reader.count(flt) == N  # the ten oldest (another session) were pruned to keep 100,000
    first = reader.page(flt, limit=500)
    assert [r["id"] for r in first.rows[:2]] == ["req_099999", "req_099998"] and first.cursor is not None
    assert first.rows[0]["session"] == "sess_now"
    seen, after, pages = 0, None, 0
    while True:
        page = reader.page(flt, after=after, limit=20_000)
        seen += len(page.rows)
        pages += 1
        if page.cursor is None:
            break
        after = page.cursor
    assert seen == N and pages == 5
    reader.close()


def test_filters_run_in_sql_over_every_row(db_path: Path) -> None:
    reader = HistoryReader(db_path)
    errors = Filter.parse("is:error")
    assert reader.count(errors) == N // 50
    slow_claude = Filter.parse("provider:anthropic latency>=990 !is:error")
    expected = [i for i in range(N) if i % 3 == 0 and i % 1000 >= 990 and i % 50]
    assert reader.count(slow_claude) == len(expected)
    page = reader.page(slow_claude, limit=3)
    assert [r["id"] for r in page.rows] == [f"req_{i:06d}" for i in sorted(expected, reverse=True)[:3]]
    assert reader.count(Filter.parse('"rate limited" cost>0.5')) == 0
    assert reader.count(Filter.parse("cost>=0.0099")) == len([i for i in range(N) if i % 100 == 99])
    assert reader.get("req_000123") == {**summary(123), "session": "sess_now"}
    assert reader.get("nope") is None
    reader.close()


def test_sessions_and_ties_in_time(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    h = History(10, path, session="a")
    h.write([(f"t{i}", T0, {**summary(i), "id": f"t{i}"}) for i in range(7)])  # all at the same instant
    h.close()
    h = History(10, path, session="b")
    h.write([("later", T0 + 5, {**summary(1), "id": "later"})])
    h.close()
    reader = HistoryReader(path)
    assert [(s.session, s.calls) for s in reader.sessions()] == [("b", 1), ("a", 7)]
    ids: list[str] = []
    after = None
    while True:  # pages of 2 over rows with one timestamp: none lost, none repeated
        page = reader.page(Filter(), session="a", after=after, limit=2)
        ids += [r["id"] for r in page.rows]
        if page.cursor is None:
            break
        after = page.cursor
    assert sorted(ids) == [f"t{i}" for i in range(7)] and len(ids) == 7
    assert [r["id"] for r in reader.iter_session("b")] == ["later"]
    reader.close()


def test_a_missing_file_reads_as_empty(tmp_path: Path) -> None:
    reader = HistoryReader(tmp_path / "none.sqlite3")
    assert not reader.available
    assert reader.count(Filter()) == 0 and reader.page(Filter()).rows == [] and reader.sessions() == []
    assert HistoryReader(None).page(Filter()).rows == []

"""Persisted request history: what is read back equals what was written, one transaction per flush."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from iron_tui.core.events import RequestRecord
from iron_tui.core.history import History


def record(i: int, **fields: Any) -> RequestRecord:
    rec = RequestRecord(id=f"req_{i:06d}", started_at=1_767_225_600.0 + i, method="POST",
                        path="/v1/chat/completions", api="openai.chat", model="gpt-4o-mini", provider="openai")
    rec.state, rec.status, rec.latency_ms, rec.ttft_ms = "ok", 200, 1.2345678 + i, 0.5
    rec.input_tokens, rec.output_tokens, rec.cost_micros = 31, 9, 11
    for name, value in fields.items():
        setattr(rec, name, value)
    return rec


def finish(history: History, rec: RequestRecord) -> dict[str, Any]:
    history.add(rec)
    summary = rec.summary()
    history.finished(rec, summary)
    return summary


def test_summaries_read_back_unchanged_newest_first(tmp_path: Path) -> None:
    history = History(db_path=tmp_path / "h.sqlite3", session="s1")
    written = [finish(history, record(i)) for i in range(50)]
    odd = [
        finish(history, record(50, error="réponse refusée ✗ — 日本語", model="claude-sonnet-4-5")),
        finish(history, record(51, input_tokens=2**70, cost_micros=None, priced=False)),  # beyond 64 bits
        finish(history, record(52, error="bad byte \udcff kept", agent_id="agent_7")),  # a lone surrogate
    ]
    assert history.flush() == 53
    past = history.past(limit=100)
    assert past == [json.loads(json.dumps(s)) for s in reversed(written + odd)]
    assert past[1]["input_tokens"] == 2**70 and past[2]["error"].startswith("réponse")
    history.close()


def test_other_sessions_are_told_apart(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    first = History(db_path=db, session="s1")
    finish(first, record(1))
    first.close()
    second = History(db_path=db, session="s2")
    finish(second, record(2))
    assert [r["id"] for r in second.past(other_sessions_only=True)] == ["req_000001"]
    assert [r["id"] for r in second.past()] == ["req_000002", "req_000001"]
    second.close()


def test_a_failed_flush_writes_nothing_and_the_next_one_works(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    history = History(db_path=db, session="s1")
    good = record(1).summary()
    bad_row = ("req_bad", None, good)  # started_at NOT NULL: the whole flush must fail as one
    with pytest.raises(sqlite3.IntegrityError):
        history.write([("req_000001", 1.0, good), bad_row])  # type: ignore[list-item]
    assert history.past() == []  # all or nothing: one transaction per flush
    assert history.write([("req_000001", 1.0, good)]) == 1  # no transaction was left open
    assert [r["id"] for r in history.past()] == ["req_000001"]
    history.close()
    with sqlite3.connect(db) as conn:  # and it is really on disk, as text JSON
        (text,) = conn.execute("SELECT summary FROM requests").fetchone()
    assert isinstance(text, str) and json.loads(text) == json.loads(json.dumps(good))


def test_rewriting_a_request_replaces_its_row(tmp_path: Path) -> None:
    history = History(db_path=tmp_path / "h.sqlite3", session="s1")
    rec = record(1)
    finish(history, rec)
    history.flush()
    rec.status = 500
    finish(history, rec)
    assert [r["status"] for r in history.past()] == [500]
    history.close()


def test_the_table_keeps_only_the_newest_rows(tmp_path: Path) -> None:
    h = History(size=10, db_path=tmp_path / "h.sqlite3", session="s", keep=50)
    for batch in range(6):
        h.write([(f"r{batch}-{i}", batch * 100.0 + i, {"id": f"r{batch}-{i}"}) for i in range(40)])
    rows = h.past(limit=1000)
    assert len(rows) <= 50 + 40  # pruned every keep/10 rows, so at most one batch over
    assert rows[0]["id"] == "r5-39"  # the newest survive
    assert all(not r["id"].startswith(("r0-", "r1-", "r2-")) for r in rows)
    h.close()
    # A database left over the limit by an earlier session is pruned on the first write.
    h2 = History(size=10, db_path=tmp_path / "h.sqlite3", session="t", keep=5)
    h2.write([("new", 1000.0, {"id": "new"})])
    assert [r["id"] for r in h2.past(limit=1000)][:1] == ["new"] and len(h2.past(limit=1000)) == 5
    h2.close()


def test_a_flush_of_many_batches_keeps_every_row_and_the_last_write_of_an_id(tmp_path: Path) -> None:
    # Rows go in 240 to a statement: a flush after a busy second spans many, the last one partial.
    h = History(size=10, db_path=tmp_path / "h.sqlite3", session="s")
    rows = [(f"r{i:05d}", float(i), {"id": f"r{i:05d}", "status": 200}) for i in range(12_001)]
    rows.append(("r00003", 3.0, {"id": "r00003", "status": 502}))  # the same call again, in a later batch
    assert h.write(rows) == len(rows)
    past = h.past(limit=20_000)
    assert len(past) == 12_001
    assert {r["id"] for r in past} == {f"r{i:05d}" for i in range(12_001)}
    assert next(r for r in past if r["id"] == "r00003")["status"] == 502
    h.close()

"""The crash journal keeps a stream's finished server-side web searches, and recovery charges them at the
model's per-search price; a ledger file from before the `web_searches` column is migrated on open, also
by several processes opening it at once. Real SQLite files, real processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from iron_tui.core.budget import BudgetLedger, CallInfo
from iron_tui.core.clock import FixedClock
from iron_tui.core.ledger_store import LedgerStore
from iron_tui.core.pricing import Pricer
from iron_tui.core.recovery import interrupted_message, recover_dead
from iron_tui.core.token_usage import TokenUsage

ROOT = Path(__file__).resolve().parent.parent
OPEN_STORES = Path(__file__).parent / "helpers" / "open_stores.py"
PER_SEARCH = 10_000  # µ$: gpt-5's $10 per 1,000 searches in genai-prices
PRICER = Pricer()

# The `calls` table as released before it journaled web searches.
OLD_SCHEMA = """
CREATE TABLE budget_periods (period_key TEXT PRIMARY KEY, spent_micros INTEGER NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE budget_slices (holder TEXT NOT NULL, period_key TEXT NOT NULL, micros INTEGER NOT NULL,
    updated_at REAL NOT NULL, PRIMARY KEY (holder, period_key));
CREATE TABLE calls (
    holder TEXT NOT NULL, id TEXT NOT NULL, period_key TEXT NOT NULL, reserved_micros INTEGER NOT NULL,
    started_at REAL NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, api TEXT NOT NULL,
    agent_id TEXT, event_id TEXT, input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0, output_chars INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (holder, id));
CREATE TABLE holders (holder TEXT PRIMARY KEY, pid INTEGER NOT NULL, started_at REAL NOT NULL);
INSERT INTO calls VALUES ('h-old', 'c1', '2026-12-01', 500000, 0, 'openai', 'gpt-5', 'openai.responses', NULL,
    'event-old', 1000, 0, 2000);
"""


def _journal_and_stop(db: Path, calls: list[tuple[str, int, int]]) -> None:
    """A ledger journals `calls` (id, reservation, searches finished) with their progress, then stops without
    settling them: its rows stay and its lock is released, as when the process is killed."""
    ledger = BudgetLedger(limit_micros=10_000_000, publish=lambda e: None, clock=FixedClock(time.time()),
                          period="day", store=LedgerStore(db))
    for call_id, reserved, searches in calls:
        res = ledger.reserve(call_id, reserved, model="gpt-5", provider="openai",
                             call=CallInfo("openai.responses", f"event-{call_id}", input_tokens=1_000))
        ledger.progress(res, input_tokens=-1, output_tokens=0, output_chars=2_000, web_searches=searches)
    ledger.close()


def test_recovery_charges_a_dead_calls_finished_searches(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    # s1: 3 searches within its reservation; s2: 4 searches ($0.04) past a $0.03 reservation.
    _journal_and_stop(db, [("s1", 500_000, 3), ("s2", 30_000, 4)])
    live = LedgerStore(db)
    report = recover_dead(live, PRICER)
    by_id = {c.row.id: c for c in report.calls}
    assert by_id["s1"].row.web_searches == 3 and by_id["s1"].usage.web_search_requests == 3
    # Charged as a settled call with that usage would be: 1,000 input tokens, 1 per 2 relayed characters.
    tokens = PRICER.cost("openai", "gpt-5", TokenUsage(input_tokens=1_000, output_tokens=1_000))
    assert tokens is not None
    assert by_id["s1"].charge_micros == tokens + 3 * PER_SEARCH
    # Searches are counted, not estimated: charged in full even past the reservation (tokens stay capped).
    assert by_id["s2"].charge_micros == 4 * PER_SEARCH
    assert "3 web searches" in interrupted_message(by_id["s1"])
    assert sum(report.charged.values()) == tokens + 7 * PER_SEARCH
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT sum(spent_micros) FROM budget_periods").fetchone() == (tokens + 7 * PER_SEARCH,)


def test_an_old_ledger_file_gets_the_column_and_its_rows_count_no_searches(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    with sqlite3.connect(db) as con:
        con.executescript(OLD_SCHEMA)
    live = LedgerStore(db)
    columns = [row[1] for row in sqlite3.connect(db).execute("PRAGMA table_info(calls)")]
    assert columns.count("web_searches") == 1
    report = recover_dead(live, PRICER)  # the old row's holder left no lock: dead
    (call,) = report.calls
    assert call.row.web_searches == 0 and call.usage.web_search_requests == 0
    assert call.charge_micros == PRICER.cost("openai", "gpt-5", TokenUsage(input_tokens=1_000, output_tokens=1_000))
    live.close()
    # Reopened (now current), it is left as it is; a new journal row checkpoints its searches.
    _journal_and_stop(db, [("s1", 500_000, 2)])
    assert sqlite3.connect(db).execute("SELECT web_searches FROM calls WHERE id = 's1'").fetchall() == [(2,)]


def test_processes_opening_one_old_ledger_at_once_all_migrate_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "state.sqlite3") as con:
        con.executescript(OLD_SCHEMA)
    start = time.time() + 1.0  # after the interpreters have started
    procs = [subprocess.Popen([sys.executable, str(OPEN_STORES), str(data), str(start)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(4)]
    outcomes = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert outcomes == ["ok"] * 4, outcomes
    con = sqlite3.connect(data / "state.sqlite3")
    assert [row[1] for row in con.execute("PRAGMA table_info(calls)")].count("web_searches") == 1
    assert con.execute("SELECT id, web_searches FROM calls").fetchall() == [("c1", 0)]

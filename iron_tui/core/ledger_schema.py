"""The shared state file's schema: the SQLite tables of `state.sqlite3`, the crash journal's row type,
and the holder lock files beside the database that tell a live process from a dead one.

What the tables hold and the invariants kept on them: ledger_store.py, whose `LedgerStore` is their
only writer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_periods (
    period_key TEXT PRIMARY KEY, spent_micros INTEGER NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS budget_slices (
    holder TEXT NOT NULL, period_key TEXT NOT NULL, micros INTEGER NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (holder, period_key));
CREATE TABLE IF NOT EXISTS calls (
    holder TEXT NOT NULL, id TEXT NOT NULL, period_key TEXT NOT NULL, reserved_micros INTEGER NOT NULL,
    started_at REAL NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, api TEXT NOT NULL,
    agent_id TEXT, event_id TEXT, input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0, output_chars INTEGER NOT NULL DEFAULT 0,
    web_searches INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (holder, id));
CREATE TABLE IF NOT EXISTS holders (holder TEXT PRIMARY KEY, pid INTEGER NOT NULL, started_at REAL NOT NULL);
"""

# Columns added to a table after its first release: (table, column, declaration). A ledger file from
# before gets them when it is opened; its rows read the declaration's default.
MIGRATIONS = (
    ("calls", "web_searches", "INTEGER NOT NULL DEFAULT 0"),
)


class LedgerStorageError(RuntimeError):
    """The budget database could not be opened (message names the file)."""


@dataclass(slots=True)
class CallRow:
    """One journal row: an admitted call and what it has relayed so far."""

    id: str
    period_key: str
    reserved_micros: int
    started_at: float
    provider: str
    model: str
    api: str
    agent_id: str | None = None
    event_id: str | None = None
    input_tokens: int = 0  # known from the provider, or iron-tui's estimate at admission
    output_tokens: int = 0  # reported by the provider so far (0: unknown)
    output_chars: int = 0  # characters relayed to the client so far
    web_searches: int = 0  # server-side web searches finished so far (billed per search)


def hold_lock(path: Path) -> int:
    """Create and exclusively lock this process's lock file; the fd stays open for the process's life."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # no flock on this platform: other holders then always look alive
        pass
    except OSError:
        os.close(fd)
        raise
    return fd


def try_lock(path: Path) -> int | None:
    """The fd of `path` locked by us (its holder is dead), or None (it lives, or we cannot tell)."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd

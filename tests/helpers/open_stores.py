"""Open every SQLite store iron-tui keeps in a data dir, from a fresh process, at a given instant (so
several such processes race to create them), then print "ok" — or the error.

    python tests/helpers/open_stores.py DATA_DIR START_EPOCH_SECONDS
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from iron_tui.core.history import History
from iron_tui.core.ledger_store import LedgerStore
from iron_tui.core.outbox import Outbox
from iron_tui.core.responses_store import ResponsesStore

data, start = Path(sys.argv[1]), float(sys.argv[2])
while time.time() < start:  # every process starts opening at the same moment
    time.sleep(0.0005)
try:
    stores = [LedgerStore(data / "state.sqlite3"), History(db_path=data / "history.sqlite3"),
              Outbox(data / "outbox.sqlite3"), ResponsesStore(data / "responses.sqlite3")]
except Exception as exc:  # reported, not raised: the test wants every process's outcome
    print(f"error: {type(exc).__name__}: {exc}")
else:
    print("ok")

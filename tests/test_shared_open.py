"""Several iron-tui processes starting at once on one data dir all open its databases.

SQLite answers one of two connections that switch a new database to WAL at the same moment "database
is locked" without waiting (before the fix 18 of 90 simultaneous opens of a new ledger failed, so two
agents launched together could not both start). Real processes, real files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HELPER = Path(__file__).parent / "helpers" / "open_stores.py"
ROOT = Path(__file__).parent.parent


def test_processes_opening_one_new_data_dir_at_once_all_succeed(tmp_path: Path) -> None:
    outcomes = []
    for round_ in range(5):
        data = tmp_path / f"data{round_}"
        start = time.time() + 1.0  # after the interpreters have started (imports take a moment)
        procs = [subprocess.Popen([sys.executable, str(HELPER), str(data), str(start)], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(4)]
        outcomes += [p.communicate(timeout=120)[0].strip() for p in procs]
    assert outcomes == ["ok"] * 20, [o for o in outcomes if o != "ok"]

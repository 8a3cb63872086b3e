"""The engine, the headless runner and the Python API must not import Textual or Rich (DESIGN.md §1).

Checked in a fresh interpreter, so nothing imported by the test session itself can hide a leak.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import importlib, json, pkgutil, sys
import iron_tui, iron_tui.core, iron_tui.core.engine, iron_tui.headless, iron_tui.router
names = []
for info in pkgutil.walk_packages(iron_tui.core.__path__, "iron_tui.core."):
    importlib.import_module(info.name)
    names.append(info.name)
# The lazy public API must not drag the UI in either.
iron_tui.LlmRouter
leaks = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
print(json.dumps({"modules": names, "leaks": leaks}))
"""


def test_core_headless_and_router_never_import_textual_or_rich() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "iron_tui.core.engine" in result["modules"] and len(result["modules"]) > 10
    assert result["leaks"] == []


def test_the_probe_would_notice_a_leak() -> None:
    """The same check flags the dashboard package, so a pass above means something."""
    probe = "import sys, iron_tui.tui.app; print(any(m.startswith('textual') for m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"

from __future__ import annotations

from iron_tui.cli import run

raise SystemExit(run())

from __future__ import annotations

from iron_tui.cli import main

raise SystemExit(main())

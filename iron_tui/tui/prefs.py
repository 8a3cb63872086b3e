"""Choices the dashboard remembers between runs (the theme), in a small JSON file in the data dir."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

FILE_NAME = "tui-prefs.json"


def load(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing or damaged: start from the defaults
    return data if isinstance(data, dict) else {}


def save(path: Path | None, **values: Any) -> bool:
    """Merge `values` into the file; False when it cannot be written (the choice still applies now)."""
    if path is None:
        return False
    data = {**load(path), **values}
    tmp = path.with_suffix(".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True

"""Terminal-safe text for the dashboard, on the engine's escaping (`core/safe_text.py`): nothing a
client, an upstream or an agent sent reaches the terminal raw — every control, bidi or invisible
formatting character is drawn as a visible escape (`\\x1b`, `\\u202e`)."""

from __future__ import annotations

from iron_tui.core.safe_text import escape_controls


def safe_line(text: str) -> str:
    """One line (table cells, log lines): newlines and tabs shown as `\\n`, `\\t`."""
    return escape_controls(text)


def safe_text(text: str) -> str:
    """Multi-line text (bodies): line breaks and tabs kept, every other control escaped."""
    if text.isprintable():
        return text
    return "\n".join(escape_controls(line, keep_tabs=True) for line in text.split("\n"))

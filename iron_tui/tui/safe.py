"""Terminal-safe text: nothing a client, an upstream or an agent sent reaches the terminal raw.

Control characters (C0 except newline and tab, DEL, C1) would be interpreted by the terminal (an
escape sequence can retitle the window, move the cursor, or rewrite the screen), and bidirectional
overrides can make a line read as something else. Each is shown as a visible stand-in instead: C0 as
its Unicode control picture (ESC → ␛), DEL as ␡, the rest as `<U+XXXX>`.

Until the engine's own escaping helper lands on main (the "guard" work), the dashboard uses this one
for every table cell, log line and body it draws.
"""

from __future__ import annotations

_TABLE: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20) if c not in (0x09, 0x0A)}
_TABLE[0x7F] = "\u2421"
_TABLE.update({c: f"<U+{c:04X}>" for c in range(0x80, 0xA0)})
_TABLE.update({c: f"<U+{c:04X}>" for c in (0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F),
                                          *range(0x2066, 0x206A), 0xFEFF)})
_LINE = {**_TABLE, 0x0A: "\u2424", 0x09: " "}


def safe_text(text: str) -> str:
    """Multi-line text (bodies): newlines and tabs kept, every other control made visible."""
    return text.translate(_TABLE)


def safe_line(text: str) -> str:
    """One line (table cells, log lines): newlines shown as ␤, tabs as spaces, controls made visible."""
    return text.translate(_LINE)

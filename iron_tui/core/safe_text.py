"""Terminal-safe text: control characters from clients, upstreams or agents, escaped for display.

A model name with a newline must not forge a headless log line, an agent printing ESC ] 52 must not
write to the user's clipboard, and a right-to-left override must not reorder what the dashboard
shows. `escape_controls` turns every such character into a visible escape (`\\n`, `\\x1b`,
`\\u202e`); printable text, including non-ASCII letters, is returned unchanged (and fast).

`clean_text` is what every producer of displayed text calls on text it did not write itself: keys
redacted, controls escaped, length capped with a marker. Names a client chooses (model, agent id,
path) are capped shorter (`NAME_LIMIT`) than messages (`TEXT_LIMIT`).
"""

from __future__ import annotations

import re

from iron_tui.core.redact import redact_text, unprefixed_secrets

NAME_LIMIT = 200
TEXT_LIMIT = 4000

# C0 controls (tab handled separately), DEL and C1 controls, the Arabic letter mark, zero-width and
# directional marks, line/paragraph separators, bidi embeddings/overrides/isolates, invisible
# operators, lone surrogates (JSON can carry them; no output stream can encode them), the BOM and
# interlinear annotation marks.
_UNSAFE = (
    "\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ud800-\udfff\ufeff\ufff9-\ufffb"
)
_CONTROLS = re.compile(f"[{_UNSAFE}]")
_CONTROLS_AND_TAB = re.compile(f"[\t{_UNSAFE}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    named = _NAMED.get(c)
    if named is not None:
        return named
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def escape_controls(text: str, *, keep_tabs: bool = False) -> str:
    """`text` with every control, bidi and invisible formatting character shown as an escape."""
    if text.isprintable():  # C-speed check; false for every character escaped below (and tab)
        return text
    return (_CONTROLS if keep_tabs else _CONTROLS_AND_TAB).sub(_escape, text)


def cap(text: str, limit: int) -> str:
    """At most `limit` characters, with a marker saying how many more there were."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [+{len(text) - limit} chars]"


def clean_text(text: str, limit: int = TEXT_LIMIT, *, keep_tabs: bool = False) -> str:
    """Text from outside (an upstream error, an agent's line): controls escaped, keys redacted, capped.

    Escaping comes first: it leaves only printable characters (no lone surrogates) for redaction."""
    if len(text) <= limit and text.isprintable() and "sk-" not in text and not unprefixed_secrets():
        return text  # the usual short, clean name: nothing to do (three C-speed checks)
    return cap(redact_text(escape_controls(text, keep_tabs=keep_tabs)), limit)


def clean_name(name: str) -> str:
    """A name a client chose (model, agent id, path), as records keep it."""
    return clean_text(name, NAME_LIMIT)


def clean_optional(text: str | None, limit: int = TEXT_LIMIT) -> str | None:
    return None if text is None else clean_text(text, limit)

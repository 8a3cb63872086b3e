"""Every key, in one place: the help screen (`?`) draws this, and a test holds the screens' bindings
and the README's keys table to it."""

from __future__ import annotations

# (section, [(keys as shown, what they do, the binding names they stand for)])
KEYS: tuple[tuple[str, tuple[tuple[str, str, tuple[str, ...]], ...]], ...] = (
    ("Dashboard", (
        ("/", "filter: an expression applied as you type, with the match count (Enter keeps it)",
         ("slash",)),
        ("Esc", "clear the filter", ("escape",)),
        ("↑ ↓ PgUp PgDn", "move the selection (the list holds still: follow is off)",
         ("up", "down", "pageup", "pagedown")),
        ("Home / End", "the newest call (follow again) / the oldest call shown", ("home", "end")),
        ("f", "follow the newest call on / off (● follow / ‖ hold in the list's title)", ("f",)),
        ("Enter", "open the selected call (or double-click it)", ("enter",)),
        ("o / O", "sort by the next column / reverse the order (or click a column header)", ("o", "O")),
        ("T", "totals: per model, provider and agent; rate and latency graphs; budget forecast", ("T",)),
        ("H", "browse and filter all of the on-disk history (every session)", ("H",)),
        ("E", "export the session, or the filter's result, as JSONL or HAR", ("E",)),
        ("b", "edit the budget live (empty = unlimited)", ("b",)),
        ("p", "pause / resume the live list", ("p",)),
        ("c / u", "clear the list and its totals / undo the clear (the budget is not touched)", ("c", "u")),
        ("s / x / r", "start / stop / restart the agent (a known agent, e.g. Claude Code…, asks for its task first)",
         ("s", "x", "r")),
    )),
    ("Request detail", (
        ("q / Esc", "back to the list", ("q", "escape")),
        ("← → / 1–5", "previous / next tab, or a tab by number", ("left", "right", "1", "2", "3", "4", "5")),
        ("↑ ↓ PgUp PgDn", "scroll the tab", ()),
        ("c", "copy as curl (the token as $IRON_TOKEN)", ("c",)),
        ("i / o", "copy the request body / the response body", ("i", "o")),
        ("r", "replay the call through the proxy (checked against the budget)", ("r",)),
        ("e", "edit the request, then replay it", ("e",)),
        ("z", "unfold / fold thinking", ("z",)),
        ("m", "translated calls: side by side with upstream / the agent's view only", ("m",)),
        ("E", "export this call as JSONL or HAR", ("E",)),
    )),
    ("Edit and replay", (
        ("Ctrl+S", "send the edited request", ("ctrl+s",)),
        ("Esc", "cancel", ("escape",)),
    )),
    ("Totals", (
        ("g", "group by model / provider / agent", ("g",)),
        ("q / Esc", "back", ("q", "escape")),
    )),
    ("History", (
        ("/ and Esc", "filter every stored call (same expressions) / clear", ("slash", "escape")),
        ("Enter", "open a call (bodies only while it is still in memory)", ("enter",)),
        ("q", "back", ("q",)),
    )),
    ("Everywhere", (
        ("y", "show the proxy token (and copy it)", ("y",)),
        ("w", "the web page's address with the token (and copy it)", ("w",)),
        ("t", "next theme (remembered for the next start)", ("t",)),
        ("Ctrl+P", "command palette: every action by name", ("ctrl+p",)),
        ("?", "this help", ("question_mark",)),
        ("q", "quit (asks first: it stops the agent and the proxy)", ("q",)),
        ("Ctrl+C", "quit without asking; again while stopping quits at once", ("ctrl+c",)),
    )),
)

FILTER_HELP = (
    "Filters:  text  \"a phrase\"  model:  provider:  api:  agent:  id:  path:  error:  status:429|4xx|err|ok|pending\n"
    "          latency>500 (ms; 2s)  ttft<300  cost>0.01 ($)  tokens>=1k  in>  out<  status>=500\n"
    "          is:translated is:stream is:error is:capped is:unpriced is:estimated is:interrupted is:retried\n"
    "          is:fallback is:alias is:thinking is:replay      !x / not x / -x    a b = a and b    a or b | (…)"
)


def bound_keys(section: str) -> set[str]:
    for name, entries in KEYS:
        if name == section:
            return {k for _, _, keys in entries for k in keys}
    raise KeyError(section)

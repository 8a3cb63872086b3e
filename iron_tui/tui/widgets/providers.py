"""The provider strip: one line with each provider's health (ok / degraded / down), error rate and latency.

Shown once a provider has been tried. A provider that is down is drawn first, on the error colour, with
its countdown to the next probe, so it stands out at any width; the rest get shorter (then are
counted) until the line fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from textual.content import Content
from textual.widgets import Static

from iron_tui.core.units import duration_ms, percent, wait_s
from iron_tui.tui.safe import safe_line
from iron_tui.tui.widgets.panels import set_content

HEALTH_MARK = {"ok": "●", "degraded": "◐", "down": "✖"}
_ORDER = {"down": 0, "degraded": 1, "ok": 2}
# What the help screen says about the strip and the sync panel's marks.
STATE_MARKS: tuple[tuple[str, str], ...] = (
    ("●", "provider ok (the line under the list: recent error rate, latency)"),
    ("◐", "provider degraded: a fifth of its recent tries failed (rate limits count), or the last one did"),
    ("✖", "provider down after 3 failures in a row: fallbacks skip it until the countdown ends, then one "
          "call probes it"),
    ("dead", "Sync: events the control server will never take, kept aside; the rest keeps flowing"),
)
SEP = "  "
LABEL = "Providers "


def _detail(p: dict[str, Any], level: int) -> str:
    """What follows the name: level 0 in full, 1 shorter, 2 only what must stay (a down countdown)."""
    state = p.get("state", "ok")
    rate = p.get("error_rate") or 0.0
    latency = p.get("latency_ms")
    retry = p.get("retry_in_s")
    parts: list[str] = []
    if state == "down":
        wait = "probe on the next call" if not retry else f"retry in {wait_s(retry)}"
        parts.append(f"down · {wait}" if level < 2 else "down " + (wait_s(retry) if retry else "probing"))
    elif level == 0:
        parts.append(state)
    if level == 0 or (level == 1 and (rate or state != "ok")):
        parts.append(f"{percent(rate, 1) if rate else '0%'} err")
    if latency is not None and state != "down" and level == 0:
        parts.append(duration_ms(latency))
    return " · ".join(parts)


def _segment(p: dict[str, Any], level: int) -> Content:
    state = str(p.get("state", "ok"))
    name = safe_line(str(p.get("provider", "?")))
    detail = _detail(p, level)
    mark = HEALTH_MARK.get(state, "?")
    if state == "down":  # reverse video on the error colour: visible at a glance, under every theme
        return Content.from_markup("[bold $text on $error] $m $n $d [/]", m=mark, n=name, d=detail)
    colour = "$text-success" if state == "ok" else "$text-warning"
    tail = Content.from_markup(" [$foreground-muted]$d[/]", d=detail) if detail else Content("")
    return Content.from_markup(f"[{colour}]$m[/] $n", m=mark, n=name) + tail


def _more(n: int) -> Content:
    return Content.from_markup("[$foreground-muted]+$n more[/]", n=str(n))


def strip_content(providers: Sequence[dict[str, Any]], width: int) -> Content:
    """The line for `providers` (PROVIDER_HEALTH wire forms), fitted to `width` cells."""
    ordered = sorted(providers, key=lambda p: (_ORDER.get(p.get("state", "ok"), 3), str(p.get("provider"))))
    label = Content.from_markup("[b $text-secondary]$l[/]", l=LABEL)
    # Shorten the healthy ones first: a down provider keeps its countdown in words the longest.
    for down_level, level in ((0, 0), (0, 1), (0, 2), (1, 2), (2, 2)):
        line = Content(SEP).join([_segment(p, down_level if p.get("state") == "down" else level)
                                  for p in ordered])
        if cell_len(LABEL) + line.cell_length <= width:
            return label + line
        if line.cell_length <= width:
            return line
    # Still too long: as many as fit (down ones first), then how many more.
    shown: list[Content] = []
    for i, p in enumerate(ordered):
        seg = _segment(p, 2)
        rest = len(ordered) - i - 1
        need = Content(SEP).join([*shown, seg]).cell_length + (len(SEP) + _more(rest).cell_length if rest else 0)
        if need > width and shown:
            break
        shown.append(seg)
    rest = len(ordered) - len(shown)
    return Content(SEP).join([*shown, _more(rest)] if rest else shown)


class ProviderStrip(Static):
    """One line under the requests list; hidden until a provider has been tried."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._down: set[str] = set()  # announced as down

    def announce(self, changes: Sequence[dict[str, Any]]) -> None:
        """A provider going down (or coming back) is a notification, not only a change on the line."""
        for p in changes:
            name = safe_line(str(p.get("provider")))
            if p.get("state") == "down":
                wait = p.get("retry_in_s")
                self.notify(f"{name} is down: {safe_line(str(p.get('last_error') or 'failing'))}"
                            + (f" · retry in {wait_s(wait)}" if wait else ""), title="Provider",
                            severity="error", timeout=10)
                self._down.add(name)
            elif name in self._down:
                self._down.discard(name)
                if p.get("state") == "ok":
                    self.notify(f"{name} is back", title="Provider", timeout=4)

    def show(self, providers: Sequence[dict[str, Any]]) -> None:
        down = any(p.get("state") == "down" for p in providers)
        self.set_class(down, "-down")
        self.set_class(not down and any(p.get("state") == "degraded" for p in providers), "-degraded")
        if not providers:
            self.display = False
            return
        # The strip spans the screen (less its padding); its own size is 0 until it is first shown.
        set_content(self, strip_content(providers, max(20, self.app.size.width - 2)))
        self.display = True

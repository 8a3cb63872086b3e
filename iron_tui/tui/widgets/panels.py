"""The header line and the spend, sync and agent panels."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Button, RichLog, Select, Static

from iron_tui.core.events import AgentOutput, AgentStateChanged, SyncStatus
from iron_tui.core.known_agents import KnownAgent
from iron_tui.core.stats import GroupTotals, alert_level
from iron_tui.core.units import count, money
from iron_tui.tui.safe import safe_line
from iron_tui.tui.timefmt import ago, uptime
from iron_tui.tui.widgets.charts import BarChart
from iron_tui.tui.widgets.requests import clip_middle

# --- cheap updates --------------------------------------------------------------------------------


def set_content(widget: Static, content: Content | str) -> None:
    """Update a Static only when its content changed, and re-layout only when its shape did.

    Under load the panels are refreshed up to ten times a second; a layout pass of the whole screen
    for each would cost far more than the repaint.
    """
    if isinstance(content, str):
        content = Content(content)
    lines = content.plain.split("\n")
    key = (content.plain, tuple(content.spans))
    shape = (len(lines), max(len(line) for line in lines))
    old = getattr(widget, "_iron_key", None)
    if old == key:
        return
    old_shape = getattr(widget, "_iron_shape", None)
    widget._iron_key = key  # type: ignore[attr-defined]
    widget._iron_shape = shape  # type: ignore[attr-defined]
    w, h = widget.styles.width, widget.styles.height
    sized = w is not None and not w.is_auto and h is not None and not h.is_auto  # fixed in app.tcss
    widget.update(content, layout=shape != old_shape and not sized)


# --- header ---------------------------------------------------------------------------------------


@dataclass
class HeaderInfo:
    mode: str = ""
    url: str = ""
    token: str = ""
    uptime_s: float = 0.0
    feed_clients: int = 0
    drops: int = 0
    paused: bool = False
    unseen: int = 0


class StatusHeader(Horizontal):
    """Mode, proxy URL, masked token (y shows it), uptime, feed clients and bus drops."""

    def compose(self) -> ComposeResult:
        yield Static("iron-tui", id="brand")
        yield Static(id="endpoint")
        yield Static(Content.from_markup("[dim]y token · w web page[/]"), id="copy-hint")
        yield Static(id="stats")

    def show(self, info: HeaderInfo) -> None:
        set_content(self.query_one("#endpoint", Static),
            Content.from_markup(
                "[$accent]$mode[/] [b]$url[/] token [$foreground-muted]$token[/]",
                mode=info.mode, url=info.url, token=info.token,
            )
        )
        paused = Content.from_markup("[reverse $warning] PAUSED +$n [/] ", n=f"{info.unseen:,}") if info.paused \
            else Content("")
        drops = Content.from_markup("[$error]drops $d[/]" if info.drops else "drops $d", d=f"{info.drops:,}")
        set_content(self.query_one("#stats", Static),
            Content.assemble(
                paused,
                Content.from_markup("up $up  feed $feed  ", up=uptime(info.uptime_s), feed=str(info.feed_clients)),
                drops,
            )
        )


# --- spend ----------------------------------------------------------------------------------------

LEVEL_CLASSES = ("-ok", "-warning", "-critical", "-exhausted")


class SpendPanel(Vertical):
    """Spent vs limit, a bar coloured by alert level, spend over time with its scale, top models."""

    BORDER_TITLE = "Spend"

    def compose(self) -> ComposeResult:
        yield Static(id="spend-figure")
        yield SpendBar(id="spend-bar")
        yield BarChart(id="spend-chart")
        yield Static(id="spend-models")
        yield Static(id="mini-sync")  # narrow layouts only, where the sync panel is hidden

    def show_spend(self, spent: int, reserved: int, limit: int | None, period: str) -> None:
        level = alert_level(spent, limit)
        for cls in LEVEL_CLASSES:
            self.set_class(cls == f"-{level}", cls)
        if limit is None:
            figure = Content.from_markup("[b]$spent[/] spent · no limit", spent=money(spent))
        else:
            pct = 100.0 * spent / limit if limit else 100.0
            figure = Content.from_markup("[b]$spent[/] of $limit · $pct", spent=money(spent), limit=money(limit),
                                         pct=f"{pct:.0f}%")
        if level == "exhausted":
            figure = figure + Content(" · EXHAUSTED")
        # Always two lines, so the panel does not jump as calls come and go.
        extras = [f"{money(reserved)} reserved in flight"]
        if period != "session":
            extras.append(f"budget per {period}")
        figure = figure + Content.from_markup("\n[$foreground-muted]$x[/]", x=" · ".join(extras))
        set_content(self.query_one("#spend-figure", Static), figure)
        bar = self.query_one(SpendBar)
        bar.display = limit is not None
        bar.fraction = 1.0 if not limit else min(1.0, spent / limit)

    def show_sync_line(self, status: SyncStatus) -> None:
        text = Content(f"sync {SYNC_MARK[status.state]} {status.state}")
        if status.pending:
            text += Content(f" · {status.pending:,} pending")
        if status.dead_letters:
            text += Content.from_markup(" · [b $text-error]$n dead[/]", n=f"{status.dead_letters:,}")
        set_content(self.query_one("#mini-sync", Static), text)

    def show_series(self, values: Sequence[float], bucket_s: float) -> None:
        self.query_one(BarChart).show(values, bucket_s=bucket_s, fmt=lambda v: money(round(v)),
                                      caption=f"spend per {bucket_s:g} s")

    def show_models(self, groups: list[GroupTotals], cleared: bool, limit: int = 4) -> None:
        box = self.query_one("#spend-models", Static)
        width = max(20, box.size.width or 40)
        lines = []
        for g in groups[:limit]:
            cost = "unpriced" if g.unpriced == g.calls else money(g.cost_micros)
            calls = f" ×{g.calls:,}"
            err = f" {g.errors:,} err" if g.errors else ""
            name = clip_middle(safe_line(g.key), max(6, width - len(calls) - len(err) - len(cost) - 1))
            pad = " " * max(1, width - len(name) - len(calls) - len(err) - len(cost))
            line = Content.from_markup("$name[$foreground-muted]$calls[/][$text-error]$err[/]$pad$cost",
                                       name=name, calls=calls, err=err, pad=pad, cost=cost)
            lines.append(line)
        if len(groups) > limit:
            lines.append(Content.from_markup("[$foreground-muted]… $n more (T totals)[/]",
                                             n=count(len(groups) - limit, "model")))
        if not lines:
            lines.append(Content.from_markup("[$foreground-muted]$t[/]",
                                             t="cleared (u undoes)" if cleared else "no calls yet"))
        set_content(box, Content("\n").join(lines))


class SpendBar(Widget):
    """Spent as a fraction of the limit, drawn to the widget's width (colour from CSS by level)."""

    fraction: reactive[float] = reactive(0.0)

    def render(self) -> str:
        width = max(1, self.size.width)
        full = round(self.fraction * width)
        return "█" * full + "░" * (width - full)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --- sync -----------------------------------------------------------------------------------------

SYNC_MARK = {"ok": "●", "retrying": "◐", "offline": "○", "disabled": "–"}


class SyncPanel(Static):
    BORDER_TITLE = "Sync"

    def show(self, status: SyncStatus, now: float) -> None:
        for state in SYNC_MARK:
            self.set_class(status.state == state, f"-{state}")
        self.set_class(status.dead_letters > 0, "-dead")
        last = "never" if status.last_success is None else ago(now - status.last_success)
        if status.state == "disabled":
            body = Content.from_markup("[b]– disabled[/]\n[$foreground-muted]no control server[/]")
        else:
            body = Content.from_markup(
                "[b]$mark $state[/]\npending  $pending\nsent     $sent\nrejected $rejected\n",
                mark=SYNC_MARK[status.state], state=status.state, pending=f"{status.pending:,}",
                sent=f"{status.sent:,}", rejected=f"{status.rejected:,}",
            )
            if status.dead_letters:  # events the server will never take: kept aside, the rest flows
                body += Content.from_markup("[b $text-error]dead     $n[/] [$foreground-muted]never sent[/]\n",
                                            n=f"{status.dead_letters:,}")
            body += Content(f"last ok  {last}")
            if status.last_error and status.state != "ok":
                body = body + Content.from_markup("\n[$text-error]$err[/]",
                                                  err=_clip(safe_line(status.last_error), 60))
        set_content(self, body)


# --- agent ----------------------------------------------------------------------------------------

AGENT_MARK = {"idle": "○", "starting": "◐", "running": "●", "stopping": "◑", "exited": "■", "failed": "✖"}
LOG_LINES = 1000


class AgentLog(RichLog):
    """The agent's output, wrapped at the panel's width (and rewrapped when it changes), never cut."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_lines=LOG_LINES, markup=False, highlight=False, wrap=True, min_width=1, **kwargs)
        self._source: deque[Text] = deque(maxlen=LOG_LINES)
        self._wrapped_at = 0

    def add(self, line: Text) -> None:
        self._source.append(line)
        self.write(line)

    def clear(self) -> AgentLog:
        self._source.clear()
        super().clear()
        return self

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width != self._wrapped_at and self._source:
            self._wrapped_at = width
            super().clear()
            for line in self._source:
                self.write(line)


class AgentPanel(Vertical):
    """Preset selector, Start / Stop / Restart, the agent's state and its live output.

    The selector offers the configured presets, then the known agents found on PATH (named with "…":
    Start asks for their task first)."""

    BORDER_TITLE = "Agent"

    def __init__(self, presets: Sequence[str], known: Sequence[KnownAgent] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._options: list[tuple[str, str | KnownAgent]] = [(p, p) for p in presets]
        self._options += [(f"{a.name}…", a) for a in known]

    def compose(self) -> ComposeResult:
        with Horizontal(id="agent-controls"):
            yield Select(self._options, prompt="no preset" if not self._options else "preset",
                         allow_blank=not self._options, compact=True, id="agent-preset")
            yield Button("Start", id="agent-start", variant="success", compact=True)
            yield Button("Stop", id="agent-stop", variant="error", compact=True)
            yield Button("Restart", id="agent-restart", variant="warning", compact=True)
        yield Static(id="agent-state")
        yield AgentLog(id="agent-log")

    @property
    def selected_preset(self) -> str | KnownAgent | None:
        value = self.query_one("#agent-preset", Select).value
        return value if isinstance(value, str | KnownAgent) else None

    def show_state(self, state: str, name: str | None, pid: int | None, exit_code: int | None,
                   reason: str | None, restarts: int, can_restart: bool) -> None:
        for s in AGENT_MARK:
            self.set_class(s == state, f"-{s}")
        crashed = state == "exited" and (reason or "").startswith(("crashed", "killed by"))
        self.set_class(crashed, "-crashed")
        parts = [f"{AGENT_MARK.get(state, '?')} {state}"]
        if name:
            parts.append(_clip(safe_line(name), 24))
        if pid is not None and state in ("running", "stopping"):
            parts.append(f"pid {pid}")
        if restarts:
            parts.append(f"restarts {restarts}")
        if state in ("exited", "failed"):
            if reason:
                parts.append(safe_line(reason))
            elif exit_code is not None:
                parts.append(f"exit code {exit_code}")
        set_content(self.query_one("#agent-state", Static), Content(" · ".join(parts)))
        active = state in ("starting", "running", "stopping")
        self.query_one("#agent-start", Button).disabled = active
        self.query_one("#agent-stop", Button).disabled = not active
        self.query_one("#agent-restart", Button).disabled = not can_restart or state == "stopping"

    def write_events(self, events: Sequence[AgentStateChanged | AgentOutput], skipped: int) -> None:
        log = self.query_one(AgentLog)
        v = self.app.theme_variables
        if skipped:
            log.add(Text(f"… {skipped:,} lines not shown (output too fast)", style="italic"))
        for ev in events:
            if isinstance(ev, AgentOutput):
                style = v.get("text-error", "") if ev.stream == "stderr" else ""
                log.add(Text(safe_line(ev.line), style=style))
            elif ev.state in ("running", "exited", "failed"):
                log.add(Text(safe_line(_transition(ev)), style=f"bold {v.get('text-accent', '')}"))

    def clear_log(self) -> None:
        self.query_one(AgentLog).clear()


def _transition(ev: AgentStateChanged) -> str:
    if ev.state == "running":
        return f"── {ev.name or 'agent'} started (pid {ev.pid}) ──"
    if ev.state == "exited":
        return f"── exited: {ev.reason or f'code {ev.exit_code}'} ──"
    return f"── failed: {ev.reason or 'could not start'} ──"

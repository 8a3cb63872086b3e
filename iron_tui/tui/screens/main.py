"""The dashboard: header, live requests, spend, sync and agent panels.

The `@on` handlers here own all UI state. Messages arrive from the app's bus pump, already batched
and rate-limited, so each handler does one repaint per batch however busy the proxy is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Button, Footer

from iron_tui.config import mask_secret
from iron_tui.core.events import AgentStateChanged, CostAlert, Notice, SyncStatus
from iron_tui.tui.messages import (
    AgentActivity,
    AgentCommandFailed,
    Alerted,
    RequestsUpdated,
    SpendUpdated,
    SyncUpdated,
)
from iron_tui.tui.model import ModelTotal, RequestFilter, RequestStore, SpendSeries, add_totals, fmt_usd
from iron_tui.tui.screens.detail import RequestDetailScreen
from iron_tui.tui.screens.dialogs import UNCHANGED, BudgetDialog, FilterDialog
from iron_tui.tui.widgets.panels import AgentPanel, HeaderInfo, SpendPanel, StatusHeader, SyncPanel
from iron_tui.tui.widgets.requests import WIDE_MIN_WIDTH, RequestsTable

if TYPE_CHECKING:
    from iron_tui.tui.app import IronApp

NARROW_BELOW = 100  # columns; below this secondary columns and panels are hidden
DISPLAY_ROWS = 200  # rows rebuilt per refresh; the store keeps more for filtering
SPARK_BUCKETS = 40


def layout_kind(width: int) -> str:
    if width < NARROW_BELOW:
        return "narrow"
    return "wide" if width >= WIDE_MIN_WIDTH else "normal"


class MainScreen(Screen[None]):
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012 (Textual declares it as a plain attribute)
        (0, "-narrow"), (NARROW_BELOW, "-normal"), (WIDE_MIN_WIDTH, "-wide"),
    ]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("b", "budget", "Budget"),
        Binding("p", "pause", "Pause"),
        Binding("c", "clear", "Clear"),
        Binding("s", "agent('start')", "Start"),
        Binding("x", "agent('stop')", "Stop"),
        Binding("r", "agent('restart')", "Restart"),
    ]

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.store = RequestStore()
        self.filter = RequestFilter()
        self.paused = False
        self.unseen = 0
        self.totals: dict[str, ModelTotal] = {}
        self.series = SpendSeries()
        self.kind = ""
        self.sync = SyncStatus(0.0, "disabled")
        self.spend: tuple[int, int, int | None, str] = (0, 0, None, "session")
        self.agent_name: str | None = None

    @property
    def iron(self) -> IronApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        engine = self.iron.engine
        yield StatusHeader(id="header")
        with Vertical(id="body"):
            yield RequestsTable(id="requests")
            with Horizontal(id="panels"):
                yield SpendPanel(id="spend")
                yield SyncPanel(id="sync")
                yield AgentPanel([p.name for p in engine.agent.presets], id="agent")
        yield Footer()

    def on_mount(self) -> None:
        engine = self.iron.engine
        self.store.capacity = engine.settings.history_size
        table = self.query_one(RequestsTable)
        table.border_title = "Requests"
        # Seed from the engine (it may have been started, and served calls, before the app).
        past = [r.summary() for r in reversed(engine.history.recent(DISPLAY_ROWS))]
        self.store.upsert(past)
        add_totals(self.totals, [r for r in past if r["state"] != "pending"])
        spent, limit = engine.ledger.status()
        self.spend = (spent, engine.ledger.reserved, limit, engine.settings.budget_period)
        if engine.analytics is not None:
            self.sync = engine.analytics.status
        a = engine.agent
        self.agent_name = a.current.name if a.current else None
        self._show_agent(a.state, self.agent_name, a.pid, a.exit_code, a.reason, a.restarts)
        self.kind = layout_kind(self.app.size.width)
        self._refresh_requests()
        self._show_spend()
        self._show_models()
        self._tick()
        self.set_interval(1.0, self._tick)
        table.focus()

    # --- periodic: the clock moves even when nothing happens --------------------------------------

    def _tick(self) -> None:
        self._show_header()
        self._show_sync()
        self.query_one(SpendPanel).show_series(self.series.window(self.iron.clock.now(), SPARK_BUCKETS))

    def engine_started(self) -> None:
        """The proxy URL is known now."""
        if self.is_mounted:  # before mount, on_mount draws everything
            self._show_header()
            self._refresh_requests()

    def _show_header(self) -> None:
        app = self.iron
        engine = app.engine
        feed = getattr(engine, "feed", None)
        self.query_one(StatusHeader).show(HeaderInfo(
            mode=engine.mode,
            url=app.display_url or (engine.openai_base_url if engine.port else "starting…"),
            token=mask_secret(engine.token) or "",
            uptime_s=app.clock.now() - engine.started_at,
            feed_clients=feed.client_count if feed is not None else 0,
            drops=engine.bus.dropped,
            paused=self.paused,
            unseen=self.unseen,
        ))

    # --- bus messages -------------------------------------------------------------------------------

    @on(RequestsUpdated)
    def _requests(self, msg: RequestsUpdated) -> None:
        if self.paused:
            self.unseen += sum(1 for r in msg.rows if self.store.get(r["id"]) is None)
        # Count a finish once, even if the seed from history already had it.
        finished = [(ts, r) for ts, r in msg.finished
                    if (prev := self.store.get(r["id"])) is None or prev.get("state") == "pending"]
        self.store.upsert(msg.rows)
        if finished:
            add_totals(self.totals, [r for _, r in finished])
            for ts, r in finished:
                cost = r.get("cost_usd")
                if cost:
                    self.series.add(ts, round(cost * 1_000_000))
            self._show_models()
        if not self.paused:
            self._refresh_requests()
        self._tick()  # the clock moved with the traffic: uptime, sparkline, "ago" times

    @on(SpendUpdated)
    def _spend(self, msg: SpendUpdated) -> None:
        e = msg.event
        self.spend = (e.spent_micros, e.reserved_micros, e.limit_micros, e.period)
        self._show_spend()
        self._show_header()

    @on(SyncUpdated)
    def _sync(self, msg: SyncUpdated) -> None:
        self.sync = msg.event
        self._show_sync()
        self._show_header()

    @on(AgentActivity)
    def _agent_activity(self, msg: AgentActivity) -> None:
        panel = self.query_one(AgentPanel)
        panel.write_events(msg.events, msg.skipped_lines)
        states = [e for e in msg.events if isinstance(e, AgentStateChanged)]
        if states:
            e = states[-1]
            self.agent_name = e.name or self.agent_name
            self._show_agent(e.state, e.name, e.pid, e.exit_code, e.reason, e.restarts)
        self._show_header()

    @on(Alerted)
    def _alerted(self, msg: Alerted) -> None:
        for e in msg.events:
            if isinstance(e, CostAlert):
                text = (f"Budget {e.severity}: {fmt_usd(e.spent_micros)} of {fmt_usd(e.limit_micros)} "
                        f"spent ({e.percentage:.0f}%)")
                self.notify(text, title="Budget", severity="warning" if e.severity == "warning" else "error", timeout=10)
            elif isinstance(e, Notice):
                severity = {"info": "information", "warning": "warning", "error": "error"}[e.level]
                self.notify(e.message, severity=severity)  # type: ignore[arg-type]

    @on(AgentCommandFailed)
    def _agent_failed(self, msg: AgentCommandFailed) -> None:
        self.notify(msg.reason, title="Agent", severity="error")

    # --- rendering ------------------------------------------------------------------------------------

    def _refresh_requests(self) -> None:
        table = self.query_one(RequestsTable)
        rows, matched = self.store.newest_first(self.filter, DISPLAY_ROWS)
        if self.filter.active and len(self.store):
            table.empty_text = "no requests match the filter (/ to change it)"
        else:
            engine = self.iron.engine
            url = self.iron.display_url or (engine.openai_base_url if engine.port else "the proxy")
            table.empty_text = f"no requests yet: point your agent at {url} with the token (y copies it)"
        table.show(rows, self.kind)
        parts = []
        if self.filter.active:
            parts.append(f"filter: {self.filter.text} · {matched} of {len(self.store)}")
        else:
            parts.append(f"{len(self.store)} requests")
        if matched > len(rows):
            parts.append(f"newest {len(rows)} shown")
        table.border_subtitle = " · ".join(parts)
        table.set_class(self.filter.active, "-filtered")

    def _show_sync(self) -> None:
        self.query_one(SyncPanel).show(self.sync, self.iron.clock.now())
        self.query_one(SpendPanel).show_sync_line(self.sync)

    def _show_spend(self) -> None:
        spent, reserved, limit, period = self.spend
        self.query_one(SpendPanel).show_spend(spent, reserved, limit, period)

    def _show_models(self) -> None:
        self.query_one(SpendPanel).show_models(self.totals)

    def _show_agent(self, state: str, name: str | None, pid: int | None, exit_code: int | None,
                    reason: str | None, restarts: int) -> None:
        can_restart = self.agent_name is not None or bool(self.iron.engine.agent.presets)
        self.query_one(AgentPanel).show_state(state, name, pid, exit_code, reason, restarts, can_restart)

    def on_resize(self, event: Resize) -> None:
        kind = layout_kind(event.size.width)
        if kind != self.kind:
            self.kind = kind
            self._refresh_requests()

    # --- user actions ---------------------------------------------------------------------------------

    @on(RequestsTable.Selected)
    def _open(self, event: RequestsTable.Selected) -> None:
        self.open_detail(event.request_id)

    def open_detail(self, request_id: str, tab: str = "tab-request") -> None:
        summary = self.store.get(request_id)
        record = self.iron.engine.history.get(request_id)
        if summary is None and record is not None:
            summary = record.summary()
        if summary is None:
            self.notify(f"request {request_id} is no longer available", severity="warning")
            return
        self.app.push_screen(RequestDetailScreen(summary, record, tab))

    def action_filter(self) -> None:
        def apply(text: str | None) -> None:
            if text is None:
                return
            self.filter = RequestFilter.parse(text)
            self._refresh_requests()

        self.app.push_screen(FilterDialog(self.filter.text), apply)

    def set_filter(self, text: str) -> None:
        self.filter = RequestFilter.parse(text)
        self._refresh_requests()

    def action_budget(self) -> None:
        engine = self.iron.engine
        limit = engine.ledger.limit

        def apply(value: float | object | None) -> None:
            if value is UNCHANGED:
                return
            usd_limit = value if isinstance(value, float) else None
            engine.set_budget(usd_limit)
            self.notify("budget removed: spending is unlimited" if usd_limit is None
                        else f"budget set to {fmt_usd(round(usd_limit * 1_000_000))}", title="Budget")

        self.app.push_screen(
            BudgetDialog(None if limit is None else limit / 1_000_000, fmt_usd(engine.ledger.spent)), apply
        )

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.unseen = 0
            self._refresh_requests()
        self.query_one(RequestsTable).set_class(self.paused, "-paused")
        self._show_header()
        self.notify("live view paused" if self.paused else "live view resumed", timeout=2)

    def action_clear(self) -> None:
        self.store.clear()
        self.unseen = 0
        self._refresh_requests()

    def action_agent(self, op: str) -> None:
        self.iron.agent_command(op, self.query_one(AgentPanel).selected_preset)

    @on(Button.Pressed, "#agent-start")
    def _start_pressed(self) -> None:
        self.action_agent("start")

    @on(Button.Pressed, "#agent-stop")
    def _stop_pressed(self) -> None:
        self.action_agent("stop")

    @on(Button.Pressed, "#agent-restart")
    def _restart_pressed(self) -> None:
        self.action_agent("restart")

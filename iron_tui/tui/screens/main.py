"""The dashboard: header, live filter, requests, spend, sync and agent panels.

The `@on` handlers here own all UI state. Messages arrive from the app's bus pump, already batched
and rate-limited, so each handler does one repaint per batch however busy the proxy is. Slow work
(exports) runs in workers that report back with messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Button, Footer

from iron_tui.core.events import AgentStateChanged, SyncStatus
from iron_tui.core.filter_expr import Filter
from iron_tui.core.stats import BUCKET_S, TotalsAccumulator
from iron_tui.core.units import count
from iron_tui.tui.messages import (
    AgentActivity,
    AgentCommandFailed,
    Alerted,
    HealthUpdated,
    RequestsUpdated,
    SpendUpdated,
    SyncUpdated,
)
from iron_tui.tui.model import MatchCache, RequestStore, Sort
from iron_tui.tui.screens.agent_start import agent_action
from iron_tui.tui.screens.detail_links import open_detail, tell_detail_screens
from iron_tui.tui.screens.dialogs import edit_budget
from iron_tui.tui.screens.main_views import (
    NARROW_BELOW,
    alert_toasts,
    empty_list_text,
    header_info,
    layout_kind,
    list_titles,
)
from iron_tui.tui.screens.session_export import export_session, text_of
from iron_tui.tui.widgets.filterbar import FilterBar
from iron_tui.tui.widgets.panels import AgentPanel, SpendPanel, StatusHeader, SyncPanel
from iron_tui.tui.widgets.providers import ProviderStrip
from iron_tui.tui.widgets.requests import WIDE_MIN_WIDTH, RequestsTable

if TYPE_CHECKING:
    from iron_tui.tui.app import IronApp

DISPLAY_ROWS = 5000  # rows handed to the table per refresh (it draws only the visible ones)
SPEND_BUCKETS = 30


class MainScreen(Screen[None]):
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012 (Textual declares it as a plain attribute)
        (0, "-narrow"), (NARROW_BELOW, "-normal"), (WIDE_MIN_WIDTH, "-wide"),
    ]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("f", "follow", "Follow"),
        Binding("T", "totals", "Totals"),
        Binding("H", "history", "History"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("o", "sort", "Sort", show=False),
        Binding("O", "sort_flip", "Reverse sort", show=False),
        Binding("E", "export", "Export", show=False),
        Binding("b", "budget", "Budget", show=False),
        Binding("p", "pause", "Pause", show=False),
        Binding("c", "clear", "Clear", show=False),
        Binding("u", "undo_clear", "Undo clear", show=False),
        Binding("s", "agent('start')", "Start agent", show=False),
        Binding("x", "agent('stop')", "Stop agent", show=False),
        Binding("r", "agent('restart')", "Restart agent", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.store = RequestStore()
        self.filter = Filter()
        self.sort = Sort()
        self.matcher = MatchCache(self.filter, self._bodies)
        self.paused = False
        self.unseen = 0
        self.totals = TotalsAccumulator()
        self.kind = ""
        self.sync = SyncStatus(0.0, "disabled")
        self.spend: tuple[int, int, int | None, str] = (0, 0, None, "session")
        self.agent_name: str | None = None
        self._cleared: tuple[Any, TotalsAccumulator, list[tuple[float, dict[str, Any]]]] | None = None
        self._matched = 0

    @property
    def iron(self) -> IronApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        engine = self.iron.engine
        yield StatusHeader(id="header")
        with Vertical(id="body"):
            bar = FilterBar(id="filter-bar")
            bar.display = False
            yield bar
            yield RequestsTable(id="requests")
            strip = ProviderStrip(id="providers")
            strip.display = False  # until a provider has been tried
            yield strip
            with Horizontal(id="panels"):
                yield SpendPanel(id="spend")
                yield SyncPanel(id="sync")
                yield AgentPanel([p.name for p in engine.agent.presets], self.iron.known_agents, id="agent")
        yield Footer()

    def on_mount(self) -> None:
        engine = self.iron.engine
        self.store.capacity = engine.settings.history_size
        table = self.query_one(RequestsTable)
        # Seed from the engine (it may have been started, and served calls, before the app).
        past = [r.summary() for r in reversed(engine.history.recent())]
        self.store.upsert(past)
        now = self.iron.clock.now()
        self.totals.extend((now, r) for r in past if r["state"] != "pending")
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
        self._show_providers()
        now = self.iron.clock.now()
        series = self.totals.spend_series(now, SPEND_BUCKETS)
        self.query_one(SpendPanel).show_series([float(v) for v in series], BUCKET_S)

    def engine_started(self) -> None:
        """The proxy URL is known now."""
        if self.is_mounted:  # before mount, on_mount draws everything
            self._show_header()
            self._refresh_requests()

    def _show_header(self) -> None:
        self.query_one(StatusHeader).show(header_info(self.iron, self.paused, self.unseen))

    # --- bus messages -------------------------------------------------------------------------------

    @on(RequestsUpdated)
    def _requests(self, msg: RequestsUpdated) -> None:
        # Count a finish once, even if the seed from history already had it.
        finished = [(ts, r) for ts, r in msg.finished
                    if (prev := self.store.get(r["id"])) is None or prev.get("state") == "pending"]
        new = self.store.upsert(msg.rows)
        if self.paused:
            self.unseen += new
        if finished:
            self.totals.extend(finished)
            if self._cleared is not None:
                self._cleared[2].extend(finished)
            self._show_models()
        tell_detail_screens(self.iron, msg.rows)
        if not self.paused:
            self._refresh_requests()
        self._tick()  # the clock moved with the traffic: uptime, spend graph, "ago" times

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

    @on(HealthUpdated)
    def _health(self, msg: HealthUpdated) -> None:
        self._show_providers()
        self.query_one(ProviderStrip).announce(msg.changes)

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
        for toast in alert_toasts(msg.events):
            self.notify(toast.message, title=toast.title, severity=toast.severity, timeout=toast.timeout)

    @on(AgentCommandFailed)
    def _agent_failed(self, msg: AgentCommandFailed) -> None:
        self.notify(msg.reason, title="Agent", severity="error")

    # --- rendering ------------------------------------------------------------------------------------

    def _bodies(self, request_id: str) -> str:
        rec = self.iron.engine.history.get(request_id)
        return "" if rec is None else text_of(rec)()

    def _refresh_requests(self) -> None:
        table = self.query_one(RequestsTable)
        rows, matched = self.store.view(self.matcher, self.sort, DISPLAY_ROWS)
        self._matched = matched
        table.empty_text = empty_list_text(self.iron, self.filter.active and len(self.store) > 0,
                                           self._cleared is not None)
        table.sort = self.sort
        table.show(rows, self.kind, newest_id=self.store.newest_id)
        self.store.pin(None if table.follow else table.selected_id)
        self._show_titles(table, matched, len(rows))
        self.query_one(FilterBar).show_count(matched, len(self.store))

    def _show_titles(self, table: RequestsTable, matched: int, shown: int) -> None:
        table.border_title, table.border_subtitle = list_titles(table.follow, self.paused, self.filter, self.store,
                                                                self.sort, matched, shown)
        table.set_class(self.filter.active, "-filtered")
        table.set_class(not table.follow, "-holding")

    def _show_sync(self) -> None:
        self.query_one(SyncPanel).show(self.sync, self.iron.clock.now())
        self.query_one(SpendPanel).show_sync_line(self.sync)

    def _show_providers(self) -> None:
        self.query_one(ProviderStrip).show(self.iron.engine.health.snapshot())

    def _show_spend(self) -> None:
        spent, reserved, limit, period = self.spend
        self.query_one(SpendPanel).show_spend(spent, reserved, limit, period)

    def _show_models(self) -> None:
        self.query_one(SpendPanel).show_models(self.totals.groups("model", percentiles=False),
                                               cleared=self._cleared is not None)

    def _show_agent(self, state: str, name: str | None, pid: int | None, exit_code: int | None,
                    reason: str | None, restarts: int) -> None:
        can_restart = self.agent_name is not None or bool(self.iron.engine.agent.presets)
        self.query_one(AgentPanel).show_state(state, name, pid, exit_code, reason, restarts, can_restart)

    def on_resize(self, event: Resize) -> None:
        kind = layout_kind(event.size.width)
        if kind != self.kind:
            self.kind = kind
            self._refresh_requests()
        self.call_after_refresh(self._show_models)  # the model lines fit the panel's new width
        self._show_providers()

    # --- the list -------------------------------------------------------------------------------------

    @on(RequestsTable.Selected)
    def _open(self, event: RequestsTable.Selected) -> None:
        self.open_detail(event.request_id)

    @on(RequestsTable.FollowChanged)
    def _follow_changed(self, _: RequestsTable.FollowChanged) -> None:
        table = self.query_one(RequestsTable)
        self.store.pin(None if table.follow else table.selected_id)
        if table.follow and not self.paused:
            self._refresh_requests()
        else:
            self._show_titles(table, self._matched, len(table.rows))

    @on(RequestsTable.SortRequested)
    def _sort_requested(self, event: RequestsTable.SortRequested) -> None:
        self._set_sort(self.sort.by(event.key))

    def open_detail(self, request_id: str, tab: str | None = None) -> None:
        open_detail(self.iron, self.store, request_id, tab)

    def action_filter(self) -> None:
        self.query_one(FilterBar).open(self.filter.text)

    @on(FilterBar.Changed)
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.set_filter(event.filter)

    @on(FilterBar.Done)
    def _filter_done(self, _: FilterBar.Done) -> None:
        self.query_one(RequestsTable).focus()

    def set_filter(self, flt: Filter | str) -> None:
        self.filter = Filter.parse(flt) if isinstance(flt, str) else flt
        self.matcher = MatchCache(self.filter, self._bodies)
        self._refresh_requests()

    def action_clear_filter(self) -> None:
        if self.filter.active or self.query_one(FilterBar).display:
            self.query_one(FilterBar).action_clear()

    def action_follow(self) -> None:
        table = self.query_one(RequestsTable)
        if not self.sort.is_default and not table.follow:
            self.sort = Sort()  # following means the newest on top
        table.set_follow(not table.follow)
        self._refresh_requests()

    def _set_sort(self, sort: Sort) -> None:
        self.sort = sort
        table = self.query_one(RequestsTable)
        if not sort.is_default and table.follow:
            table.set_follow(False)
        self._refresh_requests()

    def action_sort(self) -> None:
        self._set_sort(self.sort.next_key())

    def action_sort_flip(self) -> None:
        self._set_sort(self.sort.flipped())

    def action_totals(self) -> None:
        from iron_tui.tui.screens.totals import TotalsScreen

        self.app.push_screen(TotalsScreen())

    def action_history(self) -> None:
        from iron_tui.tui.screens.history import HistoryScreen

        self.app.push_screen(HistoryScreen())

    def action_budget(self) -> None:
        edit_budget(self.iron)

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.unseen = 0
        self._refresh_requests()
        self.query_one(RequestsTable).set_class(self.paused, "-paused")
        self._show_header()
        self.notify("live list paused" if self.paused else "live list resumed", timeout=2)

    def action_clear(self) -> None:
        if not len(self.store) and self._cleared is None:
            return
        n = len(self.store)
        self._cleared = (self.store.clear(), self.totals, [])
        self.totals = TotalsAccumulator()
        self.unseen = 0
        self._refresh_requests()
        self._show_models()
        self.notify(f"cleared {count(n, 'request')} and their totals (the budget is unchanged) — u undoes",
                    timeout=6)

    def action_undo_clear(self) -> None:
        if self._cleared is None:
            self.notify("nothing to undo", timeout=2)
            return
        saved, totals, since = self._cleared
        self._cleared = None
        self.store.restore(saved)
        totals.extend(since)
        self.totals = totals
        self._refresh_requests()
        self._show_models()
        self.notify(f"restored: {count(len(self.store), 'request')}", timeout=3)

    def action_agent(self, op: str) -> None:
        agent_action(self.iron, self.query_one(AgentPanel).selected_preset, op)

    @on(Button.Pressed, "#agent-controls Button")
    def _agent_button(self, event: Button.Pressed) -> None:
        self.action_agent(str(event.button.id).removeprefix("agent-"))  # agent-start → start

    def action_export(self) -> None:
        export_session(self.iron, self.filter)

"""Request detail: the conversation, the bodies (side by side with upstream when translated), what it
cost and, for a failed call, what went wrong and what to do. It follows the call live: a call opened
while in flight fills in when it finishes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static, TabbedContent, TabPane

from iron_tui.core.conversation import CallView, call_view
from iron_tui.core.explain import cost_breakdown, explain_error
from iron_tui.core.export import ExportError, curl_command
from iron_tui.core.filter_match import is_failed, status_text
from iron_tui.core.units import call_cost, duration_ms
from iron_tui.tui.messages import CallUpdated
from iron_tui.tui.safe import safe_line
from iron_tui.tui.screens.detail_views import (
    conversation_pane,
    cost_content,
    error_pane,
    request_pane,
    response_pane,
    route_text,
    scroll,
)
from iron_tui.tui.screens.dialogs import TextDialog

if TYPE_CHECKING:
    from iron_tui.tui.app import IronApp

TABS: tuple[tuple[str, str], ...] = (
    ("tab-conversation", "Conversation"),
    ("tab-request", "Request"),
    ("tab-response", "Response"),
    ("tab-cost", "Cost"),
    ("tab-error", "Error"),
)


class RequestDetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,escape", "close", "Back"),
        Binding("left", "tab(-1)", "Prev tab", show=False, priority=True),
        Binding("right", "tab(1)", "Next tab", show=False, priority=True),
        *(Binding(str(i + 1), f"goto({i})", title, show=False) for i, (_, title) in enumerate(TABS)),
        Binding("c", "copy_curl", "curl"),
        Binding("i", "copy_body('request')", "Copy request", show=False),
        Binding("o", "copy_body('response')", "Copy response", show=False),
        Binding("r", "replay", "Replay"),
        Binding("e", "edit_replay", "Edit & replay"),
        Binding("z", "unfold", "Thinking", show=False),
        Binding("m", "mode", "Side by side", show=False),
        Binding("E", "export", "Export", show=False),
    ]

    def __init__(self, summary: dict[str, Any], record: Any, initial: str | None = None) -> None:
        super().__init__()
        self.summary = summary
        self.record = record
        self.request_id: str = summary["id"]
        self.active = initial or ("tab-error" if is_failed(summary) else "tab-conversation")
        self.side_by_side = True
        self.unfold = False
        self._view: CallView | None = None

    @property
    def iron(self) -> IronApp:
        return self.app  # type: ignore[return-value]

    # --- building ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="detail-title")
        with TabbedContent(initial=self.active, id="detail-tabs"):
            for tab_id, title in TABS:
                with TabPane(title, id=tab_id):
                    yield self._pane(tab_id)
        yield Footer()

    def _title(self) -> Content:
        s = self.summary
        status = "[b $text-error]$status[/]" if is_failed(s) else "[b $text-success]$status[/]"
        model = safe_line(str(s.get("model")))
        if s.get("client_model"):  # an alias, NAME/ or a fallback served it: say what was asked for
            model += f" (asked: {safe_line(str(s['client_model']))})"
        return Content.from_markup(
            f"[b]$id[/]  $model  [$foreground-muted]$route[/]  {status}  $lat  $cost",
            id=s["id"], model=model, route=safe_line(route_text(s, self.record)),
            status=status_text(s), lat=duration_ms(s.get("latency_ms")), cost=call_cost(s),
        )

    def _pane(self, tab_id: str) -> Widget:
        s, rec = self.summary, self.record
        if self._view is None and rec is not None:
            self._view = call_view(rec)
        error = explain_error(s, rec)
        if tab_id == "tab-conversation":
            return conversation_pane(s, rec, self._view, side_by_side_mode=self.side_by_side, unfold=self.unfold)
        if tab_id == "tab-request":
            return request_pane(s, rec)
        if tab_id == "tab-response":
            return response_pane(s, rec, error)
        if tab_id == "tab-cost":
            stop = self._view.response.stop_reason if self._view is not None and self._view.response else None
            b = cost_breakdown(s, rec, self.iron.engine.pricer, stop_reason=stop)
            return scroll(Static(cost_content(s, rec, b), classes="body"))
        return error_pane(s, rec, error)

    def on_mount(self) -> None:
        self.call_after_refresh(self._focus_pane)

    def _focus_pane(self) -> None:
        """The active tab's body takes the keys, so ↑ ↓ PgUp PgDn scroll it at once."""
        tabs = self.query_one(TabbedContent)
        pane = tabs.get_pane(tabs.active)
        target = next(iter(pane.children), None)
        if target is not None and target.focusable:
            target.focus()

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.active = event.pane.id or self.active
        self.call_after_refresh(self._focus_pane)

    async def _rebuild(self, *tab_ids: str) -> None:
        for tab_id in tab_ids or tuple(t for t, _ in TABS):
            pane = self.query_one(f"#{tab_id}", TabPane)
            await pane.remove_children()
            await pane.mount(self._pane(tab_id))
        self.query_one("#detail-title", Static).update(self._title())
        self._focus_pane()

    @on(CallUpdated)
    async def _updated(self, msg: CallUpdated) -> None:
        was_failed = is_failed(self.summary)
        self.summary = msg.summary
        self.record = self.iron.engine.history.get(self.request_id) or self.record
        self._view = None
        await self._rebuild()
        if is_failed(self.summary) and not was_failed and self.active == "tab-conversation":
            self.query_one(TabbedContent).active = "tab-error"

    # --- actions ----------------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss()

    def action_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        ids = [t for t, _ in TABS]
        current = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(current + step) % len(ids)]

    def action_goto(self, index: int) -> None:
        self.query_one(TabbedContent).active = TABS[index][0]

    async def action_unfold(self) -> None:
        self.unfold = not self.unfold
        await self._rebuild("tab-conversation")

    async def action_mode(self) -> None:
        if not self.summary.get("translated"):
            self.notify("not a translated call: the agent's bodies went upstream as they are", timeout=3)
            return
        self.side_by_side = not self.side_by_side
        await self._rebuild("tab-conversation")

    def action_copy_curl(self) -> None:
        try:
            cmd = curl_command(self.summary, self.record, self.iron.engine.base_url)
        except ExportError as exc:
            self.notify(str(exc), title="curl", severity="warning")
            return
        lead = Content.from_markup("Sends this call again through iron-tui. First: [b]export IRON_TOKEN=…[/] (y shows it)")
        self.app.push_screen(TextDialog("Copy as curl", cmd, lead=lead))

    def action_copy_body(self, which: str) -> None:
        rec = self.record
        if rec is None:
            self.notify("the bodies of this call are no longer in memory", severity="warning")
            return
        if which == "request":
            body = rec.request_body
        else:
            body = rec.translated_response if self.summary.get("translated") else rec.upstream_response
            if body is None:
                err = explain_error(self.summary, rec)
                body = err.client_body if err is not None else None
        if body is None:
            self.notify(f"no {which} body recorded", severity="warning")
            return
        self.app.push_screen(TextDialog(f"Copy the {which} body", body))

    def action_replay(self) -> None:
        self.iron.confirm_replay(self.summary, self.record, None)

    def action_edit_replay(self) -> None:
        from iron_tui.tui.screens.replay import ReplayEditScreen

        try:
            screen = ReplayEditScreen(self.summary, self.record)
        except ExportError as exc:
            self.notify(str(exc), title="Replay", severity="warning")
            return
        self.app.push_screen(screen)

    def action_export(self) -> None:
        self.iron.export_calls([(self.summary, self.record)], f"call {self.request_id}", self.request_id)

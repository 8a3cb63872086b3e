"""All of the on-disk history (every session, up to 100,000 calls), filtered in SQL as you type.

Queries run in a worker thread and report back with messages; pages of PAGE rows load as the
selection nears the end of what is loaded.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from iron_tui.core.filter_expr import Filter
from iron_tui.core.history_query import Cursor, Page
from iron_tui.core.units import count
from iron_tui.tui.widgets.filterbar import FilterBar
from iron_tui.tui.widgets.requests import RequestsTable

if TYPE_CHECKING:
    from iron_tui.tui.app import IronApp

PAGE = 500
DEBOUNCE_S = 0.25


class HistoryLoaded(Message):
    def __init__(self, flt: Filter, page: Page, total: int | None, append: bool) -> None:
        super().__init__()
        self.filter = flt
        self.page = page
        self.total = total
        self.append = append


class HistoryScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "close", "Back"),
        Binding("escape", "escape", "Back / clear", show=False),
        Binding("slash", "filter", "Filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter = Filter()
        self.rows: list[dict[str, Any]] = []
        self.cursor: Cursor | None = None
        self.total: int | None = None
        self._busy = False
        self._timer: Any = None

    @property
    def iron(self) -> IronApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="history-title")
        with Vertical(id="history-body"):
            yield FilterBar(id="history-filter", keep_open=True)
            yield RequestsTable(id="history-table", time_format="date")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(RequestsTable)
        table.follow = False
        table.followable = False
        table.empty_text = "loading…"
        table.border_title = "History"
        self._title()
        self._load(self.filter, None)
        self.set_interval(0.25, self._maybe_more)
        table.focus()

    def _title(self) -> None:
        sessions = "this and earlier sessions"
        if self.total is None:
            text = f"On-disk history ({sessions})  [$foreground-muted]searching…[/]"
        else:
            what = f"{self.total:,} match `{self.filter.text}`" if self.filter.active else count(self.total, "call")
            text = f"On-disk history ({sessions})  [$foreground-muted]{what} · newest first · bodies only " \
                   f"for calls still in memory[/]"
        self.query_one("#history-title", Static).update(Content.from_markup(text))

    @work(group="history", exclusive=True, exit_on_error=False)
    async def _load(self, flt: Filter, after: Cursor | None) -> None:
        reader = self.iron.history_reader
        engine = self.iron.engine
        self._busy = True
        if after is None:
            await asyncio.to_thread(engine.history.write, engine.history.take_pending())
        page = await asyncio.to_thread(reader.page, flt, after=after, limit=PAGE)
        total = None if after is not None else await asyncio.to_thread(reader.count, flt)
        self.post_message(HistoryLoaded(flt, page, total, append=after is not None))

    @on(HistoryLoaded)
    def _loaded(self, msg: HistoryLoaded) -> None:
        self._busy = False
        if msg.filter != self.filter:
            return  # an answer to an older filter
        self.rows = self.rows + msg.page.rows if msg.append else msg.page.rows
        self.cursor = msg.page.cursor
        if msg.total is not None:
            self.total = msg.total
        table = self.query_one(RequestsTable)
        table.empty_text = "no stored calls match" if self.filter.active else "no calls stored yet"
        table.show(self.rows, self.iron.dashboard.kind)
        table.border_subtitle = f"{len(self.rows):,} of {self.total or 0:,} loaded"
        self.query_one(FilterBar).show_count(self.total or 0, self.total or 0, "stored call")
        self._title()

    @on(FilterBar.Changed)
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        event.stop()
        self.filter = event.filter
        self.total = None
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_S, lambda: self._load(self.filter, None))

    @on(FilterBar.Done)
    def _filter_done(self, event: FilterBar.Done) -> None:
        event.stop()
        self.query_one(RequestsTable).focus()

    @on(RequestsTable.Selected)
    def _open(self, event: RequestsTable.Selected) -> None:
        event.stop()
        from iron_tui.tui.screens.detail import RequestDetailScreen

        summary = next((r for r in self.rows if r["id"] == event.request_id), None)
        if summary is not None:
            record = self.iron.engine.history.get(event.request_id)
            self.app.push_screen(RequestDetailScreen(summary, record))

    @on(RequestsTable.FollowChanged)
    def _follow(self, event: RequestsTable.FollowChanged) -> None:
        event.stop()

    def _maybe_more(self) -> None:
        """Near the end of what is loaded: fetch the next page."""
        table = self.query_one(RequestsTable)
        if self.cursor is not None and not self._busy and table.cursor_row >= len(self.rows) - 50:
            self._load(self.filter, self.cursor)

    def action_filter(self) -> None:
        self.query_one(FilterBar).open(self.filter.text)

    def action_escape(self) -> None:
        if self.filter.active:
            self.query_one(FilterBar).action_clear()
        else:
            self.dismiss()

    def action_close(self) -> None:
        self.dismiss()

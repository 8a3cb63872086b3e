"""The live filter bar: an expression applied as it is typed, with the match count or the error."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Static

from iron_tui.core.filter_expr import Filter
from iron_tui.core.filter_syntax import FilterError
from iron_tui.core.units import count
from iron_tui.tui.widgets.panels import set_content

PLACEHOLDER = "e.g.  is:error   model:claude latency>500   !is:stream cost>0.01   \"rate limit\""


class FilterBar(Horizontal):
    """Posts Changed with each valid expression as it is typed; Esc clears, Enter goes back to the list."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear", "Clear filter", show=False),
    ]

    class Changed(Message):
        def __init__(self, flt: Filter) -> None:
            super().__init__()
            self.filter = flt

    class Done(Message):
        """Enter (keep the filter) or Esc (cleared): give the focus back."""

        def __init__(self, cleared: bool) -> None:
            super().__init__()
            self.cleared = cleared

    def __init__(self, *, keep_open: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.keep_open = keep_open  # stays on screen when cleared (the history browser's)

    def compose(self) -> ComposeResult:
        yield Static("/", id="filter-prompt")
        yield Input(placeholder=PLACEHOLDER, id="filter-input", select_on_focus=False)
        yield Static(id="filter-count")

    @property
    def text(self) -> str:
        return self.query_one(Input).value

    def open(self, text: str) -> None:
        self.display = True
        field = self.query_one(Input)
        if field.value != text:
            field.value = text
        field.cursor_position = len(text)
        field.focus()

    @on(Input.Changed, "#filter-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        try:
            flt = Filter.parse(event.value)
        except FilterError as exc:
            self.show_error(exc)
            return
        self.set_class(False, "-error")
        self.post_message(self.Changed(flt))

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip() and not self.keep_open:
            self.display = False
        self.post_message(self.Done(cleared=False))

    def action_clear(self) -> None:
        self.query_one(Input).value = ""
        self.display = self.keep_open
        self.post_message(self.Changed(Filter()))
        self.post_message(self.Done(cleared=True))

    def show_count(self, matched: int, total: int, noun: str = "request") -> None:
        if self.has_class("-error") or not self.display:
            return  # hidden: nothing to draw (each refresh calls this; an update would lay out the screen)
        set_content(self.query_one("#filter-count", Static), f"{matched:,} of {count(total, noun)}")

    def show_error(self, exc: FilterError) -> None:
        self.set_class(True, "-error")
        set_content(self.query_one("#filter-count", Static),
            Content.from_markup("[$text-error]✗ $m at $p[/]", m=exc.message, p=str(exc.position + 1)))

"""Edit a call's request, then send it again through the proxy (as the agent "replay")."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static, TextArea

from iron_tui.core.export import replayable_body
from iron_tui.core.replay import BudgetCheck, ReplayError, budget_check
from iron_tui.core.units import money

if TYPE_CHECKING:
    from iron_tui.tui.app import IronApp


def check_text(check: BudgetCheck) -> Content:
    worst = "unpriced model: no charge is known" if check.worst_case_micros is None \
        else f"worst case {money(check.worst_case_micros)}"
    left = "no budget limit" if check.available_micros is None else f"{money(check.available_micros)} left"
    if check.fits:
        return Content.from_markup("[$text-success]✓[/] $w · $l (the proxy checks it again when it is sent)",
                                   w=worst, l=left)
    return Content.from_markup("[b $text-error]✗ $w does not fit: $l[/] — the proxy will refuse it (402) "
                               "unless max_tokens is lowered or the budget raised", w=worst, l=left)


class ReplayEditScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),
    ]

    def __init__(self, summary: dict[str, Any], record: Any) -> None:
        super().__init__()
        self.summary = summary
        body = replayable_body(record)  # ExportError when the body is gone or was cut short
        try:
            body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            pass
        self.body = body

    @property
    def iron(self) -> IronApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(Content.from_markup(
            "[b]Edit and replay[/] $id  [$foreground-muted]sent to $path as agent \"replay\": budgeted, "
            "recorded and priced like any call[/]", id=self.summary["id"], path=str(self.summary.get("path"))),
            id="replay-title")
        yield TextArea(self.body, language="json", show_line_numbers=True, tab_behavior="indent", id="replay-body")
        yield Static(id="replay-check")
        yield Footer()

    def on_mount(self) -> None:
        self._check(self.body)
        self.query_one(TextArea).focus()

    @on(TextArea.Changed, "#replay-body")
    def _changed(self, event: TextArea.Changed) -> None:
        self._check(event.text_area.text)

    def _check(self, text: str) -> bool:
        status = self.query_one("#replay-check", Static)
        try:
            check = budget_check(self.iron.engine, text, self.summary)
        except ReplayError as exc:
            status.update(Content.from_markup("[b $text-error]✗ $m[/]", m=str(exc)))
            return False
        status.update(check_text(check))
        return True

    def action_send(self) -> None:
        text = self.query_one(TextArea).text
        if not self._check(text):
            self.notify("fix the request first", severity="warning")
            return
        self.dismiss()
        self.iron.start_replay(self.summary, text)

    def action_cancel(self) -> None:
        self.dismiss()

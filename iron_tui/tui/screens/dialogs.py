"""Small modal dialogs: the budget editor, the request filter and the help screen."""

from __future__ import annotations

import math
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static

UNCHANGED = object()


def parse_budget(text: str) -> float | None:
    """'' → None (unlimited); '5', '$5.00', '0.5' → USD. Raises ValueError with a user message."""
    cleaned = text.strip().removeprefix("$").replace(",", "").strip()
    if not cleaned or cleaned.lower() in ("none", "unlimited"):
        return None
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueError(f"not a number: {text.strip()!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError("the budget must be a number of dollars, 0 or more")
    return value


class BudgetDialog(ModalScreen[float | object | None]):
    """Edit the spend limit live. Dismisses with the new USD limit (None = unlimited), or UNCHANGED."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: float | None, spent_text: str) -> None:
        super().__init__()
        self.current = current
        self.spent_text = spent_text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            box.border_title = "Budget"
            yield Static("Spend limit in USD (empty = unlimited)")
            yield Input(value="" if self.current is None else f"{self.current:g}", placeholder="unlimited",
                        id="budget-input")
            yield Static(Content.from_markup("[$foreground-muted]spent so far $s[/]", s=self.spent_text))
            yield Static(id="budget-error", classes="error")
            yield Static(Content.from_markup("[$foreground-muted]Enter apply · Escape cancel[/]"))

    @on(Input.Submitted, "#budget-input")
    def _submit(self, event: Input.Submitted) -> None:
        try:
            value = parse_budget(event.value)
        except ValueError as exc:
            self.query_one("#budget-error", Static).update(str(exc))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(UNCHANGED)


class FilterDialog(ModalScreen[str | None]):
    """Edit the request filter. Dismisses with the new filter text, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            box.border_title = "Filter requests"
            yield Input(value=self.current, placeholder="e.g. provider:anthropic status:err gpt", id="filter-input")
            yield Static(Content.from_markup(
                "[$foreground-muted]model:  provider:  status: (200, 5, ok, err, pending)  id:  agent:  or any text\n"
                "Enter apply · empty clears · Escape cancel[/]"
            ))

    @on(Input.Submitted, "#filter-input")
    def _submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


HELP_KEYS: tuple[tuple[str, str], ...] = (
    ("/", "filter requests (model:, provider:, status:, id:, agent:, free text)"),
    ("enter", "open the selected request: bodies, translation, timing, error"),
    ("b", "edit the budget live (empty = unlimited)"),
    ("p", "pause / resume the live requests view"),
    ("c", "clear the requests view (the engine keeps its history)"),
    ("s / x / r", "start / stop / restart the agent"),
    ("y", "copy the proxy token to the clipboard"),
    ("t", "switch theme"),
    ("ctrl+p", "command palette: every action by name"),
    ("?", "this help"),
    ("q", "quit (stops the agent and the proxy)"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        width = max(len(k) for k, _ in HELP_KEYS)
        lines = [Content.from_markup("[b $accent]$k[/]  $v", k=k.ljust(width), v=v) for k, v in HELP_KEYS]
        intro = Content.from_markup(
            "Point your agent at the proxy URL with the token shown in the header.\n"
            "Calls for Claude models in OpenAI format are translated (↔). Costs marked ~ are estimated.\n"
        )
        with Vertical(classes="dialog help") as box:
            box.border_title = "iron-tui help"
            yield Static(intro + Content("\n").join(lines))
            yield Static(Content.from_markup("[$foreground-muted]Escape closes[/]"))

    def action_close(self) -> None:
        self.dismiss()

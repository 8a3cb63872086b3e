"""Small modal dialogs: budget, a known agent's task, confirmations (quit, replay), a text to copy, export, help."""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Select, Static, TextArea

from iron_tui.core.known_agents import KnownAgent
from iron_tui.core.units import money
from iron_tui.tui.keys import FILTER_HELP, KEYS
from iron_tui.tui.safe import safe_line
from iron_tui.tui.widgets.providers import STATE_MARKS
from iron_tui.tui.widgets.requests import FLAG_MARKS

if TYPE_CHECKING:
    from iron_tui.tui.app import IronApp

UNCHANGED = object()
OSC52_NOTE = ("Sent to your terminal's clipboard (OSC 52). Terminals that do not allow it ignore it — tmux "
              "needs `set -g set-clipboard on` — so the text is also here: select it with the mouse.")


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
            yield Static(Content.from_markup("[$foreground-muted]Enter apply · Esc cancel[/]"))

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


def edit_budget(app: IronApp) -> None:
    """`b`: the budget dialog, applied live to the engine's ledger."""
    engine = app.engine
    limit = engine.ledger.limit

    def apply(value: float | object | None) -> None:
        if value is UNCHANGED:
            return
        usd_limit = value if isinstance(value, float) else None
        engine.set_budget(usd_limit)
        app.notify("budget removed: spending is unlimited" if usd_limit is None
                   else f"budget set to {money(round(usd_limit * 1_000_000))}", title="Budget")

    app.push_screen(BudgetDialog(None if limit is None else limit / 1_000_000, money(engine.ledger.spent)), apply)


class TaskDialog(ModalScreen[str | None]):
    """The task for a known agent (`claude -p TASK`, `codex exec TASK`); dismisses with it, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, agent: KnownAgent) -> None:
        super().__init__()
        self.agent = agent

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            box.border_title = f"Start {self.agent.name}"
            yield Static(Content.from_markup("[$foreground-muted]$d[/]", d=self.agent.description), classes="note")
            yield Input(placeholder="the task, e.g. fix the failing test in tests/test_io.py", id="task-input")
            yield Static(id="task-command", classes="note")
            yield Static(id="task-error", classes="error")
            yield Static(Content.from_markup(
                "[$foreground-muted]Runs through the proxy like any agent (keys stay here; iron-tui adds the "
                "flags that keep it on the proxy). Enter starts · Esc cancels[/]"), classes="note")

    def on_mount(self) -> None:
        self._show_command("")
        self.query_one("#task-input", Input).focus()

    @on(Input.Changed, "#task-input")
    def _changed(self, event: Input.Changed) -> None:
        self._show_command(event.value)

    def _show_command(self, task: str) -> None:
        argv = self.agent.preset(task.strip() or "TASK").command
        shown = shlex.join(argv) if isinstance(argv, list) else argv
        self.query_one("#task-command", Static).update(Content.from_markup("[b]$ $c[/]", c=safe_line(shown)))

    @on(Input.Submitted, "#task-input")
    def _submit(self, event: Input.Submitted) -> None:
        task = event.value.strip()
        if not task:
            self.query_one("#task-error", Static).update(f"{self.agent.name} needs a task to run")
            return
        self.dismiss(task)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question. Enter or y confirms; Esc or n cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,y", "answer(True)", "Yes"),
        Binding("escape,n", "answer(False)", "No"),
        Binding("q", "q", "", show=False),
    ]

    def __init__(self, title: str, body: Content | str, yes: str = "Yes", *, q_confirms: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.yes = yes
        self.q_confirms = q_confirms  # the quit question: q again means yes

    def action_q(self) -> None:
        self.dismiss(self.q_confirms)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm") as box:
            box.border_title = self.title_text
            yield Static(self.body)
            yield Static(Content.from_markup("\n[b]Enter[/] $yes · [b]Esc[/] cancel", yes=self.yes))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TextDialog(ModalScreen[None]):
    """A text to copy (token, curl command, a body): sent to the clipboard AND shown, selectable."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,enter", "close", "Close")]

    def __init__(self, title: str, text: str, *, lead: Content | str = "", copy: bool = True,
                 copy_text: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self.lead = lead
        self.copy = copy
        self.copy_text = text if copy_text is None else copy_text  # what goes to the clipboard

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog text") as box:
            box.border_title = self.title_text
            if self.lead:
                yield Static(self.lead)
            yield TextArea(self.text, read_only=True, soft_wrap=True, show_line_numbers=False, id="copy-text")
            if self.copy:
                yield Static(Content.from_markup("[$foreground-muted]$n[/]", n=OSC52_NOTE), classes="note")
            yield Static(Content.from_markup("[$foreground-muted]Esc closes[/]"))

    def on_mount(self) -> None:
        if self.copy:
            self.app.copy_to_clipboard(self.copy_text)

    def action_close(self) -> None:
        self.dismiss()


class ExportDialog(ModalScreen[tuple[str, Path] | None]):
    """Where to and in which format; dismisses with (format, path) or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, scope: str, default_stem: str) -> None:
        super().__init__()
        self.scope = scope
        self.default_stem = default_stem

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            box.border_title = "Export"
            yield Static(Content.from_markup("Export [b]$s[/]", s=self.scope))
            with Horizontal(id="export-row"):
                yield Select([("JSON Lines (.jsonl)", "jsonl"), ("HAR 1.2 (.har)", "har")], value="jsonl",
                             allow_blank=False, compact=True, id="export-format")
            yield Input(value=f"{self.default_stem}.jsonl", id="export-path")
            yield Static(id="export-error", classes="error")
            yield Static(Content.from_markup("[$foreground-muted]Enter exports · Esc cancels[/]"))

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()

    @on(Select.Changed, "#export-format")
    def _format(self, event: Select.Changed) -> None:
        field = self.query_one("#export-path", Input)
        stem, dot, ext = field.value.rpartition(".")
        if dot and ext in ("jsonl", "har"):
            field.value = f"{stem}.{event.value}"

    @on(Input.Submitted, "#export-path")
    def _submit(self, event: Input.Submitted) -> None:
        path = Path(event.value.strip()).expanduser()
        if not event.value.strip():
            self.query_one("#export-error", Static).update("a file name is needed")
            return
        if not path.parent.is_dir():
            self.query_one("#export-error", Static).update(f"no such folder: {path.parent}")
            return
        fmt = self.query_one("#export-format", Select).value
        self.dismiss((str(fmt), path))

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        parts: list[Content] = [Content.from_markup(
            "Point your agent at the proxy URL in the header with the token (y shows it). The same view in a\n"
            "browser: w. Costs marked ~ are estimated; the flags column shows what a call went through.\n")]
        width = max(len(k) for _, entries in KEYS for k, _, _ in entries)
        for section, entries in KEYS:
            parts.append(Content.from_markup("[b $text-primary]$s[/]", s=section))
            parts.extend(Content.from_markup("  [b $accent]$k[/]  $v", k=k.ljust(width), v=v) for k, v, _ in entries)
            parts.append(Content(""))
        parts.append(Content.from_markup("[b $text-primary]Flags[/]"))
        parts.extend(Content.from_markup("  [b $accent]$m[/]  $v", m=m, v=v) for m, v in FLAG_MARKS)
        parts.append(Content(""))
        parts.append(Content.from_markup("[b $text-primary]Providers and sync[/]"))
        parts.extend(Content.from_markup("  [b $accent]$m[/]  $v", m=m, v=v) for m, v in STATE_MARKS)
        parts.append(Content(""))
        parts.append(Content(FILTER_HELP))
        with Vertical(classes="dialog help") as box:
            box.border_title = "iron-tui help"
            with VerticalScroll(id="help-body"):
                yield Static(Content("\n").join(parts))
            yield Static(Content.from_markup("[$foreground-muted]↑ ↓ scroll · Esc closes[/]"))

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def action_close(self) -> None:
        self.dismiss()

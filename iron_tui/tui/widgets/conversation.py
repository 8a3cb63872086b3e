"""A call drawn as a conversation: turns with their role, text, tool calls and results in boxes,
images and files as placeholders, thinking folded (z unfolds it)."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Collapsible, Static

from iron_tui.core.transcript import Block, Transcript, Turn
from iron_tui.tui.safe import safe_text

ROLE_CLASS = {"system": "-system", "developer": "-system", "user": "-user", "assistant": "-assistant",
              "tool": "-tool", "error": "-error"}


def block_widgets(b: Block, unfold_thinking: bool) -> Iterable[Static | Collapsible]:
    text = safe_text(b.text)
    if b.kind == "text":
        yield Static(Content(text or " "), classes="block text")
    elif b.kind == "thinking":
        title = f"thinking · {len(b.text):,} characters"
        yield Collapsible(Static(Content(text), classes="block thinking-text"), title=title,
                          collapsed=not unfold_thinking, classes="thinking")
    elif b.kind in ("tool_call", "tool_result"):
        box = Static(Content(text or " "), classes=f"block {b.kind.replace('_', '-')}")
        if b.kind == "tool_call":
            box.border_title = f"⚙ tool call {safe_text(b.name or '?')}" + (f" · {safe_text(b.ref)}" if b.ref else "")
        else:
            box.border_title = "↩ tool result" + (f" · {safe_text(b.ref)}" if b.ref else "")
            if b.error:
                box.add_class("-error")
                box.border_title += " · error"
        yield box
    else:
        label = {"image": "image", "file": "file", "audio": "audio", "refusal": "refusal"}.get(b.kind, b.kind)
        yield Static(Content.from_markup("[$foreground-muted]\\[$k: $t][/]", k=label, t=text), classes="block placeholder")


class ConversationView(Vertical):
    """The agent's side of a call: its request turns, then the answer."""

    def __init__(self, request: Transcript | None, response: Transcript | None, *, unfold_thinking: bool = False,
                 empty: str = "no body recorded", id: str | None = None) -> None:
        super().__init__(id=id, classes="conversation")
        self.request = request
        self.response = response
        self.unfold_thinking = unfold_thinking
        self.empty = empty

    def compose(self) -> ComposeResult:
        if self.request is None and self.response is None:
            yield Static(Content.from_markup("[$foreground-muted]$e[/]", e=self.empty))
            return
        if self.request is not None:
            yield from self._meta(self.request)
            for turn in self.request.turns:
                yield from self._turn(turn)
        if self.response is not None:
            answer = "answer (assembled from the stream)" if self.response.streamed else "answer"
            yield Static(Content.from_markup("[b $text-accent]── $a[/]", a=answer), classes="divider")
            for turn in self.response.turns:
                yield from self._turn(turn)
            tail = [f"stop: {self.response.stop_reason}"] if self.response.stop_reason else []
            tail += list(self.response.notes)
            if tail:
                yield Static(Content.from_markup("[$foreground-muted]$t[/]", t=safe_text(" · ".join(tail))),
                             classes="meta")
        elif self.request is not None:
            yield Static(Content.from_markup("[$foreground-muted]no answer yet[/]"), classes="divider")

    def _meta(self, t: Transcript) -> Iterable[Static]:
        bits: list[str] = [t.dialect]
        if t.model:
            bits.append(t.model)
        bits += [f"{k} {v}" for k, v in t.settings]
        if t.tools:
            bits.append("tools: " + ", ".join(t.tools))
        bits += list(t.notes)
        yield Static(Content.from_markup("[$foreground-muted]$m[/]", m=safe_text(" · ".join(bits))), classes="meta")

    def _turn(self, turn: Turn) -> Iterable[Static | Collapsible]:
        head = Static(Content.from_markup("[b]$r[/]", r=safe_text(turn.role)),
                      classes=f"role {ROLE_CLASS.get(turn.role, '')}")
        yield head
        if not turn.blocks:
            yield Static(Content.from_markup("[$foreground-muted](empty)[/]"), classes="block")
        for b in turn.blocks:
            yield from block_widgets(b, self.unfold_thinking)

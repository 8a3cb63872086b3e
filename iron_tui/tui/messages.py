"""Textual messages the bus pump posts to the dashboard.

The pump (a worker) turns each drained batch of bus events into a handful of these; it never touches
a widget. State messages (spend, sync, health) say "here is the latest value", so a newer one may
replace an older one still queued (`can_replace`): a burst collapses to one repaint.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from iron_tui.core.events import AgentOutput, AgentStateChanged, CostAlert, Notice, SpendChanged, SyncStatus


class RequestsUpdated(Message):
    """Request summaries that started or finished since the last batch (one per id, latest wins)."""

    def __init__(self, rows: list[dict[str, Any]], finished: list[tuple[float, dict[str, Any]]]) -> None:
        super().__init__()
        self.rows = rows
        # (finish time, summary) of the calls that finished: counted once in totals and the spend series
        self.finished = finished


class SpendUpdated(Message):
    def __init__(self, event: SpendChanged) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SpendUpdated)


class SyncUpdated(Message):
    def __init__(self, event: SyncStatus) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SyncUpdated)


class HealthUpdated(Message):
    """Providers whose health state changed (PROVIDER_HEALTH wire forms, in order). The strip shows the
    engine's current view; these say when to repaint and what to announce."""

    def __init__(self, changes: list[dict[str, Any]]) -> None:
        super().__init__()
        self.changes = changes


class AgentActivity(Message):
    """Agent state transitions and output lines, in the order they happened."""

    def __init__(self, events: list[AgentStateChanged | AgentOutput], skipped_lines: int = 0) -> None:
        super().__init__()
        self.events = events
        self.skipped_lines = skipped_lines


class Alerted(Message):
    """Budget alerts and engine notices, shown as notifications."""

    def __init__(self, events: list[CostAlert | Notice]) -> None:
        super().__init__()
        self.events = events


class EngineReady(Message):
    pass


class EngineFailed(Message):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class AgentCommandFailed(Message):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class CallUpdated(Message):
    """A call shown in a detail screen changed (it finished, or it was pending and got its numbers)."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__()
        self.summary = summary


class WorkDone(Message):
    """A background job (export, replay, history query) finished: `result` or `error` (a message)."""

    def __init__(self, job: str, result: Any = None, error: str | None = None) -> None:
        super().__init__()
        self.job = job
        self.result = result
        self.error = error

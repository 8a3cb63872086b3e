"""Turning a drained batch of bus events into a few dashboard messages (no widgets, no I/O)."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from iron_tui.core.events import (
    AgentOutput,
    AgentStateChanged,
    CostAlert,
    Event,
    Notice,
    ProviderHealthChanged,
    RequestFinished,
    RequestStarted,
    SpendChanged,
    SyncStatus,
)
from iron_tui.tui.messages import (
    AgentActivity,
    Alerted,
    HealthUpdated,
    RequestsUpdated,
    SpendUpdated,
    SyncUpdated,
)

MAX_OUTPUT_LINES = 500  # per batch; the supervisor keeps the full buffer, the log shows what fits


def batch_messages(batch: list[Event]) -> list[Message]:
    rows: dict[str, dict[str, Any]] = {}
    finished: list[tuple[float, dict[str, Any]]] = []
    spend: SpendChanged | None = None
    sync: SyncStatus | None = None
    agent: list[AgentStateChanged | AgentOutput] = []
    alerts: list[CostAlert | Notice] = []
    health: list[dict[str, Any]] = []
    for ev in batch:
        if isinstance(ev, RequestFinished):
            rows[ev.request["id"]] = ev.request
            finished.append((ev.timestamp, ev.request))
        elif isinstance(ev, RequestStarted):
            rows.setdefault(ev.request["id"], ev.request)
        elif isinstance(ev, SpendChanged):
            spend = ev
        elif isinstance(ev, SyncStatus):
            sync = ev
        elif isinstance(ev, AgentStateChanged | AgentOutput):
            agent.append(ev)
        elif isinstance(ev, CostAlert | Notice):
            alerts.append(ev)
        elif isinstance(ev, ProviderHealthChanged):
            health.append(ev.data)
    out: list[Message] = []
    if rows:
        out.append(RequestsUpdated(list(rows.values()), finished))
    if spend is not None:
        out.append(SpendUpdated(spend))
    if sync is not None:
        out.append(SyncUpdated(sync))
    if agent:
        agent, skipped = _cap_output(agent)
        out.append(AgentActivity(agent, skipped))
    if health:
        out.append(HealthUpdated(health))
    if alerts:
        out.append(Alerted(alerts))
    return out


def _cap_output(events: list[AgentStateChanged | AgentOutput]) -> tuple[list[AgentStateChanged | AgentOutput], int]:
    """Keep every state change and the last MAX_OUTPUT_LINES output lines."""
    lines = sum(1 for e in events if isinstance(e, AgentOutput))
    skip = lines - MAX_OUTPUT_LINES
    if skip <= 0:
        return events, 0
    kept: list[AgentStateChanged | AgentOutput] = []
    for e in events:
        if isinstance(e, AgentOutput) and skip > 0:
            skip -= 1
            continue
        kept.append(e)
    return kept, lines - MAX_OUTPUT_LINES

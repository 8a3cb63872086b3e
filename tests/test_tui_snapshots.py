"""Snapshot tests of the dashboard (pytest-textual-snapshot) at 80×24, 120×36 and 200×60.

Each app runs on a real engine (port 0, FixedClock, SequentialIds) that the app itself starts; the
screen content is published onto the engine's bus as synthetic events with fixed values. Pinned: the
theme (iron unless the test is about themes), the clock, the ids, the token, the proxy URL shown
(`display_url`), the time zone (UTC); animations are off.
Regenerate with: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from iron_tui.core.known_agents import KNOWN_AGENTS
from iron_tui.tui.screens.dialogs import TaskDialog
from tests.tui_support import (
    SIZES,
    publish_agent_crash,
    publish_agent_long_lines,
    publish_agent_running,
    publish_provider_states,
    publish_spend,
    publish_sync_offline,
    publish_traffic,
    settle,
    snapshot_app,
)

SnapCompare = Callable[..., bool]
Step = Callable[[Pilot[Any], Any, Any], Awaitable[None]]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Request times are shown in local time: pin it."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def traffic(*, in_flight: bool = True, agent: bool = True) -> Step:
    async def step(pilot: Pilot[Any], engine: Any, clock: Any) -> None:
        publish_traffic(engine, clock, in_flight=in_flight)
        if agent:
            publish_agent_running(engine, clock, lines=5)
        await settle(pilot)

    return step


def keys(*names: str) -> Step:
    async def step(pilot: Pilot[Any], engine: Any, clock: Any) -> None:
        await pilot.press(*names)
        await settle(pilot)

    return step


def open_call(request_id: str, *then: str) -> Step:
    async def step(pilot: Pilot[Any], engine: Any, clock: Any) -> None:
        pilot.app.dashboard.open_detail(request_id)  # type: ignore[attr-defined]
        await settle(pilot)
        if then:
            await pilot.press(*then)
            await settle(pilot)

    return step


def provider_states() -> Step:
    async def step(pilot: Pilot[Any], engine: Any, clock: Any) -> None:
        publish_provider_states(engine, clock)
        publish_agent_running(engine, clock, lines=3)
        await settle(pilot)

    return step


def task_dialog() -> Step:
    async def step(pilot: Pilot[Any], engine: Any, clock: Any) -> None:
        claude = next(a for a in KNOWN_AGENTS if a.program == "claude")
        pilot.app.push_screen(TaskDialog(claude))
        await settle(pilot)
        pilot.app.screen.query_one("#task-input", Input).value = "add a test for the parser"  # typing: Pilot test
        await settle(pilot)

    return step


def long_lines() -> Step:
    async def step(pilot: Pilot[Any], engine: Any, clock: Any) -> None:
        publish_agent_long_lines(engine, clock)
        await settle(pilot)

    return step


# name → the steps after the app is up. The fixed defects and the new views at all three sizes:
SCENARIOS: dict[str, list[Step]] = {
    "live-traffic": [traffic()],
    # Defect 3: the newest finished call is the demo's 402: an error bar, not a plain cursor.
    "last-call-refused": [traffic(in_flight=False)],
    # Defect 4: the user moved the selection: the list holds, the title says so.
    "selection-held": [traffic(), keys("down", "down", "down")],
    "live-filter": [traffic(), keys("slash", *"is:error")],
    # Defect 2: long agent lines wrap inside the panel, control characters shown as symbols.
    "agent-long-lines": [long_lines()],
    "conversation": [traffic(agent=False), open_call("req_000001")],
    "translated-side-by-side": [traffic(agent=False), open_call("req_000003")],
    "request-diff": [traffic(agent=False), open_call("req_000003", "2")],
    "cost-breakdown": [traffic(agent=False), open_call("req_000001", "4")],
    # Defect 6: failed calls open on the Error tab; the 429 names the provider, the wait, what to do.
    "error-429": [traffic(agent=False), open_call("req_000005")],
    "error-402": [traffic(agent=False), open_call("req_000008")],
    "totals": [traffic(agent=False), keys("T")],
    "history": [traffic(agent=False), keys("H")],
    "help": [keys("question_mark")],
    "quit-asks": [traffic(agent=False), keys("q")],
    # Provider health (a strip: Groq down with its countdown), dead letters, fallback ↪ / alias ≈ / interrupted !.
    "provider-down": [provider_states()],
}
# … and smaller states at one size.
ONE_SIZE: dict[str, list[Step]] = {
    "empty-start": [],
    "sorted-by-cost": [traffic(), keys("o", "o", "o")],
    "filter-error": [traffic(), keys("slash", *"(is:error")],
    "conversation-stream": [traffic(agent=False), open_call("req_000004")],
    "token": [keys("y")],
    "cost-fallback": [provider_states(), open_call("req_000010", "4")],
    "error-interrupted": [provider_states(), open_call("req_000012")],
    "known-agent-task": [task_dialog()],
}


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_views(snap_compare: SnapCompare, tmp_path: Path, name: str, size: tuple[int, int]) -> None:
    app, engine, clock = snapshot_app(tmp_path, budget=1.0)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for step in SCENARIOS[name]:
            await step(pilot, engine, clock)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("name", list(ONE_SIZE))
def test_states(snap_compare: SnapCompare, tmp_path: Path, name: str) -> None:
    app, engine, clock = snapshot_app(tmp_path, budget=1.0)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for step in ONE_SIZE[name]:
            await step(pilot, engine, clock)

    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


# --- more states at one size --------------------------------------------------------------------------


@pytest.mark.parametrize(("spent", "severity"), [(850_000, "warning"), (1_000_000, "exhausted")])
def test_budget_states(snap_compare: SnapCompare, tmp_path: Path, spent: int, severity: str) -> None:
    app, engine, clock = snapshot_app(tmp_path, budget=1.0)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_traffic(engine, clock)
        publish_spend(engine, clock, spent, 1_000_000, severity)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


def test_sync_offline(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app, engine, clock = snapshot_app(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_traffic(engine, clock)
        publish_sync_offline(engine, clock)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


def test_agent_crashed(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app, engine, clock = snapshot_app(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_agent_crash(engine, clock)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


# Defect 8: under ansi-dark the disabled Start button (an agent is running) is drawn, not an empty box.
@pytest.mark.parametrize("theme", ["iron", "ember", "daylight", "ansi-dark"])
def test_themes(snap_compare: SnapCompare, tmp_path: Path, theme: str) -> None:
    app, engine, clock = snapshot_app(tmp_path, theme=theme, budget=0.1)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_traffic(engine, clock)
        publish_agent_running(engine, clock, lines=3)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)

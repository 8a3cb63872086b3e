"""Snapshot tests of the dashboard (pytest-textual-snapshot).

Each app runs on a real engine (port 0, FixedClock, SequentialIds) that the app itself starts; the
screen content is published onto the engine's bus as synthetic events with fixed values. The proxy
URL shown is pinned with `display_url`, times are shown in UTC, animations are off.
Regenerate with: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from iron_tui.tui.screens.detail import TABS
from tests.tui_support import (
    publish_agent_crash,
    publish_agent_running,
    publish_spend,
    publish_sync_offline,
    publish_traffic,
    settle,
    snapshot_app,
)

SIZE = (120, 40)
SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Request times are shown in local time: pin it."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_empty_start(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app, _, _ = snapshot_app(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_live_traffic(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app, engine, clock = snapshot_app(tmp_path, budget=5.0)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_traffic(engine, clock)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("tab", [t for t, _ in TABS])
def test_request_detail(snap_compare: SnapCompare, tmp_path: Path, tab: str) -> None:
    app, engine, clock = snapshot_app(tmp_path)
    # The translated call for the body tabs; the rate-limited one for the error tab.
    request_id = "req_000005" if tab == "tab-error" else "req_000003"

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_traffic(engine, clock)
        await settle(pilot)
        app.dashboard.open_detail(request_id, tab)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize(("spent", "severity"), [(850_000, "warning"), (1_000_000, "exhausted")])
def test_budget_states(snap_compare: SnapCompare, tmp_path: Path, spent: int, severity: str) -> None:
    app, engine, clock = snapshot_app(tmp_path, budget=1.0)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_traffic(engine, clock)
        publish_spend(engine, clock, spent, 1_000_000, severity)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_sync_offline(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app, engine, clock = snapshot_app(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_traffic(engine, clock)
        publish_sync_offline(engine, clock)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_agent_running_with_output(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app, engine, clock = snapshot_app(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_agent_running(engine, clock)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_agent_crashed(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app, engine, clock = snapshot_app(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_agent_crash(engine, clock)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_filter_active(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app, engine, clock = snapshot_app(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_traffic(engine, clock)
        await settle(pilot)
        await pilot.press("slash")
        pilot.app.screen.query_one(Input).value = "provider:anthropic"
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app, _, _ = snapshot_app(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("theme", ["iron", "ember", "daylight"])
def test_shipped_themes(snap_compare: SnapCompare, tmp_path: Path, theme: str) -> None:
    app, engine, clock = snapshot_app(tmp_path, theme=theme, budget=0.1)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_traffic(engine, clock)
        publish_agent_running(engine, clock, lines=3)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_narrow_80x24(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app, engine, clock = snapshot_app(tmp_path, budget=1.0)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        publish_traffic(engine, clock)
        publish_agent_running(engine, clock, lines=4)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)

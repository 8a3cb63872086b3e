"""Pilot tests of the dashboard against a real engine (real ports, the provider simulator, real agents)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from textual.widgets import Button, RichLog, Static, TabbedContent, TextArea

from iron_tui.core.engine import Engine
from iron_tui.core.events import RequestFinished, RequestRecord, SpendChanged
from iron_tui.tui.app import IronApp, create_app
from iron_tui.tui.screens.detail import RequestDetailScreen
from iron_tui.tui.screens.dialogs import BudgetDialog, ConfirmDialog, TextDialog
from iron_tui.tui.widgets.diff import DiffView
from tests.conftest import EngineFactory
from tests.tui_support import oai, table, text_of, until

AGENTS = Path(__file__).parent / "agents"
SIZE = (120, 40)


def app_for(engine: Engine, tmp_path: Path, **kw: Any) -> IronApp:
    kw.setdefault("start_engine", False)
    app = create_app(engine, user_theme_dir=tmp_path / "user-themes", **kw)
    app.animation_level = "none"
    return app


async def test_agent_buttons_start_stop_restart_a_real_process(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine(agent=f"{sys.executable} {AGENTS / 'sleeper.py'}", agent_grace_seconds=2.0)
    app = app_for(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        log = app.dashboard.query_one("#agent-log", RichLog)
        state = app.dashboard.query_one("#agent-state", Static)
        await pilot.click("#agent-start")
        await until(pilot, lambda: engine.agent.state == "running" and "running" in text_of(state), what="running")
        await until(pilot, lambda: any("ready" in line.text for line in log.lines), what="agent output")
        first_pid = engine.agent.pid
        assert first_pid is not None and f"pid {first_pid}" in text_of(state)
        assert app.dashboard.query_one("#agent-start", Button).disabled

        await pilot.click("#agent-stop")
        await until(pilot, lambda: engine.agent.state == "exited" and "exited" in text_of(state), what="stopped")
        with pytest.raises(ProcessLookupError):
            os.kill(first_pid, 0)  # the process is gone (and reaped), not just reported as stopped

        await pilot.click("#agent-restart")
        await until(pilot, lambda: engine.agent.state == "running", what="restarted")
        assert engine.agent.pid not in (None, first_pid)
        second_pid = engine.agent.pid
        await pilot.press("x")  # the key does what the button does
        await until(pilot, lambda: engine.agent.state == "exited", what="stopped by key")
        assert second_pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(second_pid, 0)


async def test_agent_given_on_the_command_line_starts_when_the_engine_is_up(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path)
    app.start_agent_when_ready([sys.executable, str(AGENTS / "lines.py"), "3"])
    async with app.run_test(size=SIZE) as pilot:
        log = app.dashboard.query_one("#agent-log", RichLog)
        await until(pilot, lambda: engine.agent.state == "exited", what="agent ran")
        await until(pilot, lambda: sum("line " in s.text for s in log.lines) == 3, what="3 lines shown")
        state = app.dashboard.query_one("#agent-state", Static)
        await until(pilot, lambda: "finished (exit code 0)" in text_of(state), what="exit shown")


async def test_budget_dialog_sets_and_clears_the_limit(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine(budget=1.0)
    app = app_for(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b")
        assert isinstance(app.screen, BudgetDialog)
        await pilot.press("ctrl+a", "ctrl+k", *"abc", "enter")
        assert isinstance(app.screen, BudgetDialog), "invalid input keeps the dialog open"
        assert "not a number" in text_of(app.screen.query_one("#budget-error", Static))
        assert engine.ledger.limit == 1_000_000
        await pilot.press("ctrl+a", "ctrl+k", *"2.5", "enter")
        await pilot.pause()
        assert engine.ledger.limit == 2_500_000
        await until(pilot, lambda: "$2.50" in text_of(app.dashboard.query_one("#spend-figure", Static)),
                    what="meter shows the new limit")
        await pilot.press("b", "ctrl+a", "ctrl+k", "enter")  # empty = unlimited
        await pilot.pause()
        assert engine.ledger.limit is None
        await pilot.press("b", *"9", "escape")  # cancel changes nothing
        await pilot.pause()
        assert engine.ledger.limit is None


async def test_live_filter_and_detail_on_real_traffic(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path)
    app.flush_interval = 0.02
    client = oai(engine)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(2):
            await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        await client.chat.completions.create(
            model="claude-3-5-haiku-latest", max_tokens=64, messages=[{"role": "user", "content": "hello claude"}]
        )
        await until(pilot, lambda: table(app).row_count == 3 and "…" not in table(app).row_texts(0),
                    what="3 finished rows")

        # Applied as it is typed, with the match count; a broken expression says where, and the last
        # good filter stays; Esc clears.
        await pilot.press("slash", *"provider:anthropic")
        await until(pilot, lambda: table(app).row_count == 1, what="filtered while typing")
        count_text = text_of(app.dashboard.query_one("#filter-count", Static))
        assert "1 of 3 requests" in count_text
        await pilot.press(*" (")
        assert "✗" in text_of(app.dashboard.query_one("#filter-count", Static))
        assert table(app).row_count == 1
        await pilot.press("escape")
        await until(pilot, lambda: table(app).row_count == 3, what="Esc cleared the filter")
        assert not app.dashboard.filter.active and app.focused is table(app)
        await pilot.press("slash", *"gpt -is:translated", "enter")
        await until(pilot, lambda: table(app).row_count == 2, what="negation")
        assert app.focused is table(app)  # Enter keeps the filter and goes back to the list
        await pilot.press("escape")
        await until(pilot, lambda: table(app).row_count == 3, what="cleared from the list")

        # Newest first: row 0 is the translated Claude call. Enter opens it, on the conversation.
        await pilot.press("home", "enter")
        await until(pilot, lambda: isinstance(app.screen, RequestDetailScreen), what="detail screen")
        screen = app.screen
        assert isinstance(screen, RequestDetailScreen)
        assert screen.summary["model"] == "claude-3-5-haiku-latest" and screen.summary["translated"]
        assert screen.query_one(TabbedContent).active == "tab-conversation"
        diff = screen.query_one("#tab-conversation DiffView", DiffView)  # side by side with upstream
        assert "hello claude" in " ".join(r.left or "" for r in diff.rows)
        assert any(r.right == "── system" or r.right == "── user" for r in diff.rows)
        await pilot.press("2")
        request_diff = screen.query_one("#tab-request DiffView", DiffView)
        assert any('"max_tokens": 64' in (r.right or "") for r in request_diff.rows), "the request sent upstream"
        await pilot.press("right")
        assert screen.query_one(TabbedContent).active == "tab-response"
        # Defect 1: q goes back; it does not quit the gateway.
        await pilot.press("q")
        await until(pilot, lambda: app.screen is app.dashboard, what="back to the dashboard")
        assert app.is_running and engine.port
    await client.close()


async def test_q_asks_before_quitting(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmDialog) and "stops the proxy" in text_of(app.screen.query_one(Static))
        await pilot.press("escape")
        assert app.screen is app.dashboard and app.is_running
        await pilot.press("q", "q")  # q twice quits, as does q then Enter
        await until(pilot, lambda: not app.is_running, what="quit")
    assert app.return_code == 0


async def test_a_burst_is_coalesced_into_few_refreshes(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        before = table(app).refreshes
        now = engine.clock.now()
        for i in range(1000):
            rec = RequestRecord(id=f"burst_{i:04d}", started_at=now, method="POST", path="/v1/chat/completions",
                                api="openai.chat", model="gpt-4o-mini", provider="openai", state="ok", status=200,
                                latency_ms=5.0, input_tokens=10, output_tokens=5, cost_micros=10)
            engine.bus.publish(RequestFinished(now, rec.summary()))
            engine.bus.publish(SpendChanged(now, 10 * (i + 1), 0, None))
        # No timing here (keypress latency under load is measured in bench/tui_bench.py): only that the
        # burst is drawn in a few batches, not once per event.
        await until(pilot, lambda: len(app.dashboard.store) == 1000 and app.pending_events == 0, what="burst in")
        await pilot.pause(0.15)
        assert table(app).refreshes - before <= 3, "one rebuild per batch, not one per event"
        assert table(app).row_count == 1000
        assert "gpt-4o-mini" in table(app).row_texts(0)
        table(app).focus()
        await pilot.press("end")
        assert table(app).cursor_row == 999 and table(app).scroll_offset.y > 900, "scrolls to the last row"
        await pilot.press("home")
        assert table(app).cursor_row == 0 and table(app).scroll_offset.y == 0 and table(app).follow
        assert "$0.010000" in text_of(app.dashboard.query_one("#spend-figure", Static))


async def test_pause_clear_undo_and_the_token(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path)
    app.flush_interval = 0.01

    def publish(rid: str, status: int = 200) -> None:
        rec = RequestRecord(id=rid, started_at=engine.clock.now(), method="POST", path="/v1/chat/completions",
                            api="openai.chat", model="gpt-4o-mini", provider="openai",
                            state="ok" if status < 400 else "error", status=status, cost_micros=1000)
        engine.bus.publish(RequestFinished(engine.clock.now(), rec.summary()))

    async with app.run_test(size=SIZE) as pilot:
        publish("a")
        await until(pilot, lambda: table(app).row_count == 1)
        await pilot.press("p")
        publish("b", 429)
        await until(pilot, lambda: len(app.dashboard.store) == 2, what="stored while paused")
        await pilot.pause(0.05)
        assert table(app).row_count == 1, "paused: the list does not move"
        assert "PAUSED +1" in text_of(app.dashboard.query_one("#stats", Static))
        await pilot.press("p")
        assert table(app).row_count == 2
        models = app.dashboard.query_one("#spend-models", Static)
        assert "×2" in text_of(models) and "1 err" in text_of(models)  # errors are counted as errors
        # c clears the list AND its totals (the budget is untouched); u brings both back.
        await pilot.press("c")
        assert table(app).row_count == 0 and app.dashboard.totals.calls == 0
        assert "cleared (u undoes)" in text_of(models)
        publish("c")
        await until(pilot, lambda: table(app).row_count == 1, what="a call after the clear")
        await pilot.press("u")
        assert table(app).row_count == 3 and app.dashboard.totals.calls == 3
        assert "×3" in text_of(models)

        # y shows the whole token (an honest copy: OSC 52 may not arrive) and copies only the token.
        await pilot.press("y")
        assert isinstance(app.screen, TextDialog)
        assert engine.token in app.screen.query_one(TextArea).text
        assert "OSC 52" in text_of(app.screen.query_one(".note", Static))
        assert app.clipboard == engine.token
        await pilot.press("escape")
        header = text_of(app.dashboard.query_one("#endpoint", Static))
        assert engine.token not in header and engine.token[-4:] in header, "the header shows it masked"
        # w: the web page's address, token in the fragment.
        await pilot.press("w")
        assert isinstance(app.screen, TextDialog)
        assert app.clipboard == f"{engine.base_url}/dashboard#token={engine.token}"


async def test_bad_user_theme_is_one_notification_and_skipped(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    themes = tmp_path / "user-themes"
    themes.mkdir()
    (themes / "broken.toml").write_text('name = "broken"\nprimary = "not-a-colour"\n')
    (themes / "mine.toml").write_text('name = "mine"\nprimary = "#336699"\ndark = true\n')
    app = create_app(engine, start_engine=False, user_theme_dir=themes, theme="mine")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        notes = list(app._notifications)
        assert len(notes) == 1
        assert "broken.toml" in notes[0].message and "primary" in notes[0].message
        assert "mine" in app.available_themes and "broken" not in app.available_themes
        assert app.theme == "mine"
        await pilot.press("q", "enter")
    assert app.return_code == 0


async def test_unknown_theme_falls_back_to_iron_with_a_notice(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path, theme="no-such-theme")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "iron"
        notes = list(app._notifications)
        assert len(notes) == 1 and "no-such-theme" in notes[0].message and "daylight" in notes[0].message


async def test_app_starts_and_stops_the_engine_it_owns(make_engine: EngineFactory, tmp_path: Path) -> None:
    from iron_tui.config import Settings
    from tests.conftest import OPENAI_KEY

    engine = Engine(Settings(port=0, openai_key=SecretStr(OPENAI_KEY), data_dir=tmp_path / "d",
                             token=SecretStr("t-0123456789abc")))
    app = app_for(engine, tmp_path, start_engine=True)
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.wait_for(app.engine_ready.wait(), 10)
        port = engine.port
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await until(pilot, lambda: f":{port}/v1" in text_of(app.dashboard.query_one("#endpoint", Static)))
        await pilot.press("q", "enter")
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


def test_command_palette_offers_every_action(tmp_path: Path) -> None:
    from iron_tui.config import Settings

    engine = Engine(Settings(port=0, openai_key=SecretStr("sk-x"), data_dir=tmp_path / "d"))
    app = app_for(engine, tmp_path)
    titles = {c.title for c in app.get_system_commands(app.dashboard)}
    for title in ("Filter requests", "Follow newest", "Sort", "Totals", "History", "Export", "Edit budget",
                  "Pause / resume", "Clear requests", "Start agent", "Stop agent", "Restart agent", "Show token",
                  "Web dashboard", "Next theme", "Help", "Theme", "Quit"):
        assert title in titles


def test_port_in_use_exits_2_with_a_message(tmp_path: Path) -> None:
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code = (
            "import sys; from pathlib import Path; from iron_tui.config import Settings; "
            "from iron_tui.tui.run import run_tui; "
            f"sys.exit(run_tui(Settings(port={port}, openai_key='sk-x', data_dir=Path({str(tmp_path)!r})), None))"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, cwd=Path(__file__).parent.parent,
                              env={**os.environ, "TERM": "dumb"})
    assert proc.returncode == 2, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout

"""Pilot tests of the inspector: stable selection under load, the live detail view, errors explained,
numbers in one form, themes, totals, history, copy/export, replay, and terminal-safe text.

Real engines on loopback, the provider simulator, the official SDKs; synthetic bus events only where
the test is about what the dashboard does with them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openai
import pytest
from rich.cells import cell_len
from textual.widgets import Footer, Static, TabbedContent, TextArea
from textual.widgets._footer import FooterKey
from textual.widgets._tabbed_content import ContentTab

from iron_tui.core.engine import Engine
from iron_tui.core.events import AgentOutput, RequestFinished, RequestRecord, RequestStarted
from iron_tui.core.history import History
from iron_tui.sim import ProviderSim
from iron_tui.tui.app import IronApp
from iron_tui.tui.keys import KEYS, bound_keys
from iron_tui.tui.screens.detail import RequestDetailScreen
from iron_tui.tui.screens.dialogs import ConfirmDialog, ExportDialog, TextDialog
from iron_tui.tui.screens.history import HistoryScreen
from iron_tui.tui.screens.main import MainScreen
from iron_tui.tui.screens.replay import ReplayEditScreen
from iron_tui.tui.screens.totals import TotalsScreen
from iron_tui.tui.widgets.panels import AgentLog
from iron_tui.tui.widgets.requests import RequestsTable
from tests.conftest import EngineFactory
from tests.tui_support import app_for, oai, open_detail, screen_text, table, text_of, until

SIZE = (120, 36)
ROOT = Path(__file__).resolve().parent.parent


def rec(rid: str, engine: Engine, **kw: Any) -> RequestRecord:
    values: dict[str, Any] = {"id": rid, "started_at": engine.clock.now(), "method": "POST",
                              "path": "/v1/chat/completions", "api": "openai.chat", "model": "gpt-4o-mini",
                              "provider": "openai", "state": "ok", "status": 200, "latency_ms": 100.0,
                              "input_tokens": 10, "output_tokens": 5, "cost_micros": 10}
    values.update(kw)
    return RequestRecord(**values)


def publish(engine: Engine, *records: RequestRecord) -> None:
    for r in records:
        engine.history.add(r)
        engine.bus.publish(RequestStarted(engine.clock.now(), r.summary()))
        if r.state != "pending":
            engine.bus.publish(RequestFinished(engine.clock.now(), r.summary()))
            engine.history.finished(r, r.summary())  # written to disk as the engine does


# --- defect 4: the selection stays put under load ----------------------------------------------


async def test_selection_holds_under_load_and_follow_comes_back(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine(history_size=1000)
    app = app_for(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        publish(engine, *(rec(f"r{i:05d}", engine) for i in range(300)))
        await until(pilot, lambda: table(app).row_count == 300, what="300 rows")
        assert table(app).follow and "follow" in str(table(app).border_title)
        table(app).focus()
        await pilot.press("down", "down", "down")
        chosen = table(app).selected_id
        assert chosen == "r00296" and not table(app).follow
        assert "hold" in str(table(app).border_title)
        top_before = table(app).cursor_row - int(table(app).scroll_offset.y)
        # 1,500 more calls arrive, in many batches: more than the list keeps (1,000).
        for start in range(300, 1800, 100):
            publish(engine, *(rec(f"r{i:05d}", engine) for i in range(start, start + 100)))
            await pilot.pause(0.03)
            if start == 400:
                await until(pilot, lambda: app.pending_events == 0 and table(app).row_count == 500)
                await pilot.pause(0.05)
                # The rows above it grew; the view moved with it, so it is where it was on screen.
                assert table(app).selected_id == chosen
                assert table(app).cursor_row - int(table(app).scroll_offset.y) == top_before
        await until(pilot, lambda: app.pending_events == 0 and app.dashboard.store.total_seen == 1800, what="all in")
        await pilot.pause(0.1)
        # Older than every call the list still keeps, yet still there and still selected.
        assert table(app).selected_id == chosen, "the highlighted call is still the one the user chose"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RequestDetailScreen), what="detail")
        assert app.screen.request_id == chosen  # type: ignore[attr-defined]
        await pilot.press("escape")
        await pilot.press("f")
        assert table(app).follow and table(app).selected_id == "r01799"
        assert "1,800 requests" in str(table(app).border_subtitle)  # counted past 1,000


# --- defect 5: the footer and the tab bar fit at 80 columns ------------------------------------


async def test_footer_and_tabs_fit_at_80_columns(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        publish(engine, rec("a", engine, state="error", status=500, error="boom", cost_micros=None))
        await until(pilot, lambda: table(app).row_count == 1)
        keys = {k.description: k.region for k in app.screen.query_one(Footer).query(FooterKey)}
        for needed in ("Quit", "Help", "Filter"):
            assert needed in keys and keys[needed].right <= 80, f"{needed} is visible in the footer"
        await open_detail(pilot, app, "a")
        tabs = list(app.screen.query(ContentTab))
        assert len(tabs) == 5 and all(t.region.right <= 80 and t.region.width > 0 for t in tabs)


# --- defect 6: the detail is live, scrolls at once, opens failed calls on Error -----------------


async def test_detail_follows_a_call_until_it_finishes(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path)
    long_body = json.dumps({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": f"line {i}"} for i in range(120)]})
    async with app.run_test(size=SIZE) as pilot:
        call = rec("live", engine, state="pending", status=None, latency_ms=None, cost_micros=None,
                   request_body=long_body)
        publish(engine, call)
        await until(pilot, lambda: table(app).row_count == 1)
        screen = await open_detail(pilot, app, "live", "tab-request")
        assert "…" in text_of(screen.query_one("#detail-title", Static))
        pane = screen.query_one("#tab-request VerticalScroll")
        await pilot.pause(0.1)
        assert app.focused is pane, "the body takes the keys at once, no Tab needed"
        await pilot.press("pagedown")
        assert pane.scroll_y > 0
        call.state, call.status, call.latency_ms, call.cost_micros = "ok", 200, 812.0, 1530
        call.upstream_response = json.dumps({"choices": [{"message": {"role": "assistant", "content": "done"},
                                                          "finish_reason": "stop"}]})
        engine.bus.publish(RequestFinished(engine.clock.now(), call.summary()))
        await until(pilot, lambda: "200" in text_of(screen.query_one("#detail-title", Static)), what="updated")
        title = text_of(screen.query_one("#detail-title", Static))
        assert "812 ms" in title and "$0.001530" in title
        await pilot.press("1")
        assert "done" in screen_text(screen)  # the answer arrived in the conversation too
        await pilot.press("escape")
        publish(engine, rec("bad", engine, state="error", status=503, error="upstream 503: overloaded",
                            error_code="503", cost_micros=None))
        await until(pilot, lambda: table(app).row_count == 2)
        await open_detail(pilot, app, "bad")
        assert app.screen.query_one(TabbedContent).active == "tab-error"


async def test_a_provider_429_and_a_budget_402_are_explained(make_engine: EngineFactory, tmp_path: Path,
                                                            sim: ProviderSim) -> None:
    engine = await make_engine(budget=0.05, retries={"attempts": 1})
    app = app_for(engine, tmp_path)
    client = oai(engine)
    async with app.run_test(size=SIZE) as pilot:
        sim.faults.push(status=429)
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        engine.set_budget(0.0)
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "more"}])
        assert refused.value.status_code == 402
        await until(pilot, lambda: table(app).row_count == 2 and "…" not in table(app).row_texts(0))
        await open_detail(pilot, app, limited.value.response.headers["x-iron-request-id"])
        text = screen_text(app.screen)
        assert "openai answered 429" in text and "the provider answered" in text
        assert "retry after" in text and "1.00 s" in text and "what to do:" in text
        assert "rate_limit_exceeded" in text  # the answer the agent received
        await pilot.press("q")
        await open_detail(pilot, app, refused.value.response.headers["x-iron-request-id"])
        text = screen_text(app.screen)
        assert "iron-tui answered this itself" in text and "iron_cage_budget_exceeded" in text
        await pilot.press("3")  # the Response tab shows what the agent got, too
        assert "iron_cage_budget_exceeded" in text_of(app.screen.query("#tab-response Static").last())
    await client.close()


# --- defect 7: numbers in one form ---------------------------------------------------------------


async def test_numbers_read_the_same_everywhere(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path)
    long_model = "claude-3-5-sonnet-very-long-preview-name-20241022"
    async with app.run_test(size=SIZE) as pilot:
        publish(engine,
                rec("c1", engine, cost_micros=1530),
                rec("c2", engine, cost_micros=2286, stream=True, ttft_ms=120.0),
                rec("c3", engine, cost_micros=55_500, model=long_model, provider="anthropic"),
                rec("c4", engine, state="error", status=429, cost_micros=None, error="limited", ttft_ms=3.0))
        await until(pilot, lambda: table(app).row_count == 4)
        cols = [k for k, *_ in table(app)._layout(table(app).size.width)]
        rows = {r["id"]: dict(zip(cols, table(app).row_texts(i), strict=True)) for i, r in enumerate(table(app).rows)}
        costs = [rows[i]["cost"] for i in ("c1", "c2", "c3")]
        assert costs == ["$0.001530", "$0.002286", "$0.055500"]
        assert len({c.index(".") for c in costs}) == 1, "decimal points line up"
        assert rows["c2"]["ttft"] == "120 ms" and rows["c1"]["ttft"] == "" and rows["c4"]["ttft"] == ""
        model_cell = rows["c3"]["model"]
        assert model_cell.endswith("20241022") and "…" in model_cell, "the tail that tells models apart stays"
        assert "4 requests" in str(table(app).border_subtitle)
        models = text_of(app.dashboard.query_one("#spend-models", Static))
        assert "1 err" in models
        chart = app.dashboard.query_one("#spend-chart")
        assert "spend per 10 s" in chart.render_line(chart.size.height - 1).text
        assert "$0.0" in chart.render_line(0).text, "the graph has a scale"


# --- defect 8: themes cycle, are remembered; the help lists every key -----------------------------


async def test_t_cycles_the_shipped_themes_and_remembers(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "iron" and app.cycle_themes == ["daylight", "ember", "iron"]
        await pilot.press("t")
        assert app.theme == "daylight" and not isinstance(app.screen, TextDialog)
        await pilot.press("t")
        assert app.theme == "ember"
    again = app_for(engine, tmp_path)  # a new start with the same data dir
    async with again.run_test(size=SIZE):
        assert again.theme == "ember"
    explicit = app_for(engine, tmp_path, theme="iron")
    async with explicit.run_test(size=SIZE):
        assert explicit.theme == "iron"


def _binding_keys(cls: Any) -> set[str]:
    return {k for b in cls.BINDINGS for k in (b.key if hasattr(b, "key") else b[0]).split(",")}


def test_help_and_readme_describe_every_key() -> None:
    from iron_tui.tui.screens.replay import ReplayEditScreen as Edit

    everywhere = bound_keys("Everywhere")
    assert _binding_keys(IronApp) <= everywhere
    assert _binding_keys(MainScreen) | _binding_keys(RequestsTable) <= bound_keys("Dashboard") | everywhere
    assert _binding_keys(RequestDetailScreen) <= bound_keys("Request detail") | everywhere
    assert _binding_keys(TotalsScreen) <= bound_keys("Totals") | everywhere
    assert _binding_keys(HistoryScreen) <= bound_keys("History") | everywhere
    assert _binding_keys(Edit) <= bound_keys("Edit and replay")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Keys", 1)[1].split("\n## ", 1)[0]
    for name, entries in KEYS:
        assert f"**{name}**" in section, name
        for keys, what, _ in entries:
            assert f"| `{keys}` | {what} |" in section, keys


# --- defect 2 and control characters ------------------------------------------------------------


async def test_agent_lines_wrap_whole_and_controls_are_shown_not_sent(make_engine: EngineFactory,
                                                                       tmp_path: Path) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path)
    line = "demo: step 8: " + " ".join(f"word{i}" for i in range(40)) + " budget"
    async with app.run_test(size=SIZE) as pilot:
        engine.bus.publish(AgentOutput(engine.clock.now(), "agent_1", "stdout", line))
        engine.bus.publish(AgentOutput(engine.clock.now(), "agent_1", "stdout", "evil \x1b[2J\x1b]0;t\x07 end"))
        publish(engine, rec("x", engine, model="gpt\x1b[31m-4o"))
        log = app.dashboard.query_one(AgentLog)
        await until(pilot, lambda: len(log.lines) >= 3 and table(app).row_count == 1)
        await pilot.pause(0.1)
        width = log.scrollable_content_region.width
        assert all(cell_len(s.text.rstrip()) <= width for s in log.lines)
        joined = " ".join(s.text.strip() for s in log.lines[:-1])
        assert re.sub(r"\s+", " ", joined) == line, "nothing of the long line is lost"
        last = log.lines[-1].text
        assert "\x1b" not in last and "\x07" not in last and "\\x1b[2J" in last
        cells = " ".join(table(app).row_texts(0))
        assert "\x1b" not in cells and "gpt\\x1b[31m-4o" in cells
        await pilot.resize_terminal(200, 60)  # rewrapped at the new width, still whole
        await until(pilot, lambda: log.scrollable_content_region.width > width)
        await pilot.pause(0.1)
        assert re.sub(r"\s+", " ", " ".join(s.text.strip() for s in log.lines[:-1])) == line


# --- the new views ---------------------------------------------------------------------------------


async def test_sort_totals_and_history(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    assert engine.history_path is not None
    old = History(10, engine.history_path, session="earlier")  # a past session on the same file
    old.write([(f"old{i}", 1000.0 + i, {**rec(f"old{i}", engine).summary(), "model": "gpt-3.5-turbo",
                                         "state": "error" if i % 2 else "ok", "status": 500 if i % 2 else 200})
               for i in range(6)])
    old.close()
    app = app_for(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        publish(engine, rec("fast", engine, latency_ms=50.0, cost_micros=9000),
                rec("slow", engine, latency_ms=900.0, cost_micros=10, model="gpt-4o"),
                rec("mid", engine, latency_ms=300.0, cost_micros=500, state="error", status=500, error="x"))
        await until(pilot, lambda: table(app).row_count == 3)
        table(app).focus()
        await pilot.press("o")  # time → latency, biggest first
        assert [r["id"] for r in table(app).rows] == ["slow", "mid", "fast"] and not table(app).follow
        await pilot.press("O")
        assert [r["id"] for r in table(app).rows] == ["fast", "mid", "slow"]
        await pilot.click(RequestsTable, offset=(table(app).size.width - 6, 1))  # the Cost header
        assert app.dashboard.sort.key == "cost" and table(app).rows[0]["id"] == "fast"

        await pilot.press("T")
        assert isinstance(app.screen, TotalsScreen)
        text = text_of(app.screen.query_one("#totals-table", Static))
        first = next(line for line in text.splitlines() if line.startswith("gpt-4o-mini"))
        assert re.search(r"gpt-4o-mini\s+2\s+1\s+50 ms\s+50 ms", first), first
        await pilot.press("g")
        assert text_of(app.screen.query_one("#totals-table", Static)).startswith("Provider")
        assert "Budget forecast" in text_of(app.screen.query_one("#forecast", Static))
        await pilot.press("q")

        await pilot.press("H")
        assert isinstance(app.screen, HistoryScreen)
        hist = app.screen.query_one(RequestsTable)
        await until(pilot, lambda: hist.row_count == 9, what="this session and the earlier one")
        await pilot.press("slash", *"is:error model:3.5")
        await until(pilot, lambda: hist.row_count == 3, what="filtered in SQL")
        assert {r["id"] for r in hist.rows} == {"old1", "old3", "old5"}
        assert all(r["session"] == "earlier" for r in hist.rows)
        await pilot.press("enter")  # back to the list, then open: a past call has no bodies in memory
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RequestDetailScreen))
        assert "not available" in screen_text(app.screen)


async def test_curl_bodies_export(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path)
    client = oai(engine)
    async with app.run_test(size=SIZE) as pilot:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "owls?"}])
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "bats?"}])
        await until(pilot, lambda: table(app).row_count == 2 and "…" not in table(app).row_texts(0))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RequestDetailScreen))
        await pilot.press("c")
        assert isinstance(app.screen, TextDialog)
        assert "$IRON_TOKEN" in app.clipboard and engine.token not in app.clipboard and "bats?" in app.clipboard
        await pilot.press("escape", "i")
        assert json.loads(app.clipboard)["messages"][0]["content"] == "bats?"
        await pilot.press("escape", "o")
        assert "Simulated reply" in json.loads(app.clipboard)["choices"][0]["message"]["content"]
        await pilot.press("escape", "escape")

        for fmt, name in (("jsonl", "out.jsonl"), ("har", "out.har")):
            await pilot.press("slash", *"owls", "enter")  # free text: searched in the bodies
            await until(pilot, lambda: table(app).row_count == 1)
            await pilot.press("E")
            dialog = app.screen
            assert isinstance(dialog, ExportDialog) and "matching `owls`" in screen_text(dialog)
            if fmt == "har":
                dialog.query_one("#export-format").value = "har"  # type: ignore[attr-defined]
            dialog.query_one("#export-path").value = str(tmp_path / name)  # type: ignore[attr-defined]
            await pilot.press("enter")
            await until(pilot, lambda n=name: (tmp_path / n).exists(), what=f"{fmt} written")
            await pilot.press("escape")
        lines = (tmp_path / "out.jsonl").read_text().splitlines()
        assert len(lines) == 1 and "owls?" in json.loads(lines[0])["request_body"]
        har = json.loads((tmp_path / "out.har").read_text())
        assert [e["request"]["postData"]["text"].count("owls?") for e in har["log"]["entries"]] == [1]
    await client.close()


async def test_replay_and_edit_and_replay(make_engine: EngineFactory, tmp_path: Path, sim: ProviderSim) -> None:
    engine = await make_engine(budget=1.0)
    app = app_for(engine, tmp_path)
    client = oai(engine)
    async with app.run_test(size=SIZE) as pilot:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "owls?"}])
        await until(pilot, lambda: table(app).row_count == 1 and "…" not in table(app).row_texts(0))
        first = table(app).rows[0]["id"]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RequestDetailScreen))
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmDialog) and "worst case $0." in screen_text(app.screen)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RequestDetailScreen) and app.screen.request_id != first,
                    what="the replay's own detail")
        replayed = engine.history.get(app.screen.request_id)  # type: ignore[attr-defined]
        assert replayed is not None and replayed.agent_id == "replay" and replayed.cost_micros
        await pilot.press("e")
        editor = app.screen
        assert isinstance(editor, ReplayEditScreen)
        area = editor.query_one(TextArea)
        area.text = area.text.replace("owls?", "ravens?")
        await pilot.pause()
        assert "✓" in text_of(editor.query_one("#replay-check", Static))
        area.text = "{broken"
        await pilot.pause()
        assert "not valid JSON" in text_of(editor.query_one("#replay-check", Static))
        await pilot.press("ctrl+s")
        assert app.screen is editor  # nothing sent
        area.text = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ravens?"}]})
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(engine.history) == 3, what="the edited call")
        assert "ravens?" in json.dumps(sim.requests[-1].body)
        assert engine.history.recent(1)[0].agent_id == "replay"
    await client.close()

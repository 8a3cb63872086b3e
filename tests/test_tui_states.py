"""Pilot tests of the states other work added, as the dashboard shows them: provider health, retries,
fallbacks and aliases, dead letters, known agents launched with their task, calls recovered after a crash.

Real engines on loopback, the provider simulator, the official SDK, real agent processes (fake `claude`
and `codex` executables on PATH — never the real CLIs) and a real SIGKILLed process for the crash."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from rich.cells import cell_len
from textual.widgets import Select, Static

from iron_tui.core.events import SyncStatus
from iron_tui.core.feed import load_feed_schema
from iron_tui.core.known_agents import KNOWN_AGENTS
from iron_tui.sim import ProviderSim
from iron_tui.tui.screens.detail import RequestDetailScreen
from iron_tui.tui.screens.dialogs import TaskDialog
from iron_tui.tui.widgets.panels import AgentLog
from iron_tui.tui.widgets.providers import ProviderStrip, strip_content
from iron_tui.tui.widgets.requests import flags_of
from tests.conftest import EngineFactory
from tests.tui_support import app_for, oai, open_detail, table, text_of, until

SIZE = (120, 36)
ROOT = Path(__file__).resolve().parent.parent
FLAGS, STATUS = 3, 4  # columns at 120: time, model, provider, flags, status, latency, ...


def strip_text(app: object) -> str:
    strip = app.dashboard.query_one(ProviderStrip)  # type: ignore[attr-defined]
    return text_of(strip) if strip.display else ""


HEALTH = [
    {"provider": "openai", "state": "ok", "error_rate": 0.0, "latency_ms": 420.0, "retry_in_s": None},
    {"provider": "anthropic", "state": "degraded", "error_rate": 0.25, "latency_ms": 1200.0, "retry_in_s": None},
    {"provider": "groq", "state": "down", "error_rate": 0.6, "latency_ms": None, "retry_in_s": 23.4},
    {"provider": "mistral", "state": "ok", "error_rate": 0.0, "latency_ms": 300.0, "retry_in_s": None},
]


@pytest.mark.parametrize("width", [200, 118, 78, 40, 24])
def test_the_provider_line_fits_and_a_down_provider_leads(width: int) -> None:
    line = strip_content(HEALTH, width).plain
    assert cell_len(line) <= width or width < 30, line  # the down one is kept even when nothing else fits
    assert line.lstrip().removeprefix("Providers").lstrip().startswith("✖ groq down"), line
    assert "24 s" in line  # its countdown, whatever the width
    if width >= 78:
        assert "retry in 24 s" in line and "◐ anthropic" in line and "● openai" in line
    if width >= 200:
        assert line.startswith("Providers ") and "degraded · 25% err · 1.20 s" in line and "ok · 0% err · 420 ms" in line


def test_flags_tell_a_fallback_from_a_retry_and_an_alias_from_an_address() -> None:
    tries = [{"provider": "openai", "model": "gpt-4o"}, {"provider": "openai", "model": "gpt-4o"}]
    retried = {"provider": "openai", "model": "gpt-4o", "attempts": tries}
    fell = {"provider": "anthropic", "model": "claude-3-5-haiku-latest", "client_model": "gpt-4o",
            "attempts": [*tries, {"provider": "anthropic", "model": "claude-3-5-haiku-latest"}]}
    alias = {"provider": "ollama", "model": "qwen2.5-coder", "client_model": "claude-haiku-4-5"}
    address = {"provider": "ollama", "model": "qwen2.5-coder", "client_model": "ollama/qwen2.5-coder"}
    assert [flags_of(r) for r in (retried, fell, alias, address)] == ["↻", "↪", "≈", ""]


async def test_provider_health_fallbacks_and_aliases_on_real_traffic(make_engine: EngineFactory, sim: ProviderSim,
                                                                     tmp_path: Path) -> None:
    engine = await make_engine(retries={"attempts": 1, "cooldown": 0}, models={"fast": "gpt-4o-mini"},
                               fallbacks={"gpt-4o": ["claude-3-5-haiku-latest"]})
    app = app_for(engine, tmp_path)
    client = oai(engine)
    # Every toast, kept: on a busy machine one may expire (4 s) before the test looks for it.
    toasts: list[str] = []
    notify = app.notify

    def kept(message: str, *args: Any, **kwargs: Any) -> None:
        toasts.append(str(message))
        notify(message, *args, **kwargs)

    app.notify = kept  # type: ignore[method-assign,assignment]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not app.dashboard.query_one(ProviderStrip).display, "no provider tried yet: no strip"
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        await until(pilot, lambda: "● openai ok · 0% err" in strip_text(app), what="openai ok in the strip")

        # OpenAI fails three times in a row: each call falls back to Claude, and OpenAI goes down.
        sim.faults.push(status=500, times=3, provider="openai")
        for _ in range(3):
            r = await client.chat.completions.create(model="gpt-4o", max_tokens=20,
                                                     messages=[{"role": "user", "content": "and now?"}])
            assert r.model == "claude-3-5-haiku-latest"  # served by the fallback
        await until(pilot, lambda: "✖ openai down" in strip_text(app), what="openai down in the strip")
        assert "probe on the next call" in strip_text(app)  # cool-down 0: the next call probes it
        assert app.dashboard.query_one(ProviderStrip).has_class("-down")
        assert "● anthropic ok" in strip_text(app)
        await until(pilot, lambda: any(n.startswith("openai is down: ") for n in toasts), what="the down toast")
        await until(pilot, lambda: table(app).row_count == 4 and "…" not in table(app).row_texts(0))
        row = table(app).row_texts(0)  # newest: a fallback, served by Claude, translated
        assert row[1] == "claude-3-5-haiku-latest" and row[2] == "anthropic" and row[FLAGS] == "↔↪", row

        # The alias: the served model in the list, ≈ in the flags; the probe brings OpenAI back.
        await client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "quick"}])
        await until(pilot, lambda: table(app).row_count == 5 and "…" not in table(app).row_texts(0))
        row = table(app).row_texts(0)
        assert row[1] == "gpt-4o-mini" and row[FLAGS] == "≈", row
        await until(pilot, lambda: "● openai ok" in strip_text(app), what="openai back")
        await until(pilot, lambda: "openai is back" in toasts, what="the 'openai is back' toast")

        # The fallback's Cost tab: what was asked for and each try.
        fallback_id = table(app).rows[1]["id"]
        screen = await open_detail(pilot, app, fallback_id, "tab-cost")
        assert isinstance(screen, RequestDetailScreen)
        cost = "\n".join(text_of(s) for s in screen.query("#tab-cost Static").results(Static))
        assert re.search(r"asked for +gpt-4o  \(a fallback served it\)", cost), cost
        assert re.search(r"try 1 +openai gpt-4o · 500 ", cost) and re.search(r"try 2 +anthropic claude-3-5-haiku-latest · 200 .* served", cost)
    await client.close()


def fake_agents(tmp_path: Path) -> Path:
    """`claude`, `codex` and `aider` executables that print how they were started (argv, the proxy they see)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("claude", "codex", "aider"):
        exe = bin_dir / program
        exe.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                       "print(json.dumps({'argv': sys.argv[1:], 'anthropic': os.environ.get('ANTHROPIC_BASE_URL')}))\n")
        exe.chmod(0o755)
    return bin_dir


def started_as(app: object) -> dict[str, object]:
    """What the last agent run printed about its own start (the supervisor's buffer: the log wraps)."""
    lines = [o.text for o in app.engine.agent.output if o.text.startswith("{")]  # type: ignore[attr-defined]
    return json.loads(lines[-1]) if lines else {}  # type: ignore[no-any-return]


def log_text(app: object) -> str:
    return "".join(s.text for s in app.dashboard.query_one(AgentLog).lines)  # type: ignore[attr-defined]


async def test_known_agents_are_offered_and_ask_for_their_task(make_engine: EngineFactory, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(fake_agents(tmp_path)))  # only the fakes: never a real CLI
    engine = await make_engine()  # no [[agents]] presets
    app = app_for(engine, tmp_path)
    assert [a.name for a in app.known_agents] == [a.name for a in KNOWN_AGENTS] == ["Codex CLI", "Claude Code", "Aider"]
    async with app.run_test(size=SIZE) as pilot:
        select = app.dashboard.query_one("#agent-preset", Select)
        claude = next(a for a in app.known_agents if a.program == "claude")
        codex = next(a for a in app.known_agents if a.program == "codex")
        assert select.value == codex  # the first one on offer
        select.value = claude
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, TaskDialog), what="the task dialog")
        await pilot.press("enter")  # a task is needed
        assert isinstance(app.screen, TaskDialog)
        assert "needs a task" in text_of(app.screen.query_one("#task-error", Static))
        await pilot.press(*"explain main.py")
        assert "$ claude -p 'explain main.py'" in text_of(app.screen.query_one("#task-command", Static))
        await pilot.press("enter")
        await until(pilot, lambda: engine.agent.state == "exited" and started_as(app), what="claude ran")
        assert engine.agent.current is not None and engine.agent.current.name == "Claude Code"
        got = started_as(app)
        argv = got["argv"]
        assert isinstance(argv, list) and argv[0] == "--settings" and argv[2:] == ["-p", "explain main.py"]
        assert json.loads(argv[1])["env"]["ANTHROPIC_BASE_URL"] == engine.base_url  # kept on the proxy
        assert got["anthropic"] == engine.base_url
        await until(pilot, lambda: "explain main.py" in log_text(app), what="its output in the panel")

        # Esc cancels; the Start button does what s does.
        select.value = codex
        await pilot.click("#agent-start")
        await until(pilot, lambda: isinstance(app.screen, TaskDialog), what="the task dialog again")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.dashboard)
        assert engine.agent.current.name == "Claude Code", "nothing started"
        await pilot.click("#agent-start")
        await until(pilot, lambda: isinstance(app.screen, TaskDialog))
        await pilot.press(*"fix it", "enter")
        await until(pilot, lambda: engine.agent.current is not None and engine.agent.current.name == "Codex CLI"
                    and engine.agent.state == "exited" and started_as(app)["argv"] != argv, what="codex ran")
        assert started_as(app)["argv"] == ["-c", f'openai_base_url="{engine.base_url}/v1"', "exec",
                                           "--skip-git-repo-check", "fix it"]


async def test_dead_letters_show_in_the_sync_panel_and_the_narrow_line(make_engine: EngineFactory,
                                                                       tmp_path: Path) -> None:
    engine = await make_engine()
    app = app_for(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        sync = app.dashboard.query_one("#sync", Static)
        engine.bus.publish(SyncStatus(engine.clock.now(), "ok", sent=40, last_success=engine.clock.now()))
        await until(pilot, lambda: "sent     40" in text_of(sync))
        assert "dead" not in text_of(sync) and not sync.has_class("-dead")  # nothing to see: nothing shown
        engine.bus.publish(SyncStatus(engine.clock.now(), "ok", sent=41, last_success=engine.clock.now(),
                                      dead_letters=3))
        await until(pilot, lambda: "dead     3 never sent" in text_of(sync), what="dead letters counted")
        assert sync.has_class("-dead")
        assert "3 dead" in text_of(app.dashboard.query_one("#mini-sync", Static))  # the 80-column layout's line


WORKER = ROOT / "tests" / "helpers" / "ledger_worker.py"


async def test_calls_a_killed_iron_tui_left_in_flight_show_as_interrupted(make_engine: EngineFactory,
                                                                          tmp_path: Path) -> None:
    data = tmp_path / "shared"
    data.mkdir()
    worker = subprocess.Popen([sys.executable, str(WORKER), "inflight", str(data / "state.sqlite3"), "1000000", "2"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    worker.send_signal(signal.SIGKILL)  # two calls journaled and relaying: a real crash
    worker.wait(timeout=30)
    engine = await make_engine(budget=1.0, budget_period="day", data_dir=data)
    app = app_for(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 2, what="the recovered calls in the list")
        for i in range(2):
            row = table(app).row_texts(i)
            assert row[1] == "gpt-4o-mini" and row[FLAGS] == "!" and row[STATUS] == "err", row
            assert row[-1].startswith("~$"), "charged from what it relayed: an estimate"
        summary = table(app).rows[0]
        assert summary["interrupted"] is True and summary["error"].startswith("interrupted: ")
        screen = await open_detail(pilot, app, summary["id"])
        assert screen.query_one("#detail-tabs").active == "tab-error"  # type: ignore[attr-defined]
        error = "\n".join(text_of(s) for s in screen.query("#tab-error Static").results(Static))
        assert "stopped (crashed or was killed) before it finished" in error
        assert "reported once, marked interrupted" in error
    # On disk too, for the history browser; and in the feed, in its documented shape.
    assert {"s0", "s1"} <= {s["id"] for s in engine.history.past(10) if s.get("interrupted")}
    async with aiohttp.ClientSession() as session, session.ws_connect(
            engine.feed_url, headers={"Authorization": f"Bearer {engine.token}"}) as ws:
        snapshot = json.loads((await ws.receive(timeout=20)).data)
    Draft202012Validator(load_feed_schema()).validate(snapshot)
    assert sorted(r["id"] for r in snapshot["state"]["requests"] if r.get("interrupted")) == ["s0", "s1"]

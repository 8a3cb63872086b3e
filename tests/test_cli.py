"""The `iron-tui` command: version, option errors, headless start/stop in a real process, agent exit codes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from iron_tui import __version__
from iron_tui.cli import main
from iron_tui.sim import ProviderSim

ROOT = Path(__file__).resolve().parent.parent
AGENTS = Path(__file__).resolve().parent / "agents"
OPENAI_KEY = "sk-sim-openai"  # what the `sim` fixture accepts
READY = re.compile(r"^iron-tui ready: (http://127\.0\.0\.1:(\d+)/v1) feed (ws://127\.0\.0\.1:\d+/ws)$")


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "IC_TOKEN", "IC_SERVER", "IRON_BUDGET")}
    env.update(IRON_CONFIG=str(tmp_path / "no-config.toml"), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@pytest.fixture(autouse=True)
def no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IRON_CONFIG", str(tmp_path / "no-config.toml"))
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "IC_TOKEN", "IC_SERVER", "IRON_HOST", "IRON_PORT"):
        monkeypatch.delenv(var, raising=False)


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_version(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "iron_tui", "--version"], capture_output=True, text=True,
                          timeout=60, env=child_env(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"iron-tui {__version__}"


def test_unknown_option_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "--no-ui", "--colour", "red")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "unrecognized arguments: --colour red" in err


def test_remote_host_needs_allow_remote(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "--no-ui", "--host", "0.0.0.0", "--openai-key", "sk-test-0123456789abcdef")
    assert code == 2
    assert err.count("\n") == 1 and "0.0.0.0" in err and "--allow-remote" in err


def test_missing_keys_names_the_environment_variables(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "--no-ui")
    assert code == 2
    assert err.count("\n") == 1
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "--server-url", "IC_TOKEN"):
        assert name in err


def test_dash_dash_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "--no-ui", "--")
    assert code == 2 and "agent command" in err


async def _read_until(stream: asyncio.StreamReader, pattern: str | re.Pattern[str], seen: list[str],
                      timeout: float = 30.0) -> re.Match[str]:
    rx = re.compile(pattern) if isinstance(pattern, str) else pattern
    async with asyncio.timeout(timeout):
        while True:
            raw = await stream.readline()
            if not raw:
                raise AssertionError("process ended before printing " + rx.pattern + ":\n" + "".join(seen))
            line = raw.decode()
            seen.append(line)
            m = rx.search(line.rstrip("\n"))
            if m:
                return m


async def test_headless_serves_then_stops_on_sigterm(sim: ProviderSim, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--token", "cli-test-token",
        "--openai-base-url", sim.url, "--data-dir", str(tmp_path / "data"),
        env=child_env(tmp_path, OPENAI_API_KEY=OPENAI_KEY), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    seen: list[str] = []
    try:
        ready = await _read_until(proc.stdout, READY, seen)
        client = AsyncOpenAI(base_url=ready.group(1), api_key="cli-test-token", max_retries=0)
        reply = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello from the cli test"}])
        await client.close()
        assert reply.choices[0].message.content and "hello from the cli test" in reply.choices[0].message.content
        # One log line per request: provider, model, status, tokens and cost.
        line = await _read_until(proc.stdout, r" openai gpt-4o-mini 200 .* in=\d+ out=\d+ \$\d", seen)
        assert line
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):  # a hang guard: a graceful stop ends well before it
            rest = await proc.stdout.read()
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = (await proc.stderr.read()).decode()
    assert code == 0, err
    assert "Traceback" not in err
    assert OPENAI_KEY not in "".join(seen) + rest.decode() + err  # the provider key is never printed
    assert len(sim.requests) == 1 and sim.requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"


async def test_headless_exits_with_the_agent_exit_code(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--data-dir", str(tmp_path / "data"),
        "--", sys.executable, str(AGENTS / "exit_with.py"), "3",
        env=child_env(tmp_path, OPENAI_API_KEY=OPENAI_KEY), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 3, err.decode()
    text = out.decode()
    assert "about to exit 3" in text  # the agent's output is relayed
    assert re.search(r"agent agent_\w+ exited code=3", text)


def test_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, _, err = run_main(capsys, "--no-ui", "--port", str(port), "--openai-key", "sk-test-0123456789abcdef",
                                "--data-dir", str(tmp_path / "data"))
    assert code == 2
    assert err.count("\n") == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err and "try --port 0" in err


def test_the_command_tunes_its_collector_and_main_leaves_a_callers_alone(tmp_path: Path) -> None:
    import gc

    before = gc.get_threshold()
    assert main(["config", "path"]) == 0  # in this process, as a script embedding iron-tui would
    assert gc.get_threshold() == before
    probe = ("import gc, sys; from iron_tui.cli import run; sys.argv = ['iron-tui', 'config', 'path']; "
             "code = run(); print(gc.get_threshold()[0], code)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=child_env(tmp_path),
                         timeout=60, check=True).stdout.split()
    from iron_tui.core.loop import GC_YOUNG_THRESHOLD

    assert out[-2:] == [str(GC_YOUNG_THRESHOLD), "0"]

"""Running a real agent CLI (installed by .ci/install-clients) under `iron-tui --no-ui -- CLI …` against
the simulated providers, as a user would: zero wiring flags, provider keys only in iron-tui's
environment. Shared by the Codex and Claude Code compatibility tests."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from iron_tui.sim import ProviderSim
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY

CLI_BIN = Path(__file__).resolve().parents[1] / ".ci" / "node" / "node_modules" / ".bin"
# The environment of the machine running the tests must not leak in: a developer's keys, or the
# variables a Claude Code session gives its children (Claude Code refuses to nest, and they would
# point the CLI at that session).
_DROPPED = ("OPENAI", "CODEX", "ANTHROPIC", "CLAUDE")


def agent_cli(name: str) -> str:
    """The CLI's path. Missing is a failure, never a skip: CI installs them (.ci/run)."""
    path = CLI_BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"the {name} CLI is not installed at {path}: run `bash .ci/install-clients` "
                    "(CI runs it before the tests)")
    return str(path)


@dataclass
class IronRun:
    code: int
    text: str  # iron-tui's whole output (JSON log lines)
    records: list[dict[str, Any]] = field(default_factory=list)  # REQUEST_FINISHED records
    agent_stdout: list[str] = field(default_factory=list)  # the agent's stdout lines, in order


async def run_agent(sim: ProviderSim, tmp_path: Path, agent_argv: list[str], *, cwd: Path | None = None,
                    iron_args: tuple[str, ...] = (), timeout: float = 240) -> IronRun:
    """`iron-tui --no-ui -- AGENT…` with both provider keys and the sim as both providers; HOME is
    `tmp_path`, so the CLI's own config and session files stay in the test's directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
    env.update(PYTHONUNBUFFERED="1", OPENAI_API_KEY=OPENAI_KEY, ANTHROPIC_API_KEY=ANTHROPIC_KEY, HOME=str(tmp_path))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--log-format", "json",
        "--openai-base-url", sim.url, "--anthropic-base-url", sim.url, "--data-dir", str(tmp_path / "data"),
        *iron_args, "--", *agent_argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env, cwd=cwd,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)  # a hang guard, not a timing claim
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    run = IronRun(proc.returncode or 0, out.decode("utf-8", "replace"))
    for line in run.text.splitlines():
        obj = _json(line)
        if obj is None:
            continue
        if obj.get("type") == "REQUEST_FINISHED":
            run.records.append(obj["request"])
        elif obj.get("type") == "AGENT_EVENT" and obj.get("event") == "output":
            data = obj.get("data") or {}
            if data.get("stream") == "stdout":
                run.agent_stdout.append(data.get("line", ""))
    return run


def _json(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None

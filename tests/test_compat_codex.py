"""The real Codex CLI (npm `@openai/codex`, pinned in .ci/install-clients) launched by `iron-tui -- codex …`
with zero flags, against the simulated providers: a Claude model through the Responses → Anthropic
translation, and a GPT model natively. The sim answers Codex's first turn with a tool call, so each run
is a whole agent loop (tool call, Codex runs it, tool output, final answer).

CI installs Codex (`.ci/run`); without it these tests fail in CI and are skipped elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from iron_tui.sim import ProviderSim
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY

CODEX = Path(__file__).resolve().parents[1] / ".ci" / "node" / "node_modules" / ".bin" / "codex"


def _codex() -> str:
    if CODEX.exists():
        return str(CODEX)
    if os.environ.get("CI"):
        pytest.fail(f"Codex CLI not installed at {CODEX}: .ci/install-clients should have installed it")
    pytest.skip("Codex CLI not installed (run .ci/install-clients)")


async def _run_codex(sim: ProviderSim, tmp_path: Path, model: str,
                     *extra: str) -> tuple[int, str, list[dict[str, Any]]]:
    codex = _codex()
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "CODEX", "ANTHROPIC"))}
    env.update(PYTHONUNBUFFERED="1", CODEX_HOME=str(tmp_path / "codex-home"),
               OPENAI_API_KEY=OPENAI_KEY, ANTHROPIC_API_KEY=ANTHROPIC_KEY, HOME=str(tmp_path))
    (tmp_path / "codex-home").mkdir()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--log-format", "json",
        "--openai-base-url", sim.url, "--anthropic-base-url", sim.url, "--data-dir", str(tmp_path / "data"),
        "--", codex, "exec", "--skip-git-repo-check", "-C", str(work), "-m", model, *extra, "Say hello to the team",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 240)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode("utf-8", "replace")
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and obj.get("type") == "REQUEST_FINISHED":
                records.append(obj["request"])
    return proc.returncode or 0, text, records


async def test_codex_on_claude_with_zero_flags(sim: ProviderSim, tmp_path: Path) -> None:
    code, text, records = await _run_codex(sim, tmp_path, "claude-sonnet-4-6")
    assert code == 0, text[-3000:]
    assert "Simulated reply to tool result" in text, text[-3000:]
    calls = [r for r in sim.requests if r.path == "/v1/messages"]
    assert len(calls) >= 2
    first, last = calls[0].body, calls[-1].body
    assert first is not None and last is not None
    assert any(t["name"] == "exec_command" for t in first["tools"])
    assert last["messages"][-1]["content"][0]["type"] == "tool_result"
    responses = [r for r in records if r.get("api") == "openai.responses"]
    assert responses and all(r.get("status") == 200 for r in responses), records
    # Codex's WebSocket attempt got its 426 and was not repeated (a 405 cost seven attempts).
    assert text.count("failed to connect to Responses WebSocket") == 1


async def test_codex_reasoning_on_claude_keeps_thinking_across_the_tool_loop(sim: ProviderSim, tmp_path: Path) -> None:
    code, text, _ = await _run_codex(sim, tmp_path, "claude-sonnet-4-6", "-c", 'model_reasoning_effort="high"')
    assert code == 0, text[-3000:]
    calls = [r.body for r in sim.requests if r.path == "/v1/messages"]
    assert len(calls) >= 2 and all(c is not None and c["thinking"]["type"] == "enabled" for c in calls)
    # Codex sent our reasoning item back (include: reasoning.encrypted_content): the signed thinking
    # block leads the tool-use turn, which the sim verifies as Anthropic does.
    last = calls[-1]
    assert last is not None
    assistant = next(m for m in reversed(last["messages"]) if m["role"] == "assistant")
    assert assistant["content"][0]["type"] == "thinking"


async def test_codex_on_gpt_natively(sim: ProviderSim, tmp_path: Path) -> None:
    code, text, _records = await _run_codex(sim, tmp_path, "gpt-5")
    assert code == 0, text[-3000:]
    calls = [r for r in sim.requests if r.path == "/v1/responses"]
    assert len(calls) >= 2, text[-3000:]
    assert calls[0].body is not None and calls[0].body["model"] == "gpt-5"
    assert any(i.get("type") == "function_call_output" for i in calls[-1].body["input"])

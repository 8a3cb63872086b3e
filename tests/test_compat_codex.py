"""The real Codex CLI (npm `@openai/codex`, pinned in .ci/install-clients) launched by `iron-tui -- codex …`
with zero flags, against the simulated providers: a Claude model through the Responses → Anthropic
translation, and a GPT model natively. The sim answers Codex's first turn with a tool call, so each run
is a whole agent loop (tool call, Codex runs it, tool output, final answer).

CI installs Codex (`.ci/run` calls `.ci/install-clients`); without it these tests fail, saying so.
"""

from __future__ import annotations

from pathlib import Path

from iron_tui.sim import ProviderSim
from tests.agent_cli import IronRun, agent_cli, run_agent


async def _run_codex(sim: ProviderSim, tmp_path: Path, model: str, *extra: str) -> IronRun:
    codex = agent_cli("codex")
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / ".codex").mkdir()  # CODEX_HOME's default under the test's HOME
    return await run_agent(sim, tmp_path, [codex, "exec", "--skip-git-repo-check", "-C", str(work), "-m", model,
                                           *extra, "Say hello to the team"])


async def test_codex_on_claude_with_zero_flags(sim: ProviderSim, tmp_path: Path) -> None:
    run = await _run_codex(sim, tmp_path, "claude-sonnet-4-6")
    code, text, records = run.code, run.text, run.records
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
    run = await _run_codex(sim, tmp_path, "claude-sonnet-4-6", "-c", 'model_reasoning_effort="high"')
    assert run.code == 0, run.text[-3000:]
    calls = [r.body for r in sim.requests if r.path == "/v1/messages"]
    assert len(calls) >= 2 and all(c is not None and c["thinking"]["type"] == "enabled" for c in calls)
    # Codex sent our reasoning item back (include: reasoning.encrypted_content): the signed thinking
    # block leads the tool-use turn, which the sim verifies as Anthropic does.
    last = calls[-1]
    assert last is not None
    assistant = next(m for m in reversed(last["messages"]) if m["role"] == "assistant")
    assert assistant["content"][0]["type"] == "thinking"


async def test_codex_on_gpt_natively(sim: ProviderSim, tmp_path: Path) -> None:
    run = await _run_codex(sim, tmp_path, "gpt-5")
    code, text = run.code, run.text
    assert code == 0, text[-3000:]
    calls = [r for r in sim.requests if r.path == "/v1/responses"]
    assert len(calls) >= 2, text[-3000:]
    assert calls[0].body is not None and calls[0].body["model"] == "gpt-5"
    assert any(i.get("type") == "function_call_output" for i in calls[-1].body["input"])

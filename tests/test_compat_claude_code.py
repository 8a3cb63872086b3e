"""The real Claude Code CLI (npm `@anthropic-ai/claude-code`, pinned in .ci/install-clients) launched by
`iron-tui -- claude -p …` with zero wiring flags, against the simulated providers: on a Claude model
natively, and on a GPT model through the Messages → Chat translation with its haiku-tier model mapped
by a `[models]` alias. The prompt's `[[sim:call=…]]` directives make the simulated model use Claude
Code's real tools (Read, Bash, Agent), so each run is a whole agent loop: tool calls, Claude Code runs
them, their results go back through iron-tui, a final answer.

CI installs Claude Code (`.ci/run` calls `.ci/install-clients`); without it these tests fail, saying so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iron_tui.sim import ProviderSim
from iron_tui.sim.base import ReceivedRequest
from tests.agent_cli import IronRun, agent_cli, run_agent
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY

SECRET = "The launch code is PURPLE-42."


async def _run_claude(sim: ProviderSim, tmp_path: Path, prompt: str, *claude_args: str,
                      iron_args: tuple[str, ...] = ()) -> tuple[IronRun, dict[str, Any], Path]:
    claude = agent_cli("claude")
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text(SECRET + "\n")
    run = await run_agent(sim, tmp_path, [claude, "-p", prompt.replace("NOTES", str(project / "notes.txt")),
                                          "--output-format", "json", *claude_args],
                          cwd=project, iron_args=iron_args)
    results = [json.loads(line) for line in run.agent_stdout if line.startswith('{"')]
    assert run.code == 0 and len(results) == 1, run.text[-4000:]
    return run, results[0], project


def _tool_results(req: ReceivedRequest) -> list[str]:
    """The text of each tool result in a request's last turn (Anthropic or OpenAI shape)."""
    assert req.body is not None
    messages = req.body["messages"]
    if req.path == "/v1/chat/completions":
        tail = messages[next(i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "assistant"):]
        return [m["content"] for m in tail if m["role"] == "tool"]
    return [b["content"] if isinstance(b["content"], str) else " ".join(c.get("text", "") for c in b["content"])
            for b in messages[-1]["content"] if b.get("type") == "tool_result"]


async def test_claude_code_on_claude_reads_a_file(sim: ProviderSim, tmp_path: Path) -> None:
    run, result, project = await _run_claude(
        sim, tmp_path, "What does NOTES say? [[sim:call=Bash(env)]] [[sim:call=Read(NOTES)]]",
        "--model", "claude-sonnet-4-6", "--allowedTools", "Bash(env)")
    # What the user sees: the answer built from the file Claude Code read.
    assert result["is_error"] is False, result
    assert "PURPLE-42" in result["result"], result

    calls = [r for r in sim.requests if r.path == "/v1/messages"]
    assert len(calls) == 2 and all(r.query == "beta=true" and r.status == 200 for r in calls)
    first, last = calls[0].body, calls[1].body
    assert first is not None and last is not None
    assert "claude-code-20250219" in calls[0].headers["anthropic-beta"]
    assert any(b.get("cache_control") for b in first["system"])
    assert {"Read", "Bash"} <= {t["name"] for t in first["tools"]}
    # The thinking Claude Code asked for came back hidden (display: omitted), signed, and was accepted
    # when sent back in the tool loop.
    assert first["thinking"].get("display") == "omitted"
    thinking = last["messages"][1]["content"][0]
    assert thinking["type"] == "thinking" and thinking["thinking"] == "" and thinking["signature"]
    uses = [b for b in last["messages"][1]["content"] if b["type"] == "tool_use"]
    assert [(u["name"], u["input"]) for u in uses] == [
        ("Bash", {"command": "env"}), ("Read", {"file_path": str(project / "notes.txt")})]
    env_dump, read = _tool_results(calls[1])
    assert SECRET in read
    # The environment Claude Code and its tools really had: the proxy, the agent's own token, no
    # provider key, nothing pointing elsewhere.
    env = dict(line.split("=", 1) for line in env_dump.splitlines() if "=" in line)
    assert env["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
    assert env["ANTHROPIC_API_KEY"].startswith("iron-agent-") and "ANTHROPIC_AUTH_TOKEN" not in env
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert ANTHROPIC_KEY not in env_dump and OPENAI_KEY not in env_dump
    assert ANTHROPIC_KEY not in run.text and OPENAI_KEY not in run.text

    # What iron-tui recorded: both calls native, priced, attributed to the agent run.
    assert len(run.records) == 2, run.records
    for rec in run.records:
        assert rec["status"] == 200 and rec["translated"] is False and rec["provider"] == "anthropic"
        assert rec["cost_usd"] > 0 and rec["agent_id"]


async def test_claude_code_on_gpt_with_its_haiku_model_aliased(sim: ProviderSim, tmp_path: Path) -> None:
    config = tmp_path / "iron.toml"
    config.write_text('[models]\n"claude-haiku-*" = "gpt-5-mini"\n')
    # A subagent on the haiku tier (Claude Code's small/fast model) reads the file too; `\\u005b`
    # keeps its directive out of the outer one until Claude Code decodes the tool arguments.
    task = json.dumps({"description": "Read the notes", "model": "haiku", "run_in_background": False,
                       "prompt": "Read it \\u005b\\u005bsim:call=Read(NOTES)\\u005d\\u005d"})
    run, result, _project = await _run_claude(
        sim, tmp_path, f"What does NOTES say? [[sim:call=Agent({task})]] [[sim:call=Read(NOTES)]]",
        "--model", "gpt-5", iron_args=("--config", str(config)))
    assert result["is_error"] is False, result
    assert "PURPLE-42" in result["result"], result

    # Everything went to OpenAI as Chat Completions: nothing reached the Anthropic API.
    assert sim.requests and all(r.path == "/v1/chat/completions" and r.status == 200 for r in sim.requests)
    models = [r.body["model"] for r in sim.requests if r.body is not None]
    assert models == ["gpt-5", "gpt-5-mini", "gpt-5-mini", "gpt-5"], models
    sub_read = _tool_results(sim.requests[2])
    assert len(sub_read) == 1 and SECRET in sub_read[0]
    hand_back, read = _tool_results(sim.requests[3])
    assert "PURPLE-42" in hand_back and SECRET in read  # the subagent's report, then the main Read

    assert len(run.records) == 4, run.records
    for rec in run.records:
        assert rec["status"] == 200 and rec["translated"] is True and rec["provider"] == "openai"
        assert rec["api"] == "anthropic.messages" and rec["cost_usd"] > 0
    aliased = [r for r in run.records if r["model"] == "gpt-5-mini"]
    assert len(aliased) == 2 and all(r["client_model"].startswith("claude-haiku-") for r in aliased), aliased
    assert ANTHROPIC_KEY not in run.text and OPENAI_KEY not in run.text

"""Agents iron-tui knows how to launch with zero flags, offered as presets in the agent panel.

Data only: the dashboard lists the ones found on PATH, asks for the task when `takes_task`, and
starts `preset(task)`. What each needs beyond the standard variables is applied at launch
(`agent_env.agent_arguments`; e.g. Codex's base URL, Claude Code's `--settings`), so these commands stay what a user would type.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from iron_tui.core.agent import AgentPreset

__all__ = ["KNOWN_AGENTS", "KnownAgent", "available_agents"]


@dataclass(frozen=True, slots=True)
class KnownAgent:
    name: str  # shown in the panel
    program: str  # the executable looked up on PATH
    command: tuple[str, ...]  # argv before the task
    takes_task: bool  # the panel asks for a task and appends it as the last argument
    description: str

    def available(self) -> bool:
        return shutil.which(self.program) is not None

    def preset(self, task: str = "", cwd: str | None = None) -> AgentPreset:
        argv = [*self.command, task] if self.takes_task and task else list(self.command)
        return AgentPreset(name=self.name, command=argv, cwd=cwd)


KNOWN_AGENTS: tuple[KnownAgent, ...] = (
    KnownAgent(
        name="Codex CLI",
        program="codex",
        command=("codex", "exec", "--skip-git-repo-check"),
        takes_task=True,
        description="OpenAI's coding agent, non-interactive (codex exec); GPT models natively, Claude "
                    "models through the Responses translation",
    ),
    KnownAgent(
        name="Claude Code",
        program="claude",
        # Print mode: the agent runs without a terminal (stdin is /dev/null), where interactive
        # Claude Code cannot start. Tools that need a permission prompt (edits, shell) are refused
        # unless the user's settings allow them.
        command=("claude", "-p"),
        takes_task=True,
        description="Anthropic's coding agent, non-interactive (claude -p); Claude models natively, "
                    "any other model through the Messages translation (claude -p --model gpt-…)",
    ),
    KnownAgent(
        name="Aider",
        program="aider",
        # One message, no prompts (no terminal), no git commits of its own; it reaches models through
        # LiteLLM, which reads the OPENAI_API_BASE / ANTHROPIC_API_BASE the launch sets
        # (tests/test_compat_litellm.py drives LiteLLM that way).
        command=("aider", "--yes-always", "--no-auto-commits", "--message"),
        takes_task=True,
        description="A pair-programming agent, one message at a time (aider --message); any model "
                    "iron-tui routes, e.g. --model anthropic/claude-sonnet-4-5",
    ),
)


def available_agents() -> list[KnownAgent]:
    return [a for a in KNOWN_AGENTS if a.available()]

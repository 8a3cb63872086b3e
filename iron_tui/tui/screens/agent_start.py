"""Start / stop / restart from the agent panel and its keys, including known agents (Claude Code, Codex
CLI), which ask for their task in a small dialog and then run through the supervisor like any preset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from iron_tui.core.known_agents import KnownAgent
from iron_tui.tui.screens.dialogs import TaskDialog

if TYPE_CHECKING:
    from iron_tui.tui.app import IronApp


def agent_action(app: IronApp, chosen: str | KnownAgent | None, op: str) -> None:
    """`op` (start, stop, restart) with the preset chosen in the panel."""
    if not isinstance(chosen, KnownAgent):
        app.agent_command(op, chosen)
    elif op == "start":
        start_known(app, chosen)
    else:
        app.agent_command(op)  # stop / restart act on the agent that runs


def start_known(app: IronApp, agent: KnownAgent) -> None:
    if app.engine.agent.is_active:
        app.notify("an agent is already running (x stops it)", title="Agent", severity="warning")
        return
    if not agent.available():
        app.notify(f"{agent.program} is not on PATH any more", title="Agent", severity="error")
        return
    if not agent.takes_task:
        app.agent_command("start", agent.preset())
        return

    def go(task: str | None) -> None:
        if task:
            app.agent_command("start", agent.preset(task))

    app.push_screen(TaskDialog(agent), go)

"""LiteLLM (what aider uses to reach models) as a launched agent: with nothing but the environment
iron-tui sets, its OpenAI and Anthropic calls — streamed too — go through iron-tui, are priced and
attributed to the agent, and no provider key is in its environment."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from iron_tui.core.engine import Engine
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY

AGENTS = Path(__file__).parent / "agents"


async def test_litellm_reaches_both_providers_through_iron_tui_from_the_environment_alone(engine: Engine) -> None:
    lines: list[str] = []
    sub = engine.bus.subscribe()
    await engine.agent.start([sys.executable, str(AGENTS / "litellm_agent.py")])
    code = await asyncio.wait_for(engine.agent.wait(), 120)
    for ev in sub.drain():
        line = getattr(ev, "line", None)
        if isinstance(line, str):
            lines.append(line)
    assert code == 0, "\n".join(lines[-20:])
    out = "\n".join(lines)
    assert "openai/gpt-4o-mini: Simulated reply" in out and "anthropic/claude-haiku-4-5: Simulated reply" in out
    assert "streamed: Simulated reply" in out
    recs = [r for r in engine.history.recent(10) if r.agent_id == engine.agent.agent_id]
    assert sorted((r.provider, r.stream) for r in recs) == [("anthropic", False), ("anthropic", True),
                                                            ("openai", False)]
    assert all(r.state == "ok" and r.cost_micros and r.cost_micros > 0 for r in recs)
    assert OPENAI_KEY not in out and ANTHROPIC_KEY not in out

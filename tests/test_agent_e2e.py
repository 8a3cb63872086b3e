"""An agent launched by the engine calls through the real proxy and its calls are attributed to it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from iron_tui.core.engine import Engine
from tests.conftest import EngineFactory

AGENTS = Path(__file__).parent / "agents"


async def test_agent_call_is_attributed(engine: Engine) -> None:
    await engine.agent.start([sys.executable, str(AGENTS / "openai_agent.py")])
    code = await asyncio.wait_for(engine.agent.wait(), 60)
    lines = [o.text for o in engine.agent.output]
    assert code == 0, lines
    assert any(line.startswith("reply: ") for line in lines)
    rec = engine.history.recent(1)[0]
    assert rec.state == "ok" and rec.agent_id == engine.agent.agent_id
    assert rec.cost_micros and rec.cost_micros > 0


async def test_an_anthropic_sdk_agent_runs_without_a_credential_warning(engine: Engine) -> None:
    """The Anthropic SDK built without arguments finds one credential (the local token), so it has
    nothing to warn about (with ANTHROPIC_AUTH_TOKEN beside ANTHROPIC_API_KEY it warns on stderr)."""
    await engine.agent.start([sys.executable, str(AGENTS / "anthropic_agent.py")])
    code = await asyncio.wait_for(engine.agent.wait(), 60)
    lines = [o.text for o in engine.agent.output]
    assert code == 0, lines
    assert any(line.startswith("reply: ") for line in lines)
    assert not [line for line in lines if "WARNING" in line or "both set" in line], lines
    rec = engine.history.recent(1)[0]
    assert rec.state == "ok" and rec.provider == "anthropic" and rec.agent_id == engine.agent.agent_id


async def test_stopping_the_engine_stops_the_agent(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    await engine.agent.start([sys.executable, str(AGENTS / "sleeper.py")])
    pid = engine.agent.pid
    assert pid is not None and engine.agent.state == "running"
    await engine.stop()
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, "no agent survives the engine"

"""Shared fixtures: the provider simulator and engines wired to it, all on real loopback ports."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from hypothesis import settings

from iron_tui.config import Settings
from iron_tui.core.clock import SequentialIds
from iron_tui.core.engine import Engine
from iron_tui.sim import ProviderSim, SimSettings

# Hypothesis would fail an example that takes over 200 ms: a timed assertion, which a loaded CI machine
# breaks. Speed is measured in bench/, not here.
settings.register_profile("iron-tui", deadline=None)
settings.load_profile("iron-tui")

pytest_plugins = ["tests.upstream_server"]  # make_upstream, for the provider-client tests

OPENAI_KEY = "sk-sim-openai"
ANTHROPIC_KEY = "sk-ant-sim-anthropic"

# Tests must never pick up a developer's real keys or config.
for _var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "IC_TOKEN", "IC_SERVER", "IRON_CONFIG", "IRON_BUDGET"):
    os.environ.pop(_var, None)
for _var in [v for v in os.environ if v.startswith("OTEL_")]:  # nor a developer's trace collector
    os.environ.pop(_var, None)


@pytest.fixture
async def sim() -> AsyncIterator[ProviderSim]:
    s = ProviderSim(SimSettings(openai_keys={OPENAI_KEY}, anthropic_keys={ANTHROPIC_KEY}))
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


@pytest.fixture
async def an(sim: ProviderSim) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The Anthropic SDK straight at the simulator."""
    client = anthropic.AsyncAnthropic(base_url=sim.url, api_key=ANTHROPIC_KEY, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def oa(sim: ProviderSim) -> AsyncIterator[openai.AsyncOpenAI]:
    """The OpenAI SDK straight at the simulator."""
    client = openai.AsyncOpenAI(base_url=sim.url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    yield client
    await client.close()


EngineFactory = Callable[..., Awaitable[Engine]]


@pytest.fixture
async def make_engine(sim: ProviderSim, tmp_path: Path) -> AsyncIterator[EngineFactory]:
    engines: list[Engine] = []

    async def factory(**overrides: Any) -> Engine:
        values: dict[str, Any] = {
            "port": 0,
            "openai_key": OPENAI_KEY,
            "anthropic_key": ANTHROPIC_KEY,
            "openai_base_url": sim.url,
            "anthropic_base_url": sim.url,
            "data_dir": tmp_path / f"data{len(engines)}",
            "token": "test-token",
        }
        engine_kw = {k: overrides.pop(k) for k in ("clock", "ids", "feed_heartbeat_s") if k in overrides}
        values.update(overrides)
        engine = Engine(Settings(**{k: v for k, v in values.items() if v is not None}),
                        ids=engine_kw.pop("ids", SequentialIds()), **engine_kw)
        await engine.start()
        engines.append(engine)
        return engine

    try:
        yield factory
    finally:
        for e in reversed(engines):
            await e.stop()


@pytest.fixture
async def engine(make_engine: EngineFactory) -> Engine:
    return await make_engine()


async def calls_with_429(engine: Engine, sim: ProviderSim) -> dict[str, str]:
    """Through the engine: owls (native) and moles (translated to Claude) succeed, then one provider 429.
    Returns their request ids by kind: native, translated, limited."""
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    ids = {}
    try:
        r = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "tell me about owls"}])
        ids["native"] = r.headers["x-iron-request-id"]
        r = await client.chat.completions.with_raw_response.create(
            model="claude-3-5-haiku-latest", max_tokens=50,
            messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "and moles"}])
        ids["translated"] = r.headers["x-iron-request-id"]
        sim.faults.push(status=429)
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        ids["limited"] = info.value.response.headers["x-iron-request-id"]
    finally:
        await client.close()
    return ids

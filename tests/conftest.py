"""Shared fixtures: the provider simulator and engines wired to it, all on real loopback ports."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from iron_tui.config import Settings
from iron_tui.core.clock import SequentialIds
from iron_tui.core.engine import Engine
from iron_tui.sim import ProviderSim, SimSettings

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

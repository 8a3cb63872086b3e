"""Server mode end to end: keys and the budget lease from the (simulated) Iron Cage server, analytics
delivered to it, all through the real proxy with the official OpenAI SDK."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from iron_tui.config import Settings
from iron_tui.core.clock import FixedClock, SequentialIds
from iron_tui.core.engine import Engine
from iron_tui.sim import ProviderSim
from iron_tui.sim.control_server import ControlSim

IC = "ic_test_token"


@pytest.fixture
async def ctl(sim: ProviderSim) -> AsyncIterator[ControlSim]:
    c = ControlSim()
    c.add_agent(IC, agent_id="agent_7", provider="openai", provider_key="sk-sim-openai", base_url=sim.url,
                budget_micros=50_000_000)
    await c.start()
    try:
        yield c
    finally:
        await c.stop()


async def server_engine(ctl: ControlSim, tmp_path: Path, **kw: object) -> Engine:
    clock = kw.pop("clock", None)
    settings = Settings(port=0, token=kw.pop("token", IC), server_url=ctl.url, data_dir=tmp_path,
                        sync_interval=0.05, flush_timeout=2.0, **kw)  # type: ignore[arg-type]
    engine = Engine(settings, clock=clock, ids=SequentialIds())  # type: ignore[arg-type]
    await engine.start()
    return engine


async def wait_for(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.02)


async def test_server_mode_end_to_end(ctl: ControlSim, sim: ProviderSim, tmp_path: Path) -> None:
    engine = await server_engine(ctl, tmp_path)
    try:
        assert engine.mode == "server"
        lease = next(iter(ctl.leases.values()))
        assert engine.ledger.limit == lease.granted == 10_000_000, "the grant becomes the limit"
        client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=IC, max_retries=0)
        for i in range(3):
            r = await client.chat.completions.create(model="gpt-4o-mini",
                                                     messages=[{"role": "user", "content": f"hi {i}"}])
            assert r.choices[0].message.content
        assert sim.requests[-1].headers["authorization"] == "Bearer sk-sim-openai"
        await wait_for(lambda: len(ctl.events) == 3)
        ev = ctl.events[ctl.event_order[0]]
        assert ev["event_type"] == "llm_request_completed" and ev["ic_token"] == IC
        assert ev["provider"] == "openai" and ev["input_tokens"] > 0 and ev["cost_micros"] > 0
        assert "agent_id" not in ev or ev["agent_id"] is not None, "absent fields are omitted, not null"
        await wait_for(lambda: len(lease.reports) == 3)
        spent = engine.ledger.spent
    finally:
        await engine.stop()
    assert lease.state == "returned" and lease.spent == spent, "return at stop reports the true spend"


async def test_key_cached_with_ttl_and_refetched(ctl: ControlSim, tmp_path: Path) -> None:
    clock = FixedClock()
    engine = await server_engine(ctl, tmp_path, cache_ttl_seconds=60, clock=clock)
    try:
        client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=IC, max_retries=0)
        fetches = ctl.key_fetches
        await asyncio.gather(*(client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]) for _ in range(10)))
        assert ctl.key_fetches == fetches, "cached key reused"
        clock.advance(61)
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        assert ctl.key_fetches == fetches + 1, "refetched after the TTL"
    finally:
        await engine.stop()


async def test_rotated_key_refetched_once_on_provider_401(ctl: ControlSim, sim: ProviderSim,
                                                          tmp_path: Path) -> None:
    engine = await server_engine(ctl, tmp_path)
    try:
        client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=IC, max_retries=0)
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        # The server rotates the key; the provider no longer accepts the old one.
        ctl.agents[IC].provider_key = "sk-sim-rotated"
        sim.settings.openai_keys = {"sk-sim-rotated"}
        r = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        assert r.choices[0].message.content
        assert sim.requests[-1].headers["authorization"] == "Bearer sk-sim-rotated"
    finally:
        await engine.stop()


async def test_wrong_token_is_a_clear_error_and_recorded(ctl: ControlSim, tmp_path: Path) -> None:
    engine = await server_engine(ctl, tmp_path, token="ic_wrong", budget=1.0)
    try:
        client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key="ic_wrong", max_retries=0)
        with pytest.raises(openai.APIStatusError) as e:
            await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        assert e.value.status_code == 502
        assert "Invalid IC Token" in str(e.value)
        rec = engine.history.recent(1)[0]
        assert rec.state == "error" and rec.status == 502
    finally:
        await engine.stop()


async def test_claude_call_for_an_openai_agent_is_400(ctl: ControlSim, tmp_path: Path) -> None:
    engine = await server_engine(ctl, tmp_path)
    try:
        client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=IC, max_retries=0)
        with pytest.raises(openai.BadRequestError) as e:
            await client.chat.completions.create(model="claude-sonnet-4-6",
                                                 messages=[{"role": "user", "content": "x"}])
        assert "openai" in str(e.value).lower()
    finally:
        await engine.stop()


async def test_proxy_made_failures_become_failed_events(ctl: ControlSim, sim: ProviderSim, tmp_path: Path) -> None:
    engine = await server_engine(ctl, tmp_path, budget=0.000001)
    try:
        client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=IC, max_retries=0)
        with pytest.raises(openai.APIStatusError) as e:
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        assert e.value.status_code == 402
        engine.set_budget(None)
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="gpt-4o",
                                                 messages=[{"role": "user", "content": "[[sim:error=429]]"}])
        await wait_for(lambda: len(ctl.events) == 2)
        evs = [ctl.events[i] for i in ctl.event_order]
        assert [e["event_type"] for e in evs] == ["llm_request_failed"] * 2
        assert evs[0]["error_code"] == "budget_exceeded" or evs[0]["error_code"] == "insufficient_budget"
        assert evs[1]["error_code"] == "429"
    finally:
        await engine.stop()


async def test_outage_then_recovery_delivers_every_event_once(ctl: ControlSim, tmp_path: Path) -> None:
    engine = await server_engine(ctl, tmp_path)
    try:
        client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=IC, max_retries=0)
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        await ctl.down()
        await asyncio.gather(*(client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"x{i}"}]) for i in range(30)))
        await wait_for(lambda: engine.analytics is not None and engine.analytics.status.state in ("retrying", "offline"))
        await ctl.up()
        assert engine.analytics is not None
        engine.analytics.kick()
        await wait_for(lambda: len(ctl.events) == 31, timeout=15)
        assert ctl.duplicates == 0
    finally:
        await engine.stop()


async def test_agents_never_get_the_ic_token(ctl: ControlSim, tmp_path: Path) -> None:
    engine = await server_engine(ctl, tmp_path)
    try:
        env = engine.agent.child_env("agent_x")
        assert IC not in env["OPENAI_API_KEY"] and IC not in env["ANTHROPIC_API_KEY"]
        assert "IC_SERVER" not in env and "IC_TOKEN" not in env
        # ... yet the agent's token works against the proxy and is attributed to it.
        client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=env["OPENAI_API_KEY"],
                                    max_retries=0)
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        assert engine.history.recent(1)[0].agent_id == "agent_x"
    finally:
        await engine.stop()


async def test_lease_return_reports_this_leases_spend_not_the_period_total(ctl: ControlSim,
                                                                           tmp_path: Path) -> None:
    costs = []
    for _ in range(2):  # two runs on one data dir with a daily budget period
        engine = await server_engine(ctl, tmp_path, budget_period="day")
        try:
            client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=IC, max_retries=0)
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
            costs.append(engine.history.recent(1)[0].cost_micros)
        finally:
            await engine.stop()
    returned = [lease.spent for lease in ctl.leases.values()]
    assert returned == costs

"""The engine's own /ws feed: real proxy calls show up as schema-valid messages."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import jsonschema
import openai

from iron_tui.core.engine import Engine
from iron_tui.core.feed import load_feed_schema
from tests.conftest import EngineFactory

# Built once: jsonschema.validate() re-checks the schema itself on every call.
VALIDATOR = jsonschema.Draft202012Validator(load_feed_schema())


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    data = json.loads(msg.data)
    VALIDATOR.validate(data)
    return data


async def collect_until(ws: aiohttp.ClientWebSocketResponse, pred, limit: int = 50) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(limit):
        m = await recv(ws)
        out.append(m)
        if pred(m):
            return out
    raise AssertionError(f"condition not met in {limit} messages: {[m['type'] for m in out]}")


async def test_feed_shows_proxy_traffic_and_alerts(make_engine: EngineFactory) -> None:
    engine: Engine = await make_engine(budget=0.001)
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(engine.feed_url)
        await ws.send_json({"type": "AUTH", "token": engine.token})
        snap = await recv(ws)
        assert snap["type"] == "SNAPSHOT"
        assert snap["state"]["proxy_url"] == engine.openai_base_url
        assert snap["state"]["budget"]["limit_usd"] == 0.001
        client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
        await client.chat.completions.create(model="gpt-4o-mini", max_tokens=100,
                                             messages=[{"role": "user", "content": "[[sim:words=100]] hi"}])
        msgs = await collect_until(ws, lambda m: m["type"] == "AGENT_EVENT" and m["event"] == "llm_call")
        types = [m["type"] for m in msgs]
        assert "REQUEST_STARTED" in types and "REQUEST_FINISHED" in types
        fin = next(m for m in msgs if m["type"] == "REQUEST_FINISHED")["request"]
        assert fin["model"] == "gpt-4o-mini" and fin["status"] == 200 and fin["cost_usd"] > 0
        assert "STATE_UPDATE" in types
        # A late joiner's snapshot carries the per-model and per-provider totals.
        ws2 = await s.ws_connect(engine.feed_url, headers={"authorization": f"Bearer {engine.token}"})
        totals = (await recv(ws2))["state"]["totals"]
        assert totals["by_model"][0]["model"] == "gpt-4o-mini" and totals["by_model"][0]["calls"] == 1
        assert totals["by_provider"][0]["cost_usd"] == fin["cost_usd"]
        await ws2.close()
        # Spend until an alert crosses.
        for _ in range(20):
            try:
                await client.chat.completions.create(model="gpt-4o-mini", max_tokens=100,
                                                     messages=[{"role": "user", "content": "[[sim:words=100]] hi"}])
            except openai.APIStatusError:
                break
        alert = await collect_until(ws, lambda m: m["type"] == "COST_ALERT", limit=400)
        assert alert[-1]["severity"] in ("warning", "critical", "exhausted")
        assert alert[-1]["data"]["budget_limit"] == 0.001
        await ws.close()


async def test_twenty_clients_and_bearer_auth(engine: Engine) -> None:
    async with aiohttp.ClientSession() as s:
        clients = [await s.ws_connect(engine.feed_url, headers={"authorization": f"Bearer {engine.token}"})
                   for _ in range(20)]
        for ws in clients:
            assert (await recv(ws))["type"] == "SNAPSHOT"
        client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        got = await asyncio.gather(*(collect_until(ws, lambda m: m["type"] == "REQUEST_FINISHED")
                                     for ws in clients))
        ids = {g[-1]["request"]["id"] for g in got}
        assert len(ids) == 1
        assert engine.feed.client_count == 20
        bad = await s.ws_connect(engine.feed_url, headers={"authorization": "Bearer wrong"})
        msg = await bad.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert bad.close_code == 4401
        for ws in clients:
            await ws.close()

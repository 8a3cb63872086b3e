"""The feed answers the web page's questions (detail, filter, totals) and restores the alert state:
a real engine, real calls through the proxy, a real WebSocket client; every reply checked against
feed_schema.json."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
from jsonschema import Draft202012Validator

from iron_tui.core.feed import load_feed_schema
from iron_tui.sim import ProviderSim
from tests.conftest import EngineFactory, calls_with_429

VALIDATOR = Draft202012Validator(load_feed_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def valid(message: dict[str, Any]) -> dict[str, Any]:
    errors = list(VALIDATOR.iter_errors(message))
    assert not errors, f"{message.get('type')} does not match feed_schema.json: {errors[0].message}"
    return message


async def ask(ws: aiohttp.ClientWebSocketResponse, question: dict[str, Any], answer_type: str) -> dict[str, Any]:
    await ws.send_json(question)
    while True:
        msg = json.loads((await ws.receive(timeout=20)).data)
        if msg["type"] == answer_type:
            return valid(msg)


async def test_detail_query_and_stats_over_the_feed(make_engine: EngineFactory, sim: ProviderSim) -> None:
    engine = await make_engine(retries={"attempts": 1})
    ids = await calls_with_429(engine, sim)
    async with aiohttp.ClientSession() as session, session.ws_connect(
            engine.feed_url, headers={"Authorization": f"Bearer {engine.token}"}) as ws:
        snapshot = valid(json.loads((await ws.receive(timeout=20)).data))
        assert snapshot["type"] == "SNAPSHOT" and snapshot["state"]["alert"] is None  # no budget, no alert

        native = await ask(ws, {"type": "GET_REQUEST", "id": ids["native"]}, "REQUEST_DETAIL")
        assert native["found"] and native["request"]["id"] == ids["native"]
        conv = native["conversation"]
        assert conv["request"]["turns"][0]["blocks"][0]["text"] == "tell me about owls"
        assert conv["response"]["turns"][0]["blocks"][0]["text"].startswith("Simulated reply to: tell me about owls")
        assert conv["upstream_request"] is None and native["side_by_side"] == []
        lines = {line["label"]: line for line in native["cost"]["lines"]}
        assert lines["input"]["tokens"] > 0 and native["cost"]["total_usd"] == native["request"]["cost_usd"]

        translated = await ask(ws, {"type": "GET_REQUEST", "id": ids["translated"]}, "REQUEST_DETAIL")
        assert translated["conversation"]["upstream_request"]["dialect"] == "anthropic.messages"
        rows = translated["side_by_side"]
        assert any(r["left"] == "── system" and r["right"] == "── system" for r in rows)
        assert translated["bodies"]["upstream_request"] and '"system"' in translated["bodies"]["upstream_request"]

        limited = await ask(ws, {"type": "GET_REQUEST", "id": ids["limited"]}, "REQUEST_DETAIL")
        assert limited["error"]["origin"] == "provider" and "429" in limited["error"]["headline"]
        gone = await ask(ws, {"type": "GET_REQUEST", "id": "req_nope"}, "REQUEST_DETAIL")
        assert gone == {**gone, "found": False, "id": "req_nope"}

        hits = await ask(ws, {"type": "QUERY", "filter": "owls", "limit": 10}, "QUERY_RESULT")
        assert [r["id"] for r in hits["requests"]] == [ids["native"]]  # free text found it in the body
        assert hits["matched"] == 1 and hits["total"] == 3 and hits["error"] is None
        errors = await ask(ws, {"type": "QUERY", "filter": "is:error or is:translated"}, "QUERY_RESULT")
        assert {r["id"] for r in errors["requests"]} == {ids["limited"], ids["translated"]}
        broken = await ask(ws, {"type": "QUERY", "filter": "(is:error"}, "QUERY_RESULT")
        assert broken["error"] == {"message": "missing ')'", "position": 0} and broken["requests"] == []

        stats = await ask(ws, {"type": "GET_STATS", "by": "provider"}, "STATS")
        by = {g["key"]: g for g in stats["groups"]}
        assert (by["openai"]["calls"], by["openai"]["errors"]) == (2, 1)
        assert by["anthropic"]["latency_p50"] is not None and stats["calls"] == 3 and stats["errors"] == 1
        assert sum(stats["series"]["requests"]) == 3
        assert stats["forecast"]["remaining_usd"] is None  # no limit
        # Provider health as of now (PROVIDER_HEALTH is only sent when a state changes).
        health = {p["provider"]: p for p in stats["providers"]}
        assert health["openai"]["state"] == "degraded" and health["openai"]["error_rate"] == 0.5  # the 429
        assert health["anthropic"]["state"] == "ok" and health["anthropic"]["latency_ms"] is not None
        # A bug-free question of an unknown kind is ignored; the connection stays usable.
        await ws.send_json({"type": "WHATEVER"})
        pong = await ask(ws, {"type": "PING"}, "PONG")
        assert pong["type"] == "PONG"


async def test_a_late_client_gets_the_alert_in_force(make_engine: EngineFactory) -> None:
    engine = await make_engine(budget=1.0)
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "owls"}])
    await client.close()
    engine.set_budget(engine.ledger.spent / 1_000_000 / 0.9)  # now 90 % spent: the warning is in force
    spent, limit = engine.ledger.status()
    assert limit and 0.85 * limit < spent < 0.95 * limit
    async with aiohttp.ClientSession() as session, session.ws_connect(
            engine.feed_url, headers={"Authorization": f"Bearer {engine.token}"}) as ws:
        snapshot = valid(json.loads((await ws.receive(timeout=20)).data))
    alert = snapshot["state"]["alert"]
    assert alert["severity"] == "warning"
    assert alert["percentage"] == round(100 * spent / limit, 1) and alert["budget_limit"] == limit / 1e6

"""The simulated control server speaks the protocol of reference/iron-cage-protocol.md exactly:
tests against it are only worth something if it answers like the real server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from iron_tui.sim.control_server import ControlSim, SimAgent

TOKEN = "ic_sim_token"


@pytest.fixture
async def sim() -> AsyncIterator[ControlSim]:
    async with ControlSim([SimAgent(TOKEN, provider="openai", provider_key="sk-proj-abcdefghijklmnop1234",
                                    budget_micros=25_000_000)]) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


async def post(http: aiohttp.ClientSession, sim: ControlSim, path: str, body: Any,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with http.post(sim.url + path, json=body, headers=headers) as r:
        return r.status, await r.json()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def event(event_id: str = "e1", **over: Any) -> dict[str, Any]:
    base = {"ic_token": TOKEN, "event_id": event_id, "timestamp_ms": 1734500000123,
            "event_type": "llm_request_completed", "model": "gpt-4o-mini", "provider": "openai",
            "input_tokens": 11, "output_tokens": 1, "cost_micros": 1}
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


KEY = "/api/v1/agents/provider-key"
HANDSHAKE = "/api/v1/budget/handshake"
REPORT = "/api/v1/budget/report"
RETURN = "/api/v1/budget/return"
EVENTS = "/api/v1/analytics/events"


async def test_provider_key_success_and_every_error_code(sim: ControlSim, http: aiohttp.ClientSession) -> None:
    assert await post(http, sim, KEY, {"ic_token": TOKEN}) == (
        200, {"provider_key": "sk-proj-abcdefghijklmnop1234", "provider": "openai"})
    sim.add_agent("with_url", provider="anthropic", provider_key="sk-ant-x", base_url="https://a.example")
    assert (await post(http, sim, KEY, {"ic_token": "with_url"}))[1]["base_url"] == "https://a.example"
    assert sim.key_fetches == 2

    assert await post(http, sim, KEY, {"ic_token": ""}) == (400, {
        "error": "IC Token is required and must be at most 2000 characters", "code": "INVALID_TOKEN"})
    assert (await post(http, sim, KEY, {"ic_token": "x" * 2001}))[0] == 400
    assert await post(http, sim, KEY, {"ic_token": "nope"}) == (
        401, {"error": "Invalid IC Token", "code": "UNAUTHORIZED"})
    sim.add_agent("gone", deleted=True)
    assert await post(http, sim, KEY, {"ic_token": "gone"}) == (
        404, {"error": "Agent not found", "code": "INVALID_TOKEN"})
    sim.add_agent("nokey", provider=None)
    sim.add_agent("disabled", key_disabled=True)
    for tok in ("nokey", "disabled"):
        status, body = await post(http, sim, KEY, {"ic_token": tok})
        assert (status, body["code"]) == (403, "NO_PROVIDER_ASSIGNED")
    sim.add_agent("missing", provider_missing=True)
    status, body = await post(http, sim, KEY, {"ic_token": "missing"})
    assert (status, body["code"]) == (404, "PROVIDER_NOT_FOUND")
    sim.crypto_unavailable = True
    status, body = await post(http, sim, KEY, {"ic_token": TOKEN})
    assert (status, body["code"]) == (503, "CRYPTO_UNAVAILABLE")
    sim.crypto_unavailable = False
    sim.fail_next(1, 500, endpoint="provider_key")
    status, body = await post(http, sim, KEY, {"ic_token": TOKEN})
    assert (status, body["code"]) == (500, "INTERNAL_ERROR")
    assert sim.key_fetches == 2  # only successful fetches count
    assert sim.requests["provider_key"] == 11


async def test_handshake_grants_default_capped_and_refuses_when_exhausted(
        sim: ControlSim, http: aiohttp.ClientSession) -> None:
    status, body = await post(http, sim, HANDSHAKE, {"ic_token": TOKEN, "provider": "openai"}, bearer())
    assert status == 200
    assert body["lease_id"].startswith("lease_") and body["ip_token"]
    assert (body["budget_granted"], body["budget_remaining"], body["expires_at"]) == (10_000_000, 15_000_000, None)
    _, body = await post(http, sim, HANDSHAKE, {"ic_token": TOKEN, "provider": "openai",
                                                "requested_budget": 2_000_000}, bearer())
    assert (body["budget_granted"], body["budget_remaining"]) == (2_000_000, 13_000_000)
    _, body = await post(http, sim, HANDSHAKE, {"ic_token": TOKEN, "provider": "openai",
                                                "requested_budget": 100_000_000}, bearer())
    assert (body["budget_granted"], body["budget_remaining"]) == (13_000_000, 0)  # capped by what is left
    status, body = await post(http, sim, HANDSHAKE, {"ic_token": TOKEN, "provider": "openai"}, bearer())
    assert status == 403 and body["error"] == "Budget limit exceeded"


@pytest.mark.parametrize(("body", "headers", "status"), [
    ({"ic_token": TOKEN, "provider": "openai"}, None, 401),  # no bearer
    ({"ic_token": TOKEN, "provider": "openai"}, {"Authorization": "Bearer wrong"}, 401),
    ({"ic_token": TOKEN, "provider": "gemini"}, bearer(), 400),
    ({"ic_token": TOKEN, "provider": "anthropic"}, bearer(), 404),  # agent has no anthropic key
    ({"ic_token": TOKEN, "provider": "openai", "requested_budget": 0}, bearer(), 400),
    ({"ic_token": TOKEN, "provider": "openai", "requested_budget": 100_000_001}, bearer(), 400),
])
async def test_handshake_errors(sim: ControlSim, http: aiohttp.ClientSession, body: dict[str, Any],
                                headers: dict[str, str] | None, status: int) -> None:
    got, answer = await post(http, sim, HANDSHAKE, body, headers)
    assert got == status and isinstance(answer["error"], str)
    assert sim.leases == {}


async def test_report_and_return_accounting(sim: ControlSim, http: aiohttp.ClientSession) -> None:
    _, lease = await post(http, sim, HANDSHAKE, {"ic_token": TOKEN, "provider": "openai",
                                                 "requested_budget": 1_000_000}, bearer())
    lid = lease["lease_id"]
    rep = {"lease_id": lid, "request_id": "r1", "tokens": 12, "cost_microdollars": 300_000,
           "model": "gpt-4o", "provider": "openai"}
    assert await post(http, sim, REPORT, rep) == (200, {"success": True, "budget_remaining": 700_000})
    assert await post(http, sim, REPORT, {**rep, "cost_microdollars": 800_000}) == (
        403, {"error": "Insufficient lease budget"})
    assert (await post(http, sim, REPORT, {**rep, "tokens": 0}))[0] == 400
    assert await post(http, sim, REPORT, {**rep, "lease_id": "lease_x"}) == (404, {"error": "Lease not found"})

    assert await post(http, sim, RETURN, {"lease_id": lid, "spent_microdollars": 350_000}) == (
        200, {"success": True, "returned": 650_000})
    assert sim.leases[lid].spent == 350_000 and sim.leases[lid].state == "returned"
    assert sim.agents[TOKEN].remaining_micros == 25_000_000 - 350_000
    assert await post(http, sim, RETURN, {"lease_id": lid, "spent_microdollars": 1}) == (
        400, {"error": "Lease is not active"})
    assert await post(http, sim, RETURN, {"lease_id": "lease_nope", "spent_microdollars": 1}) == (
        404, {"error": "Lease not found"})
    assert await post(http, sim, REPORT, rep) == (403, {"error": "Lease has been revoked"})

    _, lease2 = await post(http, sim, HANDSHAKE, {"ic_token": TOKEN, "provider": "openai"}, bearer())
    sim.expire_lease(lease2["lease_id"])
    assert await post(http, sim, REPORT, {**rep, "lease_id": lease2["lease_id"]}) == (403, {"error": "Lease expired"})
    # Overspent lease: nothing comes back, never a negative amount.
    _, lease3 = await post(http, sim, HANDSHAKE, {"ic_token": TOKEN, "provider": "openai",
                                                  "requested_budget": 100}, bearer())
    assert (await post(http, sim, RETURN, {"lease_id": lease3["lease_id"], "spent_microdollars": 500}))[1][
        "returned"] == 0


async def test_report_endpoint_can_be_absent() -> None:
    async with ControlSim([SimAgent(TOKEN)], report_enabled=False) as sim, aiohttp.ClientSession() as http:
        async with http.post(sim.url + REPORT, json={}) as r:
            assert r.status == 404


async def test_events_accept_dedup_and_reject(sim: ControlSim, http: aiohttp.ClientSession) -> None:
    assert await post(http, sim, EVENTS, event("e1")) == (202, {"event_id": "e1", "status": "accepted"})
    assert await post(http, sim, EVENTS, event("e1")) == (200, {"event_id": "e1", "status": "duplicate"})
    failed = event("e2", event_type="llm_request_failed", input_tokens=..., output_tokens=..., cost_micros=...,
                   error_code="429", error_message="slow down", provider="unknown")
    assert (await post(http, sim, EVENTS, failed))[0] == 202
    assert sim.event_order == ["e1", "e2"] and sim.duplicates == 1
    assert sim.events["e2"]["error_code"] == "429"

    assert await post(http, sim, EVENTS, event("e3", ic_token="bad")) == (
        401, {"error": "UNAUTHORIZED", "message": "Invalid IC Token"})
    for bad in (event("e4", event_type="llm_call"), event("e5", provider="gemini"),
                event("e6", input_tokens=...), event("e7", agent_id=None)):
        status, body = await post(http, sim, EVENTS, bad)
        assert status == 400 and body["error"] == "VALIDATION_ERROR" and body["message"]
    sim.reject_event_ids.add("e8")
    assert (await post(http, sim, EVENTS, event("e8")))[0] == 400
    sim.reject_event = lambda ev: (422, {"error": "NOPE", "message": "predicate"}) if ev["model"] == "m" else None
    assert (await post(http, sim, EVENTS, event("e9", model="m")))[0] == 422
    sim.fail_next(2, 500)
    assert await post(http, sim, EVENTS, event("e10")) == (
        500, {"error": "DATABASE_ERROR", "message": "simulated database failure"})
    assert (await post(http, sim, EVENTS, event("e10")))[0] == 500
    assert (await post(http, sim, EVENTS, event("e10")))[0] == 202
    assert sim.event_order == ["e1", "e2", "e10"]
    assert sim.requests["events"] == 13


async def test_down_refuses_connections_and_up_rebinds_the_same_port(
        sim: ControlSim, http: aiohttp.ClientSession) -> None:
    port = sim.port
    assert (await post(http, sim, EVENTS, event("a")))[0] == 202  # leaves a keep-alive connection open
    await sim.down()
    # The pooled keep-alive connection was closed too (a client may first see that), then new
    # connections are refused.
    with pytest.raises(aiohttp.ClientOSError):
        await post(http, sim, EVENTS, event("b"))
    with pytest.raises(aiohttp.ClientConnectorError):
        await post(http, sim, EVENTS, event("b"))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    await sim.up()
    assert sim.port == port
    assert (await post(http, sim, EVENTS, event("b")))[0] == 202
    assert sim.event_order == ["a", "b"]  # state survives the outage


async def test_slow_ms_delays_answers(sim: ControlSim, http: aiohttp.ClientSession) -> None:
    sim.slow_ms = 150
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await post(http, sim, EVENTS, event("s"))
    assert loop.time() - t0 >= 0.14

"""ControlClient against the simulated control server on a real loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from iron_tui.core.clock import FixedClock
from iron_tui.core.control import ControlClient, ControlError, Lease, ProviderKey
from iron_tui.sim.control_server import ControlSim, SimAgent

TOKEN = "ic_test_token"
OPENAI_KEY = "sk-proj-SECRETSECRETSECRET9z8y"


@pytest.fixture
async def sim() -> AsyncIterator[ControlSim]:
    async with ControlSim([SimAgent(TOKEN, agent_id="agent_7", provider="openai", provider_key=OPENAI_KEY,
                                    base_url="https://openai.example", budget_micros=25_000_000)]) as s:
        yield s


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def client(sim: ControlSim, session: aiohttp.ClientSession, clock: FixedClock, token: str = TOKEN,
           **kw: float) -> ControlClient:
    return ControlClient(sim.url + "/", token, session=session, clock=clock, **kw)  # trailing slash normalised


async def test_provider_key_fetch_and_ttl_cache(sim: ControlSim, session: aiohttp.ClientSession,
                                                clock: FixedClock) -> None:
    c = client(sim, session, clock, cache_ttl_seconds=300)
    pk = await c.provider_key()
    assert (pk.provider, pk.key, pk.base_url) == ("openai", OPENAI_KEY, "https://openai.example")
    assert await c.provider_key("openai") is pk
    assert c.cached_providers() == {"openai"} and c.ic_token == TOKEN
    clock.advance(299)
    assert await c.provider_key() is pk and sim.key_fetches == 1
    clock.advance(2)  # past the TTL
    pk2 = await c.provider_key("openai")
    assert sim.key_fetches == 2 and pk2.fetched_at == clock.monotonic()
    await c.provider_key(force_refresh=True)
    assert sim.key_fetches == 3


async def test_key_never_shown_in_repr() -> None:
    pk = ProviderKey(provider="openai", key=OPENAI_KEY, base_url=None, fetched_at=1.0)
    assert OPENAI_KEY not in repr(pk) and OPENAI_KEY not in str(pk) and OPENAI_KEY not in f"{pk}"
    assert "sk-...9z8y" in repr(pk)
    lease = Lease("lease_1", 10, 5, "openai", ip_token="ip_secret")
    assert "ip_secret" not in repr(lease)


async def test_concurrent_callers_share_one_fetch(sim: ControlSim, session: aiohttp.ClientSession,
                                                  clock: FixedClock) -> None:
    sim.slow_ms = 50
    c = client(sim, session, clock)
    keys = await asyncio.gather(*(c.provider_key("openai") for _ in range(20)))
    assert sim.key_fetches == 1 and sim.requests["provider_key"] == 1
    assert all(k is keys[0] for k in keys)


async def test_cancelled_caller_does_not_cancel_the_shared_fetch(
        sim: ControlSim, session: aiohttp.ClientSession, clock: FixedClock) -> None:
    sim.slow_ms = 100
    c = client(sim, session, clock)
    first = asyncio.create_task(c.provider_key())
    second = asyncio.create_task(c.provider_key())
    await asyncio.sleep(0.02)
    first.cancel()
    assert (await second).key == OPENAI_KEY
    assert sim.key_fetches == 1


async def test_invalidate_refetches(sim: ControlSim, session: aiohttp.ClientSession, clock: FixedClock) -> None:
    c = client(sim, session, clock)
    await c.provider_key("openai")
    sim.agents[TOKEN].provider_key = "sk-proj-ROTATEDROTATEDROTATED"
    assert (await c.provider_key("openai")).key == OPENAI_KEY  # still cached
    c.invalidate("openai")
    assert c.cached_providers() == {"openai"}  # still the agent's provider, for routing
    assert (await c.provider_key("openai")).key == "sk-proj-ROTATEDROTATEDROTATED"
    assert sim.key_fetches == 2


async def test_wrong_token_is_a_clear_401(sim: ControlSim, session: aiohttp.ClientSession,
                                          clock: FixedClock) -> None:
    c = client(sim, session, clock, token="not-a-token")
    with pytest.raises(ControlError) as err:
        await c.provider_key()
    assert (err.value.status, err.value.code, err.value.message) == (401, "UNAUTHORIZED", "Invalid IC Token")
    assert "401 UNAUTHORIZED: Invalid IC Token" in str(err.value)
    assert "/api/v1/agents/provider-key" in str(err.value)


async def test_key_fetch_errors_are_not_cached_and_map_codes(
        sim: ControlSim, session: aiohttp.ClientSession, clock: FixedClock) -> None:
    c = client(sim, session, clock)
    sim.fail_next(1, 500, endpoint="provider_key")
    with pytest.raises(ControlError) as err:
        await c.provider_key()
    assert (err.value.status, err.value.code) == (500, "INTERNAL_ERROR")
    assert (await c.provider_key()).key == OPENAI_KEY  # the failure was not cached

    sim.add_agent("nokey", provider=None)
    with pytest.raises(ControlError) as err:
        await client(sim, session, clock, token="nokey").provider_key()
    assert (err.value.status, err.value.code) == (403, "NO_PROVIDER_ASSIGNED")


async def test_key_for_the_wrong_provider_is_refused(sim: ControlSim, session: aiohttp.ClientSession,
                                                     clock: FixedClock) -> None:
    c = client(sim, session, clock)
    with pytest.raises(ControlError) as err:
        await c.provider_key("anthropic")
    assert err.value.code == "PROVIDER_MISMATCH" and "anthropic" in str(err.value)
    assert OPENAI_KEY not in str(err.value) and not err.value.retryable
    assert (await c.provider_key("openai")).key == OPENAI_KEY  # the answer was cached under its provider
    for _ in range(5):  # every Claude request must not cost a round trip to learn the same answer
        with pytest.raises(ControlError):
            await c.provider_key("anthropic")
    assert sim.key_fetches == 1


async def test_unreachable_server_is_a_value_with_no_status(session: aiohttp.ClientSession,
                                                            clock: FixedClock) -> None:
    sim = ControlSim([SimAgent(TOKEN)])
    await sim.start()
    await sim.stop()
    c = client(sim, session, clock)
    with pytest.raises(ControlError) as err:
        await c.provider_key()
    assert err.value.status is None and err.value.code == "UNREACHABLE" and err.value.retryable


async def test_handshake_grant_and_requested_budget(sim: ControlSim, session: aiohttp.ClientSession,
                                                    clock: FixedClock) -> None:
    c = client(sim, session, clock)
    lease = await c.handshake("openai")
    assert lease.lease_id.startswith("lease_") and lease.ip_token
    assert (lease.granted_micros, lease.remaining_micros, lease.provider) == (10_000_000, 15_000_000, "openai")
    small = await c.handshake("openai", 1_500_000)
    assert small.granted_micros == 1_500_000
    assert sim.leases[small.lease_id].provider == "openai"


async def test_handshake_asks_for_the_requested_provider(session: aiohttp.ClientSession,
                                                         clock: FixedClock) -> None:
    # The original always asked for "openai" (defect 8).
    async with ControlSim([SimAgent("ant", provider="anthropic", provider_key="sk-ant-api03-xyz")]) as sim:
        lease = await ControlClient(sim.url, "ant", session=session, clock=clock).handshake("anthropic")
        assert sim.leases[lease.lease_id].provider == "anthropic"


async def test_handshake_retries_5xx_then_succeeds(sim: ControlSim, session: aiohttp.ClientSession,
                                                   clock: FixedClock) -> None:
    sim.fail_next(2, 500, endpoint="handshake")
    lease = await client(sim, session, clock).handshake("openai", attempts=3, backoff_s=0.01)
    assert lease.granted_micros == 10_000_000
    assert sim.requests["handshake"] == 3


async def test_handshake_gives_up_after_attempts(sim: ControlSim, session: aiohttp.ClientSession,
                                                 clock: FixedClock) -> None:
    sim.fail_next(5, 503, endpoint="handshake")
    with pytest.raises(ControlError) as err:
        await client(sim, session, clock).handshake("openai", attempts=3, backoff_s=0.01)
    assert err.value.status == 503 and sim.requests["handshake"] == 3


async def test_handshake_does_not_retry_4xx(sim: ControlSim, session: aiohttp.ClientSession,
                                            clock: FixedClock) -> None:
    with pytest.raises(ControlError) as err:
        await client(sim, session, clock, token="bad").handshake("openai", backoff_s=0.01)
    assert err.value.status == 401 and sim.requests["handshake"] == 1


async def test_handshake_timeout_is_final_not_retried(sim: ControlSim, session: aiohttp.ClientSession,
                                                      clock: FixedClock) -> None:
    # A timed-out handshake may have created a lease on the server: retrying would lock more budget
    # under lease ids we never learn.
    sim.slow_ms = 1000
    with pytest.raises(ControlError) as err:
        await client(sim, session, clock, timeout_s=0.1).handshake("openai", attempts=3, backoff_s=0.01)
    assert err.value.code == "TIMEOUT" and err.value.status is None
    assert sim.requests["handshake"] == 1  # one attempt: never retried


async def test_handshake_403_when_budget_exhausted(sim: ControlSim, session: aiohttp.ClientSession,
                                                   clock: FixedClock) -> None:
    c = client(sim, session, clock)
    for _ in range(3):  # 10 + 10 + 5 of the agent's 25
        await c.handshake("openai")
    with pytest.raises(ControlError) as err:
        await c.handshake("openai", backoff_s=0.01)
    assert (err.value.status, err.value.message) == (403, "Budget limit exceeded")
    assert sim.requests["handshake"] == 4


async def test_report_returns_lease_remaining(sim: ControlSim, session: aiohttp.ClientSession,
                                              clock: FixedClock) -> None:
    c = client(sim, session, clock)
    lease = await c.handshake("openai", 1_000_000)
    assert await c.report(lease.lease_id, "req_1", 30, 250_000, "gpt-4o", "openai") == 750_000
    assert sim.leases[lease.lease_id].reports[0] == {
        "lease_id": lease.lease_id, "request_id": "req_1", "tokens": 30, "cost_microdollars": 250_000,
        "model": "gpt-4o", "provider": "openai"}
    with pytest.raises(ControlError) as err:
        await c.report(lease.lease_id, "req_2", 30, 900_000, "gpt-4o", "openai")
    assert (err.value.status, err.value.message) == (403, "Insufficient lease budget")


async def test_report_tolerates_a_server_without_it(session: aiohttp.ClientSession, clock: FixedClock) -> None:
    async with ControlSim([SimAgent(TOKEN)], report_enabled=False) as sim:
        c = client(sim, session, clock)
        lease = await c.handshake("openai")
        assert await c.report(lease.lease_id, "req_1", 1, 1, "gpt-4o", "openai") is None


async def test_return_reports_true_spend(sim: ControlSim, session: aiohttp.ClientSession,
                                         clock: FixedClock) -> None:
    c = client(sim, session, clock)
    lease = await c.handshake("openai", 2_000_000)
    assert await c.return_lease(lease.lease_id, 123_456) == 2_000_000 - 123_456
    assert sim.leases[lease.lease_id].spent == 123_456
    assert sim.agents[TOKEN].remaining_micros == 25_000_000 - 123_456
    with pytest.raises(ControlError) as err:
        await c.return_lease(lease.lease_id, 0)
    assert (err.value.status, err.value.message) == (400, "Lease is not active")
    with pytest.raises(ControlError) as err:
        await c.return_lease("lease_unknown", 0)
    assert err.value.status == 404


async def test_post_event_returns_raw_status_and_body(sim: ControlSim, session: aiohttp.ClientSession,
                                                      clock: FixedClock) -> None:
    c = client(sim, session, clock)
    ev = {"ic_token": TOKEN, "event_id": "ev-1", "timestamp_ms": 1, "event_type": "llm_request_completed",
          "model": "gpt-4o", "provider": "openai", "input_tokens": 1, "output_tokens": 2, "cost_micros": 3}
    assert await c.post_event(ev) == (202, {"event_id": "ev-1", "status": "accepted"})
    assert await c.post_event(ev) == (200, {"event_id": "ev-1", "status": "duplicate"})
    assert (await c.post_event({**ev, "event_id": "ev-2", "provider": "x"}))[0] == 400

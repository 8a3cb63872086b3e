"""The WebSocket feed over real loopback sockets: auth, snapshot, every message type, heartbeat,
fan-out to many clients, slow-client disconnection, shutdown, and the docs/schema contract.

Every message a test client receives is validated against the shipped feed_schema.json.
Run `python tests/test_feed.py` to print the example blocks for docs/feed.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from jsonschema import Draft202012Validator

from iron_tui.core.bus import EventBus
from iron_tui.core.clock import FixedClock
from iron_tui.core.events import (
    AgentOutput,
    AgentStateChanged,
    CostAlert,
    Event,
    Notice,
    ProviderHealthChanged,
    RequestFinished,
    RequestRecord,
    RequestStarted,
    SpendChanged,
    SyncStatus,
    to_wire,
)
from iron_tui.core.feed import Feed, load_feed_schema
from iron_tui.core.feed_messages import (
    error_message,
    heartbeat_message,
    pong_message,
    snapshot_message,
    snapshot_state,
    sync_wire,
)

TOKEN = "feed-test-token-7f3a"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "feed.md"
VALIDATOR = Draft202012Validator(load_feed_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)

# --- sample data (also the source of the examples in docs/feed.md) ---------------------------------

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def sample_record(**overrides: Any) -> RequestRecord:
    rec = RequestRecord(id="req_000001", started_at=T0, method="POST", path="/v1/chat/completions",
                        api="openai.chat", model="claude-sonnet-4-5", provider="anthropic", stream=True,
                        translated=True, agent_id="agent_001")
    for key, value in overrides.items():
        setattr(rec, key, value)
    return rec


def finished_record(**overrides: Any) -> RequestRecord:
    values: dict[str, Any] = dict(state="ok", status=200, latency_ms=812.4567, ttft_ms=231.0,
                                  input_tokens=1200, output_tokens=350, cache_read_tokens=800,
                                  cost_micros=8_940)
    values.update(overrides)
    return sample_record(**values)


def sample_events() -> list[Event]:
    """One bus event of every kind the feed forwards, in a plausible order."""
    return [
        RequestStarted(T0 + 1, request=sample_record().summary()),
        RequestFinished(T0 + 2, request=finished_record().summary()),
        SpendChanged(T0 + 2, spent_micros=4_108_940, reserved_micros=120_000, limit_micros=5_000_000,
                     agent_id="agent_001"),
        CostAlert(T0 + 2, severity="warning", spent_micros=4_108_940, limit_micros=5_000_000,
                  agent_id="agent_001"),
        SyncStatus(T0 + 3, state="retrying", pending=3, sent=41, rejected=0, last_success=T0 - 5,
                   next_attempt=T0 + 8, last_error="control server answered 503"),
        ProviderHealthChanged(T0 + 3, provider="groq", state="down", data={
            "provider": "groq", "state": "down", "error_rate": 0.6, "latency_ms": 412.5, "calls": 5,
            "failures": 3, "retry_in_s": 30.0, "last_error": "Groq is unreachable at https://api.groq.com/openai/v1"}),
        AgentStateChanged(T0 + 4, agent_id="agent_001", state="running", name="python agent.py", pid=4242),
        AgentOutput(T0 + 5, agent_id="agent_001", stream="stdout", line="step 3/10: summarising", seq=17),
        AgentStateChanged(T0 + 6, agent_id="agent_001", state="exited", name="python agent.py", pid=4242,
                          exit_code=0),
    ]


def sample_state(recent: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return snapshot_state(
        mode="direct", proxy_url="http://127.0.0.1:8478/v1", version="0.1.0",
        spent_micros=4_100_000, limit_micros=5_000_000, reserved_micros=0,
        sync=SyncStatus(T0, state="ok", pending=0, sent=40, last_success=T0 - 5),
        agent=AgentStateChanged(T0, agent_id="agent_001", state="running", name="python agent.py", pid=4242),
        requests=[finished_record(id="req_000000").summary()] if recent is None else recent,
    )


def doc_examples() -> list[dict[str, Any]]:
    """Every server message type, in the order docs/feed.md shows them."""
    out = [snapshot_message(T0, sample_state())]
    for event in sample_events():
        out.extend(to_wire(event))
    out += [heartbeat_message(T0 + 30), pong_message(T0 + 31), error_message(T0 + 32, "invalid JSON")]
    return out


# --- harness --------------------------------------------------------------------------------------


_VALID: set[str] = set()  # validating is ~2 ms; many clients receive identical messages


def check(message: dict[str, Any]) -> dict[str, Any]:
    """Assert that one received message matches feed_schema.json; returns it."""
    key = json.dumps(message, sort_keys=True)
    if key not in _VALID:
        errors = list(VALIDATOR.iter_errors(message))
        assert not errors, f"message does not match feed_schema.json: {message!r}\n{errors[0].message}"
        _VALID.add(key)
    return message


@dataclass
class Harness:
    bus: EventBus
    feed: Feed
    clock: FixedClock
    session: aiohttp.ClientSession
    base: str

    @property
    def ws_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/ws"

    async def connect(self, *, header: bool = True, token: str = TOKEN) -> aiohttp.ClientWebSocketResponse:
        headers = {"Authorization": f"Bearer {token}"} if header else {}
        return await self.session.ws_connect(self.ws_url, headers=headers, autoclose=True)

    async def authed(self) -> aiohttp.ClientWebSocketResponse:
        """Connected, authenticated, with the SNAPSHOT already read."""
        ws = await self.connect()
        first = await recv(ws)
        assert first["type"] == "SNAPSHOT"
        return ws


@asynccontextmanager
async def feed_server(snapshot: Callable[[], dict[str, Any]] | None = None, **kw: Any) -> AsyncIterator[Harness]:
    bus = EventBus()
    clock = FixedClock(T0)
    feed = Feed(bus, token=TOKEN, snapshot=snapshot or sample_state, clock=clock, **kw)
    app = web.Application()
    app.router.add_get("/ws", feed.handle)
    app.router.add_get("/dashboard", feed.handle_dashboard)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await feed.start()
    session = aiohttp.ClientSession()
    try:
        yield Harness(bus, feed, clock, session, f"http://127.0.0.1:{port}")
    finally:
        await session.close()
        await feed.close()
        await runner.cleanup()


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type is WSMsgType.TEXT, f"expected a text message, got {msg.type!r} {msg.data!r} {msg.extra!r}"
    return check(json.loads(msg.data))


async def recv_n(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[dict[str, Any]]:
    return [await recv(ws) for _ in range(n)]


async def expect_close(ws: aiohttp.ClientWebSocketResponse, code: int, timeout: float = 5.0) -> str:
    """Read (and validate) until the server closes; returns the close reason."""
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type is WSMsgType.TEXT:
            check(json.loads(msg.data))
            continue
        assert msg.type is WSMsgType.CLOSE, f"expected close {code}, got {msg.type!r} {msg.data!r}"
        assert ws.close_code == code, f"close code {ws.close_code}, expected {code} ({msg.extra!r})"
        return str(msg.extra or "")


async def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# --- auth -----------------------------------------------------------------------------------------


async def test_auth_by_header_gets_snapshot_first_with_state() -> None:
    async with feed_server() as h:
        ws = await h.connect()
        snap = await recv(ws)
        assert snap["type"] == "SNAPSHOT"
        assert snap["timestamp"] == "2026-01-01T00:00:00.000Z"
        state = snap["state"]
        assert state["mode"] == "direct"
        assert state["proxy_url"] == "http://127.0.0.1:8478/v1"
        assert state["budget"] == {"spent_usd": 4.1, "limit_usd": 5.0, "reserved_usd": 0.0}
        assert state["sync"]["state"] == "ok" and state["sync"]["sent"] == 40
        assert state["agent"]["state"] == "running" and state["agent"]["pid"] == 4242
        assert [r["id"] for r in state["requests"]] == ["req_000000"]
        assert state["requests"][0]["cost_usd"] == 0.00894
        await wait_until(lambda: h.feed.client_count == 1)
        await ws.close()
        await wait_until(lambda: h.feed.client_count == 0)


async def test_the_feed_takes_events_from_the_bus_only_while_a_client_is_connected() -> None:
    async with feed_server() as h:
        # No client: nothing to send, so publishers skip events nobody else takes (a call's start).
        assert not h.bus.wants(RequestStarted)
        ws = await h.authed()
        assert h.bus.wants(RequestStarted)
        h.bus.publish(RequestStarted(T0 + 1, request=sample_record(id="req_live").summary()))
        assert (await recv(ws))["request"]["id"] == "req_live"
        await ws.close()
        await wait_until(lambda: h.feed.client_count == 0)
        assert not h.bus.wants(RequestStarted)
        again = await h.authed()  # and back on for the next client
        h.bus.publish(RequestStarted(T0 + 2, request=sample_record(id="req_next").summary()))
        assert (await recv(again))["request"]["id"] == "req_next"


async def test_auth_by_first_message() -> None:
    async with feed_server() as h:
        ws = await h.connect(header=False)
        await ws.send_json({"type": "AUTH", "token": TOKEN})
        assert (await recv(ws))["type"] == "SNAPSHOT"
        h.bus.publish(RequestStarted(T0 + 1, request=sample_record().summary()))
        assert (await recv(ws))["type"] == "REQUEST_STARTED"


async def test_no_events_before_authentication() -> None:
    async with feed_server(auth_timeout_s=2.0) as h:
        ws = await h.connect(header=False)
        await wait_until(lambda: h.feed._started)
        h.bus.publish(RequestStarted(T0 + 1, request=sample_record(id="req_before").summary()))
        await asyncio.sleep(0.1)
        assert h.feed.client_count == 0
        await ws.send_json({"type": "AUTH", "token": TOKEN})
        assert (await recv(ws))["type"] == "SNAPSHOT"
        h.bus.publish(RequestStarted(T0 + 2, request=sample_record(id="req_after").summary()))
        assert (await recv(ws))["request"]["id"] == "req_after"


async def test_events_already_in_the_snapshot_are_not_repeated() -> None:
    bus_holder: list[EventBus] = []
    in_snapshot = sample_record(id="req_in_snapshot").summary()

    def snapshot() -> dict[str, Any]:
        # An event published just before the snapshot is taken (and so already reflected in it), which
        # the fan-out has not yet delivered.
        if bus_holder:
            bus_holder[0].publish(RequestStarted(T0, request=in_snapshot))
        return sample_state(recent=[in_snapshot])

    async with feed_server(snapshot=snapshot) as h:
        first = await h.authed()
        bus_holder.append(h.bus)
        second = await h.connect()
        snap = await recv(second)
        assert [r["id"] for r in snap["state"]["requests"]] == ["req_in_snapshot"]
        h.bus.publish(RequestStarted(T0 + 1, request=sample_record(id="req_live").summary()))
        assert (await recv(second))["request"]["id"] == "req_live"  # no duplicate before it
        # A client that was already connected gets both, in order.
        assert [m["request"]["id"] for m in await recv_n(first, 2)] == ["req_in_snapshot", "req_live"]


@pytest.mark.parametrize("how", ["header", "message", "not-bearer"])
async def test_bad_token_closes_4401(how: str) -> None:
    async with feed_server() as h:
        if how == "header":
            ws = await h.connect(token="wrong-token")
        elif how == "not-bearer":
            ws = await h.session.ws_connect(h.ws_url, headers={"Authorization": f"Basic {TOKEN}"})
        else:
            ws = await h.connect(header=False)
            await ws.send_json({"type": "AUTH", "token": TOKEN + "x"})
        reason = await expect_close(ws, 4401)
        assert reason == "invalid token"
        assert h.feed.client_count == 0


async def test_first_message_must_be_auth() -> None:
    async with feed_server() as h:
        ws = await h.connect(header=False)
        await ws.send_json({"type": "PING"})
        assert await expect_close(ws, 4401) == "expected an AUTH message"


async def test_no_auth_within_timeout_closes_4401() -> None:
    async with feed_server(auth_timeout_s=0.2) as h:
        ws = await h.connect(header=False)
        assert await expect_close(ws, 4401) == "authentication timed out"


async def test_plain_http_get_is_426() -> None:
    async with feed_server() as h:
        async with h.session.get(h.base + "/ws") as resp:
            assert resp.status == 426
            assert "WebSocket" in (await resp.json())["error"]["message"]


async def test_snapshot_failure_closes_1011() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("engine not ready")

    async with feed_server(snapshot=broken) as h:
        ws = await h.connect()
        assert await expect_close(ws, 1011) == "snapshot unavailable"


# --- messages -------------------------------------------------------------------------------------


async def test_every_event_type_arrives_with_its_shape() -> None:
    async with feed_server() as h:
        ws = await h.authed()
        events = sample_events()
        for event in [*events[:2], Notice(T0, level="info", message="not forwarded"), *events[2:]]:
            h.bus.publish(event)
        expected = [m for e in events for m in to_wire(e)]
        got = await recv_n(ws, len(expected))
        assert got == expected  # and nothing for the Notice
        by_type = [(m["type"], m.get("event") or m.get("state")) for m in got]
        assert by_type == [
            ("REQUEST_STARTED", None), ("REQUEST_FINISHED", None), ("AGENT_EVENT", "llm_call"),
            ("STATE_UPDATE", "budget"), ("COST_ALERT", None), ("SYNC_STATUS", None), ("PROVIDER_HEALTH", None),
            ("STATE_UPDATE", "running"), ("AGENT_EVENT", "started"), ("AGENT_EVENT", "output"),
            ("STATE_UPDATE", "exited"), ("AGENT_EVENT", "exited"),
        ]
        finished = got[1]["request"]
        assert finished["status"] == 200 and finished["cost_usd"] == 0.00894
        assert finished["latency_ms"] == 812.457 and finished["translated"] is True
        assert got[3]["data"] == {"budget_spent": 4.10894, "budget_limit": 5.0, "budget_reserved": 0.12,
                                  "period": "session"}
        assert got[5]["sync"]["last_success"] == "2025-12-31T23:59:55.000Z"
        assert got[6]["provider"]["state"] == "down" and got[6]["provider"]["retry_in_s"] == 30.0
        assert got[8]["data"]["pid"] == 4242
        assert got[9]["data"] == {"stream": "stdout", "line": "step 3/10: summarising", "seq": 17}
        assert got[10]["data"]["exit_code"] == 0


async def test_request_finished_yields_llm_call_agent_event() -> None:
    async with feed_server() as h:
        ws = await h.authed()
        rec = finished_record(id="req_llm", model="gpt-4o-mini", provider="openai", translated=False,
                              input_tokens=500, output_tokens=20, cost_micros=15_000)
        h.bus.publish(RequestFinished(T0 + 9, request=rec.summary()))
        fin, call = await recv_n(ws, 2)
        assert fin["type"] == "REQUEST_FINISHED" and fin["request"]["id"] == "req_llm"
        assert call == {
            "type": "AGENT_EVENT", "timestamp": "2026-01-01T00:00:09.000Z", "agent_id": "agent_001",
            "event": "llm_call",
            "data": {"request_id": "req_llm", "model": "gpt-4o-mini", "provider": "openai", "tokens": 520,
                     "input_tokens": 500, "output_tokens": 20, "cost_usd": 0.015, "status": 200,
                     "success": True},
        }


async def test_failed_unpriced_request_without_agent() -> None:
    async with feed_server() as h:
        ws = await h.authed()
        rec = sample_record(id="req_bad", agent_id=None, state="error", status=502, latency_ms=3.0,
                            priced=False, error="upstream unreachable")
        h.bus.publish(RequestFinished(T0 + 1, request=rec.summary()))
        fin, call = await recv_n(ws, 2)
        assert fin["request"]["cost_usd"] is None and fin["request"]["error"] == "upstream unreachable"
        assert call["agent_id"] == "agent_local" and call["data"]["success"] is False


async def test_cost_alert_payload() -> None:
    async with feed_server() as h:
        ws = await h.authed()
        h.bus.publish(CostAlert(T0 + 1, severity="critical", spent_micros=9_600_000, limit_micros=10_000_000))
        h.bus.publish(CostAlert(T0 + 2, severity="exhausted", spent_micros=10_000_000, limit_micros=10_000_000,
                                agent_id="agent_007"))
        crit, exh = await recv_n(ws, 2)
        assert crit == {"type": "COST_ALERT", "timestamp": "2026-01-01T00:00:01.000Z", "agent_id": "agent_local",
                        "severity": "critical",
                        "data": {"budget_spent": 9.6, "budget_limit": 10.0, "percentage": 96.0}}
        assert exh["agent_id"] == "agent_007" and exh["data"]["percentage"] == 100.0


async def test_heartbeat_at_injected_interval() -> None:
    async with feed_server(heartbeat_s=0.05) as h:
        ws = await h.authed()
        h.clock.advance(30)
        beats = await recv_n(ws, 3)
        assert all(b == {"type": "HEARTBEAT", "timestamp": "2026-01-01T00:00:30.000Z"} for b in beats)


async def test_no_heartbeat_before_interval() -> None:
    async with feed_server(heartbeat_s=30.0) as h:
        ws = await h.authed()
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.2)


async def test_ping_pong_invalid_json_and_unknown_types() -> None:
    async with feed_server() as h:
        ws = await h.authed()
        await ws.send_str("{not json")
        err = await recv(ws)
        assert err["type"] == "ERROR" and err["message"] == "invalid JSON"
        await ws.send_bytes(b"\x00\x01")
        assert (await recv(ws))["message"] == "binary messages are not accepted"
        await ws.send_json({"type": "SUBSCRIBE", "topics": ["everything"]})  # unknown: ignored
        await ws.send_json({"type": "AUTH", "token": "ignored once authenticated"})
        await ws.send_json({"type": "PING"})
        assert await recv(ws) == {"type": "PONG", "timestamp": "2026-01-01T00:00:00.000Z"}
        assert h.feed.client_count == 1


async def test_twenty_clients_receive_identical_streams() -> None:
    async with feed_server() as h:
        clients = await asyncio.gather(*(h.authed() for _ in range(20)))
        await wait_until(lambda: h.feed.client_count == 20)
        for i in range(10):
            h.bus.publish(RequestFinished(T0 + i, request=finished_record(id=f"req_{i:03d}").summary()))
            h.bus.publish(AgentOutput(T0 + i, agent_id="agent_001", stream="stderr", line=f"line {i}", seq=i))
        streams = await asyncio.gather(*(recv_n(ws, 30) for ws in clients))
        assert all(s == streams[0] for s in streams)
        assert [m["request"]["id"] for m in streams[0] if m["type"] == "REQUEST_FINISHED"] == [
            f"req_{i:03d}" for i in range(10)]
        assert h.feed.disconnected_slow == 0


async def test_stalled_client_is_dropped_with_1013_and_others_get_everything() -> None:
    async with feed_server(client_queue=16) as h:
        stalled = await h.connect()  # authenticated by header; this client never reads
        healthy = [await h.authed() for _ in range(2)]
        await wait_until(lambda: h.feed.client_count == 3)
        received: list[list[int]] = [[], []]

        async def reader(ws: aiohttp.ClientWebSocketResponse, sink: list[int]) -> None:
            while True:
                msg = await ws.receive(timeout=10)
                if msg.type is not WSMsgType.TEXT:
                    return
                sink.append(check(json.loads(msg.data))["data"]["seq"])

        readers = [asyncio.create_task(reader(ws, sink)) for ws, sink in zip(healthy, received, strict=True)]
        line = "x" * 64 * 1024  # large messages, so the kernel's socket buffers fill quickly
        published = 0
        # Publish until the feed gives up on the stalled client (the socket buffers absorb a few MB), then
        # some more: publishing must stay cheap throughout, and the healthy clients must miss nothing.
        while published < 3000 and (h.feed.disconnected_slow == 0 or published % 50):
            event = AgentOutput(T0, agent_id="agent_001", stream="stdout", line=line, seq=published)
            h.bus.publish(event)  # synchronous: a stalled client can never make it wait (bench/ measures it)
            published += 1
            await asyncio.sleep(0.001)
        assert h.feed.disconnected_slow == 1, f"stalled client not dropped after {published} events"
        await wait_until(lambda: all(len(r) == published for r in received), timeout=20)
        assert all(r == list(range(published)) for r in received)
        assert h.feed.client_count == 2
        # When the stalled client finally reads, it finds what was buffered, then the 1013 close.
        assert await expect_close(stalled, 1013, timeout=10) == "client too slow; reconnect"
        for ws in healthy:
            await ws.close()
        await asyncio.gather(*readers)


async def test_feed_overflow_asks_every_client_to_resync() -> None:
    async with feed_server() as h:
        ws = await h.authed()
        # More events than the feed's own subscription holds, without yielding to the loop.
        for i in range(10_001):
            h.bus.publish(AgentOutput(T0, agent_id="agent_001", stream="stdout", line="burst", seq=i))
        assert await expect_close(ws, 1013) == "feed fell behind; reconnect"
        assert h.feed.resyncs == 1
        again = await h.authed()  # reconnecting gives a fresh snapshot and live messages again
        h.bus.publish(AgentOutput(T0, agent_id="agent_001", stream="stdout", line="after", seq=0))
        assert (await recv(again))["data"]["line"] == "after"


async def test_close_sends_1001_to_every_client() -> None:
    async with feed_server() as h:
        clients = [await h.authed() for _ in range(3)]
        await wait_until(lambda: h.feed.client_count == 3)
        await h.feed.close()
        for ws in clients:
            assert await expect_close(ws, 1001) == "server shutting down"
        assert h.feed.client_count == 0
        late = await h.connect()
        assert await expect_close(late, 1001) == "server shutting down"


async def test_close_does_not_hang_on_a_stalled_client() -> None:
    async with feed_server(send_timeout_s=0.3) as h:
        stalled = await h.connect()  # never reads
        await wait_until(lambda: h.feed.client_count == 1)
        line = "y" * 64 * 1024
        for i in range(300):  # far more than the socket buffers hold
            h.bus.publish(AgentOutput(T0, agent_id="agent_001", stream="stdout", line=line, seq=i))
            await asyncio.sleep(0)
        await asyncio.sleep(0.8)  # the writer is now stuck on the full socket and gives up (slow client)
        await asyncio.wait_for(h.feed.close(), 30)  # a hang guard: close must not wait on the stalled writer
        assert h.feed.client_count == 0
        # The stalled client's connection is cut: reading ends in a close or an error, not a hang.
        while True:
            msg = await stalled.receive(timeout=5)
            if msg.type is not WSMsgType.TEXT:
                break
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)


async def test_close_also_ends_connections_still_authenticating() -> None:
    async with feed_server(auth_timeout_s=30) as h:
        ws = await h.connect(header=False)
        await wait_until(lambda: len(h.feed._unauthenticated) == 1)
        await h.feed.close()
        assert await expect_close(ws, 1001) == "server shutting down"


# --- contract -------------------------------------------------------------------------------------


def test_schema_is_valid_and_covers_every_message_type() -> None:
    schema = load_feed_schema()
    Draft202012Validator.check_schema(schema)
    types = {schema["$defs"][ref["$ref"].rsplit("/", 1)[1]]["properties"]["type"]["const"]
             for ref in schema["oneOf"]}
    assert types == {"SNAPSHOT", "REQUEST_STARTED", "REQUEST_FINISHED", "STATE_UPDATE", "AGENT_EVENT",
                     "COST_ALERT", "SYNC_STATUS", "PROVIDER_HEALTH", "HEARTBEAT", "PONG", "ERROR",
                     # answers to a client's questions (tests/test_feed_queries.py validates them)
                     "REQUEST_DETAIL", "QUERY_RESULT", "STATS"}
    for message in doc_examples():
        check(message)


@pytest.mark.parametrize("bad", [
    {"type": "HEARTBEAT", "timestamp": "2026-01-01 00:00:00"},
    {"type": "HEARTBEAT"},
    {"type": "COST_ALERT", "timestamp": "2026-01-01T00:00:00.000Z", "agent_id": "a", "severity": "panic",
     "data": {"budget_spent": 1, "budget_limit": 2, "percentage": 50}},
    {"type": "STATE_UPDATE", "timestamp": "2026-01-01T00:00:00.000Z", "agent_id": "a", "state": "budget",
     "data": {"name": None, "pid": None, "exit_code": None, "reason": None, "restarts": 0}},
    {"type": "NOPE", "timestamp": "2026-01-01T00:00:00.000Z"},
])
def test_schema_rejects_malformed_messages(bad: dict[str, Any]) -> None:
    assert not VALIDATOR.is_valid(bad)


def test_snapshot_sync_matches_sync_status_message() -> None:
    status = sample_events()[4]
    assert isinstance(status, SyncStatus)
    assert sync_wire(status) == to_wire(status)[0]["sync"]
    assert sync_wire(None)["state"] == "disabled"


def _doc_json_blocks() -> list[dict[str, Any]]:
    text = DOCS.read_text("utf-8")
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", text, re.DOTALL)]


def test_docs_examples_validate_and_match_to_wire() -> None:
    blocks = _doc_json_blocks()
    assert blocks, "docs/feed.md has no ```json example blocks"
    for block in blocks:
        check(block)
    # The examples are generated from sample events; regenerate with `python tests/test_feed.py`.
    assert blocks == doc_examples()
    documented = {m["type"] for m in blocks}
    assert documented == {"SNAPSHOT", "REQUEST_STARTED", "REQUEST_FINISHED", "STATE_UPDATE", "AGENT_EVENT",
                          "COST_ALERT", "SYNC_STATUS", "PROVIDER_HEALTH", "HEARTBEAT", "PONG", "ERROR"}
    text = DOCS.read_text("utf-8")
    for needle in ("4401", "1013", "1001", "Authorization: Bearer", '"type":"AUTH"', "30 s"):
        assert needle in text, f"docs/feed.md does not mention {needle}"


if __name__ == "__main__":
    for example in doc_examples():
        print(f"### {example['type']}\n\n```json\n{json.dumps(example, indent=2)}\n```\n")

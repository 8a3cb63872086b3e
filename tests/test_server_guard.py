"""A loopback server browsers cannot abuse: Host and Origin checks, JSON answers for every route the proxy
makes itself, no CORS, wrong tokens slowed per peer. Raw sockets where browsers or clients would not
send what an attacker can."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from iron_tui.config import Settings
from iron_tui.core.engine import Engine
from iron_tui.core.events import Notice
from iron_tui.core.proxy.guard import AuthThrottle, token_weakness
from iron_tui.sim import ProviderSim
from tests.conftest import EngineFactory
from tests.helpers.raw_http import raw_exchange, read_response, request_bytes

CHAT = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _post(engine: Engine, host: str, path: str = "/v1/chat/completions", body: bytes = CHAT,
          token: str | None = None) -> bytes:
    return request_bytes("POST", path, host, {"authorization": f"Bearer {token or engine.token}",
                                              "content-type": "application/json"}, body)


async def test_dns_rebinding_host_is_refused_before_anything_runs(engine: Engine, sim: ProviderSim) -> None:
    before = len(sim.requests)
    r = await raw_exchange(engine.port, _post(engine, f"attacker.example:{engine.port}"))
    assert r.status == 403 and r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["code"] == "host_not_allowed" and "attacker.example" in err["message"]
    assert len(sim.requests) == before and len(engine.history) == 0  # no upstream call, no record
    # Anthropic's shape on its routes; a missing Host is refused too.
    r = await raw_exchange(engine.port, _post(engine, "evil.test", "/v1/messages"))
    assert r.status == 403 and r.json()["type"] == "error"
    r = await raw_exchange(engine.port, b"GET /health HTTP/1.0\r\n\r\n")
    assert r.status == 403


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]"])
async def test_the_bound_loopback_names_are_served(engine: Engine, name: str) -> None:
    r = await raw_exchange(engine.port, _post(engine, f"{name}:{engine.port}"))
    assert r.status == 200, r.body


async def test_a_loopback_name_on_another_port_is_refused(engine: Engine) -> None:
    r = await raw_exchange(engine.port, _post(engine, f"127.0.0.1:{engine.port + 1}"))
    assert r.status == 403


async def test_allowed_hosts_and_allow_remote(make_engine: EngineFactory) -> None:
    listed = await make_engine(allowed_hosts=["proxy.internal"])
    assert (await raw_exchange(listed.port, _post(listed, f"proxy.internal:{listed.port}"))).status == 200
    assert (await raw_exchange(listed.port, _post(listed, f"other.internal:{listed.port}"))).status == 403
    remote = await make_engine(allow_remote=True)
    assert (await raw_exchange(remote.port, _post(remote, f"anything.example:{remote.port}"))).status == 200


async def test_dashboard_for_a_foreign_host_never_names_it(make_engine: EngineFactory) -> None:
    guarded = await make_engine()
    get = request_bytes("GET", "/dashboard", f"attacker.example:{guarded.port}")
    assert (await raw_exchange(guarded.port, get)).status == 403
    # Even where any Host is served, the page's policy names only hosts the configuration names.
    remote = await make_engine(allow_remote=True)
    r = await raw_exchange(remote.port, request_bytes("GET", "/dashboard", f"attacker.example:{remote.port}"))
    assert r.status == 200 and "attacker.example" not in r.headers["content-security-policy"]
    assert "connect-src 'self'" in r.headers["content-security-policy"]
    r = await raw_exchange(remote.port, request_bytes("GET", "/dashboard", f"localhost:{remote.port}"))
    assert f"ws://localhost:{remote.port}" in r.headers["content-security-policy"]


async def test_ws_and_dashboard_accept_only_their_own_origin(make_engine: EngineFactory) -> None:
    engine = await make_engine(allowed_origins=["http://localhost:3000"])
    host = f"127.0.0.1:{engine.port}"
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{engine.port + 1}"):
        r = await raw_exchange(engine.port, request_bytes("GET", "/dashboard", host, {"Origin": origin}))
        assert r.status == 403 and r.json()["error"]["code"] == "origin_not_allowed", origin
    auth = {"Authorization": f"Bearer {engine.token}"}
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await s.ws_connect(engine.feed_url, headers=auth, origin="http://evil.example")
        assert refused.value.status == 403
        for origin in (f"http://{host}", "http://localhost:3000", None):
            async with s.ws_connect(engine.feed_url, headers=auth, origin=origin) as ws:
                first = await ws.receive_json(timeout=30)
                assert first["type"] == "SNAPSHOT"


async def test_no_cors_headers_and_options_in_json(engine: Engine) -> None:
    preflight = request_bytes("OPTIONS", "/v1/chat/completions", f"127.0.0.1:{engine.port}", {
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization"})
    r = await raw_exchange(engine.port, preflight)
    assert r.status == 200 and r.json() == {"allow": ["OPTIONS", "POST"]} and r.headers["allow"] == "OPTIONS, POST"
    assert not [h for h in r.headers if h.startswith("access-control-")]
    r = await raw_exchange(engine.port, _post(engine, f"127.0.0.1:{engine.port}"))
    assert r.status == 200 and not [h for h in r.headers if h.startswith("access-control-")]


@pytest.mark.parametrize(("method", "path", "status", "shape"), [
    ("GET", "/v1/nope", 404, "openai"),
    ("POST", "/v2/chat/completions", 404, "openai"),
    ("POST", "/v1/messages/nope", 404, "anthropic"),
    ("GET", "/v1/chat/completions", 405, "openai"),
    ("PUT", "/v1/chat/completions", 405, "openai"),
    ("DELETE", "/v1/messages", 405, "anthropic"),
    ("PATCH", "/v1/responses", 405, "openai"),
    ("POST", "/health", 405, "openai"),
])
async def test_proxy_made_answers_are_json_in_the_routes_shape(engine: Engine, method: str, path: str,
                                                               status: int, shape: str) -> None:
    r = await raw_exchange(engine.port, request_bytes(method, path, f"127.0.0.1:{engine.port}", body=b"{}"))
    assert r.status == status and r.headers["content-type"].startswith("application/json")
    body = r.json()
    if shape == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] in ("not_found_error", "invalid_request_error")
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
    if status == 405:
        assert method not in r.headers["allow"] and "OPTIONS" in r.headers["allow"]


async def test_head_is_answered_without_a_body(engine: Engine) -> None:
    host = f"127.0.0.1:{engine.port}"
    reader, writer = await asyncio.open_connection("127.0.0.1", engine.port)
    try:
        writer.write(request_bytes("HEAD", "/v1/chat/completions", host) + request_bytes("HEAD", "/health", host))
        async with asyncio.timeout(30):
            first = await reader.readuntil(b"\r\n\r\n")
            second = await reader.readuntil(b"\r\n\r\n")  # nothing between: no body after a HEAD answer
    finally:
        writer.close()
    assert first.startswith(b"HTTP/1.1 405") and b"application/json" in first and b"Allow: OPTIONS, POST" in first
    assert second.startswith(b"HTTP/1.1 200") and b"application/json" in second


async def test_expect_100_continue_is_answered_on_the_llm_routes(engine: Engine, sim: ProviderSim) -> None:
    """The LLM routes skip the app's router (RequestGuard.route_directly); a client that waits for
    `100 Continue` before sending its body (curl with a large body) still gets it, then its answer."""
    host = f"127.0.0.1:{engine.port}"
    reader, writer = await asyncio.open_connection("127.0.0.1", engine.port)
    try:
        head = request_bytes("POST", "/v1/chat/completions", host, {
            "authorization": f"Bearer {engine.token}", "content-type": "application/json",
            "Expect": "100-continue", "Content-Length": str(len(CHAT))})
        writer.write(head.replace(b"Content-Length: 0\r\n", b""))
        async with asyncio.timeout(30):
            interim = await reader.readuntil(b"\r\n\r\n")
            assert interim.startswith(b"HTTP/1.1 100")
            writer.write(CHAT)
            final = await read_response(reader)
    finally:
        writer.close()
    assert final.status == 200 and final.json()["object"] == "chat.completion"
    assert len(engine.history) == 1


# --- wrong tokens ------------------------------------------------------------------------------------


async def _status(engine: Engine, token: str, local_addr: str | None = None) -> int:
    r = await raw_exchange(engine.port, _post(engine, f"127.0.0.1:{engine.port}", token=token),
                           local_addr=local_addr)
    return r.status


async def _pending(throttle: AuthThrottle, n: int) -> None:
    """Until `n` wrong answers to 127.0.0.1 are being held (a hang guard, not a timed assertion)."""
    async with asyncio.timeout(30):
        while throttle._pending.get("127.0.0.1", 0) != n:
            await asyncio.sleep(0.01)


async def test_wrong_tokens_slow_down_per_peer_but_never_the_right_token(engine: Engine) -> None:
    # Delays far beyond the test's life: "still waiting" is then certain however loaded the machine is.
    engine.guard.throttle = AuthThrottle(free=2, base_delay=600.0, max_delay=600.0, max_pending=2)
    assert [await _status(engine, "wrong-guess") for _ in range(2)] == [401, 401]  # free attempts
    held = asyncio.create_task(_status(engine, "wrong-guess-3"))
    await _pending(engine.guard.throttle, 1)  # the third wrong token waits...
    assert await _status(engine, engine.token) == 200  # ...the right one from the same peer does not
    assert await _status(engine, "other-peer-guess", local_addr="127.0.0.2") == 401  # another peer: at once
    also_held = asyncio.create_task(_status(engine, "wrong-guess-4"))
    await _pending(engine.guard.throttle, 2)
    # Two wrong answers pending: this peer is flooding, and is refused outright, token unexamined.
    assert await _status(engine, "wrong-guess-5") == 429
    assert not held.done() and not also_held.done()
    held.cancel()
    also_held.cancel()


def test_throttle_forgets_a_peer_after_its_window() -> None:
    t = AuthThrottle(free=1, base_delay=1.0, max_delay=4.0, window=0.0)
    t.failed("p")
    t.failed("p")
    assert t.delay("p") == 0.0 and not t.failures  # the window has passed: forgotten
    t = AuthThrottle(free=1, base_delay=1.0, max_delay=4.0)
    for _ in range(10):
        t.failed("p")
    assert t.delay("p") == 4.0 and t.delay("q") == 0.0


async def test_the_feed_counts_wrong_tokens_too(engine: Engine) -> None:
    engine.guard.throttle = AuthThrottle(free=1, base_delay=600.0, max_delay=600.0)
    assert engine.guard.throttle.delay("127.0.0.1") == 0.0
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(engine.feed_url, headers={"Authorization": "Bearer nope"}) as ws:
            msg = await ws.receive(timeout=30)
            assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4401
    # The feed's wrong token used the free attempt: the API's next wrong token from this peer waits.
    assert engine.guard.throttle.delay("127.0.0.1") == 600.0
    held = asyncio.create_task(_status(engine, "wrong"))
    await _pending(engine.guard.throttle, 1)
    held.cancel()


@pytest.mark.parametrize(("token", "weak"), [
    ("test-token", True), ("aaaaaaaaaaaaaaaaaaaaaaaa", True), ("password12345678", True),
    ("iron-" + "x" * 3 + "Q7v9LmZp2RtY8wK", False),
])
def test_token_weakness(token: str, weak: bool) -> None:
    assert (token_weakness(token) is not None) is weak


async def test_a_guessable_token_is_warned_about_at_start(sim: ProviderSim, tmp_path: Any) -> None:
    for token, warned in (("hunter2", True), ("Zq8v-2LmRtY7wK9pXc4NbA6d", False)):
        engine = Engine(Settings(port=0, openai_key="sk-sim-openai", openai_base_url=sim.url, token=token,
                                 data_dir=tmp_path / token))
        sub = engine.bus.subscribe(1000, name="test")
        async with engine:
            notices = [e for e in await sub.get_batch() if isinstance(e, Notice) and "easy to guess" in e.message]
        assert bool(notices) is warned
        if warned:
            assert "short (7 characters)" in notices[0].message and "hunter2" not in notices[0].message

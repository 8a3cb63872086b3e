"""The benchmark's load generator (bench/loadgen.py) gives right answers: against the real simulator
(plain and streamed responses, on asyncio's loop and on uvloop as the benchmark runs it) and against a
raw server that closes connections, frames bodies every legal way, or breaks them."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from loadgen import (
    Connection,
    HTTPStatusError,
    Pool,
    ServerDisconnected,
    encode_request,
)
from run import throughput

from iron_tui.core.loop import new_event_loop
from iron_tui.sim import ProviderSim

HEADERS = {"authorization": "Bearer sk-sim-openai", "content-type": "application/json"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in five words."}]}


async def against_sim() -> None:
    async with ProviderSim() as sim:
        url = sim.url + "/v1/chat/completions"
        plain = encode_request("POST", url, HEADERS, json.dumps(CHAT).encode())
        stream = encode_request("POST", url, HEADERS, json.dumps({**CHAT, "stream": True}).encode())
        conn = Connection(plain.host, plain.port)
        try:
            for _ in range(5):
                r = await conn.request(plain, keep_body=True)
                assert r.status == 200
                assert json.loads(r.body)["choices"][0]["message"]["content"].startswith("Simulated reply")
                assert r.start <= r.first <= r.end
            # Not keeping the body is the cheap default; the call still completes.
            assert (await conn.request(plain)).body == b""

            r = await conn.request(stream, keep_body=True)
            assert r.status == 200
            assert r.start < r.first <= r.end and 0 < r.ttfc_ms <= r.total_ms
            # httptools removed the chunked framing: what is left is the SSE stream, event by event.
            events = [line[6:] for line in r.body.decode().split("\n") if line.startswith("data: ")]
            assert events[-1] == "[DONE]"
            text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                           for e in events[:-1] if json.loads(e)["choices"])
            assert text.startswith("Simulated reply to: Say hello")

            assert conn.connects == 1  # all seven calls on one keep-alive connection
            assert len(sim.requests) == 7 and all(rec.status == 200 for rec in sim.requests)
        finally:
            conn.close()


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, new_event_loop], ids=["asyncio", "uvloop"])
def test_plain_and_streamed_calls_against_the_simulator(
        loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(against_sim())


async def test_a_non_200_raises_with_the_body(sim: ProviderSim) -> None:
    req = encode_request("POST", sim.url + "/v1/chat/completions",
                         {**HEADERS, "authorization": "Bearer wrong"}, json.dumps(CHAT).encode())
    conn = Connection(req.host, req.port)
    with pytest.raises(HTTPStatusError) as err:
        await conn.request(req)
    assert err.value.status == 401 and "HTTP 401" in str(err.value)
    assert "invalid_api_key" in str(err.value)  # the provider's explanation is in the message
    r = await conn.request(req, check=False)  # the connection stays usable
    assert r.status == 401 and b"invalid_api_key" in r.body
    conn.close()


async def test_pool_and_throughput_count_every_call(sim: ProviderSim) -> None:
    url = sim.url + "/v1/chat/completions"
    req = encode_request("POST", url, HEADERS, json.dumps(CHAT).encode())
    pool = Pool(req.host, req.port)
    results = await asyncio.gather(*(pool.request(req) for _ in range(6)))
    assert [r.status for r in results] == [200] * 6
    assert pool.size == 6  # six at once: six connections, reused by the next calls
    await asyncio.gather(*(pool.request(req) for _ in range(6)))
    assert pool.size == 6
    pool.close()

    before = len(sim.requests)
    t = await throughput(url, CHAT, HEADERS, 4, 0.2)
    # Every call the workers counted reached the simulator (plus one warm-up call per worker).
    assert t["calls"] > 0 and len(sim.requests) - before == t["calls"] + 4
    assert t["rps"] == pytest.approx(t["calls"] / t["seconds"])
    assert t["loadgen_cpu_us_per_call"] > 0


# --- a raw server: every way an HTTP/1.1 response can be framed or end ---------------------------

RESPONSES = {
    b"/close": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    b"/close-chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
    b"/http10": b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold",
    b"/eof": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",  # then closed
    b"/truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",  # then closed
    b"/keep": b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nkept",
}
CLOSES = {b"/close", b"/close-chunked", b"/http10", b"/eof", b"/truncated"}


class RawServer:
    def __init__(self) -> None:
        self.connections = 0
        self.drop_on: int | None = None  # hang up, unanswered, on this request (1-based) of a connection

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        n = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                n += 1
                path = head.split(b" ", 2)[1]
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                if n == self.drop_on:
                    break
                writer.write(RESPONSES[path])
                await writer.drain()
                if path in CLOSES:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@pytest.fixture
async def raw() -> AsyncIterator[tuple[RawServer, str]]:
    server = RawServer()
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        srv.close()


@pytest.mark.parametrize(("path", "body"), [("/close", b"ok"), ("/close-chunked", b"abcde"),
                                            ("/http10", b"old"), ("/eof", b"until the end")])
async def test_server_closing_the_connection_means_a_reconnect(
        raw: tuple[RawServer, str], path: str, body: bytes) -> None:
    server, url = raw
    req = encode_request("POST", url + path, {"x-test": "1"}, b"{}")
    conn = Connection(req.host, req.port)
    for _ in range(3):
        r = await conn.request(req, keep_body=True)
        assert (r.status, r.body) == (200, body)
    assert conn.connects == 3 and server.connections == 3
    conn.close()


async def test_a_truncated_body_is_an_error_not_a_result(raw: tuple[RawServer, str]) -> None:
    _, url = raw
    req = encode_request("GET", url + "/truncated")
    conn = Connection(req.host, req.port)
    with pytest.raises(ServerDisconnected):
        await conn.request(req)
    conn.close()


async def test_a_keep_alive_connection_dropped_before_answering_is_retried_once(
        raw: tuple[RawServer, str]) -> None:
    server, url = raw
    server.drop_on = 2  # as when the server's keep-alive timeout races our write
    req = encode_request("POST", url + "/keep", None, b"x")
    conn = Connection(req.host, req.port)
    for _ in range(2):  # the 2nd call is dropped on the reused connection; a fresh one answers it
        assert (await conn.request(req, keep_body=True)).body == b"kept"
    assert conn.connects == 2 and server.connections == 2
    conn.close()


async def test_a_fresh_connection_dropped_is_an_error(raw: tuple[RawServer, str]) -> None:
    server, url = raw
    server.drop_on = 1
    req = encode_request("POST", url + "/keep", None, b"x")
    conn = Connection(req.host, req.port)
    with pytest.raises(ServerDisconnected):
        await conn.request(req)
    assert conn.connects == 1  # not retried: the server got the request and chose not to answer
    conn.close()


def test_requests_are_encoded_once_with_host_and_length() -> None:
    req = encode_request("POST", "http://127.0.0.1:8123/v1/x?a=1", {"content-type": "application/json"}, b"{}")
    assert (req.host, req.port) == ("127.0.0.1", 8123)
    assert req.data == (b"POST /v1/x?a=1 HTTP/1.1\r\nHost: 127.0.0.1:8123\r\ncontent-type: application/json\r\n"
                        b"Content-Length: 2\r\n\r\n{}")
    with pytest.raises(ValueError):
        encode_request("GET", "https://example.com/")
    with pytest.raises(ValueError):
        encode_request("GET", "http://127.0.0.1/", {"x": "a\r\nInjected: 1"})

"""`WholeResponse` writes a relayed answer in one piece: the client must get what `web.Response` sends.

A real aiohttp server on loopback answers the same request both ways; the raw bytes are compared (the
`Date` header aside, which may tick between the two).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from iron_tui.core.proxy.direct_response import MAX_DIRECT_BYTES, ChunkedResponse, WholeResponse

BODY = b'{"id":"chatcmpl-1","object":"chat.completion"}'
HEADERS = {"x-request-id": "req_1", "x-ratelimit-remaining-requests": "99", "content-type": "application/json"}


def _answer(kind: str, status: int, body: bytes, headers: dict[str, str]) -> web.StreamResponse:
    if kind == "whole":
        return WholeResponse(status, body, headers)
    return web.Response(status=status, body=body, headers=headers)


@contextlib.asynccontextmanager
async def _serving(app: web.Application, **runner_options: Any) -> AsyncIterator[int]:
    """`app` on a loopback port (yielded) until the block ends."""
    runner = web.AppRunner(app, access_log=None, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[int]:
    async def handle(request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        size = int(request.query.get("size", "0"))
        status = int(request.query.get("status", "200"))
        body = b"x" * size if size else BODY
        headers = {**HEADERS, "x-upstream": "a\r\nInjected: 1"} if request.query.get("bad") else HEADERS
        return _answer(kind, status, body, headers)

    app = web.Application()
    app.router.add_post("/{kind}", handle)
    async with _serving(app) as port:
        yield port


async def _read_until(port: int, data: bytes, done: Callable[[bytes], bool]) -> bytes:
    """Send `data`, read until the server closes or `done(what arrived)` (a hang guard only)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = b""
    try:
        writer.write(data)
        async with asyncio.timeout(30):
            while not done(out):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                out += chunk
    finally:
        writer.close()
    return out


async def _exchange(port: int, data: bytes, responses: int = 1) -> bytes:
    """`responses` whole answers (or what came before the server closed)."""
    return await _read_until(port, data, lambda out: out.count(b"HTTP/1.") >= responses and _complete(out, responses))


def _complete(data: bytes, responses: int) -> bool:
    """Whether `data` holds `responses` whole answers (each framed by its Content-Length)."""
    pos = 0
    for _ in range(responses):
        head_end = data.find(b"\r\n\r\n", pos)
        if head_end < 0:
            return False
        m = re.search(rb"(?i)content-length: (\d+)", data[pos:head_end])
        pos = head_end + 4 + (int(m.group(1)) if m else 0)
        if pos > len(data):
            return False
    return True


def _normal(raw: bytes) -> bytes:
    return re.sub(rb"Date: [^\r]+", b"Date: -", raw)


def _request(path: str, version: str = "1.1", extra: str = "") -> bytes:
    return (f"POST {path} HTTP/{version}\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n{extra}\r\n{{}}").encode()


@pytest.mark.parametrize(("version", "extra"), [
    ("1.1", ""),                              # keep-alive by default
    ("1.1", "Connection: close\r\n"),         # answered with Connection: close
    ("1.0", ""),                              # HTTP/1.0: closed after the answer
    ("1.0", "Connection: keep-alive\r\n"),    # HTTP/1.0 asking to keep it: Connection: keep-alive
])
@pytest.mark.parametrize("query", ["", "?status=429", "?status=502", f"?size={MAX_DIRECT_BYTES + 1}", "?bad=1"])
async def test_the_client_gets_the_bytes_aiohttp_would_send(server: int, version: str, extra: str,
                                                            query: str) -> None:
    whole = await _exchange(server, _request("/whole" + query, version, extra))
    plain = await _exchange(server, _request("/aio" + query, version, extra))
    assert _normal(whole) == _normal(plain)
    if "bad" in query:  # a line break in a header value: aiohttp refuses to send it, and so do we
        assert b"Injected" not in whole
    else:
        assert whole.startswith(b"HTTP/1.")


async def test_a_kept_alive_connection_serves_answer_after_answer(server: int) -> None:
    """Pipelined requests on one connection: each gets its whole answer, in order."""
    data = _request("/whole") + _request("/whole?status=429") + _request("/aio")
    raw = await _exchange(server, data, responses=3)
    statuses = re.findall(rb"HTTP/1\.1 (\d+)", raw)
    assert statuses == [b"200", b"429", b"200"]
    assert raw.count(BODY) == 3


async def test_a_client_gone_before_the_answer_is_not_an_error_of_the_server(
        caplog: pytest.LogCaptureFixture) -> None:
    """The connection closed while the handler ran: the answer is dropped quietly, the server keeps
    serving (aiohttp treats the ConnectionResetError as a premature disconnection)."""
    release = asyncio.Event()
    handled = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        handled.set()
        await release.wait()
        return WholeResponse(200, BODY, HEADERS)

    app = web.Application()
    app.router.add_post("/slow", slow)
    app.router.add_post("/fast", fast)
    async with _serving(app, handler_cancellation=False) as port:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_request("/slow"))
        async with asyncio.timeout(30):
            await handled.wait()
        writer.close()
        await asyncio.sleep(0.05)  # let the server see the close (a wait, not a timed assertion)
        release.set()
        raw = await _exchange(port, _request("/fast"))
        assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(BODY)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def fast(request: web.Request) -> web.StreamResponse:
    return WholeResponse(200, BODY, HEADERS)


def test_the_date_header_is_aiohttps_format() -> None:
    from aiohttp.helpers import rfc822_formatted_time

    from iron_tui.core.proxy.direct_response import http_date

    assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", http_date())
    assert http_date()[:16] == rfc822_formatted_time()[:16]


# --- streams -----------------------------------------------------------------------------------------

CHUNKS = [b"data: {\"n\":1}\n\n", b"data: {\"n\":2}\n\n", b"data: [DONE]\n\n"]


@pytest.fixture
async def stream_server() -> AsyncIterator[int]:
    async def handle(request: web.Request) -> web.StreamResponse:
        headers = {"content-type": "text/event-stream", "cache-control": "no-cache", "x-request-id": "req_1"}
        if request.match_info["kind"] == "chunked":
            out: web.StreamResponse = ChunkedResponse(200, headers)
        else:
            out = web.StreamResponse(status=200, headers=headers)  # aiohttp chooses chunked (HTTP/1.1)
        await out.prepare(request)
        for chunk in CHUNKS:
            await out.write(chunk)
        await out.write_eof()
        return out

    app = web.Application()
    app.router.add_post("/{kind}", handle)
    async with _serving(app) as port:
        yield port


async def _read_stream(port: int, data: bytes) -> bytes:
    """A chunked answer, through its last chunk."""
    return await _read_until(port, data, lambda out: out.endswith(b"0\r\n\r\n"))


@pytest.mark.parametrize(("version", "extra"), [("1.1", ""), ("1.1", "Connection: close\r\n"), ("1.0", "")])
async def test_a_stream_reaches_the_client_as_aiohttp_frames_it(stream_server: int, version: str, extra: str) -> None:
    direct = await _read_stream(stream_server, _request("/chunked", version, extra))
    plain = await _read_stream(stream_server, _request("/aio", version, extra))
    assert _normal(direct) == _normal(plain)
    if version == "1.1":
        assert b"Transfer-Encoding: chunked" in direct and direct.endswith(b"0\r\n\r\n")
    assert all(c in direct for c in CHUNKS)


async def test_a_stream_waits_for_a_client_that_does_not_read() -> None:
    """Chunks written faster than the client reads wait for it (memory stays bounded), then all arrive."""
    chunk = b"z" * 65536
    count = 256  # 16 MiB: far beyond the socket buffers
    most_buffered = 0
    done = asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        nonlocal most_buffered
        out = ChunkedResponse(200, {"content-type": "text/event-stream"})
        await out.prepare(request)
        for _ in range(count):
            await out.write(chunk)
            assert request.transport is not None
            most_buffered = max(most_buffered, request.transport.get_write_buffer_size())
        await out.write_eof()
        done.set()
        return out

    app = web.Application()
    app.router.add_post("/s", handle)
    async with _serving(app) as port:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # a small window: the client is slow
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(_request("/s"))
        received = 0
        async with asyncio.timeout(60):
            while received < count * len(chunk):
                data = await reader.read(1 << 16)
                if not data:
                    break
                received += data.count(b"z")
                await asyncio.sleep(0)  # read slowly: let the writer fill what it may
            await done.wait()
        writer.close()
    assert received == count * len(chunk)
    # Never more than the high-water mark and one chunk waiting in the process (16 MiB were written).
    assert most_buffered <= MAX_DIRECT_BYTES + 2 * len(chunk) + 64

"""Nothing hangs: slow headers, a body that never arrives, an endless chunked body and a silent connection
are each closed; past the connection cap a client gets a 503 in JSON; malformed HTTP gets a 400 in JSON
and one log line, never a traceback. Raw sockets, small configured timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import openai
import pytest

from iron_tui.core.engine import Engine
from iron_tui.core.proxy.connections import BodyReadError, read_body
from tests.conftest import EngineFactory
from tests.helpers.raw_http import read_response, request_bytes

ROOT = Path(__file__).resolve().parent.parent
SHORT = {"header_timeout": 0.5, "body_timeout": 0.5, "idle_timeout": 0.5}


@pytest.fixture
async def short(make_engine: EngineFactory) -> Engine:
    return await make_engine(**SHORT)


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes (a hang guard: today's aiohttp would wait an hour)."""
    got = b""
    async with asyncio.timeout(30):
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65536):
                got += chunk
    return got


async def _open(engine: Engine) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", engine.port)


def _head(engine: Engine, extra: str = "") -> bytes:
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{engine.port}\r\n"
            f"Authorization: Bearer {engine.token}\r\nContent-Type: application/json\r\n{extra}").encode()


async def test_slow_headers_are_closed_with_a_408(short: Engine) -> None:
    reader, writer = await _open(short)
    writer.write(_head(short)[:40])  # part of the headers, then nothing
    got = await _until_closed(reader)
    writer.close()
    assert got.startswith(b"HTTP/1.1 408")
    assert json.loads(got.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"


async def test_headers_trickling_in_still_time_out(short: Engine) -> None:
    """Progress byte by byte is not a request: the header deadline counts from its first byte."""
    reader, writer = await _open(short)
    closed = asyncio.create_task(_until_closed(reader))
    for byte in _head(short):
        if closed.done():
            break
        with contextlib.suppress(ConnectionError):
            writer.write(bytes([byte]))
        await asyncio.sleep(0.05)
    got = await closed
    writer.close()
    assert got.startswith(b"HTTP/1.1 408")


async def test_a_body_that_never_arrives_is_closed(short: Engine) -> None:
    reader, writer = await _open(short)
    writer.write(_head(short, "Content-Length: 100\r\n\r\n") + b'{"model":')
    got = await _until_closed(reader)
    writer.close()
    assert got.startswith(b"HTTP/1.1 408")
    body = json.loads(got.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_timeout" and "body" in body["error"]["message"]
    assert len(short.history) == 0 and short.ledger.reserved == 0  # nothing started, nothing reserved


async def test_an_endless_chunked_body_is_closed(short: Engine) -> None:
    reader, writer = await _open(short)
    writer.write(_head(short, "Transfer-Encoding: chunked\r\n\r\n"))
    closed = asyncio.create_task(_until_closed(reader))
    sent = 0
    while not closed.done():  # a chunk every 20 ms: progress, but never an end
        try:
            writer.write(b"2\r\n  \r\n")
            await writer.drain()
        except ConnectionError:
            break
        sent += 1
        await asyncio.sleep(0.02)
    got = await closed
    writer.close()
    assert sent > 0 and (got == b"" or got.startswith(b"HTTP/1.1 408"))


async def test_a_silent_connection_is_closed(short: Engine) -> None:
    reader, writer = await _open(short)
    assert await _until_closed(reader) == b""
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed_after_its_answer(short: Engine) -> None:
    reader, writer = await _open(short)
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
    writer.write(request_bytes("POST", "/v1/chat/completions", f"127.0.0.1:{short.port}",
                               {"Authorization": f"Bearer {short.token}"}, body))
    async with asyncio.timeout(30):
        r = await read_response(reader)
    assert r.status == 200
    assert await _until_closed(reader) == b""  # then nothing more, and closed
    writer.close()


async def test_default_limits_are_30_seconds_of_no_progress(engine: Engine) -> None:
    limits = engine.connection_limits
    assert max(limits.header_timeout, limits.body_timeout, limits.idle_timeout, limits.send_timeout) <= 30


async def test_past_the_connection_cap_a_client_gets_a_503_in_json(make_engine: EngineFactory) -> None:
    engine = await make_engine(max_connections=2)
    held = [await _open(engine) for _ in range(2)]
    await asyncio.sleep(0.05)
    # Both SDKs read this body as their own error shape.
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    with pytest.raises(openai.APIStatusError) as refused:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 503
    assert "open connections" in refused.value.message
    assert refused.value.response.headers["retry-after"] == "1"
    await client.close()
    for _, w in held:
        w.close()
    async with asyncio.timeout(30):  # a freed slot serves again
        while len(engine._runner.guarded.live) >= 2:  # type: ignore[union-attr]
            await asyncio.sleep(0.02)
    async with aiohttp.ClientSession() as s:
        r = await s.get(engine.base_url + "/health")
        assert r.status == 200


async def test_read_body_answers_late_bodies_in_the_routes_shape(make_engine: EngineFactory) -> None:
    """The pipeline reads bodies with `read_body`: a late body is a 408 in the caller's API shape."""
    from aiohttp import web

    from iron_tui.core.proxy.connections import GuardedRunner

    results: list[BodyReadError | bytes] = []

    async def handler(request: web.Request) -> web.Response:
        try:
            results.append(await read_body(request, limit=1024, timeout=0.3))
        except BodyReadError as exc:
            results.append(exc)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/", handler)
    engine = await make_engine()
    runner = GuardedRunner(app, limits=engine.connection_limits)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n"
        for first, later in ((b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345", b""),
                             (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", b"x" * 5000),
                             (chunked, b"zz\r\n")):  # a bad chunk once the body is being read
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(first)
            await asyncio.sleep(0.05)
            writer.write(later)
            async with asyncio.timeout(30):
                await read_response(reader)
            writer.close()
    finally:
        await runner.cleanup()
    assert [getattr(r, "status", r) for r in results] == [408, 413, 400]


# --- malformed HTTP, in a real process ------------------------------------------------------------------


async def test_malformed_http_is_a_json_400_and_one_log_line(tmp_path: Path) -> None:
    leaked = "sk-ant-api03-LEAKEDkeyLEAKEDkeyLEAKEDkey0123"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.update(PYTHONPATH=str(ROOT), IRON_CONFIG=str(tmp_path / "none.toml"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--openai-key", "sk-test-0123456789abcdef",
        "--token", "Zq8v-2LmRtY7wK9pXc4NbA6d", "--data-dir", str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(60):
            ready = (await proc.stdout.readline()).decode()
        port = int(ready.split("http://127.0.0.1:")[1].split("/")[0])
        answers = []
        for garbage in (f"GARBAGE {leaked} \x01\x02\r\n\r\n".encode(),
                        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Key: {leaked}\r\n"
                        "Content-Length: nope\r\n\r\n".encode()):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(garbage)
            async with asyncio.timeout(30):
                answers.append(await read_response(reader))
            writer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    for r in answers:
        assert r.status == 400 and r.headers["content-type"].startswith("application/json")
        assert r.json()["error"]["message"].startswith("malformed HTTP request: ") and leaked not in r.body.decode()
    text = out.decode() + err.decode()
    assert "Traceback" not in text and "GARBAGE" not in text and "LEAKED" not in text
    assert err.decode() == ""
    lines = [x for x in out.decode().splitlines() if "malformed HTTP request" in x]
    assert 1 <= len(lines) <= 2 and all("from 127.0.0.1" in x for x in lines)  # at most one per second


async def test_a_client_that_stops_reading_is_cut(make_engine: EngineFactory) -> None:
    """A stream nobody reads: once the socket is full, `send_timeout` later the connection is cut and the
    call is finished (and charged for what was relayed), rather than held with its upstream for ever."""
    import socket

    engine = await make_engine(send_timeout=0.5)
    body = json.dumps({"model": "gpt-4o-mini", "stream": True, "messages": [
        {"role": "user", "content": "[[sim:words=200000]] go"}]}).encode()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills fast
    sock.connect(("127.0.0.1", engine.port))
    sock.setblocking(False)
    _reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(request_bytes("POST", "/v1/chat/completions", f"127.0.0.1:{engine.port}",
                               {"Authorization": f"Bearer {engine.token}"}, body))
    await writer.drain()
    server = engine._runner.guarded  # type: ignore[union-attr]
    async with asyncio.timeout(60):  # and we read nothing meanwhile
        while not server.timed_out or not engine.history.recent() \
                or engine.history.recent(1)[0].state == "pending":
            await asyncio.sleep(0.05)
    rec = engine.history.recent(1)[0]
    assert rec.state == "error" and rec.output_tokens > 0  # cut, finished, charged for the relayed part
    assert engine.ledger.reserved == 0
    writer.close()

"""The provider client (`iron_tui.core.upstream`) against real loopback servers that misbehave on cue."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
from pathlib import Path

import pytest

from iron_tui.core.upstream import UpstreamClient
from iron_tui.core.upstream_errors import UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout
from tests.upstream_server import Factory, RawServer, answer_ok, fetch, ok


@pytest.fixture
def client(make_upstream: Factory) -> UpstreamClient:
    return make_upstream()


async def test_keeps_one_connection_alive_across_calls_and_sends_the_request_as_given(
        client: UpstreamClient) -> None:
    async with RawServer(answer_ok) as srv:
        for _ in range(5):
            r = await client.post(srv.url + "/v1/chat/completions", b'{"a":1}', {"authorization": "Bearer k"})
            assert r.status == 200 and r.headers["content-type"] == "application/json"
            assert await r.read() == b'{"ok":true}'
            r.close()
        assert srv.connections == 1 and len(srv.requests) == 5
        head = srv.requests[0].decode()
        assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
        assert "host: 127.0.0.1:" in head and "authorization: Bearer k\r\n" in head
        assert "content-length: 7\r\n" in head and head.endswith('{"a":1}')
        assert "accept-encoding: identity" in head


async def test_chunked_bodies_arrive_piece_by_piece_and_repeated_headers_are_joined(
        client: UpstreamClient) -> None:
    gate = asyncio.Event()

    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                b"x-ratelimit-a: 1\r\nVia: a\r\nvia: b\r\n\r\n5\r\nhello\r\n")
        await w.drain()
        await gate.wait()
        w.write(b"6\r\n world\r\n0\r\n\r\n")
        await w.drain()
        return True

    async with RawServer(answer) as srv:
        r = await client.post(srv.url + "/v1/x", b"{}", {})
        assert r.headers["via"] == "a, b" and r.headers["x-ratelimit-a"] == "1"
        assert await r.next_chunk() == b"hello"  # before the rest was even sent
        gate.set()
        assert await r.next_chunk() == b" world"
        assert await r.next_chunk() is None and r.complete
        r.close()
        r2 = await client.post(srv.url + "/v1/x", b"{}", {})  # the connection was reusable
        gate.set()
        assert await r2.read() == b"hello world"
        r2.close()
        assert srv.connections == 1


async def test_a_body_that_ends_with_the_connection_is_complete(client: UpstreamClient) -> None:
    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{\"old\":\"style\"}")
        await w.drain()
        return False  # close

    async with RawServer(answer) as srv:
        r = await client.post(srv.url + "/v1/x", b"{}", {})
        assert await r.read() == b'{"old":"style"}'
        r.close()
        assert client._active == 0


async def test_a_pooled_connection_the_server_closed_is_not_reused(client: UpstreamClient) -> None:
    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(ok())  # says nothing about closing, then closes: the classic keep-alive race
        await w.drain()
        return False

    async with RawServer(answer) as srv:
        for _ in range(3):
            r = await client.post(srv.url + "/v1/x", b"{}", {})
            assert await r.read() == b'{"ok":true}'
            r.close()
            await asyncio.sleep(0.05)  # let the close arrive: the pooled connection is now dead
        assert len(srv.requests) == 3 and srv.connections == 3


async def test_a_reused_connection_that_dies_without_answering_is_retried_on_a_fresh_one(
        client: UpstreamClient) -> None:
    served: dict[int, int] = {}

    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        n = served[id(w)] = served.get(id(w), 0) + 1
        if n > 1:
            return False  # the keep-alive race: the server gave up on the connection as the call arrived
        w.write(ok())
        await w.drain()
        return True

    async with RawServer(answer) as srv:
        for _ in range(2):
            r = await client.post(srv.url + "/v1/x", b"{}", {})
            assert r.status == 200 and await r.read() == b'{"ok":true}'
            r.close()
        assert srv.connections == 2 and len(srv.requests) == 3
        assert client._active == 0


async def test_a_fresh_connection_closed_without_an_answer_is_an_error_not_a_retry(
        client: UpstreamClient) -> None:
    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        return False

    async with RawServer(answer) as srv:
        with pytest.raises(UpstreamProtocolError, match="without answering"):
            await client.post(srv.url + "/v1/x", b"{}", {})
        assert len(srv.requests) == 1
        assert client._active == 0


async def test_connection_broken_mid_body_is_a_protocol_error(client: UpstreamClient) -> None:
    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await w.drain()
        return False

    async with RawServer(answer) as srv:
        r = await client.post(srv.url + "/v1/x", b"{}", {})
        with pytest.raises(UpstreamProtocolError, match="before the answer was complete"):
            await r.read()
        r.close()


async def test_garbage_instead_of_http_is_a_protocol_error(client: UpstreamClient) -> None:
    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await w.drain()
        return True

    async with RawServer(answer) as srv:
        with pytest.raises(UpstreamProtocolError, match="invalid HTTP"):
            await client.post(srv.url + "/v1/x", b"{}", {})


async def test_refused_connection_and_bad_urls_are_connect_errors(client: UpstreamClient) -> None:
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()
    with pytest.raises(UpstreamConnectError, match=f"cannot connect to 127.0.0.1:{port}"):
        await client.post(f"http://127.0.0.1:{port}/v1/x", b"{}", {})
    with pytest.raises(UpstreamConnectError, match="not an http"):
        await client.post("ftp://example/v1/x", b"{}", {})
    assert client._active == 0


async def test_silence_longer_than_the_read_timeout_fails_before_and_during_the_body(
        make_upstream: Factory) -> None:
    client = make_upstream(read_timeout=0.2)

    async def never(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async def stalls(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await w.drain()
        await asyncio.sleep(5)
        return False

    async def trickles(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(6):  # 0.6 s in all, but never 0.2 s of silence
            await asyncio.sleep(0.1)
            w.write(b"1\r\nx\r\n")
            await w.drain()
        w.write(b"0\r\n\r\n")
        await w.drain()
        return True

    async with RawServer(never) as srv:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(UpstreamTimeout):
            # (wait_for is a hang guard: without the read timeout this would never end)
            await asyncio.wait_for(client.post(srv.url + "/v1/x", b"{}", {}), 30)
        assert loop.time() - t0 > 0.15  # it waited its read timeout first (a lower bound: load cannot break it)
    async with RawServer(stalls) as srv:
        r = await client.post(srv.url + "/v1/x", b"{}", {})
        assert await r.next_chunk() == b"abc"
        with pytest.raises(UpstreamTimeout, match=r"no data from the server for 0\.2s"):
            await r.next_chunk()
        r.close()
        assert not client._all  # the stalled connection was dropped, not pooled
    async with RawServer(trickles) as srv:
        assert await fetch(client, srv) == b"xxxxxx"
    assert client._active == 0


async def test_per_host_limit_queues_calls_and_a_full_pool_times_out(make_upstream: Factory) -> None:
    client = make_upstream(limit_per_host=2, connect_timeout=0.3, read_timeout=2.0)

    async def slow(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        w.write(ok())
        await w.drain()
        return True

    async with RawServer(slow) as srv:
        results = await asyncio.gather(*(fetch(client, srv) for _ in range(6)))
        assert results == [b'{"ok":true}'] * 6
        assert srv.max_open == 2 and srv.connections == 2
        held = [await client.post(srv.url + "/v1/x", b"{}", {}) for _ in range(2)]
        with pytest.raises(UpstreamTimeout, match="no free connection"):
            await client.post(srv.url + "/v1/x", b"{}", {})
        for r in held:
            r.close()
        assert await fetch(client, srv) == b'{"ok":true}'


async def test_closing_an_unfinished_response_drops_its_connection(client: UpstreamClient) -> None:
    async def endless(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        try:
            while True:
                w.write(b"4\r\ndata\r\n")
                await w.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:
            srv.closed_by_peer.set()
        return False

    async with RawServer(endless) as srv:
        r = await client.post(srv.url + "/v1/x", b"{}", {})
        assert (await r.next_chunk() or b"").startswith(b"data")
        r.close()
        await asyncio.wait_for(srv.closed_by_peer.wait(), 2)
        assert client._active == 0 and not client._origins[("http", "127.0.0.1", int(srv.url.rsplit(":", 1)[1]))].idle


async def test_cancelling_a_call_waiting_for_its_answer_frees_its_connection(client: UpstreamClient) -> None:
    async def never(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async with RawServer(never) as srv:
        task = asyncio.create_task(client.post(srv.url + "/v1/x", b"{}", {}))
        while not srv.requests:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client._active == 0 and not client._all


async def test_a_slow_reader_holds_back_a_large_stream_without_losing_bytes(client: UpstreamClient) -> None:
    payload = bytes(range(256)) * 4096 * 8  # 8 MiB

    async def big(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(payload))
        for i in range(0, len(payload), 65536):
            w.write(payload[i:i + 65536])
            await w.drain()
        return True

    async with RawServer(big) as srv:
        r = await client.post(srv.url + "/v1/x", b"{}", {})
        got = bytearray()
        peak = 0
        while (chunk := await r.next_chunk()) is not None:
            got += chunk
            peak = max(peak, len(chunk))
            await asyncio.sleep(0.002)  # a slow consumer
        r.close()
        assert bytes(got) == payload
        assert peak < 3 << 20  # buffered at most about the high-water mark, not the whole body


async def test_a_compressed_answer_is_decoded_and_informational_answers_are_skipped(
        client: UpstreamClient) -> None:
    body = gzip.compress(b'{"zipped":true}')

    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n")
        w.write(ok(body, b"content-encoding: gzip\r\n"))
        await w.drain()
        return True

    async with RawServer(answer) as srv:
        r = await client.post(srv.url + "/v1/x", b"{}", {})
        assert r.status == 200 and "link" not in r.headers
        assert await r.read() == b'{"zipped":true}'
        r.close()


async def test_a_header_value_with_a_line_break_is_refused(client: UpstreamClient) -> None:
    async with RawServer(answer_ok) as srv:
        with pytest.raises(UpstreamConnectError, match="line break"):
            await client.post(srv.url + "/v1/x", b"{}", {"anthropic-beta": "x\r\nevil: 1"})
        assert srv.requests == []


async def test_https_with_a_trusted_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(ok(b'{"tls":true}'))
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = srv.sockets[0].getsockname()[1]
    try:
        trusting = UpstreamClient(ssl_context=ssl.create_default_context(cafile=str(cert)), read_timeout=2)
        r = await trusting.post(f"https://localhost:{port}/v1/x", b"{}", {})
        assert await r.read() == b'{"tls":true}'
        r.close()
        await trusting.close()
        strict = UpstreamClient(read_timeout=2)  # the system trust store does not know this certificate
        with pytest.raises(UpstreamConnectError, match="TLS handshake with localhost failed"):
            await strict.post(f"https://localhost:{port}/v1/x", b"{}", {})
        await strict.close()
    finally:
        srv.close()

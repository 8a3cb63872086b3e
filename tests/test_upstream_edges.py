"""The provider client (`iron_tui.core.upstream`) at the edges: trailers, broken servers, pool hand-offs,
close() mid-call, and when a request may and may not be sent a second time."""

from __future__ import annotations

import asyncio

import pytest

from iron_tui.core.upstream import UpstreamClient, UpstreamError
from tests.test_upstream_client import RawServer, ok


async def test_chunked_trailers_do_not_leak_into_the_next_response_on_the_connection() -> None:
    calls = 0

    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                    b"trailer: x-request-id\r\n\r\n3\r\nabc\r\n0\r\nx-request-id: req_1\r\n\r\n")
        else:
            w.write(ok(extra=b"x-request-id: req_2\r\n"))
        await w.drain()
        return True

    client = UpstreamClient(connect_timeout=1.0, read_timeout=1.0)
    try:
        async with RawServer(answer) as srv:
            r = await client.post(srv.url + "/v1/x", b"{}", {})
            assert await r.read() == b"abc"
            r.close()
            r2 = await client.post(srv.url + "/v1/x", b"{}", {})
            await r2.read()
            r2.close()
            assert srv.connections == 1
            assert r2.headers["x-request-id"] == "req_2"  # trailers are not headers of the next answer
    finally:
        await client.close()


async def test_stray_bytes_after_a_complete_response_do_not_poison_the_next_call() -> None:
    calls = 0

    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            # A buggy server counts characters, not bytes: the body runs past its content-length.
            text = '{"t":"café au lait"}'
            w.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(text), text.encode()))
        else:
            w.write(ok())
        await w.drain()
        return True

    client = UpstreamClient(connect_timeout=1.0, read_timeout=1.0)
    try:
        async with RawServer(answer) as srv:
            r = await client.post(srv.url + "/v1/x", b"{}", {})
            await r.read()
            r.close()
            # The server answers the second call correctly: the broken connection must not be reused.
            r2 = await client.post(srv.url + "/v1/x", b"{}", {})
            assert await r2.read() == b'{"ok":true}'
            r2.close()
    finally:
        await client.close()


async def test_a_woken_waiter_that_is_cancelled_passes_the_free_slot_on() -> None:
    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(ok())
        await w.drain()
        return True

    client = UpstreamClient(limit_per_host=1, connect_timeout=1.0, read_timeout=1.0)
    try:
        async with RawServer(answer) as srv:
            held = await client.post(srv.url + "/v1/x", b"{}", {})
            a = asyncio.create_task(client.post(srv.url + "/v1/x", b"{}", {}))
            b = asyncio.create_task(client.post(srv.url + "/v1/x", b"{}", {}))
            await asyncio.sleep(0.02)  # both are queued for the one slot
            await held.read()
            held.close()  # wakes `a` ...
            a.cancel()  # ... whose client disconnects in the same instant
            with pytest.raises(asyncio.CancelledError):
                await a
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            r = await b  # not after the connect timeout
            assert loop.time() - t0 < 0.5
            await r.read()
            r.close()
    finally:
        await client.close()


async def test_close_while_a_call_awaits_its_answer_does_not_send_it_again() -> None:
    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        if len(srv.requests) == 1:
            w.write(ok())
            await w.drain()
            return True
        await asyncio.sleep(2)  # the provider is busy generating
        return False

    client = UpstreamClient(connect_timeout=1.0, read_timeout=0.5)
    async with RawServer(answer) as srv:
        r = await client.post(srv.url + "/v1/x", b"{}", {})
        await r.read()
        r.close()  # the connection is pooled: the next call reuses it
        task = asyncio.create_task(client.post(srv.url + "/v1/x", b'{"n":2}', {}))
        while len(srv.requests) < 2:
            await asyncio.sleep(0.01)
        await client.close()  # e.g. iron-tui shutting down
        with pytest.raises((UpstreamError, asyncio.CancelledError)):
            await task
        # Aborted by close(), the connection must not look like a stale keep-alive one worth a retry.
        assert len(srv.requests) == 2 and srv.connections == 1


async def test_a_request_the_server_worked_on_before_dropping_the_connection_is_not_sent_twice() -> None:
    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        if len(srv.requests) == 2:
            await asyncio.sleep(0.3)  # generated for a while (and billed), then the connection died
            return False
        w.write(ok())
        await w.drain()
        return True

    client = UpstreamClient(connect_timeout=1.0, read_timeout=2.0)
    try:
        async with RawServer(answer) as srv:
            r = await client.post(srv.url + "/v1/x", b"{}", {})
            await r.read()
            r.close()
            with pytest.raises(UpstreamError):
                r = await client.post(srv.url + "/v1/x", b"{}", {})
                r.close()
            assert len(srv.requests) == 2  # a paid-for call is never silently repeated
    finally:
        await client.close()


async def test_the_retry_after_a_dead_pooled_connection_uses_a_fresh_connection() -> None:
    served: dict[int, int] = {}

    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        n = served[id(w)] = served.get(id(w), 0) + 1
        if n > 1:
            return False  # the keep-alive race of the existing test, on every pooled connection
        await asyncio.sleep(0.02)
        w.write(ok())
        await w.drain()
        return True

    client = UpstreamClient(connect_timeout=1.0, read_timeout=1.0)
    try:
        async with RawServer(answer) as srv:
            async def call() -> bytes:
                r = await client.post(srv.url + "/v1/x", b"{}", {})
                try:
                    return await r.read()
                finally:
                    r.close()

            assert await asyncio.gather(call(), call()) == [b'{"ok":true}'] * 2  # two pooled connections
            # Both pooled connections are dead; the retry must not pick the second dead one.
            assert await call() == b'{"ok":true}'
    finally:
        await client.close()


async def test_a_header_value_outside_latin_1_is_sent_as_utf8() -> None:
    client = UpstreamClient(connect_timeout=1.0, read_timeout=1.0)

    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(ok())
        await w.drain()
        return True

    try:
        async with RawServer(answer) as srv:
            r = await client.post(srv.url + "/v1/x", b"{}", {"idempotency-key": "заказ-1"})
            assert await r.read() == b'{"ok":true}'
            assert "idempotency-key: заказ-1\r\n".encode() in srv.requests[0]
    finally:
        await client.close()

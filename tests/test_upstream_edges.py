"""The provider client (`iron_tui.core.upstream`) at the edges: trailers, broken servers, pool hand-offs,
close() mid-call, and when a request may and may not be sent a second time."""

from __future__ import annotations

import asyncio

import pytest

from iron_tui.core.upstream import UpstreamError
from tests.upstream_server import Answer, Factory, RawServer, answer_ok, fetch, ok


def nth_answer(first: bytes, later: bytes) -> Answer:
    """An answer function: `first` for the first request of the server, `later` for every other."""

    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(first if len(srv.requests) == 1 else later)
        await w.drain()
        return True

    return answer


async def test_chunked_trailers_do_not_leak_into_the_next_response_on_the_connection(
        make_upstream: Factory) -> None:
    answer = nth_answer(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                        b"trailer: x-request-id\r\n\r\n3\r\nabc\r\n0\r\nx-request-id: req_1\r\n\r\n",
                        ok(extra=b"x-request-id: req_2\r\n"))
    client = make_upstream()
    async with RawServer(answer) as srv:
        assert await fetch(client, srv) == b"abc"
        r2 = await client.post(srv.url + "/v1/x", b"{}", {})
        await r2.read()
        assert srv.connections == 1
        assert r2.headers["x-request-id"] == "req_2"  # trailers are not headers of the next answer


async def test_stray_bytes_after_a_complete_response_do_not_poison_the_next_call(make_upstream: Factory) -> None:
    # A buggy server counts characters, not bytes: the body runs past its content-length.
    text = '{"t":"café au lait"}'
    answer = nth_answer(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(text), text.encode()), ok())
    client = make_upstream()
    async with RawServer(answer) as srv:
        await fetch(client, srv)
        # The server answers the second call correctly: the broken connection must not be reused.
        assert await fetch(client, srv) == b'{"ok":true}'


async def test_a_woken_waiter_that_is_cancelled_passes_the_free_slot_on(make_upstream: Factory) -> None:
    # A connect timeout (which includes the wait for a free slot) far beyond the hang guard below: `b`
    # gets through only if the slot `a` gave up is passed on.
    client = make_upstream(limit_per_host=1, connect_timeout=600.0)
    async with RawServer(answer_ok) as srv:
        held = await client.post(srv.url + "/v1/x", b"{}", {})
        a = asyncio.create_task(client.post(srv.url + "/v1/x", b"{}", {}))
        b = asyncio.create_task(client.post(srv.url + "/v1/x", b"{}", {}))
        await asyncio.sleep(0.02)  # both are queued for the one slot
        await held.read()  # read to its end: frees the slot and wakes `a` ...
        a.cancel()  # ... whose client disconnects in the same instant
        with pytest.raises(asyncio.CancelledError):
            await a
        r = await asyncio.wait_for(b, 30)
        assert await r.read() == b'{"ok":true}'


async def test_close_while_a_call_awaits_its_answer_does_not_send_it_again(make_upstream: Factory) -> None:
    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        if len(srv.requests) == 1:
            w.write(ok())
            await w.drain()
            return True
        await asyncio.sleep(2)  # the provider is busy generating
        return False

    client = make_upstream(read_timeout=0.5)
    async with RawServer(answer) as srv:
        await fetch(client, srv)  # the connection is pooled: the next call reuses it
        task = asyncio.create_task(client.post(srv.url + "/v1/x", b'{"n":2}', {}))
        while len(srv.requests) < 2:
            await asyncio.sleep(0.01)
        await client.close()  # e.g. iron-tui shutting down
        with pytest.raises(UpstreamError, match="closed"):
            await task
        # Aborted by close(), the connection must not look like a stale keep-alive one worth a retry.
        assert len(srv.requests) == 2 and srv.connections == 1


async def test_a_request_the_server_worked_on_before_dropping_the_connection_is_not_sent_twice(
        make_upstream: Factory) -> None:
    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        if len(srv.requests) == 2:
            await asyncio.sleep(0.3)  # generated for a while (and billed), then the connection died
            return False
        w.write(ok())
        await w.drain()
        return True

    client = make_upstream(read_timeout=2.0)
    async with RawServer(answer) as srv:
        await fetch(client, srv)
        with pytest.raises(UpstreamError, match="without answering"):
            await fetch(client, srv)
        assert len(srv.requests) == 2  # a paid-for call is never silently repeated


async def test_the_retry_after_a_dead_pooled_connection_uses_a_fresh_connection(make_upstream: Factory) -> None:
    served: dict[int, int] = {}

    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        n = served[id(w)] = served.get(id(w), 0) + 1
        if n > 1:
            return False  # the keep-alive race, on every pooled connection
        await asyncio.sleep(0.02)
        w.write(ok())
        await w.drain()
        return True

    client = make_upstream()
    async with RawServer(answer) as srv:
        assert await asyncio.gather(fetch(client, srv), fetch(client, srv)) == [b'{"ok":true}'] * 2
        # Both pooled connections are dead; the retry must not pick the second dead one.
        assert await fetch(client, srv) == b'{"ok":true}'


async def test_a_header_value_outside_latin_1_is_sent_as_utf8(make_upstream: Factory) -> None:
    client = make_upstream()
    async with RawServer(answer_ok) as srv:
        r = await client.post(srv.url + "/v1/x", b"{}", {"idempotency-key": "заказ-1"})
        assert await r.read() == b'{"ok":true}'
        assert "idempotency-key: заказ-1\r\n".encode() in srv.requests[0]

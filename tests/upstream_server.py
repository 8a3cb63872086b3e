"""A scripted HTTP server for the provider-client tests: it records connections and requests, and a
test's `answer` function writes whatever bytes (right or broken) the case needs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from iron_tui.core.upstream import UpstreamClient

Answer = Callable[["RawServer", bytes, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    """A scripted HTTP server: records connections and requests; `handler` answers each request."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.open = 0
        self.max_open = 0
        self.requests: list[bytes] = []
        self.closed_by_peer = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    self.closed_by_peer.set()
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                if not await self.answer(self, head + body, writer):
                    break
        finally:
            self.open -= 1
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"
            % (len(body), extra, body))


async def answer_ok(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
    w.write(ok())
    await w.drain()
    return True


Factory = Callable[..., UpstreamClient]


@pytest.fixture
async def make_upstream() -> AsyncIterator[Factory]:
    """UpstreamClients with short timeouts (overridable), all closed at the end of the test."""
    made: list[UpstreamClient] = []

    def make(**kw: float) -> UpstreamClient:
        c = UpstreamClient(**{"connect_timeout": 1.0, "read_timeout": 1.0, **kw})  # type: ignore[arg-type]
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


async def fetch(client: UpstreamClient, srv: RawServer, body: bytes = b"{}") -> bytes:
    """One whole call: POST, read the body, release the connection."""
    r = await client.post(srv.url + "/v1/x", body, {})
    try:
        return await r.read()
    finally:
        r.close()

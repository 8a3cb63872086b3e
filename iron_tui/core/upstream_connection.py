"""One pooled connection to a provider origin (`UpstreamConnection`, an asyncio protocol feeding httptools)
and the per-origin record of the pool (`Origin`); see upstream.py."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

import httptools

from iron_tui.core.upstream_errors import StaleConnection, UpstreamError, UpstreamProtocolError
from iron_tui.core.upstream_response import UpstreamResponse

if TYPE_CHECKING:
    from iron_tui.core.upstream import UpstreamClient

_MAX_HEADERS = 256
# A reused connection that dies this soon after the request went out, before any answer, was closed by
# the server as the request crossed (keep-alive race): safe to send again. Later, it may have been worked on.
_RETRY_WINDOW_S = 0.25


class Origin:
    """One scheme, host and port: its idle connections, how many are in use, who waits for one."""

    __slots__ = ("active", "host", "host_header", "idle", "port", "ssl", "waiters")

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.ssl = scheme == "https"
        default = 443 if self.ssl else 80
        name = f"[{host}]" if ":" in host else host
        self.host_header = name if port == default else f"{name}:{port}"
        self.idle: deque[tuple[UpstreamConnection, float]] = deque()
        self.active = 0
        self.waiters: deque[asyncio.Future[None]] = deque()


class UpstreamConnection(asyncio.Protocol):
    """One TCP (or TLS) connection: at most one exchange at a time."""

    def __init__(self, client: UpstreamClient, origin: Origin) -> None:
        self.client = client
        self.origin = origin
        self.in_use = True
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.usable = False
        self.response: UpstreamResponse | None = None
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self._lost = False
        self._aborted = False
        self._sent_at = 0.0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.usable = True

    def data_received(self, data: bytes) -> None:
        resp = self.response
        if resp is None or resp.complete:
            # Bytes nobody asked for: the connection cannot be trusted for the next exchange.
            self.abort()
            if resp is not None:
                resp._keep_alive = False
            return
        resp._got_bytes = True
        resp._last_data = resp._loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            # Even after a complete answer (e.g. a server that miscounted content-length): the parser
            # is stuck, so the connection must not serve another call.
            resp._keep_alive = False
            if isinstance(exc, httptools.HttpParserUpgrade):
                resp._fail(UpstreamProtocolError("the server switched protocols"))
            else:
                cause = exc.__cause__ or exc.__context__
                reason = cause if isinstance(cause, UpstreamError) else exc
                resp._fail(UpstreamProtocolError(f"invalid HTTP from the server: {reason}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.usable = False
        resp = self.response
        if resp is not None and not resp.complete:
            if resp._eof_delimited and resp._head_done and exc is None and not self._aborted:
                resp._on_complete()  # an HTTP/1.0-style body ends with the connection
            elif not resp._got_bytes:
                quick = not self._aborted and resp._loop.time() - self._sent_at < _RETRY_WINDOW_S
                resp._fail(StaleConnection(quick))
            else:
                reason = f": {exc}" if exc else ""
                resp._fail(UpstreamProtocolError(f"the connection closed before the answer was complete{reason}"))

    # httptools callbacks (forwarded to the current response)

    def on_header(self, name: bytes, value: bytes) -> None:
        resp = self.response
        if resp is None or resp._head_done:
            return  # chunked trailers: not headers of this answer, and never of the next one
        raw = self.raw_headers
        raw.append((name, value))
        if len(raw) > _MAX_HEADERS:
            raise UpstreamProtocolError(f"more than {_MAX_HEADERS} response headers")

    def on_headers_complete(self) -> None:
        assert self.response is not None
        raw, self.raw_headers = self.raw_headers, []
        self.response._on_headers_complete(self.parser.get_status_code(), self.parser.should_keep_alive(), raw)

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._on_body(body)

    def on_message_complete(self) -> None:
        resp = self.response
        assert resp is not None
        self.raw_headers = []
        if not resp._head_done:
            return  # the end of an informational (1xx) answer; the real one follows
        resp._keep_alive = self.parser.should_keep_alive()
        resp._on_complete()

    # exchange

    async def send(self, head: bytes, body: bytes) -> UpstreamResponse:
        if self._lost or self.transport is None or self.transport.is_closing():
            raise StaleConnection()
        resp = UpstreamResponse(self)
        self.response = resp
        self.usable = False
        self._sent_at = resp._loop.time()
        transport = self.transport
        if len(body) < 16384:
            transport.write(head + body)
        else:
            transport.writelines((head, body))
        await resp._wait_head()
        return resp

    def finished(self, resp: UpstreamResponse) -> None:
        if self.response is not resp:
            return
        self.response = None
        if resp.complete and resp._keep_alive and not self._lost:
            self.usable = True
            if resp._paused and self.transport is not None:
                self.transport.resume_reading()
            self.client._release(self)
        else:
            self.usable = False
            self.client._discard(self)

    def abort(self) -> None:
        self.usable = False
        self._aborted = True
        if self.transport is not None and not self._lost:
            self.transport.abort()

"""A cheap HTTP/1.1 keep-alive client for the benchmarks (the load generator).

On a 2-core machine the load generator shares the cores with the simulator and the proxy, so its own
cost per call must be small next to the proxy's, or the benchmark measures the client. aiohttp's
ClientSession costs ~220 µs of CPU per call; this client (asyncio.Protocol + httptools' C parser,
pre-encoded request bytes, no per-call header objects) costs ~45-70 µs on uvloop (more on a busy
machine), measured as this process's CPU time per call at 32 connections.

    req = encode_request("POST", "http://127.0.0.1:8080/v1/chat/completions",
                         {"content-type": "application/json"}, body)
    conn = Connection(req.host, req.port)
    r = await conn.request(req)          # raises HTTPStatusError on a non-200, with the body
    r.status, r.total_ms, r.ttfc_ms      # ttfc: time to the first body chunk (streams)
    conn.close()

Scope: plain http://, one request in flight per connection (no pipelining), responses framed by
Content-Length, chunked encoding (decoded by httptools) or the end of the connection. A server's
`Connection: close` (or an HTTP/1.0 response) makes the next request reconnect. Not for HEAD requests,
1xx interim responses or upgrades.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

__all__ = [
    "Connection",
    "HTTPStatusError",
    "Pool",
    "ProtocolError",
    "Request",
    "Response",
    "ServerDisconnected",
    "encode_request",
]

_perf = time.perf_counter


class ProtocolError(Exception):
    """The server sent something that is not a valid HTTP/1.1 response, or did not answer in time."""


class ServerDisconnected(ProtocolError):
    """The connection ended before the response was complete."""


class HTTPStatusError(Exception):
    """A response with a status other than 200; the message carries the body (it explains why)."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        super().__init__(f"HTTP {status}: {body.decode('utf-8', 'replace')[:2000]}")


@dataclass(frozen=True, slots=True)
class Request:
    """A request encoded once, sent many times: the bytes never change between calls."""

    host: str
    port: int
    data: bytes


def encode_request(method: str, url: str, headers: Mapping[str, str] | None = None,
                   body: bytes = b"") -> Request:
    """Request line, Host, the given headers, Content-Length (when there is a body or the method
    usually has one) and the body, as bytes."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http://host[:port]/path URLs are supported, not {url!r}")
    port = parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    for name, value in (headers or {}).items():
        if name.lower() in ("host", "content-length", "transfer-encoding"):
            raise ValueError(f"header {name!r} is set by encode_request")
        if any(c in name or c in value for c in "\r\n"):
            raise ValueError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}")
    if body or method.upper() in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return Request(parts.hostname, port, head + body)


@dataclass(slots=True)
class Response:
    """Times are time.perf_counter() values: `start` just before the request was written, `first`
    when the first body chunk arrived (= `end` for an empty body), `end` when the response was complete."""

    status: int
    start: float
    first: float
    end: float
    body: bytes  # only when asked for (keep_body=True) or the status is not 200; b"" otherwise

    @property
    def total_ms(self) -> float:
        return (self.end - self.start) * 1000

    @property
    def ttfc_ms(self) -> float:
        return (self.first - self.start) * 1000


class _Wire(asyncio.Protocol):
    """One TCP connection and its parser. Per-response state is reset before each request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.waiter: asyncio.Future[float] | None = None
        self.reset(False)

    def reset(self, keep_body: bool) -> None:
        self.status = 0
        self.first = 0.0
        self.chunks: list[bytes] | None = [] if keep_body else None
        self.framed = False  # Content-Length or chunked: otherwise the body ends with the connection
        self.headers_done = False
        self.got_data = False

    def fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_data = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.closed = True
            self.fail(ProtocolError(f"invalid HTTP response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None:
            return
        if self.headers_done and not self.framed:
            self.on_message_complete()  # an unframed body ends with the connection
            return
        why = f" ({exc})" if exc else ""
        self.fail(ServerDisconnected(f"connection closed before the response was complete{why}"))

    # httptools callbacks (they must not raise: an exception would surface as a parser error)

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or name == b"transfer-encoding":
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        status = self.status = self.parser.get_status_code()
        if status != 200 and self.chunks is None:
            self.chunks = []  # kept for the error message
        if status == 204 or status == 304:
            self.framed = True  # no body by definition

    def on_body(self, body: bytes) -> None:
        if not self.first:
            self.first = _perf()
        if self.chunks is not None:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        end = _perf()
        if not self.closed and not self.parser.should_keep_alive():
            self.closed = True  # `Connection: close` or HTTP/1.0: the next request reconnects
            if self.transport is not None:
                self.transport.close()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(end)


class Connection:
    """One persistent connection, one request at a time. It connects on first use and reconnects when
    the server closed it; a request that finds a reused connection dead before any byte of the answer
    arrived (the server's keep-alive timeout raced our write) is retried once on a fresh one."""

    def __init__(self, host: str, port: int, *, timeout: float | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout  # seconds for connect and for each whole response; None: no limit
        self.connects = 0  # how many TCP connections this object has opened (tests, reconnect stats)
        self._wire: _Wire | None = None
        self._reused = False

    async def _connect(self) -> _Wire:
        loop = asyncio.get_running_loop()
        _, wire = await asyncio.wait_for(loop.create_connection(_Wire, self.host, self.port), self.timeout)
        self.connects += 1
        self._wire = wire
        self._reused = False
        return wire

    async def request(self, req: Request, *, keep_body: bool = False, check: bool = True) -> Response:
        """Send `req` and wait for the whole response. With `check`, a non-200 raises HTTPStatusError."""
        loop = asyncio.get_running_loop()
        for attempt in (0, 1):
            wire = self._wire
            if wire is None or wire.closed:
                wire = await self._connect()
            reused, self._reused = self._reused, True
            wire.reset(keep_body)
            waiter: asyncio.Future[float] = loop.create_future()
            wire.waiter = waiter
            # A per-call timer costs ~5-10 µs (a tenth of the call), so it is opt-in; the benchmark
            # bounds whole phases instead.
            timer = None if self.timeout is None else loop.call_later(self.timeout, self._expire, wire)
            start = _perf()
            wire.transport.write(req.data)  # type: ignore[union-attr]
            try:
                end = await waiter
            except BaseException as exc:
                # Cancelled, timed out or broken: the connection may still carry a late answer, so it
                # is never reused.
                self._drop(wire)
                if isinstance(exc, ServerDisconnected) and attempt == 0 and reused and not wire.got_data:
                    continue
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            body = b"".join(wire.chunks) if wire.chunks else b""
            resp = Response(wire.status, start, wire.first or end, end, body)
            if check and resp.status != 200:
                raise HTTPStatusError(resp.status, body)
            return resp
        raise AssertionError("unreachable")

    def _expire(self, wire: _Wire) -> None:
        wire.fail(ProtocolError(f"no complete response within {self.timeout:g} s"))

    @staticmethod
    def _drop(wire: _Wire) -> None:
        wire.closed = True
        wire.waiter = None
        if wire.transport is not None:
            wire.transport.close()

    def close(self) -> None:
        wire, self._wire = self._wire, None
        if wire is not None:
            self._drop(wire)


class Pool:
    """Connections to one host:port for callers that do not keep their own (open-loop load): each call
    takes an idle connection or opens one, and gives it back after. Grows to the peak concurrency."""

    def __init__(self, host: str, port: int, *, timeout: float | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._idle: list[Connection] = []
        self._all: list[Connection] = []

    async def request(self, req: Request, *, keep_body: bool = False, check: bool = True) -> Response:
        if self._idle:
            conn = self._idle.pop()
        else:
            conn = Connection(self.host, self.port, timeout=self.timeout)
            self._all.append(conn)
        try:
            return await conn.request(req, keep_body=keep_body, check=check)
        finally:
            self._idle.append(conn)  # even after an error: a dead connection reconnects on next use

    @property
    def size(self) -> int:
        return len(self._all)

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._idle.clear()
        self._all.clear()

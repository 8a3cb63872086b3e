"""The provider client: a lean HTTP/1.1 keep-alive client for the proxy's hot path.

Why not aiohttp's `ClientSession` here: a call through it costs the calling process ~230 µs of CPU
(cookie jar, tracing, auto headers, request/response objects), against ~95 µs through this client
(`bench/upstream_clients.py`); the proxy's per-call CPU fell from ~800 to ~600 µs with the switch.
Parsing is httptools (llhttp, the parser Node.js and uvicorn use), so framing — content-length, chunked,
keep-alive — is not hand-written. The control server and `/v1/models` still use aiohttp: they are not
on the per-call path.

What it does: per-origin pools of persistent connections with total and per-host limits, a connect
timeout (including the wait for a free connection) and a read timeout (the longest silence between bytes),
TLS with the system trust store, Happy Eyeballs and a DNS cache like aiohttp's, one retry when a reused
keep-alive connection dies right as the request goes out (never once the server may have worked on it),
back-pressure on streamed bodies, and gzip or deflate decoding should a server compress although asked
not to. Whatever happens, a response is either read to its end and its connection reused, or its
connection is closed — closing an unfinished response is how a client disconnect cancels the upstream
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import zlib
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import aiohappyeyeballs
import httptools

# Bytes buffered from a streamed body before the socket stops being read (back-pressure).
_HIGH_WATER = 1 << 20
_MAX_HEADERS = 256
# A reused connection that dies this soon after the request went out, before any answer, was closed by
# the server as the request crossed (keep-alive race): safe to send again. Later, it may have been worked on.
_RETRY_WINDOW_S = 0.25
_DNS_TTL_S = 300.0


class UpstreamError(Exception):
    """Base of everything this client raises for a failed exchange."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made (refused, DNS, TLS): the request was never sent."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """Connecting, or waiting for the next bytes of the answer, took longer than allowed."""


class UpstreamProtocolError(UpstreamError):
    """The connection broke mid-answer or the bytes were not valid HTTP."""


class _Origin:
    __slots__ = ("active", "host", "host_header", "idle", "port", "ssl", "waiters")

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.ssl = scheme == "https"
        default = 443 if self.ssl else 80
        name = f"[{host}]" if ":" in host else host
        self.host_header = name if port == default else f"{name}:{port}"
        self.idle: deque[tuple[_Connection, float]] = deque()
        self.active = 0
        self.waiters: deque[asyncio.Future[None]] = deque()


class UpstreamClient:
    """One long-lived client for all provider calls (see the module docstring)."""

    def __init__(
        self,
        *,
        limit: int = 512,
        limit_per_host: int = 256,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        keepalive_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.limit = limit
        self.limit_per_host = limit_per_host
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive_timeout = keepalive_timeout
        self._ssl = ssl_context
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._bases: dict[str, _Origin] = {}
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._all: set[_Connection] = set()
        self._dns: dict[tuple[str, int], tuple[float, list[Any]]] = {}
        # Read timeouts: one sweep over the responses waiting for bytes, not a timer per wait (a timer
        # per call was a measurable share of the hot path). A timeout fires within a quarter of itself.
        self._waiting: set[UpstreamResponse] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_every = min(1.0, max(0.01, read_timeout / 4))
        self.closed = False

    # --- public ----------------------------------------------------------------------------

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> UpstreamResponse:
        """Send a POST and return once the answer's status and headers have arrived."""
        return await self.request("POST", url, body, headers)

    async def request(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> UpstreamResponse:
        if method == "HEAD":
            raise ValueError("HEAD is not supported: its answer has no body to frame")
        if self.closed:
            raise UpstreamConnectError("the upstream client is closed")
        origin, target = self._resolve(url)
        head = _encode_head(method, target, origin.host_header, headers, len(body))
        # A dead keep-alive connection is found out only by using it: the server closed it as the request
        # went out (the keep-alive race). When that happens within moments of sending and before any byte
        # of the answer, the server cannot have worked on the request, so it is sent once more on a fresh
        # connection. A connection that dies later may have been billed for: that is an error, never a
        # silent second call.
        for attempt in (0, 1):
            conn, reused = await self._acquire(origin, fresh=attempt > 0)
            try:
                resp = await conn.send(head, body)
            except _StaleConnection as exc:
                self._discard(conn)
                if attempt == 0 and reused and exc.quick and not self.closed:
                    continue
                if self.closed:
                    raise UpstreamConnectError("the upstream client was closed") from None
                raise UpstreamProtocolError("the server closed the connection without answering") from None
            except BaseException:
                self._discard(conn)
                raise
            return resp
        raise AssertionError("unreachable")

    async def close(self) -> None:
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._all):
            conn.abort()
        self._all.clear()
        for origin in self._origins.values():
            origin.idle.clear()
            for fut in origin.waiters:
                if not fut.done():
                    fut.set_result(None)
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)

    # --- read timeouts ---------------------------------------------------------------------

    def _watch(self, resp: UpstreamResponse) -> set[UpstreamResponse]:
        self._waiting.add(resp)
        if self._sweeper is None:
            self._sweeper = resp._loop.call_later(self._sweep_every, self._sweep)
        return self._waiting

    def _sweep(self) -> None:
        self._sweeper = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        limit = loop.time() - self.read_timeout
        for resp in [r for r in self._waiting if r._last_data <= limit]:
            self._waiting.discard(resp)
            resp._timed_out(self.read_timeout)
        if self._waiting and not self.closed:
            self._sweeper = loop.call_later(self._sweep_every, self._sweep)

    # --- connections -----------------------------------------------------------------------

    def _resolve(self, url: str) -> tuple[_Origin, str]:
        """(origin, request target) for a URL; origins are cached so the hot path does no URL parsing."""
        cut = url.find("/", url.find("//") + 2)
        base, target = (url, "/") if cut < 0 else (url[:cut], url[cut:])
        origin = self._bases.get(base)
        if origin is None:
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UpstreamConnectError(f"not an http(s) URL: {url!r}")
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                raise UpstreamConnectError(f"bad port in {url!r}") from None
            key = (parts.scheme, parts.hostname, port)
            origin = self._origins.get(key)
            if origin is None:
                origin = self._origins[key] = _Origin(parts.scheme, parts.hostname, port)
            if len(self._bases) < 1024:
                self._bases[base] = origin
        return origin, target

    async def _acquire(self, origin: _Origin, *, fresh: bool = False) -> tuple[_Connection, bool]:
        """A connection for one exchange (counted as in use until released or discarded)."""
        if self._active >= self.limit or origin.active >= self.limit_per_host:
            await self._wait_for_slot(origin)
        if self.closed:
            raise UpstreamConnectError("the upstream client was closed")
        self._active += 1
        origin.active += 1
        now = asyncio.get_running_loop().time()
        idle = origin.idle
        while idle and not fresh:
            conn, since = idle.pop()  # the most recently used is the least likely to have expired
            if conn.usable and now - since < self.keepalive_timeout:
                conn.in_use = True
                return conn, True
            conn.abort()
            self._all.discard(conn)
        try:
            conn = await self._connect(origin)
        except BaseException:
            self._active -= 1
            origin.active -= 1
            self._wake(origin)
            raise
        if self.closed:  # closed while connecting: this connection must not outlive the client
            self._discard(conn)
            raise UpstreamConnectError("the upstream client was closed")
        return conn, False

    async def _wait_for_slot(self, origin: _Origin) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        while self._active >= self.limit or origin.active >= self.limit_per_host:
            if self.closed:
                raise UpstreamConnectError("the upstream client is closed")
            fut: asyncio.Future[None] = loop.create_future()
            queue = origin.waiters if origin.active >= self.limit_per_host else self._waiters
            queue.append(fut)
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await fut
            except BaseException as exc:
                with contextlib.suppress(ValueError):
                    queue.remove(fut)
                if fut.done() and not fut.cancelled():
                    self._wake(origin)  # woken for a free slot but leaving: hand it to the next waiter
                if isinstance(exc, TimeoutError):
                    raise UpstreamTimeout(
                        f"no free connection within {self.connect_timeout:g}s (limit {self.limit}, "
                        f"{self.limit_per_host} per host)") from None
                raise
            finally:
                with contextlib.suppress(ValueError):
                    queue.remove(fut)

    async def _connect(self, origin: _Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        ctx: ssl.SSLContext | None = None
        if origin.ssl:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            ctx = self._ssl
        try:
            async with asyncio.timeout(self.connect_timeout):
                infos = await self._addresses(origin)
                try:
                    # Happy Eyeballs: a silently dead IPv6 route costs 0.25 s, not the connect timeout.
                    sock = await aiohappyeyeballs.start_connection(infos, happy_eyeballs_delay=0.25)
                except OSError:
                    self._dns.pop((origin.host, origin.port), None)
                    raise
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, origin), sock=sock, ssl=ctx,
                    server_hostname=origin.host if ctx else None)
        except TimeoutError:
            raise UpstreamTimeout(f"connecting to {origin.host}:{origin.port} took longer than "
                                  f"{self.connect_timeout:g}s") from None
        except ssl.SSLError as exc:
            raise UpstreamConnectError(f"TLS handshake with {origin.host} failed: {exc.reason or exc}") from None
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise UpstreamConnectError(f"cannot connect to {origin.host}:{origin.port}: {reason}") from None
        self._all.add(conn)
        return conn

    async def _addresses(self, origin: _Origin) -> list[Any]:
        """The host's addresses, cached for a few minutes (new connections are made in bursts)."""
        key = (origin.host, origin.port)
        now = asyncio.get_running_loop().time()
        cached = self._dns.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        infos = await asyncio.get_running_loop().getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"no address for {origin.host}")
        self._dns[key] = (now + _DNS_TTL_S, list(infos))
        return list(infos)

    def _release(self, conn: _Connection) -> None:
        """A finished exchange: keep the connection for the next call if the server allows it."""
        self._done_with(conn)
        if conn.usable and not self.closed:
            conn.origin.idle.append((conn, asyncio.get_running_loop().time()))
        else:
            conn.abort()
            self._all.discard(conn)

    def _discard(self, conn: _Connection) -> None:
        self._done_with(conn)
        conn.abort()
        self._all.discard(conn)

    def _done_with(self, conn: _Connection) -> None:
        if conn.in_use:
            conn.in_use = False
            self._active -= 1
            conn.origin.active -= 1
            self._wake(conn.origin)

    def _wake(self, origin: _Origin) -> None:
        for queue in (origin.waiters, self._waiters):
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)
                    return


class _StaleConnection(Exception):
    """A connection died before any byte of the answer arrived; `quick` when that was within moments of
    sending (the keep-alive race) and not our own doing."""

    def __init__(self, quick: bool = True) -> None:
        super().__init__()
        self.quick = quick


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: at most one exchange at a time."""

    def __init__(self, client: UpstreamClient, origin: _Origin) -> None:
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
                resp._fail(_StaleConnection(quick))
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
            raise _StaleConnection()
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


class UpstreamResponse:
    """The answer to one request: status and headers now, the body by `read()` or `next_chunk()`.

    Call `close()` when done (a `finally`): a fully read body returns the connection to the pool, anything
    else closes it.
    """

    __slots__ = (
        "_body",
        "_buffered",
        "_conn",
        "_decoder",
        "_eof_delimited",
        "_error",
        "_got_bytes",
        "_head_done",
        "_keep_alive",
        "_last_data",
        "_loop",
        "_paused",
        "_waiter",
        "closed",
        "complete",
        "headers",
        "status",
    )

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self._loop = asyncio.get_running_loop()
        self.status = 0
        self.headers: dict[str, str] = {}
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._decoder: Any = None
        self._eof_delimited = False
        self._head_done = False
        self._keep_alive = False
        self._got_bytes = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._last_data = self._loop.time()
        self.complete = False
        self.closed = False

    # --- reading ---------------------------------------------------------------------------

    async def read(self) -> bytes:
        """The whole (remaining) body."""
        parts: list[bytes] = []
        while (chunk := await self.next_chunk()) is not None:
            parts.append(chunk)
        return b"".join(parts)

    async def next_chunk(self) -> bytes | None:
        """The next bytes of the body as they arrived, or None at its end."""
        while True:
            if self._body:
                if len(self._body) == 1:
                    chunk = self._body.popleft()
                else:
                    chunk = b"".join(self._body)
                    self._body.clear()
                self._buffered = 0
                if self._paused and self._conn.transport is not None:
                    self._paused = False
                    self._last_data = self._loop.time()  # silence while paused was ours, not the server's
                    self._conn.transport.resume_reading()
                return chunk
            if self._error is not None:
                raise self._error
            if self.complete:
                self.close()  # read to its end: the connection can serve the next call right away
                return None
            await self._wait()

    def fail(self, exc: BaseException) -> None:
        """End the body with `exc` now (e.g. at shutdown): a `next_chunk()` waiting or to come raises it
        once what already arrived has been read; the connection is dropped."""
        self._fail(exc)
        self._conn.abort()

    def close(self) -> None:
        """Done with this response: reuse the connection if the body was read to its end, else drop it."""
        if self.closed:
            return
        self.closed = True
        self._conn.finished(self)

    # --- waiting ---------------------------------------------------------------------------

    async def _wait_head(self) -> None:
        try:
            while not self._head_done:
                if self._error is not None:
                    raise self._error
                await self._wait()
        except BaseException:
            self.closed = True
            raise

    async def _wait(self) -> None:
        fut = self._loop.create_future()
        self._waiter = fut
        waiting = self._conn.client._watch(self)
        try:
            await fut
        finally:
            self._waiter = None
            waiting.discard(self)

    def _timed_out(self, timeout: float) -> None:
        self._fail(UpstreamTimeout(f"no data from the server for {timeout:g}s"))
        self._conn.abort()

    def _wake(self) -> None:
        fut = self._waiter
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None and not self.complete:
            self._error = exc
        self._wake()

    # --- parser events ---------------------------------------------------------------------

    def _on_headers_complete(self, status: int, keep_alive: bool, raw: list[tuple[bytes, bytes]]) -> None:
        if status < 200:
            return  # 100 Continue / 103 Early Hints: not the answer
        headers = {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in raw}
        if len(headers) != len(raw):  # a repeated header: join its values, as HTTP allows
            headers = {}
            for n, v in raw:
                name, value = n.decode("latin-1").lower(), v.decode("latin-1")
                prev = headers.get(name)
                headers[name] = value if prev is None else f"{prev}, {value}"
        self.headers = headers
        self.status = status
        self._keep_alive = keep_alive
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._eof_delimited = not chunked and "content-length" not in headers and status not in (204, 304)
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = _Deflate()
        self._head_done = True
        self._wake()

    def _on_body(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                raise UpstreamProtocolError(f"cannot decode the compressed body: {exc}") from None
            if not data:
                return
        self._body.append(data)
        self._buffered += len(data)
        if self._buffered > _HIGH_WATER and not self._paused and self._conn.transport is not None:
            self._paused = True
            self._conn.transport.pause_reading()
        self._wake()

    def _on_complete(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._body.append(tail)
        self.complete = True
        self._wake()


class _Deflate:
    """`deflate` is zlib-wrapped by the spec but raw in some servers: accept both."""

    def __init__(self) -> None:
        self._d: Any = None
        self._first = b""

    def decompress(self, data: bytes) -> bytes:
        if self._d is None:
            self._first += data
            if len(self._first) < 2:
                return b""
            zlib_wrapped = (self._first[0] & 0x0F) == 8 and ((self._first[0] << 8) | self._first[1]) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
            data, self._first = self._first, b""
        out: bytes = self._d.decompress(data)
        return out

    def flush(self) -> bytes:
        return self._d.flush() if self._d is not None else b""


def _encode_head(method: str, target: str, host: str, headers: dict[str, str], length: int) -> bytes:
    lines = [f"{method} {target} HTTP/1.1\r\nhost: {host}\r\n"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            # Header injection: a forwarded client header must never split the request.
            raise UpstreamConnectError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}\r\n")
    # Identity: a relayed stream must not wait on a compressor's buffer, and loopback gains nothing.
    lines.append(f"accept-encoding: identity\r\ncontent-length: {length}\r\n\r\n")
    # UTF-8 as aiohttp sends it; surrogateescape gives back the exact bytes of an undecodable client header.
    return "".join(lines).encode("utf-8", "surrogateescape")

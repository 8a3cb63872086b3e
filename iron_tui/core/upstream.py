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
from collections import deque
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit

import aiohappyeyeballs

from iron_tui.core.upstream_connection import Origin, UpstreamConnection
from iron_tui.core.upstream_errors import (
    StaleConnection,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from iron_tui.core.upstream_response import UpstreamResponse

__all__ = ["UpstreamClient", "UpstreamError", "UpstreamResponse"]

_DNS_TTL_S = 300.0



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
        self._origins: dict[tuple[str, str, int], Origin] = {}
        self._bases: dict[str, Origin] = {}
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._all: set[UpstreamConnection] = set()
        self._dns: dict[tuple[str, int], tuple[float, list[Any]]] = {}
        # Read timeouts: one sweep over the responses waiting for bytes, not a timer per wait (a timer
        # per call was a measurable share of the hot path). A timeout fires within a quarter of itself.
        self._waiting: set[UpstreamResponse] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_every = min(1.0, max(0.01, read_timeout / 4))
        self.closed = False

    # --- public ----------------------------------------------------------------------------

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Coroutine[Any, Any, UpstreamResponse]:
        """Send a POST and return once the answer's status and headers have arrived. (It returns
        `request`'s coroutine rather than awaiting it: one coroutine layer fewer per call.)"""
        return self.request("POST", url, body, headers)

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
            conn = self._idle(origin) if attempt == 0 else None  # the usual case: no await
            if conn is not None:
                reused = True
            else:
                conn, reused = await self._acquire(origin, fresh=attempt > 0)
            try:
                resp = await conn.send(head, body)
            except StaleConnection as exc:
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

    def _resolve(self, url: str) -> tuple[Origin, str]:
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
                origin = self._origins[key] = Origin(parts.scheme, parts.hostname, port)
            if len(self._bases) < 1024:
                self._bases[base] = origin
        return origin, target

    def _idle(self, origin: Origin) -> UpstreamConnection | None:
        """A kept-alive connection, taken without an await when a slot is free and one is idle;
        None: `_acquire` decides (waits for a slot, connects)."""
        if not origin.idle or self.closed or self._active >= self.limit or origin.active >= self.limit_per_host:
            return None
        conn = self._take_idle(origin)
        if conn is not None:
            self._active += 1
            origin.active += 1
        return conn

    def _take_idle(self, origin: Origin) -> UpstreamConnection | None:
        """The most recently used idle connection that is still good (expired ones are closed on the way)."""
        idle = origin.idle
        if not idle:
            return None
        now = asyncio.get_running_loop().time()
        while idle:
            conn, since = idle.pop()  # the most recently used is the least likely to have expired
            if conn.usable and now - since < self.keepalive_timeout:
                conn.in_use = True
                return conn
            conn.abort()
            self._all.discard(conn)
        return None

    async def _acquire(self, origin: Origin, *, fresh: bool = False) -> tuple[UpstreamConnection, bool]:
        """A connection for one exchange (counted as in use until released or discarded)."""
        if self._active >= self.limit or origin.active >= self.limit_per_host:
            await self._wait_for_slot(origin)
        if self.closed:
            raise UpstreamConnectError("the upstream client was closed")
        self._active += 1
        origin.active += 1
        if not fresh and (conn := self._take_idle(origin)) is not None:
            return conn, True
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

    async def _wait_for_slot(self, origin: Origin) -> None:
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

    async def _connect(self, origin: Origin) -> UpstreamConnection:
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
                    lambda: UpstreamConnection(self, origin), sock=sock, ssl=ctx,
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

    async def _addresses(self, origin: Origin) -> list[Any]:
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

    def _release(self, conn: UpstreamConnection) -> None:
        """A finished exchange: keep the connection for the next call if the server allows it."""
        self._done_with(conn)
        if conn.usable and not self.closed:
            conn.origin.idle.append((conn, asyncio.get_running_loop().time()))
        else:
            conn.abort()
            self._all.discard(conn)

    def _discard(self, conn: UpstreamConnection) -> None:
        self._done_with(conn)
        conn.abort()
        self._all.discard(conn)

    def _done_with(self, conn: UpstreamConnection) -> None:
        if conn.in_use:
            conn.in_use = False
            self._active -= 1
            conn.origin.active -= 1
            self._wake(conn.origin)

    def _wake(self, origin: Origin) -> None:
        for queue in (origin.waiters, self._waiters):
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)
                    return


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

"""Client connections that cannot hang the proxy, and HTTP errors answered in JSON.

aiohttp's server keeps an idle keep-alive connection for 3,630 s and has no read timeouts: a client
sending its headers one byte a minute, a body that never arrives, an endless chunked body or a
connection that says nothing would each be held for ever. `GuardedRunner` builds the app's server
with `GuardedHandler` connections instead, and one sweep a second (not a timer per request) closes:

- a request whose headers are not complete `header_timeout` after its first byte (408);
- a request whose body has not fully arrived `body_timeout` after its headers (408);
- a keep-alive connection idle for `idle_timeout` (aiohttp's own keep-alive timer, made short);
- a connection whose client has not read what we sent for `send_timeout`.

With a `RequestGuard` (core/proxy/guard.py), every request passes its checks before the app routes it.

Beyond `max_connections` open connections a new one is answered 503 in JSON and closed. Malformed HTTP
is answered 400 in JSON, reported once (rate-limited) through `on_malformed` — never as a traceback with
the offending bytes on stderr.

A refused or timed-out connection is answered before the proxy knows the route, so the body suits
both APIs' clients: `{"type": "error", "error": {"type", "message", "code", "param"}}` parses as an
OpenAI error and as an Anthropic error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler, RequestPayloadError, _ErrInfo

from iron_tui.core.json_bytes import dumps
from iron_tui.core.proxy.errors import Shape, error_response

if TYPE_CHECKING:
    from iron_tui.core.proxy.guard import RequestGuard

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 30.0
    send_timeout: float = 30.0
    max_connections: int = 512

    @property
    def sweep_every(self) -> float:
        return max(0.02, min(1.0, self.header_timeout / 4, self.body_timeout / 4, self.send_timeout / 4))


def _union_error(status: int, type_: str, message: str, code: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message, "code": code, "param": None}}


def raw_response(status: int, reason: str, body: dict[str, Any], extra: str = "") -> bytes:
    """A complete HTTP/1.1 response that closes the connection, written straight to a transport."""
    data = dumps(body)
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"Connection: close\r\n{extra}\r\n")
    return head.encode("ascii") + data


# What a parse error says about the request, without quoting the request's bytes.
_PROBLEMS: tuple[tuple[type[Exception], str], ...] = (
    (http_exceptions.BadHttpMethod, "invalid method"),
    (http_exceptions.BadStatusLine, "invalid request line"),
    (http_exceptions.LineTooLong, "request line or header too long"),
    (http_exceptions.InvalidHeader, "invalid header"),
    (http_exceptions.InvalidURLError, "invalid URL"),
    (http_exceptions.TransferEncodingError, "invalid chunked body"),
    (http_exceptions.ContentLengthError, "invalid Content-Length"),
    (http_exceptions.PayloadEncodingError, "invalid body encoding"),
)


_BAD_BODY = "invalid body framing"


def describe_http_error(exc: BaseException | None, default: str = "malformed request") -> str:
    for kind, text in _PROBLEMS:
        if isinstance(exc, kind):
            return text
    return default


class GuardedHandler(RequestHandler):
    """One client connection: aiohttp's, plus the progress marks the sweep reads."""

    __slots__ = ("_g_body_managed", "_g_paused_at", "_g_refused", "_g_req", "_g_req_at", "_g_rx_at", "_g_server")

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._g_server = manager
        self._g_rx_at: float | None = None  # first byte of a request whose headers are not complete yet
        self._g_req: web.BaseRequest | None = None  # the request being handled
        self._g_req_at = 0.0
        self._g_paused_at: float | None = None  # the transport's write buffer is full since
        self._g_refused = False  # answered 503 at the connection cap; aiohttp never saw it
        self._g_body_managed = False  # `read_body` reads this request's body with its own deadline

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._g_server
        if len(server.live) >= server.limits.max_connections:
            self._refuse(transport)
            return
        server.live.add(self)
        super().connection_made(transport)

    def _refuse(self, transport: asyncio.BaseTransport) -> None:
        """Answer 503 at once. The request is read and dropped until the client closes (or 2 s): closing
        on unread data would reset the connection and could lose the answer before the client reads it."""
        assert isinstance(transport, asyncio.Transport)
        server = self._g_server
        server.refused += 1
        self._manager = None  # aiohttp never sees this connection
        self._close = True  # data_received ignores whatever arrives
        self.transport = transport
        if server.lingering >= server.limits.max_connections:
            transport.abort()  # a flood: no courtesy
            return
        limit = server.limits.max_connections
        transport.write(raw_response(503, "Service Unavailable", _union_error(
            503, "overloaded_error", f"iron-tui is at its limit of {limit} open connections; retry shortly "
            "(max_connections raises it)", "too_many_connections"), "Retry-After: 1\r\n"))
        server.lingering += 1
        self._g_refused = True
        if transport.can_write_eof():
            transport.write_eof()
        # The client's own close (eof_received returns None: the transport closes) usually comes first.
        asyncio.get_running_loop().call_later(2.0, transport.close)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._g_refused:
            self._g_refused = False
            self._g_server.lingering -= 1
            return
        self._g_server.live.discard(self)
        self._g_req = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._request_in_progress:
            if self._g_rx_at is None:
                self._g_rx_at = time.monotonic()
            RequestHandler.data_received(self, data)
            return
        queued = len(self._messages)
        RequestHandler.data_received(self, data)
        req = self._g_req
        if len(self._messages) > queued and req is not None and isinstance(self._messages[-1][0], _ErrInfo) \
                and not req.content.is_eof():
            self._body_broken(req)

    def _body_broken(self, req: web.BaseRequest) -> None:
        """A parse error inside the body being read (a bad chunk). aiohttp would queue a 400 for after this
        request and leave its body read waiting for ever; instead the read fails now, the handler answers
        in its route's shape, and the connection closes after that answer."""
        err = self._messages.pop()[0]
        assert isinstance(err, _ErrInfo)
        self._g_server.malformed(self.peername, describe_http_error(err.exc, _BAD_BODY))
        self._close = True  # no further request on this connection
        req.content.set_exception(err.exc if err.exc is not None else http_exceptions.BadHttpMessage(""))
        req.content.feed_eof()  # so aiohttp does not linger reading a body that cannot be parsed

    def _process_keepalive(self) -> None:
        if self._g_rx_at is not None:
            # A request has begun arriving: not idle. Its header deadline (the sweep) applies instead.
            self._keepalive_handle = None
            return
        super()._process_keepalive()

    def started(self, request: web.BaseRequest) -> None:
        """A request's headers are complete (called by the server's request factory, before its handler)."""
        self._g_rx_at = None
        self._g_req = request
        self._g_req_at = time.monotonic()
        self._g_body_managed = False

    def body_time_left(self, timeout: float) -> float:
        """For `read_body`: the seconds this request's body may still take; the sweep leaves it alone."""
        self._g_body_managed = True
        return self._g_req_at + timeout - time.monotonic()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._g_paused_at = time.monotonic()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._g_paused_at = None

    # --- what the sweep does -------------------------------------------------------------------------

    def check(self, now: float, limits: ConnectionLimits) -> None:
        req = self._g_req if self._request_in_progress else None
        if req is None:
            if self._g_rx_at is not None and now - self._g_rx_at > limits.header_timeout:
                self._time_out(f"the request headers did not arrive within {limits.header_timeout:g} s")
        elif not req.content.is_eof() and now - self._g_req_at > limits.body_timeout + (
                1.0 if self._g_body_managed else 0.0):  # `read_body` answers in the route's shape first
            self._time_out(f"the request body did not arrive within {limits.body_timeout:g} s", req)
        if self._g_paused_at is not None and now - self._g_paused_at > limits.send_timeout:
            self._g_server.timed_out += 1
            if self.transport is not None:
                self.transport.abort()  # it is not reading: a courtesy message would not be read either

    def _time_out(self, message: str, req: web.BaseRequest | None = None) -> None:
        self._g_server.timed_out += 1
        transport = self.transport
        if transport is None:
            return
        if req is None or req.writer.output_size == 0:
            transport.write(raw_response(408, "Request Timeout", _union_error(
                408, "timeout_error", message + "; the connection is closed", "request_timeout")))
        self._g_rx_at = None
        self.force_close()  # cancels the handler still waiting for the body

    # --- malformed HTTP and handler errors ----------------------------------------------------------

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp's error page, in JSON: no traceback, no quoted request bytes (they may hold a key)."""
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        if status == 400:
            problem = describe_http_error(exc)
            self._g_server.malformed(self.peername, problem)
            body = _union_error(400, "invalid_request_error", f"malformed HTTP request: {problem}", "bad_request")
            resp: web.StreamResponse = web.Response(status=400, body=dumps(body), content_type="application/json")
        else:
            if status == 500:
                log.error("unhandled error answering %s %s", request.method, request.path, exc_info=exc)
            shape: Shape = "anthropic" if _anthropic_path(request.path) else "openai"
            text = "iron-tui internal error" if status == 500 else f"the request failed ({status})"
            resp = error_response(shape, status, text, code="internal_error" if status == 500 else None)
        resp.force_close()
        return resp


def _anthropic_path(path: str) -> bool:
    return path.startswith(("/v1/messages", "/anthropic/"))


class GuardedServer(web.Server):
    """aiohttp's low-level server with `GuardedHandler` connections and their sweep."""

    def __init__(self, *args: Any, limits: ConnectionLimits, guard: RequestGuard | None = None,
                 on_malformed: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if guard is not None:
            self.request_handler = guard.wrap(self.request_handler)  # type: ignore[assignment,arg-type]
        # Wrapped rather than overriding the handler's per-request coroutine: one plain call per request.
        self._base_factory = self.request_factory
        self.request_factory = self._track
        self.limits = limits
        self.live: set[GuardedHandler] = set()
        self.lingering = 0  # refused connections still being answered
        self.refused = 0
        self.timed_out = 0
        self._on_malformed = on_malformed
        self._malformed_last = 0.0
        self._malformed_unreported = 0

    def _track(self, message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
        request = self._base_factory(message, payload, protocol, writer, task)
        protocol.started(request)
        return request

    def __call__(self) -> GuardedHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)

    def sweep(self) -> None:
        now = time.monotonic()
        limits = self.limits
        for conn in tuple(self.live):
            conn.check(now, limits)

    def malformed(self, peer: Any, problem: str) -> None:
        """One report per second at most: a client spraying garbage must not flood the log."""
        now = time.monotonic()
        if now - self._malformed_last < 1.0:
            self._malformed_unreported += 1
            return
        more = f" (and {self._malformed_unreported} more since the last report)" if self._malformed_unreported else ""
        self._malformed_last, self._malformed_unreported = now, 0
        who = peer[0] if isinstance(peer, tuple) and peer else "a client"
        text = f"malformed HTTP request from {who}: {problem}; answered 400{more}"
        if self._on_malformed is not None:
            self._on_malformed(text)
        else:
            log.warning("%s", text)


class GuardedRunner(web.AppRunner):
    """`web.AppRunner` whose server is a `GuardedServer`, with the sweep running while it is set up."""

    def __init__(self, app: web.Application, *, limits: ConnectionLimits, guard: RequestGuard | None = None,
                 on_malformed: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        # aiohttp's own keep-alive timer closes idle connections; lingering over an unread body is
        # bounded like a body read.
        kwargs.setdefault("keepalive_timeout", limits.idle_timeout)
        kwargs.setdefault("lingering_time", min(10.0, limits.body_timeout))
        super().__init__(app, **kwargs)
        self._limits = limits
        self._guard = guard
        self._on_malformed = on_malformed
        self._sweeper: asyncio.Task[None] | None = None

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()
        # Same arguments as the app's own server (its handler, request factory, debug, access log, ...).
        return GuardedServer(base.request_handler, request_factory=base.request_factory,
                             handler_cancellation=base.handler_cancellation, loop=base._loop,
                             limits=self._limits, guard=self._guard, on_malformed=self._on_malformed,
                             **base._kwargs)

    @property
    def guarded(self) -> GuardedServer:
        server = self.server
        assert isinstance(server, GuardedServer)
        return server

    async def setup(self) -> None:
        await super().setup()
        self._sweeper = asyncio.create_task(self._sweep(), name="iron-tui-connection-sweep")

    async def cleanup(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await super().cleanup()

    async def _sweep(self) -> None:
        every = self._limits.sweep_every
        while True:
            await asyncio.sleep(every)
            server = self.server
            if isinstance(server, GuardedServer):
                try:
                    server.sweep()
                except Exception:  # the sweep must outlive any one connection's surprise
                    log.exception("connection sweep failed")


class BodyReadError(Exception):
    """The request body could not be read: `status` (400, 408, 413), a message and a code for the client."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


async def read_body(request: web.BaseRequest, *, limit: int, timeout: float) -> bytes:
    """The whole request body, at most `limit` bytes, within `timeout` seconds of the headers.

    A body that came with its headers (the usual small call) is taken in one piece. Raises
    `BodyReadError` for a body that is too large (413), late (408) or badly framed (400)."""
    content = request.content
    if content.is_eof() and content.exception() is None:
        raw = content.read_nowait()
        if len(raw) > limit:
            raise BodyReadError(413, f"request body is larger than the {limit}-byte limit", "request_too_large")
        return raw
    proto = request.protocol
    left = proto.body_time_left(timeout) if isinstance(proto, GuardedHandler) else timeout
    too_large = BodyReadError(413, f"request body is larger than the {limit}-byte limit", "request_too_large")
    body = bytearray()
    try:
        async with asyncio.timeout(max(0.0, left)):
            while chunk := await content.readany():
                body += chunk
                if len(body) > limit:
                    raise too_large
        return bytes(body)
    except TimeoutError:
        raise BodyReadError(408, f"the request body did not arrive within {timeout:g} s",
                            "request_timeout") from None
    except (RequestPayloadError, http_exceptions.HttpProcessingError) as exc:
        cause = exc.__cause__ if isinstance(exc, RequestPayloadError) else exc
        raise BodyReadError(400, f"the request body is malformed: {describe_http_error(cause, _BAD_BODY)}",
                            "invalid_body") from None

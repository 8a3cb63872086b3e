"""Answers written straight to the client's connection: a relayed JSON body in one piece, a relayed stream
chunk by chunk.

`aiohttp.web.Response` prepares every answer through a dozen Python steps (headers copied into a
multidict, then checked for chunking, compression, cookies, empty-body rules, date and connection, then
serialised and handed to a stream writer, whose every write frames the chunk in a few more), ~8 µs of
proxy CPU per call under load: most of what a small relayed answer costs iron-tui on top of the
network. `WholeResponse` writes the status line, the headers and the body with one `transport.write`;
`ChunkedResponse` writes the head with the first chunk, then each chunk in its chunked framing. Both
follow aiohttp's rules for what they handle: keep-alive as the request asks (`Connection: close` on
HTTP/1.1 when not kept alive, `keep-alive` on HTTP/1.0 when kept), `Date` and `Server` as aiohttp sends
them, and a stream waits while the client is slow to read (the transport's high-water mark). Everything
else — a large whole body, HEAD, an empty-body status, a chunked stream to an HTTP/1.0 client, cookies,
compression, an app with response signals, a header value aiohttp would refuse — goes through aiohttp's
own path unchanged, so the client gets the same bytes either way.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping
from email.utils import formatdate

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

# Up to the transport's default write high-water mark: such a write never needs to wait for the client.
MAX_DIRECT_BYTES = 64 * 1024
_EMPTY_BODY_STATUSES = frozenset({204, 304})

_date: tuple[int, str] = (0, "")
# The response state this reads is aiohttp's own (3.11-3.14); should a release rename it, every answer
# takes aiohttp's path instead of failing.
_DIRECT_OK = all(hasattr(web.StreamResponse(), name) for name in (
    "_cookies", "_compression", "_chunked", "_keep_alive", "_eof_sent", "_body_length", "_headers"))


def http_date() -> str:
    """The `Date` header value (RFC 9110's IMF-fixdate), formatted once per second."""
    global _date
    now = int(time.time())
    if now != _date[0]:
        _date = (now, formatdate(now, usegmt=True))
    return _date[1]


_SERVER_LINE = f"Server: {SERVER_SOFTWARE}\r\n"


@functools.lru_cache(maxsize=64)
def _status_line(version: tuple[int, int], status: int, reason: str) -> str:
    return f"HTTP/{version[0]}.{version[1]} {status} {reason}\r\n"


def direct_head(resp: web.StreamResponse, request: web.BaseRequest, framing: str) -> bytes | None:
    """`resp`'s status line and headers with `framing` (its Content-Length or Transfer-Encoding line), or
    None when aiohttp's own path must write it. Settles `resp`'s keep-alive as aiohttp would."""
    if (not _DIRECT_OK or request.method == "HEAD" or resp.status in _EMPTY_BODY_STATUSES or resp.status < 200
            or resp._cookies or resp._compression or resp._chunked):
        return None
    match_info = getattr(request, "_match_info", None)
    if match_info is not None and any(app.on_response_prepare for app in match_info.apps):
        return None  # the app wants to see (and may change) each answer before it goes
    version = request.version
    headers = resp._headers
    if "Content-Length" in headers or "Transfer-Encoding" in headers:
        return None  # framing is this module's to write (aiohttp sets it from the body too)
    keep_alive = resp._keep_alive
    if keep_alive is None:
        keep_alive = request.keep_alive
    # Every header in one C-level join; a line break inside a name or value shows as one CR or LF more
    # than the joins put in.
    count = len(headers)
    block = "\r\n".join(map(": ".join, headers.items()))
    if count and (block.count("\r") != count - 1 or block.count("\n") != count - 1):
        return None  # aiohttp refuses it (a ValueError): the same error either way
    lines = [_status_line(version, resp.status, resp.reason), block, "\r\n" if count else ""]
    if "Content-Type" not in headers:
        lines.append("Content-Type: application/octet-stream\r\n")
    lines.append(framing)
    if "Date" not in headers:
        lines.append(f"Date: {http_date()}\r\n")
    if "Server" not in headers:
        lines.append(_SERVER_LINE)
    if "Connection" not in headers:
        if keep_alive:
            if version == (1, 0):
                lines.append("Connection: keep-alive\r\n")
        elif version == (1, 1):
            lines.append("Connection: close\r\n")
    lines.append("\r\n")
    resp._keep_alive = keep_alive
    return "".join(lines).encode("utf-8", "surrogateescape")


def _chunk(data: bytes) -> bytes:
    """`data` in HTTP/1.1 chunked framing."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def _transport(request: web.BaseRequest) -> asyncio.Transport:
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("Cannot write to closing transport")
    return transport  # type: ignore[return-value]


class WholeResponse(web.StreamResponse):
    """`web.Response(status=status, body=body, headers=headers)`, written in one piece when it can be."""

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        super().__init__(status=status, headers=headers)
        self._whole_body = body

    @property
    def body(self) -> bytes:
        return self._whole_body

    async def prepare(self, request: web.BaseRequest) -> None:  # type: ignore[override]
        if self._eof_sent:
            return
        body = self._whole_body
        head = None if len(body) > MAX_DIRECT_BYTES else direct_head(self, request, f"Content-Length: {len(body)}\r\n")
        if head is None:  # a case aiohttp's own path handles: let it
            self.content_length = len(body)
            await web.StreamResponse.prepare(self, request)
            await web.StreamResponse.write_eof(self, body)
            return
        _transport(request).write(head + body)
        self._eof_sent = True
        self._body_length = len(body)

    async def write_eof(self, data: bytes = b"") -> None:
        if not self._eof_sent:  # (aiohttp calls prepare first; this is for a caller that did not)
            raise RuntimeError("WholeResponse is written by prepare()")


class ChunkedResponse(web.StreamResponse):
    """A `web.StreamResponse` with chunked framing whose head leaves with its first chunk (one socket write
    before the client sees anything), each chunk then written straight to the connection."""

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        super().__init__(status=status, headers=headers)
        self._direct: web.BaseRequest | None = None  # set when this class writes (else aiohttp does)
        self._head: bytes = b""

    @property
    def prepared(self) -> bool:
        return self._direct is not None or super().prepared

    async def prepare(self, request: web.BaseRequest) -> None:  # type: ignore[override]
        if self.prepared:
            return
        head = direct_head(self, request, "Transfer-Encoding: chunked\r\n") if request.version == (1, 1) else None
        if head is None:
            self._send_headers_immediately = False  # (aiohttp >= 3.12: its head leaves with the first chunk too)
            await web.StreamResponse.prepare(self, request)
            return
        self._direct, self._head = request, head

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        request = self._direct
        if request is None:
            await web.StreamResponse.write(self, data)
            return
        if self._eof_sent:
            raise RuntimeError("Cannot call write() after write_eof()")
        if data:
            self._send(request, _chunk(data if isinstance(data, bytes) else bytes(data)))
            self._body_length += len(data)
            await self._drained(request)

    async def write_eof(self, data: bytes = b"") -> None:
        request = self._direct
        if request is None:
            await web.StreamResponse.write_eof(self, data)
            return
        if self._eof_sent:
            return
        self._send(request, (_chunk(data) if data else b"") + b"0\r\n\r\n")
        self._eof_sent = True
        self._body_length += len(data)
        await self._drained(request)

    def _send(self, request: web.BaseRequest, frame: bytes) -> None:
        transport = _transport(request)
        if self._head:
            frame, self._head = self._head + frame, b""
        transport.write(frame)

    @staticmethod
    async def _drained(request: web.BaseRequest) -> None:
        transport = request.transport
        if transport is not None and transport.get_write_buffer_size() > MAX_DIRECT_BYTES:
            await request.writer.drain()  # a slow reader: wait for it, as aiohttp's writer does

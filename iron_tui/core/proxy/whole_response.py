"""A whole answer (a relayed JSON body) written to the client's connection in one piece.

`aiohttp.web.Response` prepares every answer through a dozen Python steps (headers copied into a
multidict, then checked for chunking, compression, cookies, empty-body rules, date and connection, then
serialised and handed to a stream writer), ~8 µs of proxy CPU per call under load, which is most of
what a small relayed answer costs iron-tui on top of the network. `WholeResponse` writes the status
line, the headers and the body with one `transport.write` instead, following the same rules for what
it handles: a body of known length on a POST (never HEAD, never an empty-body status), keep-alive as
the request asks (`Connection: close` on HTTP/1.1 when not kept alive, `keep-alive` on HTTP/1.0
when kept), `Date` and `Server` as aiohttp sends them. Everything else — a large body (whose writes
must wait for a slow client), a header value aiohttp would refuse, a request whose app has response
signals — goes through aiohttp's own path unchanged, so the answer is the same either way.
"""

from __future__ import annotations

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
        head = self._head(request, len(body))
        if head is None:  # a case aiohttp's own path handles: let it
            self.content_length = len(body)
            await web.StreamResponse.prepare(self, request)
            await web.StreamResponse.write_eof(self, body)
            return
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        transport.write(head + body)
        self._eof_sent = True
        self._body_length = len(body)

    async def write_eof(self, data: bytes = b"") -> None:
        if not self._eof_sent:  # (aiohttp calls prepare first; this is for a caller that did not)
            raise RuntimeError("WholeResponse is written by prepare()")

    def _head(self, request: web.BaseRequest, length: int) -> bytes | None:
        """The status line and headers, or None when aiohttp's path must write this answer."""
        if (not _DIRECT_OK or length > MAX_DIRECT_BYTES or request.method == "HEAD" or self.status in _EMPTY_BODY_STATUSES
                or self.status < 200 or self._cookies or self._compression or self._chunked):
            return None
        match_info = getattr(request, "_match_info", None)
        if match_info is not None and any(app.on_response_prepare for app in match_info.apps):
            return None  # the app wants to see (and may change) each answer before it goes
        keep_alive = self._keep_alive
        if keep_alive is None:
            keep_alive = request.keep_alive
        self._keep_alive = keep_alive
        version = request.version
        lines = [f"HTTP/{version.major}.{version.minor} {self.status} {self.reason}\r\n"]
        headers = self._headers
        if "Content-Length" in headers or "Transfer-Encoding" in headers:
            return None  # framing is this class's to write (aiohttp sets the length from the body too)
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                return None  # aiohttp refuses it (a ValueError): the same error either way
            lines.append(f"{name}: {value}\r\n")
        if "Content-Type" not in headers:
            lines.append("Content-Type: application/octet-stream\r\n")
        lines.append(f"Content-Length: {length}\r\n")
        if "Date" not in headers:
            lines.append(f"Date: {http_date()}\r\n")
        if "Server" not in headers:
            lines.append(f"Server: {SERVER_SOFTWARE}\r\n")
        if "Connection" not in headers:
            if keep_alive:
                if version == (1, 0):
                    lines.append("Connection: keep-alive\r\n")
            elif version == (1, 1):
                lines.append("Connection: close\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("utf-8", "surrogateescape")

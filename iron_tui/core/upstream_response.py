"""One upstream answer (`UpstreamResponse`): status and headers, then the body as it arrives, with
back-pressure, read timeouts (the client's sweep) and gzip/deflate decoding; see upstream.py."""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any

from iron_tui.core.upstream_errors import UpstreamProtocolError, UpstreamTimeout

if TYPE_CHECKING:
    from iron_tui.core.upstream_connection import UpstreamConnection

# Bytes buffered from a streamed body before the socket stops being read (back-pressure).
_HIGH_WATER = 1 << 20


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

    def __init__(self, conn: UpstreamConnection) -> None:
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

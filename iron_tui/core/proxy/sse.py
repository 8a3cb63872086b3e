"""An incremental Server-Sent Events parser over raw byte chunks.

Upstream chunks split events anywhere (even inside a UTF-8 sequence), so bytes are buffered until a
blank line ends an event. Only `event:` and `data:` fields matter to the proxy.
"""

from __future__ import annotations


class SSEParser:
    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[tuple[str, str, bytes]]:
        """Return complete events as (event name, data, raw bytes incl. the terminating blank line)."""
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # A chunk may end between the \r and \n of one CRLF: keep that \r until the next chunk.
            hold = buf.endswith(b"\r") and chunk != b""
            if hold:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if hold:
                out = self._split(buf)
                self._buf += b"\r"
                return out
        return self._split(buf)

    def flush(self) -> list[tuple[str, str, bytes]]:
        """At end of stream: the last event even if its closing blank line never came."""
        if not self._buf.strip():
            self._buf = b""
            return []
        tail = self._buf.rstrip(b"\r\n") + b"\n\n"
        self._buf = b""
        return self.feed(tail)

    def _split(self, buf: bytes) -> list[tuple[str, str, bytes]]:
        out: list[tuple[str, str, bytes]] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            raw = buf[start : end + 2]
            start = end + 2
            body = raw[:-2]
            # Fast paths for the two shapes providers send: `data: …` and `event: …\ndata: …`.
            if body.startswith(b"data: ") and b"\n" not in body:
                out.append(("message", body[6:].decode("utf-8", "replace"), raw))
                continue
            if body.startswith(b"event: "):
                nl = body.find(b"\n")
                if nl > 0 and body.startswith(b"data: ", nl + 1) and body.find(b"\n", nl + 1) < 0 \
                        and b":" not in body[7:nl]:
                    out.append((body[7:nl].decode("utf-8", "replace"),
                                body[nl + 7 :].decode("utf-8", "replace"), raw))
                    continue
            event = "message"
            data_lines: list[str] = []
            for line in body.decode("utf-8", "replace").split("\n"):
                if not line or line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if name == "data":
                    data_lines.append(value)
                elif name == "event":
                    event = value
            if data_lines or event != "message":
                out.append((event, "\n".join(data_lines), raw))
        self._buf = buf[start:]
        return out

    @property
    def pending(self) -> bytes:
        return self._buf

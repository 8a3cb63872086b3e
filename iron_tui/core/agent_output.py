"""Turning an agent's raw stdout/stderr bytes into display lines.

Pure and synchronous so it can be tested without processes. We read pipes in chunks rather than
with `StreamReader.readline`, which raises on long lines; this class does the splitting, keeps
memory bounded by `max_line_bytes` however long a line is, and never fails on bad bytes.
"""

from __future__ import annotations

import codecs


class LineAssembler:
    """Feed chunks, get complete lines; `flush()` at EOF returns a final partial line."""

    def __init__(self, max_line_bytes: int) -> None:
        self._max = max(1, max_line_bytes)
        self._buf = bytearray()
        self._overflow = 0  # bytes of the current line dropped beyond the limit

    def feed(self, chunk: bytes) -> list[str]:
        lines: list[str] = []
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            end = len(chunk) if nl < 0 else nl
            self._take(chunk, start, end)
            if nl < 0:
                return lines
            lines.append(self._finish())
            start = nl + 1

    def flush(self) -> list[str]:
        if not self._buf and not self._overflow:
            return []
        return [self._finish()]

    def _take(self, chunk: bytes, start: int, end: int) -> None:
        room = self._max - len(self._buf)
        n = end - start
        if n <= room:
            self._buf += chunk[start:end]
        else:
            if room > 0:
                self._buf += chunk[start : start + room]
            self._overflow += n - max(room, 0)

    def _finish(self) -> str:
        raw, dropped = bytes(self._buf), self._overflow
        self._buf.clear()
        self._overflow = 0
        if dropped:
            # The cut may split a UTF-8 sequence; a non-final incremental decode drops the stub.
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            text = decoder.decode(raw, final=False)
            dropped += len(decoder.getstate()[0])
            return _carriage(text) + f" … [truncated {dropped} bytes]"
        if raw.endswith(b"\r"):
            raw = raw[:-1]  # CRLF line ending
        return _carriage(raw.decode("utf-8", "replace"))


def _carriage(text: str) -> str:
    """A bare CR (progress bars) redraws the line: keep its last non-empty state, as a terminal shows."""
    if "\r" not in text:
        return text
    parts = [p for p in text.split("\r") if p]
    return parts[-1] if parts else ""

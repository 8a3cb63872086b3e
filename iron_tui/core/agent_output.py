"""Turning an agent's raw stdout/stderr bytes into display lines, and keeping them.

`LineAssembler` is pure and synchronous so it can be tested without processes. We read pipes in chunks
rather than with `StreamReader.readline`, which raises on long lines; it does the splitting, keeps
memory bounded by `max_line_bytes` however long a line is, and never fails on bad bytes.
`OutputCapture` reads an agent's pipes through it into a bounded buffer and onto the bus.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from iron_tui.core.clock import Clock
from iron_tui.core.events import AgentOutput, Event
from iron_tui.core.safe_text import clean_text

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class OutputLine:
    seq: int
    stream: Literal["stdout", "stderr"]
    text: str
    timestamp: float
    agent_id: str = ""  # which run produced it (the buffer spans restarts)


class OutputCapture:
    """Every line an agent prints: cleaned, numbered, kept in a bounded buffer (across restarts) and
    published as an `AgentOutput`."""

    def __init__(self, *, clock: Clock, emit: Callable[[Event], None], buffer_lines: int,
                 max_line_bytes: int) -> None:
        self._clock = clock
        self._emit = emit
        self._max_line_bytes = max_line_bytes
        self.lines: deque[OutputLine] = deque(maxlen=max(1, buffer_lines))
        self.dropped_lines = 0
        self._seq = 0

    def clear(self) -> None:
        self.lines.clear()
        self.dropped_lines = 0

    async def read(self, stream: asyncio.StreamReader, name: Literal["stdout", "stderr"], agent_id: str) -> None:
        lines = LineAssembler(self._max_line_bytes)
        try:
            while chunk := await stream.read(_CHUNK):
                for text in lines.feed(chunk):
                    self._emit_line(agent_id, name, text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken pipe must not take the supervisor down
            log.debug("agent %s: reading %s failed: %s", agent_id, name, exc)
        finally:
            for text in lines.flush():  # a last line without a newline still counts
                self._emit_line(agent_id, name, text)

    def _emit_line(self, agent_id: str, stream: Literal["stdout", "stderr"], text: str) -> None:
        # Before anything sees the line (buffer, bus, log, feed): an agent may print a key it found, or
        # escape sequences that would drive the user's terminal.
        text = clean_text(text, 4 * self._max_line_bytes, keep_tabs=True)
        self._seq += 1
        ts = self._clock.now()
        if len(self.lines) == self.lines.maxlen:
            self.dropped_lines += 1
        self.lines.append(OutputLine(self._seq, stream, text, ts, agent_id))
        self._emit(AgentOutput(timestamp=ts, agent_id=agent_id, stream=stream, line=text, seq=self._seq))


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

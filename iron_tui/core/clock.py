"""Injectable time and id sources, so tests and snapshots are deterministic."""

from __future__ import annotations

import itertools
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock time in epoch seconds."""

    def monotonic(self) -> float:
        """Monotonic seconds, for durations."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.perf_counter()


class FixedClock:
    """A clock that only moves when told to (tests, snapshots)."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._mono = 1000.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._mono += seconds


class IdSource(Protocol):
    def request_id(self) -> str: ...

    def event_id(self) -> str: ...


class RandomIds:
    """Unique, unguessable-enough request ids without a syscall per call: a random per-process
    prefix and a counter (ids only need to be unique; they are not secrets)."""

    def __init__(self) -> None:
        self._suffix = secrets.token_hex(4)
        self._n = itertools.count(1)

    def request_id(self) -> str:
        # Counter first, so ids that are cut short on screen still differ.
        return f"req_{next(self._n):06x}{self._suffix}"

    def event_id(self) -> str:
        return str(uuid.uuid4())


class SequentialIds:
    """Predictable ids for tests and snapshots."""

    def __init__(self) -> None:
        self._req = itertools.count(1)
        self._evt = itertools.count(1)

    def request_id(self) -> str:
        return f"req_{next(self._req):06d}"

    def event_id(self) -> str:
        return str(uuid.UUID(int=next(self._evt), version=4))


_iso_second: tuple[int, str] = (-1, "")
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))  # the ".mmmZ" tails, formatted once


def iso_utc(ts: float) -> str:
    """ISO-8601 UTC with millisecond precision and a Z suffix.

    Called several times per proxied call; the formatted second is cached because consecutive
    events almost always share it (as one tuple, so a thread never sees a half-updated cache).
    """
    global _iso_second
    sec = int(ts // 1)
    us = round((ts - sec) * 1_000_000)  # the same rounding datetime applies
    if us >= 1_000_000:
        sec += 1
        us -= 1_000_000
    cached = _iso_second
    if sec != cached[0]:
        cached = _iso_second = (sec, datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return cached[1] + _MILLIS[us // 1000]

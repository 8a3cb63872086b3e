"""Retry policy for failures before the first byte, and the record of each attempt.

Retried: connect errors and timeouts, 429, 5xx and 529 (overloaded) — answers the provider gave before
anything reached the client. Never retried: a stream that has started, any other 4xx (the request
itself is wrong), a budget refusal.

Back-off: `backoff × 2^n` seconds with full jitter (uniform between half and all of it, so a herd of
agents spreads out), but never less than the provider's `retry-after` / `retry-after-ms`; a call
waits at most `max_wait` seconds in all — a `retry-after` beyond what is left ends the retries of that
model (its fallbacks, if any, are tried at once).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from iron_tui.core.events import Attempt

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 522, 524, 529})


def retryable_status(status: int) -> bool:
    return status in RETRY_STATUSES


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """The provider's requested wait, from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000.0
            if 0 <= value < 86_400:
                return value
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        value = float(ra)
        return value if 0 <= value < 86_400 else None
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(ra).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@dataclass(slots=True)
class RetryBudget:
    """How much retrying one call may still do."""

    attempts: int  # tries per model
    max_wait: float  # seconds of waiting left, all models together
    backoff: float
    rng: random.Random

    def delay(self, retry_no: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry number `retry_no` (1-based), or None when it should not happen."""
        if retry_no >= self.attempts:
            return None
        base = self.backoff * (2 ** (retry_no - 1))
        wait = base * (0.5 + 0.5 * self.rng.random())
        if retry_after is not None:
            wait = max(wait, retry_after)
        if wait > self.max_wait:
            return None
        return wait

    def spend(self, seconds: float) -> None:
        self.max_wait = max(0.0, self.max_wait - seconds)


def attempt(started_at: float, provider: str, model: str, status: int | None, error: str | None,
            duration_ms: float, error_type: str | None = None) -> Attempt:
    """One try for `RequestRecord.attempts` (error_type: the status, or what kept an answer away)."""
    if error is not None and error_type is None:
        error_type = str(status) if status is not None else "unreachable"
    return Attempt(started_at, duration_ms, provider, model, status, error_type, error)

"""Provider health: ok / degraded / down, from the outcomes of recent attempts.

- **down**: `DOWN_AFTER` failures in a row (connect errors, timeouts, 5xx, 529). A down provider is
  skipped by fallback plans for a cool-down (`[retries] cooldown`, doubling while probes keep failing,
  at most 8×), then one call is let through as a probe: success → ok, failure → down again.
  A model whose every provider is down is still tried — iron-tui never locks every model out (the
  "all deployments in cooldown" 429 of other gateways).
- **degraded**: at least a fifth of the last `WINDOW` outcomes (within `WINDOW_S`) failed, rate limits
  (429) included, or the last attempt failed.
- **ok**: otherwise. A provider back from down (a probe succeeded) starts over with a clean record.

A 4xx other than 429 is the client's problem, not the provider's: it counts as a success here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from iron_tui.core.clock import Clock
from iron_tui.core.events import Event, ProviderHealthChanged

State = Literal["ok", "degraded", "down"]

DOWN_AFTER = 3
WINDOW = 20
WINDOW_S = 300.0
_MAX_COOLDOWN_FACTOR = 8


@dataclass(slots=True)
class _Provider:
    outcomes: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=WINDOW))
    consecutive: int = 0
    down_until: float = 0.0
    cooldown_factor: int = 1
    probing: bool = False
    latency_ms: float | None = None  # moving average time to the answer's headers
    state: State = "ok"
    last_error: str | None = None
    calls: int = 0
    failures: int = 0


class ProviderHealth:
    def __init__(self, *, clock: Clock, publish: Callable[[Event], None], cooldown_s: float = 30.0) -> None:
        self._clock = clock
        self._publish = publish
        self.cooldown_s = cooldown_s
        self._p: dict[str, _Provider] = {}

    def record(self, provider: str, *, ok: bool, latency_ms: float | None = None, hard: bool = True,
               error: str | None = None) -> None:
        """One attempt's outcome. `hard`: a failure that says the provider is unwell (connect error,
        timeout, 5xx/529), as opposed to a rate limit (429), which only degrades it."""
        p = self._p.get(provider)
        if p is None:
            p = self._p[provider] = _Provider()
        now = self._clock.monotonic()
        p.calls += 1
        p.outcomes.append((now, ok))
        p.probing = False
        if ok and latency_ms is not None:
            p.latency_ms = latency_ms if p.latency_ms is None else 0.8 * p.latency_ms + 0.2 * latency_ms
        if ok and p.state == "ok" and not p.down_until:
            # The hot path: a success while all is well. Nothing can change state (a failure in the
            # window would have made it degraded already), so only the latency is kept.
            return
        if ok:
            if p.down_until:
                # Back from down: the failures that put it there describe the outage, not the provider now.
                p.outcomes.clear()
                p.outcomes.append((now, True))
            p.consecutive = 0
            p.cooldown_factor = 1
            p.down_until = 0.0
        else:
            p.failures += 1
            p.last_error = error
            if hard:
                p.consecutive += 1
                if p.consecutive >= DOWN_AFTER:
                    if p.down_until:  # a failed probe: wait longer next time
                        p.cooldown_factor = min(p.cooldown_factor * 2, _MAX_COOLDOWN_FACTOR)
                    p.down_until = now + self.cooldown_s * p.cooldown_factor
        self._update(provider, p, now)

    def available(self, provider: str) -> bool:
        """Whether a call may go to `provider` now (not down, or its cool-down is over and no probe is
        already on its way: that call becomes the probe)."""
        p = self._p.get(provider)
        if p is None or not p.down_until:
            return True
        if self._clock.monotonic() < p.down_until or p.probing:
            return False
        p.probing = True
        return True

    def state(self, provider: str) -> State:
        p = self._p.get(provider)
        return "ok" if p is None else p.state

    def snapshot(self) -> list[dict[str, Any]]:
        now = self._clock.monotonic()
        return [self._wire(name, p, now) for name, p in sorted(self._p.items())]

    def _update(self, provider: str, p: _Provider, now: float) -> None:
        recent = [ok for t, ok in p.outcomes if now - t <= WINDOW_S]
        failed = sum(1 for ok in recent if not ok)
        state: State
        if p.down_until and p.consecutive >= DOWN_AFTER:
            state = "down"
        elif recent and (not recent[-1] or failed * 5 >= len(recent)):
            state = "degraded"
        else:
            state = "ok"
        if state != p.state:
            p.state = state
            self._publish(ProviderHealthChanged(self._clock.now(), provider, state, self._wire(provider, p, now)))

    def _wire(self, name: str, p: _Provider, now: float) -> dict[str, Any]:
        recent = [ok for t, ok in p.outcomes if now - t <= WINDOW_S]
        return {
            "provider": name,
            "state": p.state,
            "error_rate": round(sum(1 for ok in recent if not ok) / len(recent), 3) if recent else 0.0,
            "latency_ms": None if p.latency_ms is None else round(p.latency_ms, 1),
            "calls": p.calls,
            "failures": p.failures,
            "retry_in_s": round(max(0.0, p.down_until - now), 1) if p.state == "down" else None,
            "last_error": p.last_error,
        }

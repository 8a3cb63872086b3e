"""RequestRecord.summary(): the cheaper rounding must give exactly `round(x, 3)`, sign and type included."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from iron_tui.core.clock import iso_utc
from iron_tui.core.events import RequestRecord, _round3, usd


def same(a: Any, b: Any) -> bool:
    """Equal, of the same type, and for floats the same sign of zero (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return bool(a == b)


@settings(max_examples=1000, deadline=None, database=None)
@given(st.one_of(st.floats(), st.floats(0, 10_000), st.floats(0, 5), st.integers(-10**6, 10**6)))
def test_round3_is_round(x: float) -> None:
    assert same(_round3(x), round(x, 3)), x


def test_round3_near_halves_and_edges() -> None:
    values: list[float] = [0.0, -0.0, 5e-324, 0.0005, 0.0015, 0.0025, 1.0005, 2.675, 4294967.2955, 4294967.296,
                           1e300, -1.0005, math.inf, -math.inf, math.nan]
    for n in range(0, 200_000, 7):
        half = (n + 0.5) / 1000
        values += [half, math.nextafter(half, 0), math.nextafter(half, math.inf), n / 1000 + 1e-13]
    for x in values:
        assert same(_round3(x), round(x, 3)), x


def reference_summary(r: RequestRecord) -> dict[str, Any]:
    """The summary as it was built before."""
    return {
        "id": r.id, "started_at": iso_utc(r.started_at), "model": r.model, "provider": r.provider, "api": r.api,
        "path": r.path, "translated": r.translated, "stream": r.stream, "agent_id": r.agent_id, "state": r.state,
        "status": r.status,
        "latency_ms": None if r.latency_ms is None else round(r.latency_ms, 3),
        "ttft_ms": None if r.ttft_ms is None else round(r.ttft_ms, 3),
        "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
        "cache_read_tokens": r.cache_read_tokens, "cache_write_tokens": r.cache_write_tokens,
        "cost_usd": usd(r.cost_micros), "priced": r.priced, "cost_estimated": r.cost_estimated,
        "capped_max_tokens": r.capped_max_tokens, "error": r.error,
        "client_model": r.client_model, "attempts": list(r.attempts),
    }


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.floats(0, 4e9), st.none() | st.floats(0, 1e6) | st.integers(0, 10**6), st.none() | st.floats(0, 1e6),
    st.none() | st.integers(0, 10**12), st.none() | st.text(max_size=5),
)
def test_summary_is_unchanged(started: float, latency: Any, ttft: float | None, cost: int | None,
                              error: str | None) -> None:
    r = RequestRecord(id="req_1", started_at=started, method="POST", path="/v1/messages", api="anthropic.messages",
                      model="claude-sonnet-4-5", provider="anthropic", stream=True, agent_id="a")
    r.latency_ms, r.ttft_ms, r.cost_micros, r.error = latency, ttft, cost, error
    got, want = r.summary(), reference_summary(r)
    assert list(got) == list(want)  # same keys, same order
    assert all(same(got[k], want[k]) for k in want), (got, want)

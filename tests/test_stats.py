"""Totals per model/provider/agent, percentiles, the series and the budget forecast."""

from __future__ import annotations

from typing import Any

import pytest

from iron_tui.core.stats import SAMPLES_PER_GROUP, TotalsAccumulator, forecast, percentile


def call(model: str = "gpt-4o-mini", *, provider: str = "openai", agent: str | None = "a1", status: int = 200,
         latency: float = 100.0, ttft: float | None = None, cost: float | None = 0.001, stream: bool = False,
         **kw: Any) -> dict[str, Any]:
    failed = status >= 400
    return {"id": "x", "model": model, "provider": provider, "agent_id": agent, "status": status,
            "state": "error" if failed else "ok", "latency_ms": latency, "ttft_ms": ttft, "stream": stream,
            "input_tokens": 0 if failed else 100, "output_tokens": 0 if failed else 10,
            "cost_usd": None if failed else cost, "priced": True, **kw}


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 100) == 20.0
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) is None


def test_errors_are_counted_as_errors_not_hidden_in_calls() -> None:
    acc = TotalsAccumulator()
    for lat in (100.0, 200.0, 300.0):
        acc.add(call(latency=lat), 0)
    acc.add(call(status=429, latency=5.0), 0)
    acc.add(call(status=402, latency=1.0), 0)
    (g,) = acc.groups("model")
    assert (g.calls, g.errors) == (5, 2)
    assert (g.input_tokens, g.output_tokens, g.cost_micros) == (300, 30, 3000)
    # Latency percentiles are over the calls that succeeded: a refused call's 1 ms says nothing.
    assert (g.latency_p50, g.latency_p95) == (200.0, 300.0)
    assert acc.errors == 2 and acc.calls == 5


def test_ttft_only_for_streams_that_produced_a_first_token() -> None:
    acc = TotalsAccumulator()
    acc.add(call(stream=True, ttft=50.0), 0)
    acc.add(call(stream=True, ttft=150.0), 0)
    acc.add(call(stream=False, ttft=90.0), 0)  # a whole answer's "first byte" is not a TTFT
    acc.add(call(stream=True, ttft=5.0, status=500), 0)
    (g,) = acc.groups("model")
    assert (g.ttft_p50, g.ttft_p95) == (50.0, 150.0)


def test_groupings_and_order_and_share_of_budget() -> None:
    acc = TotalsAccumulator()
    acc.add(call("gpt-4o", cost=0.05, agent="planner"), 0)
    acc.add(call("claude-3-5-haiku-latest", provider="anthropic", cost=0.002, agent=None), 0)
    acc.add(call("claude-3-5-haiku-latest", provider="anthropic", cost=0.002, agent="planner"), 0)
    models = acc.groups("model")
    assert [g.key for g in models] == ["gpt-4o", "claude-3-5-haiku-latest"]
    assert models[1].provider == "anthropic" and models[1].calls == 2
    assert [(g.key, g.calls) for g in acc.groups("provider")] == [("openai", 1), ("anthropic", 2)]
    assert [(g.key, g.calls) for g in acc.groups("agent")] == [("planner", 2), ("(no agent)", 1)]
    assert models[0].share(100_000) == pytest.approx(0.5)
    assert models[0].share(None) is None


def test_samples_are_bounded_per_group() -> None:
    acc = TotalsAccumulator()
    for i in range(SAMPLES_PER_GROUP + 500):
        acc.add(call(latency=float(i)), 0)
    (g,) = acc.groups("model")
    assert g.calls == SAMPLES_PER_GROUP + 500 and g.sampled == SAMPLES_PER_GROUP
    assert g.latency_p50 == 500.0 + SAMPLES_PER_GROUP / 2 - 1  # over the newest samples


def test_rate_latency_and_spend_series() -> None:
    acc = TotalsAccumulator()
    for ts, lat in ((1000.0, 100.0), (1001.0, 300.0), (1015.0, 50.0), (1029.0, 70.0)):
        acc.add(call(latency=lat), ts)
    acc.add(call(status=500, latency=9999.0), 1029.5)
    assert acc.rate_series(1029.9, 3) == [2, 1, 2]
    assert acc.latency_series(1029.9, 3, 50) == [100.0, 50.0, 70.0]
    assert acc.spend_series(1029.9, 4) == [0, 2000, 1000, 1000]
    assert acc.spend_points() == [(1000.0, 2000), (1010.0, 1000), (1020.0, 1000)]
    # An hour later the old buckets are gone: a series query costs the same after a day as after a minute.
    acc.add(call(latency=1.0), 1029.0 + 3601)
    assert acc.spend_points() == [(4630.0, 1000)]


def test_forecast_burn_rate_and_time_left() -> None:
    points = [(1000.0 + 60 * i, 10_000) for i in range(5)]  # $0.01 a minute for 4 minutes
    f = forecast(spent=50_000, limit=1_000_000, points=points, now=1240.0)
    assert f.burn_micros_per_min == pytest.approx(12_500.0)  # 50,000 µ$ over 240 s
    assert f.remaining_micros == 950_000
    assert f.seconds_left == pytest.approx(950_000 / 12_500 * 60)
    assert not f.exhausted
    idle = forecast(spent=0, limit=1_000_000, points=[], now=5000.0)
    assert idle.burn_micros_per_min == 0 and idle.seconds_left is None
    unlimited = forecast(spent=5, limit=None, points=points, now=1240.0)
    assert unlimited.remaining_micros is None and unlimited.seconds_left is None
    done = forecast(spent=1_000_000, limit=1_000_000, points=points, now=1240.0)
    assert done.exhausted and done.seconds_left is None

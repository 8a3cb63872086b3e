"""The integer fast path of `Pricer.cost()` / `worst_case()` must give exactly what the Decimal sums give."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iron_tui.core.price_table import PriceEntry, PriceOverride, entry_from_genai
from iron_tui.core.pricing import Pricer, TokenUsage


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def reference_cost(entry: PriceEntry, usage: TokenUsage) -> int:
    """`Pricer.cost()` as it was: Decimal rates of the tier the call's total input selects."""
    inp, out, read, write, write_1h = entry.at(usage.total_input_tokens)
    one_hour = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    return _ceil(usage.input_tokens * inp + usage.output_tokens * out + usage.cache_read_tokens * read
                 + (usage.cache_write_tokens - one_hour) * write + one_hour * write_1h)


def reference_worst(entry: PriceEntry, input_bound: int, max_output: int, cache_writes: bool) -> int:
    input_bound, max_output = max(0, input_bound), max(0, max_output)
    vecs = [entry.base] + [vec for above, vec in entry.tiers if input_bound > above]
    in_rate = max(max(v[0], v[2], v[3], v[4]) if cache_writes else max(v[0], v[2]) for v in vecs)
    out_rate = max(v[1] for v in vecs)
    return _ceil(input_bound * in_rate + max_output * out_rate)


def every_genai_entry() -> list[tuple[str, PriceEntry]]:
    from genai_prices import data_snapshot

    found = []
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            entry = entry_from_genai(model.id, model.get_prices(datetime.now(tz=UTC)), model.context_window)
            if entry is not None:
                found.append((f"{provider.id}/{model.id}", entry))
    return found


ENTRIES = every_genai_entry()
OVERRIDES = {
    "odd-a": PriceOverride(0.075, 0.3),
    "odd-b": PriceOverride(123.456789, 0.0000001, cache_read_per_mtok=1e-9, cache_write_per_mtok=7.77),
    "odd-c": PriceOverride(1e-12, 3e15),
    "odd-d": PriceOverride(0.0, 0.0),
}


def pricer_with(entries: list[tuple[str, PriceEntry]]) -> Pricer:
    pricer = Pricer(OVERRIDES)
    for name, entry in entries:
        pricer._cache[("p", name)] = entry
    return pricer


def edge_counts(entry: PriceEntry) -> list[int]:
    counts = [0, 1, 7, 999, 123_457, 10**6 + 1, 10**12, 10**18 + 3, 10**26, 10**31 + 7]
    for above, _vec in entry.tiers:
        counts += [above - 1, above, above + 1]
    return counts


def test_every_bundled_model_costs_exactly_what_the_decimal_sums_give() -> None:
    assert len(ENTRIES) > 1000  # the whole genai-prices snapshot, tiered and odd prices included
    assert any(e.tiers for _n, e in ENTRIES)
    pricer = pricer_with(ENTRIES)
    for name, entry in ENTRIES:
        for n in edge_counts(entry):
            usages = [
                TokenUsage(input_tokens=n, output_tokens=n // 3 + 1),
                TokenUsage(input_tokens=n // 2, output_tokens=5, cache_read_tokens=n // 3,
                           cache_write_tokens=n // 5, cache_write_1h_tokens=n // 11),
                TokenUsage(cache_write_tokens=n, cache_write_1h_tokens=n + 9),
            ]
            for usage in usages:
                assert pricer.cost("p", name, usage) == reference_cost(entry, usage), (name, usage)
            for cache_writes in (True, False):
                assert pricer.worst_case("p", name, n, n // 7 + 3, cache_writes=cache_writes) == \
                    reference_worst(entry, n, n // 7 + 3, cache_writes), (name, n)


def test_configured_prices_and_unpriced_models_are_unchanged() -> None:
    pricer = Pricer(OVERRIDES)
    for provider in ("openai", "anthropic"):
        for model in OVERRIDES:
            entry = pricer._entry(provider, model)
            assert entry is not None
            for n in edge_counts(entry):
                usage = TokenUsage(input_tokens=n, output_tokens=3, cache_read_tokens=n // 2,
                                   cache_write_tokens=n // 4, cache_write_1h_tokens=1)
                assert pricer.cost(provider, model, usage) == reference_cost(entry, usage)
                assert pricer.worst_case(provider, model, n, 17) == reference_worst(entry, n, 17, True)
    assert pricer.cost("openai", "no-such-model-xyz", TokenUsage(input_tokens=5)) is None
    assert pricer.worst_case("openai", "no-such-model-xyz", 5, 5) is None


def test_known_prices_are_still_right() -> None:
    pricer = Pricer()
    assert pricer.cost("openai", "gpt-4o-mini", TokenUsage(input_tokens=31, output_tokens=9)) == 11  # 4.65+5.4
    assert pricer.worst_case("openai", "gpt-4o-mini", 400, 256) == 60 + 154  # 400×0.15 + 256×0.6 = 213.6
    assert pricer.worst_case("anthropic", "claude-sonnet-4-5", 300_000, 0, cache_writes=False) == 300_000 * 6


def test_odd_inputs_behave_as_before() -> None:
    pricer = Pricer()
    entry = pricer._entry("openai", "gpt-4o")
    assert entry is not None
    negative = TokenUsage(input_tokens=-50, output_tokens=10)
    assert pricer.cost("openai", "gpt-4o", negative) == reference_cost(entry, negative)
    assert pricer.worst_case("openai", "gpt-4o", -5, -5) == 0
    assert pricer.worst_case("openai", "gpt-4o", True, 2) == reference_worst(entry, True, 2, True)
    with pytest.raises(TypeError):
        pricer.cost("openai", "gpt-4o", TokenUsage(input_tokens=1.5))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pricer.worst_case("openai", "gpt-4o", 1.5, 2)  # type: ignore[arg-type]


TIERED = [(n, e) for n, e in ENTRIES if e.tiers][:40] + [(n, e) for n, e in ENTRIES if n.startswith("openai/")][:40]
counts = st.one_of(st.integers(0, 10**7), st.integers(0, 10**30), st.integers(-10**6, 10**6))


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TIERED), counts, counts, counts, counts, counts)
def test_random_usage_costs_exactly_the_same(picked: tuple[str, PriceEntry], a: int, b: int, c: int, d: int,
                                             e: int) -> None:
    name, entry = picked
    pricer = pricer_with([picked])
    usage = TokenUsage(input_tokens=a, output_tokens=b, cache_read_tokens=c, cache_write_tokens=d,
                       cache_write_1h_tokens=e)
    assert pricer.cost("p", name, usage) == reference_cost(entry, usage)
    assert pricer.worst_case("p", name, a, b) == reference_worst(entry, a, b, True)
    assert pricer.worst_case("p", name, c, d, cache_writes=False) == reference_worst(entry, c, d, False)


def _usage_payloads() -> Any:
    ints = st.one_of(st.integers(-5, 10**9), st.floats(allow_nan=True), st.none(), st.booleans(), st.text(max_size=3))
    details = st.one_of(st.none(), st.fixed_dictionaries({"cached_tokens": ints}), ints)
    chat = st.fixed_dictionaries({"prompt_tokens": ints, "completion_tokens": ints},
                                 optional={"prompt_tokens_details": details, "total_tokens": ints})
    responses = st.fixed_dictionaries({"input_tokens": ints, "output_tokens": ints},
                                      optional={"input_tokens_details": details})
    return st.one_of(chat, responses, st.none(), st.just({}))


def reference_from_openai(usage: Any) -> TokenUsage:
    """`TokenUsage.from_openai` as it was."""
    from collections.abc import Mapping

    from iron_tui.core.token_usage import _count

    def _sub(usage: Any, key: str) -> Any:
        details = usage.get(key)
        return details if isinstance(details, Mapping) else {}

    if not usage:
        return TokenUsage()
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt, output = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
        cached = _count(_sub(usage, "prompt_tokens_details").get("cached_tokens"))
    else:
        prompt, output = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
        cached = _count(_sub(usage, "input_tokens_details").get("cached_tokens"))
    cached = min(cached, prompt)
    return TokenUsage(input_tokens=prompt - cached, output_tokens=output, cache_read_tokens=cached)


@settings(max_examples=300, deadline=None, database=None)
@given(_usage_payloads())
def test_openai_usage_parsing_is_unchanged(payload: Any) -> None:
    got = TokenUsage.from_openai(payload)
    want = reference_from_openai(payload)
    assert got == want
    assert [type(v) for v in (got.input_tokens, got.output_tokens, got.cache_read_tokens)] == [int] * 3

"""Pricing: genai-prices rates, aliases, cache tokens billed once at their own rates, overrides."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import pytest
from genai_prices import Usage, calc_price
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iron_tui.core import pricing
from iron_tui.core.price_table import PriceOverride
from iron_tui.core.pricing import Pricer, TokenUsage


@pytest.fixture(scope="module")
def pricer() -> Pricer:
    p = Pricer()
    p.preload()
    return p


def reference_cost(provider: str, model: str, u: TokenUsage) -> int:
    """genai-prices' own answer, in µ$ rounded up. Its input_tokens INCLUDE cache tokens."""
    extra = {"cache_write_1h_tokens": u.cache_write_1h_tokens} if u.cache_write_1h_tokens else {}
    calc = calc_price(
        Usage(input_tokens=u.total_input_tokens, output_tokens=u.output_tokens,
              cache_read_tokens=u.cache_read_tokens, cache_write_tokens=u.cache_write_tokens, **extra),
        model_ref=model, provider_id=provider,
    )
    return int((calc.total_price * 1_000_000).to_integral_value(rounding=ROUND_CEILING))


# --- rates and aliases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "canonical", "inp", "out", "read"),
    [
        ("openai", "gpt-4o", "gpt-4o", 2.5, 10.0, 1.25),
        ("openai", "gpt-4o-2024-08-06", "gpt-4o", 2.5, 10.0, 1.25),
        ("openai", "GPT-4o", "gpt-4o", 2.5, 10.0, 1.25),
        ("openai", "gpt-4o-mini", "gpt-4o-mini", 0.15, 0.6, 0.075),
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", 0.15, 0.6, 0.075),
        ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5", 3.0, 15.0, 0.3),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", 3.0, 15.0, 0.3),
        ("anthropic", "claude-3-5-sonnet-latest", "claude-3-5-sonnet", 3.0, 15.0, 0.3),
        ("anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest", 0.8, 4.0, 0.08),
        ("anthropic", "claude-3-5-haiku-latest", "claude-3-5-haiku-latest", 0.8, 4.0, 0.08),
    ],
)
def test_rates_resolve_aliases_and_dated_names(
    pricer: Pricer, provider: str, model: str, canonical: str, inp: float, out: float, read: float
) -> None:
    r = pricer.rates(provider, model)
    assert r is not None, f"{model} should be priced"
    assert (r.model_id, r.input, r.output, r.cache_read, r.source) == (canonical, inp, out, read, "genai-prices")


def test_anthropic_cache_write_rate_is_its_own(pricer: Pricer) -> None:
    r = pricer.rates("anthropic", "claude-sonnet-4-5-20250929")
    assert r is not None
    assert (r.cache_write, r.cache_write_1h) == (3.75, 6.0)
    # Long-context tier: above 200K input tokens every rate steps up.
    assert [(t.above, t.input, t.output) for t in r.tiers] == [(200_000, 6.0, 22.5)]


def test_rates_describe_themselves(pricer: Pricer) -> None:
    gpt4o = pricer.rates("openai", "gpt-4o")
    mini = pricer.rates("openai", "gpt-4o-mini")
    sonnet = pricer.rates("anthropic", "claude-sonnet-4-5")
    assert gpt4o is not None and gpt4o.describe() == "$2.50 in / $10.00 out per Mtok"
    assert mini is not None and mini.describe() == "$0.15 in / $0.60 out per Mtok"
    assert sonnet is not None and sonnet.describe() == "$3.00 in / $15.00 out per Mtok (+tiers)"
    assert Pricer({"x": PriceOverride(0.075, 0.3)}).rates("openai", "x").describe() == (  # type: ignore[union-attr]
        "$0.075 in / $0.30 out per Mtok")


def test_embeddings_are_priced_on_input_only(pricer: Pricer) -> None:
    usage = TokenUsage.from_openai({"prompt_tokens": 1_000_000, "total_tokens": 1_000_000})
    assert pricer.cost("openai", "text-embedding-3-small", usage) == 20_000  # $0.02 / Mtok


# --- cost: exact, cache tokens once, rounding -----------------------------------------------------


def test_anthropic_cache_tokens_priced_at_their_own_rates_not_twice(pricer: Pricer) -> None:
    usage = TokenUsage.from_anthropic({"input_tokens": 300, "output_tokens": 10,
                                       "cache_read_input_tokens": 500, "cache_creation_input_tokens": 200})
    assert usage == TokenUsage(input_tokens=300, output_tokens=10, cache_read_tokens=500, cache_write_tokens=200)
    # 300 × $3 + 500 × $0.30 + 200 × $3.75 + 10 × $15 per Mtok = 900 + 150 + 750 + 150 µ$
    assert pricer.cost("anthropic", "claude-sonnet-4-5-20250929", usage) == 1950
    assert reference_cost("anthropic", "claude-sonnet-4-5-20250929", usage) == 1950


def test_anthropic_one_hour_cache_writes_cost_more(pricer: Pricer) -> None:
    usage = TokenUsage.from_anthropic({
        "input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 1000,
        "cache_creation": {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 400},
    })
    assert (usage.cache_write_tokens, usage.cache_write_1h_tokens) == (1000, 400)
    assert pricer.cost("anthropic", "claude-sonnet-4-5", usage) == 600 * 3.75 + 400 * 6  # 4650 µ$
    assert reference_cost("anthropic", "claude-sonnet-4-5", usage) == 4650


def test_openai_cached_tokens_are_split_out_of_prompt_tokens(pricer: Pricer) -> None:
    usage = TokenUsage.from_openai({"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100,
                                    "prompt_tokens_details": {"cached_tokens": 400}})
    assert usage == TokenUsage(input_tokens=600, output_tokens=100, cache_read_tokens=400)
    # 600 × $2.50 + 400 × $1.25 + 100 × $10 per Mtok
    assert pricer.cost("openai", "gpt-4o-2024-08-06", usage) == 1500 + 500 + 1000


def test_openai_responses_usage_shape() -> None:
    usage = TokenUsage.from_openai({"input_tokens": 50, "output_tokens": 20, "total_tokens": 70,
                                    "input_tokens_details": {"cached_tokens": 30},
                                    "output_tokens_details": {"reasoning_tokens": 12}})
    assert usage == TokenUsage(input_tokens=20, output_tokens=20, cache_read_tokens=30)


@pytest.mark.parametrize(
    "raw",
    [None, {}, {"prompt_tokens": None, "completion_tokens": "7"}, {"prompt_tokens": -5, "completion_tokens": True},
     {"prompt_tokens": 3, "prompt_tokens_details": None}],
)
def test_openai_usage_tolerates_junk(raw: dict | None) -> None:
    usage = TokenUsage.from_openai(raw)
    assert usage.cache_read_tokens == 0 and usage.output_tokens == 0 and usage.input_tokens in (0, 3)


def test_cached_tokens_never_exceed_prompt() -> None:
    usage = TokenUsage.from_openai({"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 99}})
    assert (usage.input_tokens, usage.cache_read_tokens) == (0, 10)


def test_anthropic_stream_usage_folds_cumulatively() -> None:
    start = TokenUsage.from_anthropic({"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 100,
                                       "cache_creation_input_tokens": 0})
    mid = start.updated_from_anthropic({"output_tokens": 40})
    final = mid.updated_from_anthropic({"output_tokens": 87, "input_tokens": None})
    assert final == TokenUsage(input_tokens=25, output_tokens=87, cache_read_tokens=100)


def test_cost_rounds_up_never_down(pricer: Pricer) -> None:
    # One gpt-4o-mini input token costs 0.15 µ$: charged as 1 µ$, never 0.
    assert pricer.cost("openai", "gpt-4o-mini", TokenUsage(input_tokens=1)) == 1
    assert pricer.cost("openai", "gpt-4o-mini", TokenUsage()) == 0


MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini-2024-07-18"),
    ("openai", "o1"),
    ("openai", "gpt-4.1"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-3-5-haiku-20241022"),
    ("anthropic", "claude-opus-4-1"),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    model=st.sampled_from(MODELS),
    inp=st.integers(0, 400_000),
    out=st.integers(0, 64_000),
    read=st.integers(0, 150_000),
    write=st.integers(0, 50_000),
    one_hour=st.integers(0, 50_000),
)
def test_cached_rates_agree_with_calc_price(
    pricer: Pricer, model: tuple[str, str], inp: int, out: int, read: int, write: int, one_hour: int
) -> None:
    provider, name = model
    usage = TokenUsage(inp, out, read, write, min(one_hour, write) if provider == "anthropic" else 0)
    if provider == "openai":
        usage = TokenUsage(inp, out, read, 0)  # OpenAI never reports cache writes
    assert pricer.cost(provider, name, usage) == reference_cost(provider, name, usage)


@pytest.mark.parametrize("total_input", [199_999, 200_000, 200_001, 350_000])
def test_long_context_tier_follows_actual_input_size(pricer: Pricer, total_input: int) -> None:
    usage = TokenUsage(input_tokens=total_input - 50_000, cache_read_tokens=50_000, output_tokens=1_000)
    cost = pricer.cost("anthropic", "claude-sonnet-4-5", usage)
    assert cost == reference_cost("anthropic", "claude-sonnet-4-5", usage)
    tier = total_input > 200_000
    expected = (total_input - 50_000) * (6 if tier else 3) + 50_000 * (0.6 if tier else 0.3) + 1000 * (
        22.5 if tier else 15)
    assert cost == int(Decimal(str(expected)).to_integral_value(rounding=ROUND_CEILING))


# --- worst case -----------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    model=st.sampled_from(MODELS),
    bound=st.integers(0, 500_000),
    max_out=st.integers(0, 100_000),
    data=st.data(),
)
def test_worst_case_covers_every_usage_within_bounds(
    pricer: Pricer, model: tuple[str, str], bound: int, max_out: int, data: st.DataObject
) -> None:
    provider, name = model
    read = data.draw(st.integers(0, bound))
    write = data.draw(st.integers(0, bound - read))
    usage = TokenUsage(input_tokens=bound - read - write, output_tokens=data.draw(st.integers(0, max_out)),
                       cache_read_tokens=read, cache_write_tokens=write,
                       cache_write_1h_tokens=data.draw(st.integers(0, write)))
    worst = pricer.worst_case(provider, name, bound, max_out)
    cost = pricer.cost(provider, name, usage)
    assert worst is not None and cost is not None and cost <= worst


def test_worst_case_without_cache_writes_is_tighter(pricer: Pricer) -> None:
    with_writes = pricer.worst_case("anthropic", "claude-sonnet-4-5", 10_000, 1_000)
    plain = pricer.worst_case("anthropic", "claude-sonnet-4-5", 10_000, 1_000, cache_writes=False)
    assert plain == 10_000 * 3 + 1_000 * 15
    assert with_writes == 10_000 * 6 + 1_000 * 15  # a 1-hour cache write is 2× input
    assert pricer.worst_case("anthropic", "claude-sonnet-4-5", 300_000, 0, cache_writes=False) == 300_000 * 6


# --- overrides and unpriced -----------------------------------------------------------------------


def test_config_override_applies_to_every_alias() -> None:
    p = Pricer({"gpt-4o": PriceOverride(input_per_mtok=1.0, output_per_mtok=2.0, cache_read_per_mtok=0.5)})
    for name in ("gpt-4o", "gpt-4o-2024-08-06"):
        r = p.rates("openai", name)
        assert r is not None and (r.input, r.output, r.cache_read, r.source) == (1.0, 2.0, 0.5, "config")
    usage = TokenUsage(input_tokens=1000, output_tokens=1000, cache_read_tokens=1000)
    assert p.cost("openai", "gpt-4o-2024-08-06", usage) == 1000 + 2000 + 500
    # Other models keep their genai-prices price.
    mini = p.rates("openai", "gpt-4o-mini")
    assert mini is not None and mini.source == "genai-prices"


def test_an_override_of_token_prices_keeps_the_models_price_per_search() -> None:
    # gpt-5 and claude-sonnet-4-5 cost $10 per 1,000 searches in genai-prices: a token override (by the
    # name, an alias, or provider/name) must not make searches free.
    p = Pricer({"gpt-5": PriceOverride(1.0, 2.0), "gpt-4o": PriceOverride(1.0, 2.0),
                "anthropic/claude-sonnet-4-5": PriceOverride(1.0, 2.0)})
    usage = TokenUsage(input_tokens=1000, output_tokens=1000, web_search_requests=3)
    for provider, model in (("openai", "gpt-5"), ("openai", "gpt-4o-2024-08-06"),
                            ("anthropic", "claude-sonnet-4-5")):
        r = p.rates(provider, model)
        assert r is not None and r.source == "config" and r.web_search == 10_000, model
        assert p.cost(provider, model, usage) == 1000 + 2000 + 3 * 10_000, model
        worst = p.worst_case(provider, model, 1000, 1000, cache_writes=False, web_searches=10)
        assert worst == 1000 + 2000 + 10 * 10_000, model


def test_the_per_search_price_can_be_configured_set_or_zeroed() -> None:
    usage = TokenUsage(input_tokens=1000, output_tokens=1000, web_search_requests=4)
    p = Pricer({"gpt-5": PriceOverride(1.0, 2.0, web_search_per_1k=25),
                "gpt-4o": PriceOverride(1.0, 2.0, web_search_per_1k=0),
                "my-finetuned-gpt": PriceOverride(1.0, 2.0),
                "my-search-gpt": PriceOverride(1.0, 2.0, web_search_per_1k=12.5)})
    assert p.cost("openai", "gpt-5", usage) == 3000 + 4 * 25_000  # $25 per 1,000 = 25,000 µ$ per search
    assert p.cost("openai", "gpt-4o", usage) == 3000  # zeroed
    assert p.cost("openai", "my-finetuned-gpt", usage) == 3000  # added by config only: no search price
    assert p.cost("openai", "my-search-gpt", usage) == 3000 + 4 * 12_500
    # A local provider (free unless configured) gets no genai-prices search price either.
    local = Pricer({"gpt-5": PriceOverride(1.0, 2.0)}, price_ids={"ollama": None})
    assert local.cost("ollama", "gpt-5", usage) == 3000
    assert local.cost("ollama", "llama3", usage) == 0


def test_config_adds_an_unknown_model() -> None:
    p = Pricer({"my-local-llm": PriceOverride(0.075, 0.3), "anthropic/claude-internal": PriceOverride(2, 8)})
    assert p.cost("openai", "my-local-llm", TokenUsage(input_tokens=1000, output_tokens=100)) == 75 + 30
    r = p.rates("anthropic", "claude-internal")
    # Unset cache prices follow Anthropic's rule: reads 0.1×, writes 1.25× the input price.
    assert r is not None and (r.cache_read, r.cache_write) == (0.2, 2.5)
    assert p.rates("openai", "claude-internal") is None  # provider-scoped key


def test_unknown_model_is_unpriced_not_free(pricer: Pricer) -> None:
    usage = TokenUsage(input_tokens=1000, output_tokens=1000)
    assert pricer.rates("openai", "totally-made-up-model") is None
    assert pricer.cost("openai", "totally-made-up-model", usage) is None
    assert pricer.worst_case("openai", "totally-made-up-model", 1000, 1000) is None
    assert pricer.rates("nosuchprovider", "gpt-4o") is None
    assert not pricer.is_priced("anthropic", "claude-does-not-exist")


def test_strict_flag_is_kept() -> None:
    assert Pricer(strict=True).strict is True
    assert Pricer().strict is False


def test_lookups_are_cached_including_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = pricing.genai_lookup

    def counting(provider: str, model: str):  # type: ignore[no-untyped-def]
        calls.append((provider, model))
        return real(provider, model)

    monkeypatch.setattr(pricing, "genai_lookup", counting)  # the name Pricer looks up
    p = Pricer()
    usage = TokenUsage(input_tokens=10, output_tokens=10)
    for _ in range(50):
        p.cost("openai", "gpt-4o", usage)
        p.cost("openai", "no-such-model", usage)
        p.rates("anthropic", "claude-sonnet-4-5-20250929")
    assert sorted(calls) == [("anthropic", "claude-sonnet-4-5-20250929"), ("openai", "gpt-4o"),
                             ("openai", "no-such-model")]
    assert p.cache_info() == {"cached": 3, "priced": 2, "unpriced": 1}


def test_prices_are_looked_up_once_per_model_not_per_call(pricer: Pricer, monkeypatch: pytest.MonkeyPatch) -> None:
    # genai-prices' lookup costs ~0.6 ms; the per-call path must only read the cached entry (its speed is
    # measured in bench/micro.py).
    import iron_tui.core.pricing as pricing

    lookups: list[tuple[str, str]] = []
    real = pricing.genai_lookup

    def counting(provider: str, model: str) -> object:
        lookups.append((provider, model))
        return real(provider, model)

    monkeypatch.setattr(pricing, "genai_lookup", counting)  # the name Pricer looks up
    usage = TokenUsage(input_tokens=1234, output_tokens=567, cache_read_tokens=89, cache_write_tokens=10)
    fresh = Pricer()
    first = fresh.cost("anthropic", "claude-sonnet-4-5-20250929", usage)
    for _ in range(1_000):
        assert fresh.cost("anthropic", "claude-sonnet-4-5-20250929", usage) == first
        fresh.worst_case("openai", "gpt-4o", 5_000, 1_000)
    assert len(lookups) == len(set(lookups)) == 2  # one lookup per model, whatever the number of calls

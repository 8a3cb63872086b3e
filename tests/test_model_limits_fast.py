"""The true output bound: model limits from the vendored LiteLLM subset, genai-prices and config."""

from __future__ import annotations

import pytest

from iron_tui.core.model_limits import ANTHROPIC_FALLBACK_MAX_TOKENS, LimitOverride, ModelLimits


@pytest.fixture(scope="module")
def limits() -> ModelLimits:
    return ModelLimits()


@pytest.mark.parametrize(("provider", "model", "max_out"), [
    ("openai", "gpt-4o", 16_384),
    ("openai", "gpt-4o-2024-08-06", 16_384),
    ("openai", "GPT-4o-mini", 16_384),
    ("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123", 16_384),
    ("anthropic", "claude-sonnet-4-5", 64_000),
    ("anthropic", "claude-sonnet-4-5-20250929", 64_000),
    ("anthropic", "claude-sonnet-4-5-20991231", 64_000),  # a future snapshot of a known model
    ("anthropic", "claude-opus-4-6", 128_000),
])
def test_known_models_have_their_maximum_output(limits: ModelLimits, provider: str, model: str,
                                                max_out: int) -> None:
    assert limits.max_output(provider, model) == max_out
    assert limits.output_bound(provider, model, 1_000, None) == max_out


def test_no_cap_reserves_the_model_maximum_not_a_default(limits: ModelLimits) -> None:
    # The OpenAI SDK sends no max_tokens: gpt-4o may write 16,384 tokens, not 4,096.
    assert limits.output_bound("openai", "gpt-4o", 50, None) == 16_384
    assert limits.output_bound("openai", "gpt-4o", 50, None, choices=3) == 3 * 16_384


def test_a_client_cap_bounds_the_output_but_never_above_the_model(limits: ModelLimits) -> None:
    assert limits.output_bound("openai", "gpt-4o", 50, 200) == 200
    assert limits.output_bound("openai", "gpt-4o", 50, 200, choices=2) == 400
    assert limits.output_bound("openai", "gpt-4o", 50, 10**9) == 16_384


def test_context_window_is_the_bound_when_only_it_is_known() -> None:
    lim = ModelLimits(context_window=lambda provider, model: 32_000)
    assert lim.output_bound("openai", "brand-new-model", 10_000, None) == 32_000
    assert lim.limits("openai", "brand-new-model").source == "genai-prices"


def test_unknown_everything_is_unbounded_and_anthropic_gets_a_safe_cap() -> None:
    lim = ModelLimits(context_window=lambda provider, model: None)
    assert lim.output_bound("local", "llama-3-8b", 100, None) is None
    assert lim.output_bound("local", "llama-3-8b", 100, 512) == 512
    assert lim.send_cap("anthropic", "claude-experimental") == ANTHROPIC_FALLBACK_MAX_TOKENS


def test_config_overrides_win() -> None:
    lim = ModelLimits({"local/llama-3-8b": LimitOverride(max_output_tokens=2048, context_window=8192),
                       "gpt-4o": LimitOverride(max_output_tokens=1000)},
                      context_window=lambda provider, model: None)
    assert lim.output_bound("local", "llama-3-8b", 100, None) == 2048
    assert lim.limits("local", "llama-3-8b").context_window == 8192
    assert lim.max_output("openai", "gpt-4o") == 1000
    assert lim.limits("openai", "gpt-4o").context_window == 128_000


def test_send_cap_for_known_claude_models(limits: ModelLimits) -> None:
    assert limits.send_cap("anthropic", "claude-sonnet-4-5") == 64_000


def test_the_data_names_its_source(limits: ModelLimits) -> None:
    assert "LiteLLM" in limits.source

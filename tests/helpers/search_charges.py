"""What a call's web searches were charged, for the web-search tests of both dialects."""

from __future__ import annotations

import dataclasses
from typing import Any

from iron_tui.core.pricing import Pricer
from iron_tui.core.token_usage import TokenUsage

PRICER = Pricer()


def tokens_only(provider: str, model: str, usage: TokenUsage) -> int:
    """µ$ for `usage`'s tokens at the model's price, its searches left out."""
    cost = PRICER.cost(provider, model, dataclasses.replace(usage, web_search_requests=0))
    assert cost is not None
    return cost


def searches_charged(rec: Any, per_search: int) -> float:
    """(cost − what the record's tokens cost) in searches."""
    tokens = TokenUsage(input_tokens=rec.input_tokens, output_tokens=rec.output_tokens)
    return (rec.cost_micros - tokens_only(rec.provider, rec.model, tokens)) / per_search

"""Exact per-call pricing from the bundled `genai-prices` data, with config overrides.

Why the design looks like this:

* `genai_prices.calc_price` costs ~0.6 ms per call and importing the package ~0.7 s, while the proxy
  prices every call. So a (provider, model) pair is resolved *once* (aliases and dated names such as
  `gpt-4o-2024-08-06` or `claude-sonnet-4-5-20250929` resolve through genai-prices' own matchers),
  its prices are copied into exact `Decimal` rates and cached, and `cost()` is a few Decimal
  multiplications (~2 µs). A test proves `cost()` equals `ceil(calc_price(...).total_price × 10⁶)` for
  several models, including cache tokens and long-context tiers. Unknown models are cached too
  (as unpriced), so a bad model name costs one lookup, not one per call.
* Token accounting (`core/token_usage.py`) is unambiguous: `TokenUsage.input_tokens` EXCLUDES cache
  tokens, so each token is billed exactly once, at its own rate: uncached input at the input rate,
  cache reads at the read rate, cache writes at the write rate.
* Tiers: genai-prices uses "cliff" tiers (e.g. claude-sonnet-4-5 above 200K input tokens: every token
  of the call at the higher rate), selected by the call's *total* input (uncached + cache read +
  cache write). `cost()` does the same with the actual input size; `worst_case()` uses the highest
  rate of any tier the input bound could reach.
* Rates missing from the data are filled conservatively: no cache-read price → cache reads cost the
  input rate; no cache-write price → cache writes cost the input rate (this is also what genai-prices
  does); no output price (embeddings) → output costs 0. A model with no per-token input price (audio
  by the hour, moderation) is unpriced.
* Server-side web searches (`TokenUsage.web_search_requests`: Anthropic's
  `usage.server_tool_use.web_search_requests`, the `web_search_call` items of an OpenAI Responses answer)
  are priced per search from genai-prices' `web_searches_kcount` (none there: tokens only); a config
  override of a model's token prices keeps that per-search price unless it sets `web_search_per_1k`. Not priced:
  the searches of OpenAI's Chat Completions search models (their answers count none, and genai-prices
  has no per-search price for them), other hosted-tool fees (file search, code interpreter) and
  audio/image token modalities.
* Prices are taken as of the first lookup of a pair in this process (genai-prices' data can hold
  dated price changes); the bundled data is never updated from the network.

Units: `Rates` are µ$ per token, which is numerically the same as USD per million tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal

from iron_tui.core.price_table import (
    PriceEntry,
    PriceOverride,
    Rates,
    entry_from_genai,
    entry_from_override,
    genai_lookup,
)
from iron_tui.core.token_usage import TokenUsage

__all__ = ["Pricer", "TokenUsage"]


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


_MAX_CACHED = 4096  # bound on distinct (provider, model) pairs, so junk model names cannot grow memory


class Pricer:
    """Prices calls. `rates()`/`cost()`/`worst_case()` return None for an unpriced model.

    `overrides` keys are model names, optionally `provider/model`; a key also matches every alias of
    a known model (an override for `gpt-4o` applies to `gpt-4o-2024-08-06`). Unknown names add models.
    """

    def __init__(self, overrides: Mapping[str, PriceOverride] | None = None, *, strict: bool = False,
                 price_ids: Mapping[str, str | None] | None = None) -> None:
        self.strict = strict
        self._overrides = {k.strip().lower(): v for k, v in (overrides or {}).items()}
        # Provider name → its genai-prices provider id; None marks a local provider, free unless a price
        # is configured. A name not listed is looked up as itself.
        self._price_ids = dict(price_ids or {})
        self._cache: dict[tuple[str, str], PriceEntry | None] = {}
        self._lock = threading.Lock()  # LlmRouter may call from another thread; lookups are idempotent

    # -- public ---------------------------------------------------------------------------------

    def preload(self) -> None:
        """Import genai-prices and build its index (~0.8 s) ahead of the first call; safe in a thread."""
        from genai_prices import data_snapshot

        data_snapshot.get_snapshot()

    def rates(self, provider: str, model: str) -> Rates | None:
        entry = self._entry(provider, model)
        return None if entry is None else entry.rates

    def is_priced(self, provider: str, model: str) -> bool:
        return self._entry(provider, model) is not None

    def cost(self, provider: str, model: str, usage: TokenUsage) -> int | None:
        """Exact cost in µ$, rounded up (never undercharge); None when the model is unpriced.
        Server-side web searches are added at the model's per-search price (0 when genai-prices has none)."""
        entry = self._entry(provider, model)
        if entry is None:
            return None
        tokens_cost = self._token_cost(entry, usage)
        searches = usage.web_search_requests
        if searches > 0 and entry.web_search:
            return tokens_cost + _ceil(searches * entry.web_search)
        return tokens_cost

    @staticmethod
    def _token_cost(entry: PriceEntry, usage: TokenUsage) -> int:
        tokens = usage.input_tokens
        output = usage.output_tokens
        read = usage.cache_read_tokens
        write = usage.cache_write_tokens
        one_hour = min(usage.cache_write_1h_tokens, write)
        write -= one_hour
        k = entry.index(tokens + read + write + one_hour) if entry.tiers else 0
        ex = entry.exact[k]
        # `|` also refuses non-int counts (as the Decimal path does), so only ints reach the fast path.
        if ex is not None and (tokens | output | read | write | one_hour) >= 0 and (
                tokens + output + read + write + one_hour <= ex.max_tokens):
            n_in, n_out, n_read, n_write, n_1h = ex.nums
            total = tokens * n_in + output * n_out + read * n_read + write * n_write + one_hour * n_1h
            return -(-total // ex.scale)
        inp, out, d_read, d_write, write_1h = entry.base if k == 0 else entry.tiers[k - 1][1]
        return _ceil(tokens * inp + output * out + read * d_read + write * d_write + one_hour * write_1h)

    def worst_case(
        self, provider: str, model: str, input_bound: int, max_output: int, *, cache_writes: bool = True,
        web_searches: int = 0,
    ) -> int | None:
        """Upper bound in µ$ for a call with at most `input_bound` input and `max_output` output tokens.

        Every input token is priced at the dearest input-side rate (with `cache_writes`, a cache write
        may cost more than plain input: Anthropic 1.25×, 2× for 1-hour writes). Pass
        `cache_writes=False` when the request cannot write a cache (an Anthropic request body without
        `cache_control`) to tighten the bound. Every tier the input could reach is considered.
        `web_searches`: the most server-side web searches the call may run (priced per search).
        """
        entry = self._entry(provider, model)
        if entry is None:
            return None
        fees = _ceil(web_searches * entry.web_search) if web_searches > 0 and entry.web_search else 0
        return fees + self._worst_tokens(entry, input_bound, max_output, cache_writes)

    @staticmethod
    def _worst_tokens(entry: PriceEntry, input_bound: int, max_output: int, cache_writes: bool) -> int:
        input_bound = max(0, input_bound)
        max_output = max(0, max_output)
        w = entry.worst[entry.index(input_bound) if entry.tiers else 0]
        ex = w.exact if cache_writes else w.exact_no_writes
        if ex is not None and type(input_bound) is int and type(max_output) is int and (
                input_bound + max_output <= ex.max_tokens):
            n_in, n_out = ex.nums
            return -(-(input_bound * n_in + max_output * n_out) // ex.scale)
        return _ceil(input_bound * (w.in_rate if cache_writes else w.in_rate_no_writes) + max_output * w.out_rate)

    def cache_info(self) -> dict[str, int]:
        """How many (provider, model) pairs are cached, priced and unpriced (for diagnostics)."""
        priced = sum(1 for v in self._cache.values() if v is not None)
        return {"cached": len(self._cache), "priced": priced, "unpriced": len(self._cache) - priced}

    # -- lookup ---------------------------------------------------------------------------------

    def _entry(self, provider: str, model: str) -> PriceEntry | None:
        key = (provider, model)
        try:
            return self._cache[key]
        except KeyError:
            pass
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            entry = self._resolve(provider, model)
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[key] = entry
            return entry

    def _override(self, provider: str, *names: str) -> PriceOverride | None:
        for name in names:
            name = name.lower()
            found = self._overrides.get(f"{provider.lower()}/{name}") or self._overrides.get(name)
            if found is not None:
                return found
        return None

    def _resolve(self, provider: str, model: str) -> PriceEntry | None:
        local = provider in self._price_ids and self._price_ids[provider] is None  # free unless configured
        override = self._override(provider, model)
        if override is not None and (local or override.web_search_per_1k is not None):
            return entry_from_override(provider, model, override, None)
        if override is None and local:
            return entry_from_override(provider, model, PriceOverride(0.0, 0.0, 0.0, 0.0), None)
        found = genai_lookup(self._price_ids.get(provider) or provider, model)
        if override is not None:  # the model's own per-search price stays (an added model has none)
            return entry_from_override(provider, model, override, None, found[1] if found else None)
        if found is None:
            return None
        model_id, model_price, context_window = found
        override = self._override(provider, model_id)
        if override is not None:
            return entry_from_override(provider, model_id, override, context_window, model_price)
        return entry_from_genai(model_id, model_price, context_window)

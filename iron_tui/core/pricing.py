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
* Server-side web searches (Anthropic's `usage.server_tool_use.web_search_requests`) are priced per
  search from genai-prices' `web_searches_kcount`. Not priced: other hosted-tool fees (file search,
  OpenAI's web search calls, which its usage does not count) and audio/image token modalities.
* Prices are taken as of the first lookup of a pair in this process (genai-prices' data can hold
  dated price changes); the bundled data is never updated from the network.

Units: `Rates` are µ$ per token, which is numerically the same as USD per million tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

from iron_tui.core.token_usage import TokenUsage

__all__ = ["PriceOverride", "Pricer", "RateTier", "Rates", "TokenUsage"]

# --- rates ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateTier:
    """Rates that apply to every token of a call whose total input exceeds `above` tokens."""

    above: int
    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float


@dataclass(frozen=True, slots=True)
class Rates:
    """µ$ per token (== USD per million tokens) for the base tier; `tiers` lists higher tiers."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    source: str  # "genai-prices" | "config"
    model_id: str = ""  # the canonical name the price was found under
    cache_write_1h: float | None = None  # None: same as cache_write
    tiers: tuple[RateTier, ...] = ()
    context_window: int | None = None
    web_search: float | None = None  # µ$ per server-side web search; None: not priced

    def describe(self) -> str:
        """Short human text, e.g. "$2.50 in / $10.00 out per Mtok (+tiers)" or "$0.075 in / ..."."""
        text = f"${_money(self.input)} in / ${_money(self.output)} out per Mtok"
        return text + (" (+tiers)" if self.tiers else "")


def _money(value: float) -> str:
    text = f"{value:.4f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """A configured price, USD per million tokens. Cache prices left None default to the provider's
    rule: Anthropic reads 0.1× and writes 1.25× (1-hour writes 2×) the input price; others the input price.
    """

    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None


# Exact rate vector: (input, output, cache_read, cache_write, cache_write_1h), µ$ per token.
_Vec = tuple[Decimal, Decimal, Decimal, Decimal, Decimal]


# Every Decimal step of `cost()`/`worst_case()` is exact while the integers involved stay below 10²⁸
# (the default context's 28 digits). Within that bound the same sums done in integers over a common
# power of ten give the identical result, ~30× faster; beyond it the Decimal code runs as before.
_EXACT_DIGITS = 10**28


@dataclass(frozen=True, slots=True)
class _Exact:
    """Rates as integers over `scale` (a power of ten): rate[i] == nums[i] / scale exactly."""

    nums: tuple[int, ...]
    scale: int
    max_tokens: int  # token counts summing to at most this keep Σ tokens·num below 10²⁸


def _exact(rates: tuple[Decimal, ...]) -> _Exact | None:
    """`rates` as an `_Exact`, or None when one is not finite (the Decimal path then handles it)."""
    parts = [r.as_tuple() for r in rates]
    if not all(r.is_finite() for r in rates):
        return None
    shift = max(0, *(-int(p.exponent) for p in parts))
    nums = tuple(
        (-1 if p.sign else 1) * int("".join(map(str, p.digits))) * 10 ** (int(p.exponent) + shift) for p in parts
    )
    biggest = max(abs(n) for n in nums)
    return _Exact(nums, 10**shift, (_EXACT_DIGITS - 1) // biggest if biggest else _EXACT_DIGITS)


@dataclass(frozen=True, slots=True)
class _Worst:
    """`worst_case()`'s rates for one set of reachable tiers."""

    in_rate: Decimal  # with cache writes
    in_rate_no_writes: Decimal
    out_rate: Decimal
    exact: _Exact | None  # (in_rate, out_rate)
    exact_no_writes: _Exact | None  # (in_rate_no_writes, out_rate)


@dataclass(frozen=True, slots=True)
class _Entry:
    rates: Rates
    base: _Vec
    tiers: tuple[tuple[int, _Vec], ...]  # ascending thresholds
    # Derived once per (provider, model), so a priced call does no Decimal work in the usual case:
    exact: tuple[_Exact | None, ...] = ()  # per vector: base, then each tier's
    worst: tuple[_Worst, ...] = ()  # [k]: with the first k tiers reachable
    web_search: Decimal = Decimal(0)  # µ$ per web search

    def at(self, total_input: int) -> _Vec:
        vec = self.base
        for above, tier_vec in self.tiers:
            if total_input > above:
                vec = tier_vec
        return vec

    def index(self, total_input: int) -> int:
        """How many tiers `total_input` exceeds (tiers ascend, so they are the first ones)."""
        k = 0
        for above, _vec in self.tiers:
            if total_input > above:
                k += 1
        return k


def _make_entry(rates: Rates, base: _Vec, tiers: tuple[tuple[int, _Vec], ...],
                web_search: Decimal = Decimal(0)) -> _Entry:
    aboves = [above for above, _vec in tiers]
    assert aboves == sorted(set(aboves)), "tier thresholds must ascend"
    vecs = [base] + [vec for _above, vec in tiers]
    worst = []
    for k in range(len(vecs)):
        # Exactly the maxima worst_case() took over the reachable vectors (the first k + 1).
        reach = vecs[: k + 1]
        in_rate = max(max(v[0], v[2], v[3], v[4]) for v in reach)
        in_rate_nw = max(max(v[0], v[2]) for v in reach)
        out_rate = max(v[1] for v in reach)
        worst.append(_Worst(in_rate, in_rate_nw, out_rate, _exact((in_rate, out_rate)),
                            _exact((in_rate_nw, out_rate))))
    return _Entry(rates=rates, base=base, tiers=tiers, exact=tuple(_exact(v) for v in vecs), worst=tuple(worst),
                  web_search=web_search)


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _dec(value: float) -> Decimal:
    # str() keeps a config float's short form (0.075 stays 0.075, not 0.07499999...).
    return Decimal(str(value))


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
        self._cache: dict[tuple[str, str], _Entry | None] = {}
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
    def _token_cost(entry: _Entry, usage: TokenUsage) -> int:
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
    def _worst_tokens(entry: _Entry, input_bound: int, max_output: int, cache_writes: bool) -> int:
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

    def _entry(self, provider: str, model: str) -> _Entry | None:
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

    def _resolve(self, provider: str, model: str) -> _Entry | None:
        override = self._override(provider, model)
        if override is not None:
            return _from_override(provider, model, override, None)
        if provider in self._price_ids and self._price_ids[provider] is None:
            return _from_override(provider, model, PriceOverride(0.0, 0.0, 0.0, 0.0), None)  # local: free
        found = _genai_lookup(self._price_ids.get(provider) or provider, model)
        if found is None:
            return None
        model_id, model_price, context_window = found
        override = self._override(provider, model_id)
        if override is not None:
            return _from_override(provider, model_id, override, context_window)
        return _from_genai(model_id, model_price, context_window)


def _genai_lookup(provider: str, model: str) -> tuple[str, Any, int | None] | None:
    """(canonical id, ModelPrice, context window) from genai-prices, or None when it has no such model."""
    from genai_prices import data_snapshot

    try:
        _prov, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        return None
    return info.id, info.get_prices(datetime.now(tz=UTC)), info.context_window


def _from_override(provider: str, model_id: str, o: PriceOverride, context_window: int | None) -> _Entry:
    inp, out = _dec(o.input_per_mtok), _dec(o.output_per_mtok)
    anthropic = provider.lower() == "anthropic"
    read = _dec(o.cache_read_per_mtok) if o.cache_read_per_mtok is not None else (
        inp * Decimal("0.1") if anthropic else inp)
    write = _dec(o.cache_write_per_mtok) if o.cache_write_per_mtok is not None else (
        inp * Decimal("1.25") if anthropic else inp)
    write_1h = max(write, inp * 2) if anthropic else write
    base: _Vec = (inp, out, read, write, write_1h)
    rates = Rates(
        input=float(inp), output=float(out), cache_read=float(read), cache_write=float(write),
        source="config", model_id=model_id, cache_write_1h=float(write_1h), context_window=context_window,
    )
    return _make_entry(rates, base, ())


def _from_genai(model_id: str, mp: Any, context_window: int | None) -> _Entry | None:
    from genai_prices.types import TieredPrices

    raw = {
        "input": mp.input_mtok,
        "output": mp.output_mtok,
        "read": mp.cache_read_mtok,
        "write": mp.cache_write_mtok,
        "write_1h": mp.cache_write_1h_mtok,
    }
    if raw["input"] is None:
        return None  # priced by something other than tokens (audio hours, characters) or free: unpriced

    thresholds = sorted({t.start for p in raw.values() if isinstance(p, TieredPrices) for t in p.tiers})

    def price(p: Any, total_input: int) -> Decimal | None:
        # Mirrors genai_prices.types.calc_unit_price: the highest tier whose start is exceeded.
        if p is None:
            return None
        if isinstance(p, TieredPrices):
            chosen = p.base
            for tier in p.tiers:
                if total_input > tier.start:
                    chosen = tier.price
            return Decimal(chosen)
        return Decimal(p)

    def vec(total_input: int) -> _Vec:
        inp = price(raw["input"], total_input)
        assert inp is not None
        out = price(raw["output"], total_input) or Decimal(0)
        read = price(raw["read"], total_input)
        write = price(raw["write"], total_input)
        write_1h = price(raw["write_1h"], total_input)
        read = inp if read is None else read
        write = inp if write is None else write
        return (inp, out, read, write, write if write_1h is None else write_1h)

    base = vec(0)
    tiers = tuple((start, vec(start + 1)) for start in thresholds)

    def floats(v: _Vec) -> tuple[float, float, float, float, float]:
        return float(v[0]), float(v[1]), float(v[2]), float(v[3]), float(v[4])

    b = floats(base)
    # USD per 1,000 searches → µ$ per search.
    kcount = getattr(mp, "web_searches_kcount", None)
    per_search = Decimal(kcount) * 1000 if kcount is not None and not isinstance(kcount, TieredPrices) \
        else Decimal(0)
    rates = Rates(
        input=b[0], output=b[1], cache_read=b[2], cache_write=b[3], source="genai-prices",
        model_id=model_id, cache_write_1h=b[4],
        tiers=tuple(RateTier(start, *floats(v)) for start, v in tiers),
        context_window=context_window, web_search=float(per_search) if per_search else None,
    )
    return _make_entry(rates, base, tiers, per_search)

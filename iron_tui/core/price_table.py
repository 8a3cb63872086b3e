"""Price tables for `pricing.py`'s `Pricer`: the rate types (`Rates`, `RateTier`, `PriceOverride`) and
`PriceEntry`, built once per (provider, model) from a config override or genai-prices' data, with the
exact integer forms `cost()` and `worst_case()` use. How rates are resolved and filled: see `pricing.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = ["PriceEntry", "PriceOverride", "RateTier", "Rates", "entry_from_genai", "entry_from_override",
           "genai_lookup", "genai_search_price"]

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
    `web_search_per_1k` (USD per 1,000 server-side web searches) left None keeps the model's genai-prices
    per-search price (none for a model genai-prices does not know).
    """

    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    web_search_per_1k: float | None = None


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
class PriceEntry:
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
                web_search: Decimal = Decimal(0)) -> PriceEntry:
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
    return PriceEntry(rates=rates, base=base, tiers=tiers, exact=tuple(_exact(v) for v in vecs),
                      worst=tuple(worst), web_search=web_search)


def _dec(value: float) -> Decimal:
    # str() keeps a config float's short form (0.075 stays 0.075, not 0.07499999...).
    return Decimal(str(value))


def genai_lookup(provider: str, model: str) -> tuple[str, Any, int | None] | None:
    """(canonical id, ModelPrice, context window) from genai-prices, or None when it has no such model."""
    from genai_prices import data_snapshot

    try:
        _prov, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        return None
    return info.id, info.get_prices(datetime.now(tz=UTC)), info.context_window


def entry_from_override(provider: str, model_id: str, o: PriceOverride, context_window: int | None,
                        genai_price: Any = None) -> PriceEntry:
    """`genai_price`: the model's genai-prices ModelPrice, for the per-search price `o` does not set."""
    inp, out = _dec(o.input_per_mtok), _dec(o.output_per_mtok)
    anthropic = provider.lower() == "anthropic"
    read = _dec(o.cache_read_per_mtok) if o.cache_read_per_mtok is not None else (
        inp * Decimal("0.1") if anthropic else inp)
    write = _dec(o.cache_write_per_mtok) if o.cache_write_per_mtok is not None else (
        inp * Decimal("1.25") if anthropic else inp)
    write_1h = max(write, inp * 2) if anthropic else write
    base: _Vec = (inp, out, read, write, write_1h)
    per_search = _dec(o.web_search_per_1k) * 1000 if o.web_search_per_1k is not None else (
        genai_search_price(genai_price) if genai_price is not None else Decimal(0))
    rates = Rates(
        input=float(inp), output=float(out), cache_read=float(read), cache_write=float(write),
        source="config", model_id=model_id, cache_write_1h=float(write_1h), context_window=context_window,
        web_search=float(per_search) if per_search else None,
    )
    return _make_entry(rates, base, (), per_search)


def genai_search_price(mp: Any) -> Decimal:
    """µ$ per server-side web search from a genai-prices ModelPrice (0: it has none)."""
    from genai_prices.types import TieredPrices

    kcount = getattr(mp, "web_searches_kcount", None)  # USD per 1,000 searches
    return Decimal(kcount) * 1000 if kcount is not None and not isinstance(kcount, TieredPrices) else Decimal(0)


def entry_from_genai(model_id: str, mp: Any, context_window: int | None) -> PriceEntry | None:
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
    per_search = genai_search_price(mp)
    rates = Rates(
        input=b[0], output=b[1], cache_read=b[2], cache_write=b[3], source="genai-prices",
        model_id=model_id, cache_write_1h=b[4],
        tiers=tuple(RateTier(start, *floats(v)) for start, v in tiers),
        context_window=context_window, web_search=float(per_search) if per_search else None,
    )
    return _make_entry(rates, base, tiers, per_search)

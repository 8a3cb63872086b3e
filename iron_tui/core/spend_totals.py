"""Cost and tokens per model and per provider over a ledger's lifetime (this process, not the period)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from iron_tui.core.token_usage import TokenUsage


@dataclass(slots=True)
class ProviderTotals:
    provider: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_micros: int = 0
    unpriced_calls: int = 0
    estimated_calls: int = 0


@dataclass(slots=True)
class ModelTotals(ProviderTotals):
    model: str = ""


def _add(t: ModelTotals | ProviderTotals, usage: TokenUsage | None, cost: int | None, estimated: bool) -> None:
    t.calls += 1
    if usage is not None:
        t.input_tokens += usage.input_tokens
        t.output_tokens += usage.output_tokens
        t.cache_read_tokens += usage.cache_read_tokens
        t.cache_write_tokens += usage.cache_write_tokens
    if cost is None:
        t.unpriced_calls += 1
    else:
        t.cost_micros += cost
    if estimated:
        t.estimated_calls += 1


class SpendTotals:
    def __init__(self) -> None:
        self._by_model: dict[tuple[str, str], ModelTotals] = {}
        self._by_provider: dict[str, ProviderTotals] = {}
        self.unpriced_calls = 0
        self.estimated_calls = 0

    def add(self, provider: str, model: str, usage: TokenUsage | None, cost: int | None, estimated: bool) -> None:
        mt = self._by_model.get((provider, model))
        if mt is None:
            mt = self._by_model[(provider, model)] = ModelTotals(provider=provider, model=model)
        pt = self._by_provider.get(provider)
        if pt is None:
            pt = self._by_provider[provider] = ProviderTotals(provider=provider)
        _add(mt, usage, cost, estimated)
        _add(pt, usage, cost, estimated)
        if cost is None:
            self.unpriced_calls += 1
        if estimated:
            self.estimated_calls += 1

    def by_model(self) -> dict[str, ModelTotals]:
        """Copies keyed "provider/model"."""
        return {f"{p}/{m}": replace(t) for (p, m), t in self._by_model.items()}

    def by_provider(self) -> dict[str, ProviderTotals]:
        return {p: replace(t) for p, t in self._by_provider.items()}

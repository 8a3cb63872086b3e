"""How many tokens a model can take in and write out: the true output bound budget admission needs.

Sources, in order:

1. `[prices."MODEL"]` in the config file may set `max_output_tokens` / `context_window` (for local or
   new models).
2. `model_limits.json` next to this module: a subset of LiteLLM's maintained model table
   (`model_prices_and_context_window_backup.json` from the `litellm` 1.110.2 wheel on PyPI, MIT
   licence, extracted 2026-12-01 by `tools/vendor_model_limits.py`): max input and max output tokens
   of the OpenAI, Anthropic and preset providers' models. Nothing is fetched at run time.
3. genai-prices' `context_window` (the package iron-tui prices with), when the model has no row above.

A name is looked up exactly, then without a date suffix (`claude-sonnet-4-5-20250929` →
`claude-sonnet-4-5`, `gpt-4o-2024-08-06` → `gpt-4o`), fine-tuned `ft:BASE:…` as BASE, then as the
longest known name it extends at a `-` (`gpt-4.1-mini-custom` → `gpt-4.1-mini`).

The billable output bound of a call (`ModelLimits.output_bound`):

* the client's cap when it set one (times the number of choices), never more than the model's maximum;
* else the model's maximum output (times the choices);
* else the context window: the provider cannot bill more output than its whole context. (Not the
  context window minus iron-tui's input bound: that bound is an over-estimate — 4-7× for English —
  so subtracting it would under-reserve exactly when the real input is small.)
* else None: nothing bounds the call. Admission then fits the call to the budget by sending a cap,
  or refuses it (see budget.py); with no budget limit the call goes through unbounded.

Never an arbitrary default.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

# Anthropic requires `max_tokens`; a Claude model without a known maximum is sent this one: the
# smallest maximum output of any Claude model (Claude 3 Haiku and Opus), which every one accepts.
ANTHROPIC_FALLBACK_MAX_TOKENS = 4096

_DATE = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-latest)$")
_MAX_CACHED = 4096  # distinct (provider, model) pairs kept, so junk model names cannot grow memory


@dataclass(frozen=True, slots=True)
class Limits:
    """What is known of one model. None: unknown."""

    max_output: int | None
    context_window: int | None
    source: str  # "config" | "litellm" | "genai-prices" | "unknown"


def _load_table() -> tuple[str, dict[str, dict[str, tuple[int | None, int | None]]]]:
    text = resources.files("iron_tui.core").joinpath("model_limits.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    table = {provider: {name: (row[0], row[1]) for name, row in models.items()}
             for provider, models in doc["models"].items()}
    return str(doc["source"]), table


def _genai_context_window(provider: str, model: str) -> int | None:
    from genai_prices import data_snapshot

    try:
        _prov, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        return None
    window = info.context_window
    return window if isinstance(window, int) and window > 0 else None


@dataclass(frozen=True, slots=True)
class LimitOverride:
    max_output_tokens: int | None = None
    context_window: int | None = None


class ModelLimits:
    """Model limits by (provider, model), resolved once per pair and cached. Thread-safe."""

    def __init__(self, overrides: Mapping[str, LimitOverride] | None = None, *,
                 context_window: Callable[[str, str], int | None] = _genai_context_window) -> None:
        self._overrides = {k.strip().lower(): v for k, v in (overrides or {}).items()}
        self.source, self._table = _load_table()
        self._context_window = context_window
        self._cache: dict[tuple[str, str], Limits] = {}
        self._lock = threading.Lock()

    def limits(self, provider: str, model: str) -> Limits:
        key = (provider, model)
        found = self._cache.get(key)
        if found is None:
            with self._lock:
                found = self._resolve(provider, model)
                if len(self._cache) >= _MAX_CACHED:
                    self._cache.clear()
                self._cache[key] = found
        return found

    def max_output(self, provider: str, model: str) -> int | None:
        """The model's maximum output tokens per choice, when known."""
        return self.limits(provider, model).max_output

    def output_bound(self, provider: str, model: str, input_bound: int, client_cap: int | None, *,
                     choices: int = 1) -> int | None:
        """The most output tokens this call can be billed for, or None when nothing bounds it.

        `client_cap`: the output cap the request set per choice (None: none); `choices`: how many
        completions it asks for (`n`, `best_of`). `input_bound` is accepted for the pipeline's one
        call site; the bound does not subtract it (see the module docstring).
        """
        del input_bound
        lim = self.limits(provider, model)
        per_choice = lim.max_output if lim.max_output is not None else lim.context_window
        if client_cap is not None:
            per_choice = client_cap if per_choice is None else min(client_cap, per_choice)
        return None if per_choice is None else per_choice * max(1, choices)

    def send_cap(self, provider: str, model: str) -> int:
        """The output cap to send to an API that requires one (Anthropic) when the client set none."""
        known = self.limits(provider, model).max_output
        return known if known is not None else ANTHROPIC_FALLBACK_MAX_TOKENS

    # -- lookup ---------------------------------------------------------------------------------

    def _resolve(self, provider: str, model: str) -> Limits:
        name = model.strip().lower()
        override = self._overrides.get(f"{provider.lower()}/{name}") or self._overrides.get(name)
        row = _lookup(self._table.get(provider.lower(), {}), name)
        max_out = row[1] if row is not None else None
        window = row[0] if row is not None else None
        source = "litellm" if row is not None else "unknown"
        if window is None:
            window = self._context_window(provider, model)
            if window is not None and row is None:
                source = "genai-prices"
        if override is not None:
            max_out = override.max_output_tokens if override.max_output_tokens is not None else max_out
            window = override.context_window if override.context_window is not None else window
            source = "config"
        return Limits(max_out, window, source)


def _lookup(table: Mapping[str, tuple[int | None, int | None]], name: str
            ) -> tuple[int | None, int | None] | None:
    if name.startswith("ft:"):  # ft:BASE:org:suffix:id — the base model's limits
        exact = table.get(name)
        if exact is not None:
            return exact
        name = name[3:].split(":", 1)[0]
    for candidate in (name, _DATE.sub("", name)):
        found = table.get(candidate)
        if found is not None:
            return found
    # The longest known name this one extends at a "-" (a new snapshot or variant of a known model).
    stem = _DATE.sub("", name)
    while "-" in stem:
        stem = stem.rsplit("-", 1)[0]
        found = table.get(stem)
        if found is not None:
            return found
    return None

"""Normalised token usage of one call, read from the providers' usage objects.

`TokenUsage.input_tokens` EXCLUDES cache tokens (Anthropic's convention): `from_openai` subtracts
`cached_tokens` from OpenAI's prompt count, which includes them. So each token is billed exactly once,
at its own rate (litellm#9812 billed cache tokens twice).

Anthropic specifics, so the usage matches the bill:

* Server-side compaction (`usage.iterations`): the top-level counts cover only the non-compaction
  sampling passes; the call is billed for every pass, so the counts are the sums over `iterations`
  (cache reads and writes included). Checked against a recorded `claude-opus-4-6` compaction response
  (tests/test_token_usage_fast.py).
* Server tools: `server_tool_use.web_search_requests` is kept and priced per search where
  genai-prices has a price (`web_searches_kcount`).
* 1-hour cache writes (`cache_creation.ephemeral_1h_input_tokens`) are kept apart: they cost more.

Streams: Anthropic's streamed counts are cumulative (`message_start`, then each `message_delta`),
so `updated_from_anthropic` replaces what a later event reports and keeps the rest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_ANTHROPIC_FIELDS = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_read_input_tokens", "cache_read_tokens"),
    ("cache_creation_input_tokens", "cache_write_tokens"),
)


def _count(value: Any) -> int:
    """A token count from a provider payload: ints (or integral floats) ≥ 0, anything else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value if value > 0 else 0
    if isinstance(value, float) and math.isfinite(value) and value > 0:
        return int(value)
    return 0


def _one_hour(usage: Mapping[str, Any]) -> int | None:
    creation = usage.get("cache_creation")
    if isinstance(creation, Mapping) and creation.get("ephemeral_1h_input_tokens") is not None:
        return _count(creation["ephemeral_1h_input_tokens"])
    return None


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Normalised token usage of one call. `input_tokens` EXCLUDES cache read and write tokens.

    `cache_write_1h_tokens` is the part of `cache_write_tokens` written with Anthropic's 1-hour TTL
    (priced higher than the default 5-minute writes); it is included in `cache_write_tokens`.
    `web_search_requests`: server-side web searches the provider ran (billed per search): Anthropic's
    `server_tool_use` count, or the `web_search_call` items of an OpenAI Responses answer (counted by
    `dialects/provider_apis.py`, since OpenAI's usage has no such field).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    web_search_requests: int = 0

    @property
    def total_input_tokens(self) -> int:
        """Every input token the provider billed: uncached + cache read + cache write."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.total_input_tokens + self.output_tokens

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any] | None) -> TokenUsage:
        """From an OpenAI `usage` object: chat/completions, responses or embeddings.

        OpenAI's `prompt_tokens` / `input_tokens` INCLUDE `cached_tokens`; they are split here so the
        cached part is billed only at the cache-read rate. Reasoning tokens are part of the output count.
        """
        if not usage:
            return cls()
        if "prompt_tokens" in usage or "completion_tokens" in usage:  # chat, completions, embeddings
            prompt = usage.get("prompt_tokens")
            output = usage.get("completion_tokens")
            details = usage.get("prompt_tokens_details")
        else:  # responses API
            prompt = usage.get("input_tokens")
            output = usage.get("output_tokens")
            details = usage.get("input_tokens_details")
        # Plain positive ints (what providers send) skip `_count`; dicts skip the Mapping ABC check.
        prompt = prompt if type(prompt) is int and prompt > 0 else _count(prompt)
        output = output if type(output) is int and output > 0 else _count(output)
        if type(details) is not dict:
            details = details if isinstance(details, Mapping) else {}
        cached = details.get("cached_tokens")
        cached = cached if type(cached) is int and cached > 0 else _count(cached)
        if cached > prompt:
            cached = prompt
        return cls(prompt - cached, output, cached)

    @classmethod
    def from_anthropic(cls, usage: Mapping[str, Any] | None) -> TokenUsage:
        """From an Anthropic `usage` object (Messages API; `input_tokens` already excludes cache tokens)."""
        if not usage:
            return cls()
        return cls().updated_from_anthropic(usage)

    def updated_from_anthropic(self, usage: Mapping[str, Any]) -> TokenUsage:
        """Fold a streaming usage object: `message_start`'s, then each `message_delta`'s.

        Anthropic's streamed counts are cumulative, so a field present and non-null replaces the one
        held; absent or null fields keep their value (never add). With `iterations` (compaction) the
        counts are the sums over the passes.
        """
        values = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
            "web_search_requests": self.web_search_requests,
        }
        for src, dst in _ANTHROPIC_FIELDS:
            if usage.get(src) is not None:
                values[dst] = _count(usage[src])
        one_hour = _one_hour(usage)
        if one_hour is not None:
            values["cache_write_1h_tokens"] = one_hour
        iterations = usage.get("iterations")
        if isinstance(iterations, list) and iterations:
            _sum_iterations(values, usage, iterations)
        server = usage.get("server_tool_use")
        if isinstance(server, Mapping) and server.get("web_search_requests") is not None:
            values["web_search_requests"] = _count(server["web_search_requests"])
        values["cache_write_1h_tokens"] = min(values["cache_write_1h_tokens"], values["cache_write_tokens"])
        return TokenUsage(**values)


def _sum_iterations(values: dict[str, int], usage: Mapping[str, Any], iterations: list[Any]) -> None:
    """Counts summed over the sampling passes. The top-level counts are those of the non-compaction
    passes; should no such pass be listed, they are added to the compaction passes."""
    passes = [it for it in iterations if isinstance(it, Mapping)]
    if not passes:
        return
    sums = dict.fromkeys(("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                          "cache_write_1h_tokens"), 0)
    for it in passes:
        for src, dst in _ANTHROPIC_FIELDS:
            sums[dst] += _count(it.get(src))
        sums["cache_write_1h_tokens"] += _one_hour(it) or 0
    if all(it.get("type") == "compaction" for it in passes):
        for src, dst in _ANTHROPIC_FIELDS:
            sums[dst] += _count(usage.get(src))
        sums["cache_write_1h_tokens"] += _one_hour(usage) or 0
    values.update(sums)

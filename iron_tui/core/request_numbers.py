"""Bad numbers are the caller's error: one pure check per client API, called right after parsing.

Every count (`max_tokens`, `n`, `best_of`, `thinking.budget_tokens`, `top_logprobs`, …) must be a
whole number (an integral float such as `100.0` is accepted as one) within the range the API
documents, and an output cap no larger than what the model allows (`max_output`, from
`model_limits.py`, when known). Sampling numbers (`temperature`, `top_p`, penalties) must be finite
and in range. Anything else — negative, fractional, NaN, infinite, a string, a bool, a 400-digit
integer — raises `TranslationError(message, param, code)`, which the pipeline answers as a 400 in
the caller's shape naming the field. So no absurd value reaches the budget arithmetic, the upstream,
the feed or the dashboard.

A call routed to another model than the client named (alias, `NAME/` prefix, fallback) is the
exception: an output cap above the serving model's maximum is lowered to it (`fit_caps_to_model`),
since the client sized it for the model it named.

Absent and `null` fields are left alone (the provider's default applies), except where the API
requires the field (Anthropic's `max_tokens`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from iron_tui.core.translate.errors import TranslationError

# Documented limits (OpenAI API reference; Anthropic Messages and extended-thinking docs).
MAX_CHOICES = 128  # OpenAI `n`
MAX_BEST_OF = 20  # OpenAI completions `best_of`
MAX_TOP_LOGPROBS = 20
MAX_COMPLETION_LOGPROBS = 5
RESPONSES_MIN_OUTPUT = 16  # OpenAI Responses `max_output_tokens` minimum
THINKING_MIN_BUDGET = 1024  # Anthropic `thinking.budget_tokens` minimum
# No count may exceed a signed 32-bit integer (what the providers' own APIs take), whatever the model:
# so n × max_tokens × a price stays a small integer even when the model's limits are unknown.
MAX_COUNT = 2**31 - 1
_SHOWN = 40  # characters of a bad value quoted in an error


def _show(value: Any) -> str:
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**_SHOWN:
        return f"an integer of {len(str(abs(value)))} digits"
    else:
        text = "true" if value is True else "false" if value is False else repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a number"


def whole(body: Mapping[str, Any], key: str, *, lo: int, hi: int = MAX_COUNT, param: str | None = None,
          hi_reason: str = "") -> int | None:
    """`body[key]` as an int within [lo, hi], None when absent or null; else a TranslationError."""
    value = body.get(key)
    if value is None:
        return None
    name = param or key
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TranslationError(f"Invalid '{name}': expected an integer, but got {_kind(value)} "
                               f"({_show(value)}).", name, "invalid_type")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TranslationError(f"Invalid '{name}': expected an integer, but got {_show(value)}.",
                                   name, "invalid_value")
        if not value.is_integer():
            raise TranslationError(f"Invalid '{name}': expected an integer, but got the fraction "
                                   f"{_show(value)}.", name, "invalid_type")
    n = int(value)
    if n < lo:
        raise TranslationError(f"Invalid '{name}': integer below minimum value. Expected a value >= {lo}, "
                               f"but got {_show(n)} instead.", name, "integer_below_min_value")
    if n > hi:
        why = f" ({hi_reason})" if hi_reason else ""
        raise TranslationError(f"Invalid '{name}': integer above maximum value. Expected a value <= {hi}"
                               f"{why}, but got {_show(n)} instead.", name, "integer_above_max_value")
    return n


def number(body: Mapping[str, Any], key: str, *, lo: float, hi: float, param: str | None = None) -> None:
    """`body[key]` must be a finite number within [lo, hi] (or absent/null)."""
    value = body.get(key)
    if value is None:
        return
    name = param or key
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TranslationError(f"Invalid '{name}': expected a number, but got {_kind(value)} "
                               f"({_show(value)}).", name, "invalid_type")
    if isinstance(value, float) and not math.isfinite(value):
        raise TranslationError(f"Invalid '{name}': expected a finite number, but got {_show(value)}.",
                               name, "invalid_value")
    if not lo <= value <= hi:
        raise TranslationError(f"Invalid '{name}': expected a value between {lo:g} and {hi:g}, but got "
                               f"{_show(value)} instead.", name, "invalid_value")


def _cap(body: Mapping[str, Any], key: str, max_output: int | None, *, lo: int = 1) -> int | None:
    if max_output is None:
        return whole(body, key, lo=lo)
    return whole(body, key, lo=lo, hi=max_output, hi_reason="the model's maximum output tokens")


def _sampling(body: Mapping[str, Any], *, temperature_hi: float) -> None:
    number(body, "temperature", lo=0, hi=temperature_hi)
    number(body, "top_p", lo=0, hi=1)


def _penalties(body: Mapping[str, Any]) -> None:
    number(body, "presence_penalty", lo=-2, hi=2)
    number(body, "frequency_penalty", lo=-2, hi=2)
    bias = body.get("logit_bias")
    if isinstance(bias, dict):
        for token in bias:
            number(bias, token, lo=-100, hi=100, param=f"logit_bias.{str(token)[:_SHOWN]}")


def validate_openai_chat(body: Mapping[str, Any], *, max_output: int | None = None) -> None:
    _cap(body, "max_tokens", max_output)
    _cap(body, "max_completion_tokens", max_output)
    whole(body, "n", lo=1, hi=MAX_CHOICES)
    whole(body, "top_logprobs", lo=0, hi=MAX_TOP_LOGPROBS)
    whole(body, "seed", lo=-(2**63), hi=2**63 - 1)
    _sampling(body, temperature_hi=2)
    _penalties(body)


def validate_openai_responses(body: Mapping[str, Any], *, max_output: int | None = None) -> None:
    _cap(body, "max_output_tokens", max_output, lo=RESPONSES_MIN_OUTPUT)
    whole(body, "max_tool_calls", lo=1)
    whole(body, "top_logprobs", lo=0, hi=MAX_TOP_LOGPROBS)
    _sampling(body, temperature_hi=2)


def validate_openai_completions(body: Mapping[str, Any], *, max_output: int | None = None) -> None:
    _cap(body, "max_tokens", max_output, lo=0)
    n = whole(body, "n", lo=1, hi=MAX_CHOICES)
    best_of = whole(body, "best_of", lo=1, hi=MAX_BEST_OF)
    if n is not None and best_of is not None and best_of < n:
        raise TranslationError(f"Invalid 'best_of': must be at least 'n' ({n}), but got {best_of}.",
                               "best_of", "invalid_value")
    whole(body, "logprobs", lo=0, hi=MAX_COMPLETION_LOGPROBS)
    whole(body, "seed", lo=-(2**63), hi=2**63 - 1)
    _sampling(body, temperature_hi=2)
    _penalties(body)


def validate_openai_embeddings(body: Mapping[str, Any], *, max_output: int | None = None) -> None:
    del max_output
    whole(body, "dimensions", lo=1, hi=1 << 20)


def validate_anthropic_messages(body: Mapping[str, Any], *, max_output: int | None = None) -> None:
    if body.get("max_tokens") is None:
        raise TranslationError("max_tokens: Field required", "max_tokens", "missing_required_parameter")
    cap = _cap(body, "max_tokens", max_output)
    assert cap is not None
    whole(body, "top_k", lo=0)
    _sampling(body, temperature_hi=1)
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = whole(thinking, "budget_tokens", lo=THINKING_MIN_BUDGET, param="thinking.budget_tokens")
        if budget is None:
            raise TranslationError("thinking.enabled.budget_tokens: Field required",
                                   "thinking.budget_tokens", "missing_required_parameter")
        if budget >= cap:
            raise TranslationError(f"`max_tokens` must be greater than `thinking.budget_tokens` ({budget}), "
                                   f"but got {cap}.", "max_tokens", "invalid_value")


VALIDATORS: dict[str, Callable[..., None]] = {
    "openai.chat": validate_openai_chat,
    "openai.responses": validate_openai_responses,
    "openai.completions": validate_openai_completions,
    "openai.embeddings": validate_openai_embeddings,
    "anthropic.messages": validate_anthropic_messages,
}


_OUTPUT_CAPS = {"openai.chat": ("max_tokens", "max_completion_tokens"), "openai.responses": ("max_output_tokens",),
                "openai.completions": ("max_tokens",), "anthropic.messages": ("max_tokens",)}


def fit_caps_to_model(api: str, body: dict[str, Any], max_output: int | None) -> tuple[dict[str, Any], list[str]]:
    """For a call served by another model than the one the client named (an alias, a `NAME/` prefix, a
    fallback): an output cap the named model allows but the serving one does not is the serving
    model's maximum (Claude Code asks 128,000 for its haiku tier; gpt-4o-mini stops at 16,384). The
    caller could not know that model's limit, so this is no error. Returns (body, warnings); the body
    is a copy when anything changed. A thinking budget that no longer fits is lowered with it."""
    if max_output is None:
        return body, []
    changed = {}
    for key in _OUTPUT_CAPS.get(api, ()):
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
                and value > max_output:
            changed[key] = max_output
    if not changed:
        return body, []
    out = {**body, **changed}
    thinking = out.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    if api == "anthropic.messages" and isinstance(budget, int) and budget >= max_output > THINKING_MIN_BUDGET:
        out["thinking"] = {**thinking, "budget_tokens": max_output - 1}  # type: ignore[dict-item]
    return out, [f"{key} {_show(body[key])} lowered to {max_output}, the maximum output of the model serving "
                 "this call" for key in changed]


class _KeysRead(dict[str, Any]):
    """An empty body that notes which fields a validator looks at."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return default

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return False

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        raise KeyError(key)


def _fields_checked(check: Callable[..., None]) -> frozenset[str] | None:
    """The top-level fields `check` reads; None when an empty body is already an error (a required field)."""
    probe = _KeysRead()
    try:
        check(probe)
    except (TranslationError, KeyError):
        return None
    return frozenset(probe.read)


# Most calls set none of these (an SDK's default body is model, messages, maybe tools and stream): for
# them the check is one set test instead of a dozen lookups. Derived from the validators themselves.
_FIELDS = {api: fields for api, check in VALIDATORS.items() if (fields := _fields_checked(check)) is not None}


def validate_numbers(api: str, body: Mapping[str, Any], *, max_output: int | None = None) -> None:
    """Check every number of a `api` request body (see the module docstring). Unknown APIs: no check."""
    fields = _FIELDS.get(api)
    if fields is not None and fields.isdisjoint(body):
        return
    check = VALIDATORS.get(api)
    if check is not None:
        check(body, max_output=max_output)

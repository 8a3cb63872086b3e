"""OpenAI chat request parameters → Anthropic (everything but messages and tools; see request.py).

Accepted and ignored, like Anthropic's own OpenAI compatibility layer: `logprobs`, `top_logprobs`,
`logit_bias`, `audio`, `modalities` (each noted as a warning in the request's detail view). Refused
with a 400 naming the parameter: `n` > 1, the legacy `functions` / `function_call`, `web_search_options`.
"""

from __future__ import annotations

import math
from typing import Any

from iron_tui.core.bounded_json import nesting_exceeds
from iron_tui.core.translate.errors import TranslationError

__all__ = [
    "IGNORED_FIELDS",
    "JSON_OBJECT_INSTRUCTION",
    "max_tokens",
    "number",
    "refuse_unsupported",
    "response_format",
    "sampling",
    "stop_sequences",
    "unsupported",
]

IGNORED_FIELDS = ("logprobs", "top_logprobs", "logit_bias", "audio", "modalities")
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."


def unsupported(param: str, why: str) -> TranslationError:
    return TranslationError(
        f"'{param}' is not supported for Claude models: {why}", param, "unsupported_parameter"
    )


def refuse_unsupported(body: dict[str, Any], warnings: list[str]) -> None:
    """Refuse what cannot be honoured; note what is accepted and ignored (as Anthropic's own OpenAI
    compatibility layer does: logprobs, top_logprobs, logit_bias, audio, modalities)."""
    n = body.get("n")
    if n is not None and n != 1:
        raise unsupported("n", "Anthropic returns exactly one choice per request")
    ignored = [name for name in IGNORED_FIELDS if body.get(name) not in (None, False)]
    if ignored:
        warnings.append(f"accepted and ignored for Claude models: {', '.join(ignored)}")
    if body.get("functions") is not None or body.get("function_call") is not None:
        param = "functions" if body.get("functions") is not None else "function_call"
        raise unsupported(
            param, "use 'tools' and 'tool_choice' instead of the legacy function-calling fields"
        )
    if body.get("web_search_options") is not None:
        raise unsupported("web_search_options", "web search is not available through this translation")


def max_tokens(body: dict[str, Any], default: int) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TranslationError(f"'{name}' must be a non-negative integer", name, "invalid_value")
        return value
    return default


def number(body: dict[str, Any], name: str) -> float | int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TranslationError(f"'{name}' must be a number", name, "invalid_type")
    return value


def stop_sequences(stop: object) -> list[str]:
    items = [stop] if isinstance(stop, str) else stop
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise TranslationError("'stop' must be a string or a list of strings", "stop", "invalid_type")
    # Anthropic rejects empty and whitespace-only stop sequences (litellm#3286).
    return [s for s in items if s.strip()]


def response_format(
    value: object, system: list[dict[str, Any]], out: dict[str, Any], warnings: list[str]
) -> None:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text" or value is None:
        return
    if kind == "json_schema":
        spec = value.get("json_schema") if isinstance(value, dict) else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict) or nesting_exceeds(schema):
            raise TranslationError(
                "json_schema needs a 'schema' object (nested at most 128 levels)", "response_format", "invalid_value"
            )
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    elif kind == "json_object":
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
        warnings.append(
            "response_format json_object is not enforced by Claude; a system instruction asks for JSON"
        )
    else:
        raise TranslationError(
            f"response_format type '{kind}' is not supported", "response_format", "unsupported_value"
        )


def sampling(body: dict[str, Any], out: dict[str, Any], warnings: list[str], *, send: bool) -> None:
    temperature = number(body, "temperature")
    top_p = number(body, "top_p")
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)):
        raise TranslationError("'top_k' must be an integer", "top_k", "invalid_type")
    if not send:
        given = [
            n for n, v in (("temperature", temperature), ("top_p", top_p), ("top_k", top_k)) if v is not None
        ]
        if given:
            warnings.append(f"sampling parameters not sent to Anthropic: {', '.join(given)}")
        return
    if temperature is not None:
        out["temperature"] = min(max(temperature, 0), 1)  # OpenAI allows 0–2, Anthropic 0–1
        if top_p is not None:
            # Current Claude models answer 400 "temperature and top_p cannot both be specified".
            warnings.append("top_p not sent: Claude models accept temperature or top_p, not both")
            top_p = None
    if top_p is not None:
        out["top_p"] = top_p
    if top_k is not None:
        out["top_k"] = top_k

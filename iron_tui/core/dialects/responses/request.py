"""The options of a Responses request besides `input` and `tools`, checked once for every pair.

Refused (a 400 naming the parameter): `background` (needs OpenAI's server-side run and polling),
`conversation` and `prompt` (OpenAI-stored objects), audio `modalities`. Accepted and ignored, with a
warning in the request's detail view: `include` values that have nothing to include (logprobs, hosted
tool results), `top_logprobs`, `truncation: auto`, `context_management`. Ignored silently (they change
nothing a user could see): `store`, `metadata`, `service_tier`, `stream_options`, `client_metadata`
(Codex), `prompt_cache_retention`, `max_tool_calls`, `moderation`, `safety_identifier` (→ user).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iron_tui.core.dialects.base import TranslationError

__all__ = ["Options", "parse_options"]

ENCRYPTED_REASONING = "reasoning.encrypted_content"
_INCLUDABLE = frozenset({
    ENCRYPTED_REASONING, "message.output_text.logprobs", "message.input_image.image_url",
    "computer_call_output.output.image_url", "file_search_call.results", "web_search_call.results",
    "web_search_call.action.sources", "code_interpreter_call.outputs",
})  # fmt: skip
_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max"})


@dataclass(slots=True)
class Options:
    stream: bool = False
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    effort: str | None = None  # reasoning.effort ("none" … "max"); None: not given
    summary: str | None = None  # reasoning.summary (auto / concise / detailed); None: no summary wanted
    format_kind: str = "text"  # text.format.type: text | json_schema | json_object
    schema: dict[str, Any] | None = None  # json_schema: the schema
    schema_name: str | None = None
    schema_strict: bool | None = None
    instructions: str | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    prompt_cache_key: str | None = None
    warnings: list[str] = field(default_factory=list)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise TranslationError(f"'{name}' must be a number between {low:g} and {high:g}", name,
                               "invalid_value")
    return float(value)


def _text_format(body: dict[str, Any], out: Options) -> None:
    text = body.get("text")
    if text is None:
        return
    if not isinstance(text, dict):
        raise TranslationError("'text' must be an object", "text", "invalid_type")
    fmt = text.get("format")
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        out.format_kind = kind
        return
    if kind == "json_schema":
        assert isinstance(fmt, dict)
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise TranslationError("a json_schema format needs a 'schema' object", "text.format.schema",
                                   "missing_required_parameter")
        out.format_kind, out.schema = kind, schema
        name, strict = fmt.get("name"), fmt.get("strict")
        out.schema_name = name if isinstance(name, str) else None
        out.schema_strict = strict if isinstance(strict, bool) else None
        return
    raise TranslationError(f"text.format type '{kind}' is not supported", "text.format.type",
                           "unsupported_value")


def _reasoning(body: dict[str, Any], out: Options) -> None:
    reasoning = body.get("reasoning")
    if reasoning is None:
        return
    if not isinstance(reasoning, dict):
        raise TranslationError("'reasoning' must be an object", "reasoning", "invalid_type")
    effort = reasoning.get("effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in _EFFORTS:
            raise TranslationError(f"reasoning.effort '{effort}' is not one of: " + ", ".join(sorted(_EFFORTS)),
                                   "reasoning.effort", "invalid_value")
        out.effort = effort
    summary = reasoning.get("summary", reasoning.get("generate_summary"))
    if summary in ("auto", "concise", "detailed"):
        out.summary = summary


def _include(body: dict[str, Any], out: Options) -> None:
    include = body.get("include")
    if include is None:
        return
    if not isinstance(include, list):
        raise TranslationError("'include' must be a list", "include", "invalid_type")
    for i, value in enumerate(include):
        if not isinstance(value, str) or value not in _INCLUDABLE:
            raise TranslationError(f"include value '{value}' is not supported", f"include[{i}]",
                                   "invalid_value")
        if value != ENCRYPTED_REASONING:
            out.warnings.append(f"include '{value}': nothing of that kind is produced here; ignored")


def parse_options(body: dict[str, Any], model_family: str) -> Options:
    """Options of a Responses request; raises TranslationError for what `model_family` cannot serve."""
    for name, why in (("background", "background responses need OpenAI's server-side storage and polling"),
                      ("conversation", "conversations are stored by OpenAI"),
                      ("prompt", "prompt templates are stored by OpenAI")):
        value = body.get(name)
        if value is not None and value is not False:
            raise TranslationError(f"'{name}' is not supported for {model_family}: {why}", name,
                                   "unsupported_parameter")
    out = Options(stream=body.get("stream") is True)
    cap = body.get("max_output_tokens")
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise TranslationError("'max_output_tokens' must be a positive integer", "max_output_tokens",
                                   "invalid_value")
        out.max_output_tokens = cap
    out.temperature = _number(body, "temperature", 0, 2)
    out.top_p = _number(body, "top_p", 0, 1)
    _reasoning(body, out)
    _text_format(body, out)
    _include(body, out)
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        out.instructions = instructions
    elif instructions is not None and not isinstance(instructions, str):
        raise TranslationError("'instructions' must be a string", "instructions", "invalid_type")
    parallel = body.get("parallel_tool_calls")
    out.parallel_tool_calls = parallel if isinstance(parallel, bool) else None
    user = body.get("safety_identifier") or body.get("user")
    out.user = user if isinstance(user, str) and user else None
    key = body.get("prompt_cache_key")
    out.prompt_cache_key = key if isinstance(key, str) and key else None
    top_logprobs = body.get("top_logprobs")
    if isinstance(top_logprobs, int) and not isinstance(top_logprobs, bool) and top_logprobs > 0:
        out.warnings.append("top_logprobs: log probabilities are not available here; ignored")
    if body.get("truncation") == "auto":
        out.warnings.append("truncation 'auto': the input is sent whole; an overlong input fails upstream")
    if body.get("context_management"):
        out.warnings.append("context_management: server-side compaction is not available here; ignored")
    return out

"""What a call's numbers and errors mean, in words: the cost breakdown and the error explanation the
detail views show (TUI and web page alike).

    cost_breakdown(summary, record, pricer) -> CostBreakdown   # tokens × price per Mtok, reservation, settle
    explain_error(summary, record)          -> ErrorExplanation | None   # who answered, retry-after, advice
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from iron_tui.core.filter_match import is_failed
from iron_tui.core.proxy.errors import Shape, error_body

MICROS = 1_000_000


# --- cost ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostLine:
    label: str
    tokens: int
    usd_per_mtok: float | None  # None: unpriced
    micros: int | None


@dataclass(frozen=True)
class CostBreakdown:
    lines: tuple[CostLine, ...]
    total_micros: int | None
    estimated: bool
    priced: bool
    price_source: str | None  # "genai-prices" / "config" and the model id the price was found under
    reserved_micros: int  # held at admission (worst case)
    settlement: str  # how the reservation ended, in words
    capped_max_tokens: int | None  # the output cap iron-tui lowered to fit the budget, if it did
    tokens_per_s: float | None
    stop_reason: str | None


def _line(label: str, tokens: int, rate: float | None) -> CostLine:
    # Rates are µ$ per token == USD per million tokens.
    return CostLine(label, tokens, rate, None if rate is None else round(tokens * rate))


def cost_breakdown(summary: dict[str, Any], record: Any, pricer: Any, stop_reason: str | None = None) -> CostBreakdown:
    rates = pricer.rates(str(summary.get("provider")), str(summary.get("model"))) if pricer is not None else None
    read = int(summary.get("cache_read_tokens") or 0)
    write = int(summary.get("cache_write_tokens") or 0)
    plain = max(0, int(summary.get("input_tokens") or 0) - read - write)
    out = int(summary.get("output_tokens") or 0)
    priced = bool(summary.get("priced", True)) and rates is not None
    r = rates if priced else None
    lines = (
        _line("input", plain, None if r is None else r.input),
        _line("output", out, None if r is None else r.output),
        _line("cache read", read, None if r is None else r.cache_read),
        _line("cache write", write, None if r is None else r.cache_write),
    )
    cost = summary.get("cost_usd")
    total = round(cost * MICROS) if isinstance(cost, int | float) else None
    reserved = int(getattr(record, "reserved_micros", 0) or 0)
    capped = summary.get("capped_max_tokens") or getattr(record, "capped_max_tokens", None)
    settlement = _settlement(summary, reserved, total)
    source = None
    if rates is not None:
        source = f"{rates.source} ({rates.model_id})" if rates.model_id else rates.source
        if rates.tiers:
            source += "; tiered: the tier is chosen by the call's total input"
    return CostBreakdown(lines, total, bool(summary.get("cost_estimated")), priced, source, reserved, settlement,
                         capped if isinstance(capped, int) and capped > 0 else None, tokens_per_second(summary),
                         stop_reason)


def _settlement(summary: dict[str, Any], reserved: int, total: int | None) -> str:
    state = summary.get("state")
    if state == "pending":
        return "in flight: the reservation is held until the call ends"
    if summary.get("status") == 402:
        return "refused at admission: nothing was reserved or charged"
    if not reserved:
        return "nothing reserved (unpriced model, or refused before admission)"
    if total is None:
        return "released: nothing charged"
    kept = reserved - total
    if kept >= 0:
        return f"settled at the actual cost; {kept:,} µ$ of the reservation went back to the budget"
    return "settled above the reservation (the provider reported more than the bound)"


def tokens_per_second(summary: dict[str, Any]) -> float | None:
    """Output tokens over generation time: after the first token for streams, the whole call otherwise."""
    out = summary.get("output_tokens") or 0
    latency = summary.get("latency_ms")
    if not out or not isinstance(latency, int | float) or is_failed(summary):
        return None
    ttft = summary.get("ttft_ms") if summary.get("stream") else None
    span = latency - (ttft if isinstance(ttft, int | float) else 0.0)
    return out / (span / 1000.0) if span > 0 else None


# --- errors --------------------------------------------------------------------------------------

# Errors iron-tui makes itself (error_code → what it means and what to do).
_OWN: dict[str, tuple[str, str]] = {
    "budget_exceeded": ("iron-tui refused the call: the budget is spent",
                        "raise the budget with b (or --budget), or wait for the period to reset"),
    "insufficient_budget": ("iron-tui refused the call: its worst-case cost does not fit in what is left",
                            "lower max_tokens, wait for calls in flight to finish, or raise the budget (b)"),
    "upstream_timeout": ("the provider did not answer in time", "retry; raise --upstream-timeout for long calls"),
    "upstream_unreachable": ("iron-tui could not reach the provider",
                             "check the network and the provider's base URL (--openai-base-url / --anthropic-base-url)"),
    "upstream_empty_stream": ("the provider ended the stream without sending anything", "retry the call"),
    "stream_incomplete": ("the provider's stream ended before it was complete", "retry the call"),
    "stream_error": ("the provider reported an error in the middle of the stream", "retry the call"),
    "client_disconnected": ("the agent hung up before the answer was complete",
                            "nothing to fix in iron-tui: the agent cancelled or timed out"),
    "shutdown": ("iron-tui shut down while the call was running", "the agent may retry it"),
    "interrupted": ("the iron-tui relaying this call stopped (crashed or was killed) before it finished",
                    "nothing to redo here: it was charged what it relayed and reported once, marked "
                    "interrupted; the agent saw its connection drop and may have retried"),
    "invalid_json": ("the agent sent a body that is not valid JSON", "fix the agent's request"),
    "model_not_found": ("iron-tui could not tell which provider serves the model",
                        "use a claude*, gpt*, o1*/o3*/o4* model name or the /openai/ or /anthropic/ prefix"),
    "request_too_large": ("the request body is over the size limit", "raise --max-body-bytes or send less"),
    "unpriced_model": ("strict pricing refused a model with no known price",
                       "add a price for it in the config, or turn off --strict-pricing"),
    "budget_lease_unavailable": ("the Iron Cage server has not granted a budget lease yet",
                                 "check the control server (the Sync panel)"),
    "unsupported_parameter": ("the request uses something the translation cannot carry over",
                              "drop or change the parameter named in the message"),
    "upstream_format": ("the provider's answer could not be translated for the agent",
                        "see the Response tab for what the provider sent"),
    "internal_error": ("a bug in iron-tui", "please report it with this request's detail"),
}
_PROVIDER_ADVICE = {
    400: "the provider rejected the request: read its message above",
    401: "the provider refused the key: check the provider key iron-tui was given",
    403: "the key may not use this model or feature",
    404: "the model or endpoint does not exist at this provider",
    408: "retry the call",
    413: "send less (a smaller prompt or fewer images)",
    429: "slow down or retry after the time above; check the provider's rate and spend limits",
    500: "a provider-side failure: retry",
    502: "a provider-side failure: retry",
    503: "the provider is overloaded or down: retry with back-off",
    529: "the provider is overloaded: retry with back-off",
}
_RETRY_IN = re.compile(r"(?:try again|retry) (?:in|after) ([0-9]+(?:\.[0-9]+)?) ?(ms|s|sec|seconds?|m|min)\b", re.I)
_RETRY_HINT = re.compile(r"^retry-after(?:-ms)?: *([0-9.]+) *(ms|s)?$", re.I)


@dataclass(frozen=True)
class ErrorExplanation:
    origin: str  # "provider" (it answered with this status) or "iron-tui" (iron-tui made the answer)
    headline: str
    message: str
    code: str | None
    retry_after_s: float | None
    advice: str
    client_body: str | None  # the answer the agent received
    client_body_rebuilt: bool  # True when rebuilt from the record rather than recorded


def _retry_after(message: str, record: Any) -> float | None:
    value = getattr(record, "retry_after_s", None)  # set by the pipeline when it records the header
    if isinstance(value, int | float):
        return float(value)
    for w in getattr(record, "warnings", None) or ():
        m = _RETRY_HINT.match(str(w).strip())
        if m:
            in_ms = str(w).lower().startswith("retry-after-ms") or (m.group(2) or "").lower() == "ms"
            return float(m.group(1)) / (1000.0 if in_ms else 1.0)
    m = _RETRY_IN.search(message)
    if m:
        unit = m.group(2).lower()
        scale = 0.001 if unit == "ms" else 60.0 if unit in ("m", "min") else 1.0
        return float(m.group(1)) * scale
    return None


def explain_error(summary: dict[str, Any], record: Any) -> ErrorExplanation | None:
    if not is_failed(summary):
        return None
    status = summary.get("status")
    message = str(summary.get("error") or "failed")
    code = getattr(record, "error_code", None)
    own = _OWN.get(code or "")
    origin = "iron-tui" if own is not None or not isinstance(status, int) else "provider"
    if origin == "provider":
        provider = str(summary.get("provider") or "the provider")
        headline = f"{provider} answered {status}"
        advice = _PROVIDER_ADVICE.get(int(status or 0), "read the provider's message above")
    else:
        headline, advice = own or ("the call failed", "see the message above")
    body, rebuilt = _client_body(summary, record, origin, message, code)
    return ErrorExplanation(origin, headline, message, code, _retry_after(message, record), advice, body, rebuilt)


def _client_body(summary: dict[str, Any], record: Any, origin: str, message: str,
                 code: str | None) -> tuple[str | None, bool]:
    recorded = getattr(record, "client_response", None)  # the pipeline may record what it sent
    if isinstance(recorded, str):
        return recorded, False
    if record is not None and origin == "provider":
        body = getattr(record, "translated_response" if summary.get("translated") else "upstream_response", None)
        if body:
            return body, False
    status = summary.get("status")
    if origin != "iron-tui" or not isinstance(status, int) or code in ("client_disconnected", "shutdown"):
        return None, False
    shape: Shape = "anthropic" if summary.get("api") == "anthropic.messages" else "openai"
    type_ = None
    if code in ("budget_exceeded", "insufficient_budget"):
        type_ = "iron_cage_budget_exceeded" if code == "budget_exceeded" else "iron_cage_insufficient_budget"
    rebuilt = error_body(shape, status, message, type_=type_, code=code)
    return json.dumps(rebuilt, indent=2, ensure_ascii=False), True

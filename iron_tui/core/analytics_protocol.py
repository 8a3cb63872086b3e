"""The analytics endpoint's wire (reference/iron-cage-protocol.md: POST /api/v1/analytics/events): the
events iron-tui sends, and what the control server's answers to one mean. `analytics.py` syncs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iron_tui.core.control import ControlError

__all__ = ["COMPLETED", "FAILED", "HOLD_STATUSES", "MAX_MESSAGE_CHARS", "MAX_NAME_CHARS", "RETRY_STATUSES",
           "BatchResult", "answer_error", "completed_event", "failed_event", "rejection_text"]

COMPLETED = "llm_request_completed"
FAILED = "llm_request_failed"
MAX_NAME_CHARS = 256  # model names, agent ids, error codes in an event
MAX_MESSAGE_CHARS = 2000  # error messages in an event
# Answers about the server or our credentials, not about the event: keep the backlog, hold the sync.
HOLD_STATUSES = frozenset({401, 403, 404})
# Worth trying the same event again later.
RETRY_STATUSES = frozenset({408, 425, 429})


# --- event shapes (protocol: POST /api/v1/analytics/events) --------------------------------------


def _common(ic_token: str, event_id: str, timestamp_ms: int, event_type: str, model: str, provider: str,
            agent_id: str | None, provider_id: str | int | None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "ic_token": ic_token,
        "event_id": event_id,
        "timestamp_ms": int(timestamp_ms),
        "event_type": event_type,
        "model": _cap(model, MAX_NAME_CHARS),
        "provider": provider if provider in ("openai", "anthropic") else "unknown",
    }
    # Absent optional fields are omitted, never null (the protocol's contract).
    if agent_id is not None:
        event["agent_id"] = _cap(agent_id, MAX_NAME_CHARS)
    if provider_id is not None:
        event["provider_id"] = provider_id
    return event


def completed_event(*, ic_token: str, event_id: str, timestamp_ms: int, model: str, provider: str,
                    input_tokens: int, output_tokens: int, cost_micros: int, agent_id: str | None = None,
                    provider_id: str | int | None = None) -> dict[str, Any]:
    event = _common(ic_token, event_id, timestamp_ms, COMPLETED, model, provider, agent_id, provider_id)
    event["input_tokens"] = int(input_tokens)
    event["output_tokens"] = int(output_tokens)
    event["cost_micros"] = int(cost_micros)
    return event


def failed_event(*, ic_token: str, event_id: str, timestamp_ms: int, model: str, provider: str,
                 error_code: str, error_message: str, agent_id: str | None = None,
                 provider_id: str | int | None = None) -> dict[str, Any]:
    event = _common(ic_token, event_id, timestamp_ms, FAILED, model, provider, agent_id, provider_id)
    event["error_code"] = _cap(str(error_code), MAX_NAME_CHARS)
    event["error_message"] = _cap(str(error_message), MAX_MESSAGE_CHARS)
    return event


def _cap(text: str, limit: int) -> str:
    """Client-supplied text (a model name, an agent id, an upstream's error) cut so no event is too big
    for the server to take."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- answers ------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """One batch's answers, tallied for the sync."""

    delivered: int = 0
    rejected: int = 0
    failed: list[int] = field(default_factory=list)  # row ids to retry later
    retry_after: float = 0.0  # the longest Retry-After the server asked for
    hold: ControlError | None = None  # stop the whole sync (unreachable, credentials refused)
    failure: ControlError | None = None  # the last failure, for the status
    rejection_reason: str | None = None


def rejection_text(status: int, body: dict[str, Any]) -> str:
    err, msg = body.get("error"), body.get("message")
    if err and msg:
        return f"{status} {err}: {msg}"
    return f"{status} {err or msg or 'rejected'}"


def answer_error(status: int, body: dict[str, Any]) -> ControlError:
    code = body.get("error")
    message = body.get("message") or code or "server error"
    return ControlError(status, str(code) if code else None, str(message), endpoint="/api/v1/analytics/events")

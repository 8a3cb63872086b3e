"""Error values for the OpenAI ⇄ Anthropic translation, and status/type mappings between the two APIs."""

from __future__ import annotations

from typing import Any

__all__ = [
    "TranslationError",
    "UpstreamFormatError",
    "anthropic_error_to_openai",
    "anthropic_stream_error_status",
    "openai_error_type_for_status",
]


class TranslationError(Exception):
    """A request that cannot be translated; the proxy answers 400 in the OpenAI error shape.

    `param` names the offending request field (``"n"``, ``"messages[2].content[0]"``); `code` follows
    OpenAI's vocabulary: ``unsupported_parameter``, ``unsupported_value``, ``missing_required_parameter``,
    ``invalid_type``, ``invalid_value``.
    """

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI error body to send with status 400."""
        return {
            "error": {
                "message": self.message,
                "type": "invalid_request_error",
                "param": self.param,
                "code": self.code,
            }
        }


class UpstreamFormatError(Exception):
    """Upstream data a translator cannot translate (wrong types, missing fields): a 502 for the client.
    (Defined here, beside TranslationError, so translate/ needs nothing from dialects/; base.py
    re-exports it.)"""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# The table in reference/translation.md ("Errors"); statuses outside it fall back by class below.
_STATUS_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

# Anthropic error `type` → the HTTP status Anthropic itself uses for it. Needed when an `error` event
# arrives inside a 200 stream: if nothing was relayed yet, the client should see the real status so
# its SDK retries (429/529) instead of treating a 200 as success.
_ERROR_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def openai_error_type_for_status(status: int) -> str:
    """OpenAI `error.type` for an upstream HTTP status (unknown 4xx → invalid_request_error, else api_error)."""
    known = _STATUS_TYPES.get(status)
    if known is not None:
        return known
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def anthropic_stream_error_status(error: dict[str, Any]) -> int:
    """HTTP status for an Anthropic stream `error` object (``{"type": ..., "message": ...}``).

    Also accepts the whole event payload (``{"type": "error", "error": {...}}``). Unknown types → 500.
    """
    inner = error.get("error")
    if isinstance(inner, dict):
        error = inner
    kind = error.get("type")
    return _ERROR_TYPE_STATUS.get(kind, 500) if isinstance(kind, str) else 500


def anthropic_error_to_openai(
    status: int, body: dict[str, Any] | None, *, fallback_message: str = ""
) -> dict[str, Any]:
    """Turn an Anthropic error response (or stream error event) into OpenAI's ``{"error": {...}}`` body.

    `body` may be the full ``{"type":"error","error":{...}}`` document, the bare inner error object, or
    None/anything else when the upstream sent no JSON. `code` carries Anthropic's own error type (e.g.
    ``overloaded_error``) so clients can tell cases apart; `param` is always None (Anthropic has no such field).
    """
    inner: dict[str, Any] | None = None
    if isinstance(body, dict):
        candidate = body.get("error")
        if isinstance(candidate, dict):
            inner = candidate
        elif isinstance(body.get("message"), str):
            inner = body
    anthropic_type = inner.get("type") if inner is not None else None
    if not isinstance(anthropic_type, str) or anthropic_type == "error":
        anthropic_type = None
    message = inner.get("message") if inner is not None else None
    if not isinstance(message, str) or not message:
        message = fallback_message or f"Anthropic API returned HTTP {status}"
    if status in _STATUS_TYPES or anthropic_type is None:
        error_type = openai_error_type_for_status(status)
    else:
        # e.g. 402 billing_error, 504 timeout_error: Anthropic's own name says more than a generic class.
        error_type = anthropic_type
    return {"error": {"message": message, "type": error_type, "param": None, "code": anthropic_type}}

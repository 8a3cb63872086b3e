"""What each client dialect expects of a proxy besides translation: its error shape, its mid-stream
error frame, and how its stream ends.

Errors are rendered here once for every pair: an upstream error is first normalised to
(status, type, message, code) by the provider dialect (`provider_apis.py`), then drawn in the client's
shape by `client_error_body` — so a new pair never writes error bodies of its own.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from iron_tui.core.dialects.base import ClientApi

Shape = Literal["openai", "anthropic"]

# The upstream path of each client API when it is served natively.
NATIVE_PATHS: dict[str, str] = {
    "openai.chat": "/v1/chat/completions",
    "openai.responses": "/v1/responses",
    "anthropic.messages": "/v1/messages",
    "openai.completions": "/v1/completions",
    "openai.embeddings": "/v1/embeddings",
}

# The provider API that serves each client API without translation.
NATIVE_PROVIDER_API: dict[str, str] = {
    "openai.chat": "openai",
    "openai.completions": "openai",
    "openai.embeddings": "openai",
    "openai.responses": "openai-responses",
    "anthropic.messages": "anthropic",
}

# Anthropic error.type for a status (for errors iron-tui makes, or upstream errors without a type).
ANTHROPIC_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
OPENAI_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
}


def shape_of(client: ClientApi | str) -> Shape:
    return "anthropic" if client.startswith("anthropic.") else "openai"


def error_body(
    shape: Shape, status: int, message: str, *, type_: str | None = None, code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """An error body in `shape`: OpenAI `{"error": {...}}` or Anthropic `{"type": "error", ...}`."""
    if shape == "anthropic":
        return {"type": "error",
                "error": {"type": type_ or ANTHROPIC_TYPES.get(status, _fallback_anthropic(status)),
                          "message": message}}
    return {"error": {"message": message, "type": type_ or OPENAI_TYPES.get(status, _fallback_openai(status)),
                      "param": param, "code": code}}


def _fallback_anthropic(status: int) -> str:
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def _fallback_openai(status: int) -> str:
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def client_error_body(
    client: ClientApi | str, status: int, message: str, *, upstream_type: str | None = None,
    code: str | None = None, param: str | None = None,
) -> dict[str, Any]:
    """An upstream (or proxy) error for a TRANSLATED call, in the client's shape.

    `upstream_type` is the provider's own error type (e.g. Anthropic's `overloaded_error`, OpenAI's
    `rate_limit_error`): the client's type comes from the status where the client's API has a name for
    it, else the provider's name is kept (it says more than a generic class); OpenAI clients also get the
    provider's type as `code` so they can tell cases apart.
    """
    shape = shape_of(client)
    if shape == "anthropic":
        known = ANTHROPIC_TYPES.get(status)
        return error_body(shape, status, message, type_=known or upstream_type or _fallback_anthropic(status))
    known = OPENAI_TYPES.get(status)
    return error_body(shape, status, message, type_=known or upstream_type or _fallback_openai(status),
                      code=code if code is not None else upstream_type, param=param)


def client_stream_error(client: ClientApi | str, message: str, *, type_: str = "api_error",
                        code: str = "stream_error", sequence_number: int = 0) -> bytes:
    """The frame that tells a client its stream failed after bytes were sent, in its own framing.

    Chat Completions: `data: {"error": ...}` (the openai SDK raises APIError on it). Anthropic: an
    `error` event (the anthropic SDK raises). Responses: an `error` event with the ResponseErrorEvent shape.
    """
    if client == "anthropic.messages":
        body = {"type": "error", "error": {"type": type_, "message": message}}
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"
    if client == "openai.responses":
        ev = {"type": "error", "code": code, "message": message, "param": None,
              "sequence_number": sequence_number}
        return b"event: error\ndata: " + orjson.dumps(ev) + b"\n\n"
    return b"data: " + orjson.dumps({"error": {"message": message, "type": type_, "param": None,
                                               "code": code}}) + b"\n\n"

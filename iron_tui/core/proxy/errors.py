"""Error bodies in each caller's API shape. Every proxy-made error goes through here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

from aiohttp import web

Shape = Literal["openai", "anthropic"]

# Anthropic error.type for a status the proxy itself produces.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
}


def error_body(
    shape: Shape,
    status: int,
    message: str,
    *,
    type_: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> dict[str, object]:
    if shape == "anthropic":
        return {
            "type": "error",
            "error": {"type": type_ or _ANTHROPIC_TYPES.get(status, "api_error"), "message": message},
        }
    return {
        "error": {
            "message": message,
            "type": type_ or _OPENAI_TYPES.get(status, "api_error"),
            "param": param,
            "code": code,
        }
    }


def json_response(
    status: int, body: Mapping[str, object] | list[object], headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


def error_response(
    shape: Shape,
    status: int,
    message: str,
    *,
    type_: str | None = None,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return json_response(
        status, error_body(shape, status, message, type_=type_, code=code, param=param), headers
    )

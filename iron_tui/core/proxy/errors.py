"""Proxy-made errors and JSON responses in each caller's API shape. Every proxy-made error goes through
here (the shapes themselves live in `core/dialects/client_apis.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from iron_tui.core.dialects.client_apis import Shape, error_body
from iron_tui.core.json_bytes import dumps

__all__ = ["ProxyError", "Shape", "error_body", "error_response", "json_response", "provider_name", "reason"]


class ProxyError(Exception):
    """A proxy-made failure with its HTTP status and message, answered in the caller's error shape
    (or with `body` as is, e.g. a translated upstream error or the budget's 402)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        type_: str | None = None,
        param: str | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.type_ = type_
        self.param = param
        self.body = body
        self.headers = headers or {}


def json_response(
    status: int, body: Mapping[str, object] | list[object], headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(status=status, body=dumps(body), content_type="application/json",
                        headers=headers)


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
    return json_response(status, error_body(shape, status, message, type_=type_, code=code, param=param),
                         headers)


def provider_name(provider: str) -> str:
    """How a provider is named in messages."""
    return {"openai": "OpenAI", "anthropic": "Anthropic"}.get(provider, provider)


def reason(exc: BaseException) -> str:
    """An exception's first line, for a message."""
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]

"""Client authentication: the iron-tui token, or a launched agent's own `<agent token>.<agent id>`."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from aiohttp import web

from iron_tui.core.proxy.errors import Shape, error_response

UNAUTHORIZED_MESSAGE = (
    "Invalid or missing iron-tui token. Send the token iron-tui printed (or router.api_key) as "
    "'Authorization: Bearer <token>' or 'x-api-key: <token>'."
)


class Authenticator:
    def __init__(self, token: str, agent_token: str) -> None:
        self._token = token.encode()
        self._agent_token = agent_token.encode()

    def check(self, headers: Mapping[str, str]) -> tuple[str | None] | None:
        """(agent_id,) when the token is valid, else None. Constant-time comparison.

        Agents launched by iron-tui get `<agent token>.<agent_id>` so their calls are attributed to them
        (the agent token is a separate secret: in server mode the main token is the IC token).
        """
        raw = presented_token(headers)
        if raw is None:
            return None
        tok = self._token
        if len(raw) == len(tok) and hmac.compare_digest(raw, tok):
            return (headers.get("x-iron-agent-id"),)
        agent = self._agent_token
        if len(raw) > len(agent) + 1 and raw[len(agent)] == 0x2E:  # "<agent token>.<agent id>"
            if hmac.compare_digest(raw[: len(agent)], agent):
                return (raw[len(agent) + 1 :].decode("utf-8", "replace"),)
        return None


def presented_token(headers: Mapping[str, str]) -> bytes | None:
    """The token a request presents (`x-api-key`, else `Authorization: Bearer`), as bytes."""
    presented = headers.get("x-api-key")
    if presented is None:
        auth = headers.get("authorization", "")
        if auth[:7].lower() != "bearer ":
            return None
        presented = auth[7:].strip()
    # aiohttp keeps undecodable header bytes as surrogates: such a token is simply wrong, not a 500.
    return presented.encode("utf-8", "surrogateescape")


def is_token(headers: Mapping[str, str], token: bytes) -> bool:
    """The request presents exactly `token` (constant time); agents' own tokens do not count."""
    raw = presented_token(headers)
    return raw is not None and len(raw) == len(token) and hmac.compare_digest(raw, token)


def unauthorized(shape: Shape, headers: Mapping[str, str] | None = None) -> web.Response:
    return error_response(shape, 401, UNAUTHORIZED_MESSAGE, code="invalid_api_key", headers=headers)

"""Replay a recorded call, as recorded or edited, through the engine's own proxy.

The call goes over loopback HTTP to the proxy like any client's, attributed to the agent "replay"
(`x-iron-agent-id`), so it is authenticated, admitted against the budget (a 402 when it does not fit),
translated, recorded in the history and priced exactly like the agent's own calls.

    check = budget_check(engine, body, summary)    # the worst case vs what is left, before sending
    result = await replay(engine, body, summary)   # ReplayResult: new request id, status, answer
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from iron_tui.core.proxy.routing import provider_for_model

REPLAY_AGENT = "replay"
ANSWER_PREVIEW = 64 * 1024  # of the answer kept in the result (the history records the whole preview)


class ReplayError(ValueError):
    """The edited body cannot be sent (not JSON, no model); the message says why."""


@dataclass(frozen=True)
class BudgetCheck:
    worst_case_micros: int | None  # None: the model is unpriced
    available_micros: int | None  # None: no limit
    fits: bool


@dataclass(frozen=True)
class ReplayResult:
    request_id: str | None  # the new call's id (x-iron-request-id)
    status: int
    answer: str  # the response body (an SSE stream as text for streamed calls), cut at ANSWER_PREVIEW
    error: str | None = None  # the connection failed (no answer at all)


def parse_request(body: str) -> dict[str, Any]:
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise ReplayError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ReplayError("the body must be a JSON object")
    if not isinstance(obj.get("model"), str) or not obj["model"]:
        raise ReplayError("the body needs a 'model'")
    return obj


def budget_check(engine: Any, body: str, summary: dict[str, Any]) -> BudgetCheck:
    """The request's worst-case cost (as admission computes it) against what the budget has left."""
    obj = parse_request(body)
    api = str(summary.get("api") or "openai.chat")
    provider = provider_for_model(obj["model"]) or str(summary.get("provider") or "openai")
    from iron_tui.core.proxy.admission import worst_case

    upstream_api = "anthropic" if api == "anthropic.messages" else (
        "openai-responses" if api == "openai.responses" else "openai")
    worst = worst_case(engine, provider, obj["model"], obj, api, upstream_api, body.encode())
    available = engine.ledger.available
    fits = available is None or (worst or 0) <= available
    return BudgetCheck(worst, available, fits)


def proxy_url(engine: Any, path: str) -> str:
    host = engine.host
    if host in ("", "0.0.0.0", "::"):  # bound to every address: loopback is one of them
        host = "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{engine.port}{path}"


async def replay(engine: Any, body: str, summary: dict[str, Any], *, timeout_s: float | None = None) -> ReplayResult:
    """Send `body` to the proxy on the recorded call's path; the answer is read to its end."""
    obj = parse_request(body)
    path = str(summary.get("path") or "/v1/chat/completions")
    headers = {"authorization": f"Bearer {engine.token}", "content-type": "application/json",
               "x-iron-agent-id": REPLAY_AGENT}
    if path.endswith("/messages"):
        headers["anthropic-version"] = "2023-06-01"
    limit = timeout_s if timeout_s is not None else engine.settings.upstream_timeout + 30.0
    try:
        async with asyncio.timeout(limit), engine.session.post(
            proxy_url(engine, path), data=json.dumps(obj).encode(), headers=headers
        ) as resp:
            data = await resp.content.read(ANSWER_PREVIEW)
            while await resp.content.readany():  # read a long stream to its end without keeping it
                pass
            return ReplayResult(resp.headers.get("x-iron-request-id"), resp.status,
                                data.decode("utf-8", "replace"))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return ReplayResult(None, 0, "", error=f"the proxy did not answer: {type(exc).__name__}: {exc}")

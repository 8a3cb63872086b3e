"""The HTTP routes. LLM calls all go through one pipeline (`pipeline.py`); the rest — health, model
lists, token counting — are small handlers here."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from iron_tui import __version__
from iron_tui.core.dialects import registry
from iron_tui.core.dialects.base import TranslationError
from iron_tui.core.dialects.client_apis import Shape, shape_of
from iron_tui.core.dialects.messages_chat import ESTIMATE_HEADER, estimate_input_tokens
from iron_tui.core.keys import KeyUnavailable
from iron_tui.core.providers import upstream_url
from iron_tui.core.proxy.auth import unauthorized
from iron_tui.core.proxy.connections import BodyReadError, read_body
from iron_tui.core.proxy.errors import error_response, json_response, provider_name, reason
from iron_tui.core.proxy.headers import returned_headers, upstream_headers
from iron_tui.core.proxy.pipeline import Pipeline
from iron_tui.core.proxy.routing import provider_for_model
from iron_tui.core.proxy.scrub import scrub, scrub_headers
from iron_tui.core.redact import redact_bytes
from iron_tui.core.upstream import UpstreamError
from iron_tui.core.upstream_errors import UpstreamConnectError

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine

# Client API of each LLM path (also under the /openai and /anthropic prefixes).
API_PATHS = {
    "/v1/chat/completions": "openai.chat",
    "/v1/messages": "anthropic.messages",
    "/v1/embeddings": "openai.embeddings",
    "/v1/completions": "openai.completions",
    "/v1/responses": "openai.responses",
}


class Proxy:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pipeline = Pipeline(engine)

    @property
    def inflight(self) -> int:
        return self.pipeline.inflight

    async def drain(self, runner: web.AppRunner | None, grace_s: float = 1.0) -> None:
        """Let in-flight calls finish for a moment, then end the streams still running ourselves, while
        their connections are open: each upstream read fails with "shutting down", so each client gets
        an error event in its API's framing and a proper end of its chunked body (aiohttp's own shutdown
        would just drop the connection). A handler that does not end by itself (a client that stopped
        reading) is cancelled."""
        for site in list(runner.sites if runner is not None else []):
            with contextlib.suppress(Exception):
                await site.stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while self.inflight and loop.time() < deadline:
            await asyncio.sleep(0.02)
        streams = dict(self.pipeline.relay.streams)
        for resp in streams:
            resp.fail(UpstreamConnectError("iron-tui is shutting down"))
        if streams:
            _done, pending = await asyncio.wait(streams.values(), timeout=1.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=0.5)

    def llm_handlers(self) -> dict[str, Any]:
        """The LLM routes' handlers by path: the pipeline itself (one coroutine layer fewer per call than a
        wrapper). The server's guard calls them directly (RequestGuard.route_directly)."""
        return {path: functools.partial(self.pipeline.run, client_api=api, forced=None)
                for path, api in API_PATHS.items()}

    def routes(self) -> list[web.RouteDef]:
        llm = [web.post(path, handler) for path, handler in self.llm_handlers().items()]
        return [
            web.get("/", self.root),
            web.get("/health", self.health),
            web.get("/v1/models", self.models),
            web.get("/v1/models/{model_id:.+}", self.model),
            web.post("/v1/messages/count_tokens", self.count_tokens),
            web.get("/v1/responses", self.responses_websocket),
            web.get("/openai/v1/responses", self.responses_websocket),
            *llm,
            web.get("/openai/v1/models", self.models),
            web.get("/anthropic/v1/models", self.models),
            web.get("/openai/v1/models/{model_id:.+}", self.model),
            web.get("/anthropic/v1/models/{model_id:.+}", self.model),
            web.post("/anthropic/v1/messages/count_tokens", self.count_tokens),
            web.post("/openai/{tail:.*}", self.prefixed),
            web.post("/anthropic/{tail:.*}", self.prefixed),
        ]

    async def root(self, request: web.Request) -> web.Response:
        return web.Response(text="LlmRouter OK")

    async def health(self, request: web.Request) -> web.Response:
        return json_response(200, {"status": "ok", "version": __version__, "mode": self.engine.mode})

    async def responses_websocket(self, request: web.Request) -> web.Response:
        # Codex first tries Responses over a WebSocket (GET + Upgrade). 426 makes it fall back to HTTP
        # POST at once; a 404 or 405 costs it six more attempts before every session.
        return error_response("openai", 426, "Responses over WebSocket is not available through iron-tui; "
                              "POST /v1/responses instead", type_="invalid_request_error",
                              code="websocket_not_supported", headers={"connection": "close"})

    async def prefixed(self, request: web.Request) -> web.StreamResponse:
        forced, _, tail = request.path.lstrip("/").partition("/")
        path = "/" + tail
        if not path.startswith("/v1/"):
            path = "/v1" + path
        api = API_PATHS.get(path)
        shape: Shape = "anthropic" if forced == "anthropic" else "openai"
        if api is None or registry.select(api, self.engine.providers.specs[forced].apis) is None:
            return error_response(shape, 404, f"no such route: {request.path}", code="not_found")
        return await self.pipeline.run(request, api, forced)

    # --- models --------------------------------------------------------------------------------

    def _models_shape(self, request: web.Request) -> Shape:
        # The Anthropic SDK always sends anthropic-version; OpenAI clients never do.
        if request.path.startswith("/anthropic") or "anthropic-version" in request.headers:
            return "anthropic"
        return "openai"

    async def models(self, request: web.Request) -> web.Response:
        shape = self._models_shape(request)
        if self.pipeline.auth.check(request.headers) is None:
            return unauthorized(shape)
        return json_response(200, await self.engine.list_models(request.path, shape))

    async def model(self, request: web.Request) -> web.Response:
        shape = self._models_shape(request)
        if self.pipeline.auth.check(request.headers) is None:
            return unauthorized(shape)
        wanted = request.match_info["model_id"]
        listing = await self.engine.list_models(request.path, shape)
        for m in listing.get("data", []):
            if m.get("id") == wanted:
                return json_response(200, m)
        return error_response(shape, 404, f"The model '{wanted}' does not exist or you do not have access to it.",
                              code="model_not_found", param="model")

    # --- token counting --------------------------------------------------------------------------

    async def count_tokens(self, request: web.Request) -> web.StreamResponse:
        """Anthropic's free token counter: passed through for Claude models (query string kept); not a
        billed call, so it is neither budgeted nor recorded."""
        eng = self.engine
        shape: Shape = "anthropic"
        if self.pipeline.auth.check(request.headers) is None:
            return unauthorized(shape)
        try:
            raw = await read_body(request, limit=eng.settings.max_body_bytes, timeout=eng.settings.body_timeout)
            body = orjson.loads(raw)
        except BodyReadError as exc:
            return error_response(shape, exc.status, exc.message, code=exc.code)
        except ValueError:
            return error_response(shape, 400, "malformed JSON body", code="invalid_json")
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str) or not model:
            return error_response(shape, 400, "'model' is required and must be a non-empty string", param="model")
        provider = "anthropic" if request.path.startswith("/anthropic") else provider_for_model(model)
        if provider != "anthropic":
            return self._estimated_count(body, shape)
        try:
            key = await eng.keys.get(provider)
        except KeyUnavailable as exc:
            return error_response(shape, exc.status, exc.message, code=exc.code)
        url = upstream_url(key.base_url, "/v1/messages/count_tokens", request.query_string, "anthropic")
        try:
            resp = await eng.upstream.post(url, raw, upstream_headers(request.headers, provider, key.key))
            try:
                data = await resp.read()
            finally:
                resp.close()
        except TimeoutError:
            return error_response(shape, 504, f"{provider_name(provider)} did not answer in time",
                                  code="upstream_timeout")
        except UpstreamError as exc:
            return error_response(shape, 502, f"{provider_name(provider)} is unreachable: {reason(exc)}",
                                  code="upstream_unreachable")
        data = redact_bytes(data) if resp.status >= 400 else scrub(data)
        headers = scrub_headers(returned_headers(resp.headers))
        headers["content-type"] = resp.headers.get("content-type", "application/json")
        return web.Response(status=resp.status, body=data, headers=headers)


    def _estimated_count(self, body: dict[str, Any], shape: Shape) -> web.Response:
        """No provider counts Anthropic-shaped bodies for other models: an estimate, marked as one in a
        header (`messages_chat/count_tokens.py` says how it is made)."""
        try:
            tokens = estimate_input_tokens(body)
        except TranslationError as exc:
            return error_response(shape, 400, exc.message, param=exc.param)
        return json_response(200, {"input_tokens": tokens}, {ESTIMATE_HEADER: "estimate"})


__all__ = ["API_PATHS", "Proxy", "shape_of"]

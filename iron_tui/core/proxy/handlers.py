"""The request path: auth → parse → route → key → reserve → (translate) → upstream → relay → price → settle.

Every call that gets past auth produces exactly one `RequestRecord` that is finished on every path
(success, upstream error, proxy-made error, client disconnect), so spend, history, the feed and
analytics always agree, and no budget reservation outlives its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web

from iron_tui import __version__
from iron_tui.core.budget import BudgetExceeded, Reservation, budget_error_body
from iron_tui.core.estimate import estimate_output_tokens_from_text, input_token_bound, max_output_tokens
from iron_tui.core.events import Notice, RequestRecord, RequestStarted
from iron_tui.core.json_bytes import dumps as dumps_json
from iron_tui.core.keys import KeyUnavailable, ResolvedKey
from iron_tui.core.pricing import TokenUsage
from iron_tui.core.proxy.errors import Shape, error_body, error_response, json_response
from iron_tui.core.proxy.headers import returned_headers, upstream_headers
from iron_tui.core.proxy.routing import provider_for_model
from iron_tui.core.proxy.sse import SSEParser
from iron_tui.core.redact import preview, redact_bytes, redact_text
from iron_tui.core.translate import (
    AnthropicStreamTranslator,
    TranslationError,
    anthropic_error_to_openai,
    anthropic_stream_error_status,
    anthropic_to_openai_response,
    openai_to_anthropic_request,
)
from iron_tui.core.upstream import UpstreamError, UpstreamResponse

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine

_DONE = b"data: [DONE]\n\n"
# Bytes of JSON framing around a streamed text delta; only used to estimate tokens of a cut stream.
_CHUNK_OVERHEAD = 80
_SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no"}


class _ProxyError(Exception):
    """A proxy-made failure with its HTTP status and message (turned into the caller's error shape)."""

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


class Proxy:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._token = engine.token.encode()
        self._agent_token = engine.agent_token.encode()
        self.inflight = 0
        self.streams: set[asyncio.Task[Any]] = set()  # handlers relaying a stream (cut at shutdown)

    # --- routes ------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.root),
            web.get("/health", self.health),
            web.get("/v1/models", self.models),
            web.post("/v1/chat/completions", self.chat),
            web.post("/v1/messages", self.messages),
            web.post("/v1/embeddings", self.passthrough),
            web.post("/v1/completions", self.passthrough),
            web.post("/v1/responses", self.passthrough),
            web.get("/openai/v1/models", self.models),
            web.get("/anthropic/v1/models", self.models),
            web.post("/openai/{tail:.*}", self.prefixed),
            web.post("/anthropic/{tail:.*}", self.prefixed),
        ]

    async def root(self, request: web.Request) -> web.Response:
        return web.Response(text="LlmRouter OK")

    async def health(self, request: web.Request) -> web.Response:
        return json_response(200, {"status": "ok", "version": __version__, "mode": self.engine.mode})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._call(request, "openai.chat", None, "/v1/chat/completions")

    async def messages(self, request: web.Request) -> web.StreamResponse:
        return await self._call(request, "anthropic.messages", "anthropic", "/v1/messages")

    async def passthrough(self, request: web.Request) -> web.StreamResponse:
        api = "openai." + request.path.rsplit("/", 1)[-1]
        return await self._call(request, api, "openai", request.path)

    async def prefixed(self, request: web.Request) -> web.StreamResponse:
        forced, _, tail = request.path.lstrip("/").partition("/")
        path = "/" + tail
        if not path.startswith("/v1/"):
            path = "/v1" + path
        apis = {
            "/v1/chat/completions": "openai.chat",
            "/v1/messages": "anthropic.messages",
            "/v1/embeddings": "openai.embeddings",
            "/v1/completions": "openai.completions",
            "/v1/responses": "openai.responses",
        }
        api = apis.get(path)
        shape: Shape = "anthropic" if forced == "anthropic" else "openai"
        if api is None or (api != "openai.chat" and api.split(".")[0] != forced):
            return error_response(shape, 404, f"no such route: {request.path}", code="not_found")
        return await self._call(request, api, forced, path)

    async def models(self, request: web.Request) -> web.Response:
        shape: Shape = "anthropic" if request.path.startswith("/anthropic") else "openai"
        if self._authenticate(request) is None:
            return self._unauthorized(shape, {})
        return json_response(200, await self.engine.list_models(request.path))

    # --- auth --------------------------------------------------------------------------------

    def _authenticate(self, request: web.Request) -> tuple[str | None] | None:
        """Return (agent_id,) when the token is valid, else None. Constant-time comparison.

        Agents launched by iron-tui get `<agent token>.<agent_id>` so their calls are attributed to them
        (the agent token is a separate secret: in server mode the main token is the IC token).
        """
        h = request.headers
        presented = h.get("x-api-key")
        if presented is None:
            auth = h.get("authorization", "")
            if auth[:7].lower() != "bearer ":
                return None
            presented = auth[7:].strip()
        # aiohttp keeps undecodable header bytes as surrogates: such a token is simply wrong, not a 500.
        raw = presented.encode("utf-8", "surrogateescape")
        tok = self._token
        if len(raw) == len(tok) and hmac.compare_digest(raw, tok):
            return (h.get("x-iron-agent-id"),)
        agent = self._agent_token
        if len(raw) > len(agent) + 1 and raw[len(agent)] == 0x2E:  # "<agent token>.<agent id>"
            if hmac.compare_digest(raw[: len(agent)], agent):
                return (raw[len(agent) + 1 :].decode("utf-8", "replace"),)
        return None

    def _unauthorized(self, shape: Shape, headers: dict[str, str]) -> web.Response:
        return error_response(
            shape,
            401,
            "Invalid or missing iron-tui token. Send the token iron-tui printed (or router.api_key) as "
            "'Authorization: Bearer <token>' or 'x-api-key: <token>'.",
            code="invalid_api_key",
            headers=headers,
        )

    # --- the call ----------------------------------------------------------------------------

    async def _call(
        self, request: web.Request, api: str, forced: str | None, upstream_path: str
    ) -> web.StreamResponse:
        eng = self.engine
        shape: Shape = "anthropic" if api == "anthropic.messages" else "openai"
        rid = eng.ids.request_id()
        hdrs = {"x-iron-request-id": rid}
        who = self._authenticate(request)
        if who is None:
            return self._unauthorized(shape, hdrs)
        agent_id = who[0]
        limit = eng.settings.max_body_bytes
        content = request.content
        try:
            if content.is_eof():
                # The whole body came with the headers (the usual small call): take it in one piece,
                # without read()'s accumulate-until-EOF loop.
                raw = content.read_nowait()
                if len(raw) > limit:
                    raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(raw))
            else:
                raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error_response(
                shape, 413, f"request body is larger than the {limit}-byte limit", code="request_too_large",
                headers=hdrs,
            )
        try:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = json.loads(raw)  # slower, but its error names the line and column
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            where = (
                f" at line {exc.lineno} column {exc.colno} (char {exc.pos})"
                if isinstance(exc, json.JSONDecodeError)
                else ""
            )
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else (
                "nested too deeply" if isinstance(exc, RecursionError) else str(exc))
            return error_response(
                shape, 400, f"malformed JSON body: {msg}{where}", code="invalid_json", headers=hdrs
            )
        if not isinstance(body, dict):
            return error_response(shape, 400, "request body must be a JSON object", headers=hdrs)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return error_response(
                shape, 400, "'model' is required and must be a non-empty string", param="model", headers=hdrs
            )
        provider = forced or provider_for_model(model)
        if provider is None:
            configured = eng.keys.configured()
            if len(configured) == 1:
                provider = configured[0]
            else:
                return error_response(
                    shape, 400,
                    f"cannot tell which provider serves model {model!r}: use a claude*, gpt*, o1*/o3*/o4* "
                    "model name or the /openai/ or /anthropic/ path prefix",
                    param="model", code="model_not_found", headers=hdrs,
                )
        if api == "anthropic.messages" and provider_for_model(model) == "openai":
            return error_response(
                shape, 400, f"model {model!r} is an OpenAI model; /v1/messages serves Anthropic models",
                param="model", headers=hdrs,
            )
        translated = api == "openai.chat" and provider == "anthropic"
        stream = body.get("stream") is True
        rec = RequestRecord(
            id=rid, started_at=eng.clock.now(), method=request.method, path=request.path, api=api,
            model=model, provider=provider,  # type: ignore[arg-type]
            stream=stream, translated=translated, agent_id=agent_id,
        )
        t0 = time.perf_counter()
        reservation: Reservation | None = None
        started = False
        try:
            try:
                key = await eng.keys.get(provider)
                send_body, sent_obj, send_path, client_usage, tr_include = self._prepare(
                    body, raw, api, translated, upstream_path, rec)
                reservation = self._reserve(rec, sent_obj, "anthropic.messages" if translated else api,
                                            None if translated else raw)
            except KeyUnavailable as exc:
                raise _ProxyError(exc.status, exc.message, code=exc.code) from None
            eng.history.add(rec)
            eng.bus.publish(RequestStarted(rec.started_at, rec.summary()))
            started = True
            self.inflight += 1
            try:
                return await self._forward(
                    request, rec, key, send_body, send_path, shape, client_usage, tr_include, reservation, t0,
                    hdrs,
                )
            finally:
                self.inflight -= 1
        except _ProxyError as exc:
            rec.state = "error"
            rec.status = exc.status
            rec.error = redact_text(exc.message)
            rec.error_code = exc.code or str(exc.status)
            body_out = exc.body or error_body(shape, exc.status, exc.message, type_=exc.type_, code=exc.code,
                                              param=exc.param)
            return json_response(exc.status, body_out, {**hdrs, **exc.headers})
        except Exception as exc:
            # A bug of ours must still answer in the caller's API shape and leave an honest record,
            # not a text/plain 500 recorded as a client disconnect.
            msg = redact_text(f"iron-tui internal error: {type(exc).__name__}: {exc}")[:500]
            rec.state, rec.status, rec.error, rec.error_code = "error", 500, msg, "internal_error"
            eng.bus.publish(Notice(eng.clock.now(), "error", f"{rec.id}: {msg}"))
            return error_response(shape, 500, msg, code="internal_error", headers=hdrs)
        finally:
            if reservation is not None and not reservation.settled:
                eng.ledger.release(reservation)
            if rec.latency_ms is None:
                rec.latency_ms = (time.perf_counter() - t0) * 1000.0
            if rec.state == "pending":
                # Cancelled (client went away) before anything recorded an outcome.
                rec.state = "error"
                rec.error = rec.error or "client disconnected"
                rec.error_code = rec.error_code or "client_disconnected"
                rec.status = rec.status or 499
            if not started:
                eng.history.add(rec)
            eng.request_finished(rec)

    def _prepare(
        self, body: dict[str, Any], raw: bytes, api: str, translated: bool, path: str, rec: RequestRecord
    ) -> tuple[bytes, dict[str, Any], str, bool, bool]:
        """Build the upstream body: (bytes, as dict, upstream path, client asked for usage, include_usage)."""
        eng = self.engine
        limit = eng.settings.body_preview_bytes
        rec.request_body = preview(raw, limit)
        if translated:
            try:
                tr = openai_to_anthropic_request(body, default_max_tokens=eng.settings.default_max_tokens)
            except TranslationError as exc:
                raise _ProxyError(400, exc.message, param=exc.param,
                                  code=exc.code or "unsupported_parameter") from None
            rec.warnings.extend(tr.warnings)
            out = dumps_json(tr.body)
            rec.translated_request = preview(out, limit)
            return out, tr.body, "/v1/messages", tr.include_usage, tr.include_usage
        if api in ("openai.chat", "openai.completions") and rec.stream:
            opts = body.get("stream_options")
            client_usage = isinstance(opts, dict) and opts.get("include_usage") is True
            if not client_usage:
                # Always ask for usage so streams are priced; the usage chunk is stripped on the way back.
                body = {**body, "stream_options": {**(opts if isinstance(opts, dict) else {}),
                                                   "include_usage": True}}
                return dumps_json(body), body, path, False, False
            return raw, body, path, True, True
        return raw, body, path, True, True

    def _reserve(self, rec: RequestRecord, body: dict[str, Any], api: str, raw: bytes | None) -> Reservation:
        eng = self.engine
        rates = eng.pricer.rates(rec.provider, rec.model)
        if rates is None:
            rec.priced = False
            if eng.pricer.strict:
                raise _ProxyError(
                    400, f"model {rec.model!r} has no known price and strict pricing is on (--strict-pricing)",
                    param="model", code="unpriced_model",
                )
            amount = 0
        else:
            bound = input_token_bound(body, api, raw)
            max_out = max_output_tokens(body, api, eng.settings.default_max_tokens)
            rec.max_output_tokens = max_out
            amount = eng.pricer.worst_case(rec.provider, rec.model, bound, max_out) or 0
        if eng.lease_error is not None and eng.ledger.limit is None:
            raise _ProxyError(503, f"no budget lease from the Iron Cage server yet: {eng.lease_error}",
                              code="budget_lease_unavailable")
        try:
            res = eng.ledger.reserve(rec.id, amount, model=rec.model, provider=rec.provider,
                                     agent_id=rec.agent_id)
        except BudgetExceeded as exc:
            shape: Shape = "anthropic" if rec.api == "anthropic.messages" else "openai"
            body_out = budget_error_body(exc, shape)
            raise _ProxyError(402, exc.message, code=exc.code, body=body_out) from None
        rec.reserved_micros = amount
        return res

    # --- upstream ----------------------------------------------------------------------------

    async def _forward(
        self,
        request: web.Request,
        rec: RequestRecord,
        key: ResolvedKey,
        send_body: bytes,
        path: str,
        shape: Shape,
        client_usage: bool,
        include_usage: bool,
        res: Reservation,
        t0: float,
        hdrs: dict[str, str],
    ) -> web.StreamResponse:
        eng = self.engine
        for attempt in (0, 1):
            url = _join(key.base_url, path)
            headers = upstream_headers(request.headers, rec.provider, key.key)
            try:
                resp = await eng.upstream.post(url, send_body, headers)
            except TimeoutError:
                raise _ProxyError(504, f"{_pname(rec.provider)} did not answer in time (connect timeout "
                                       f"{eng.settings.connect_timeout:g}s, read timeout "
                                       f"{eng.settings.upstream_timeout:g}s)", code="upstream_timeout") from None
            except UpstreamError as exc:
                raise _ProxyError(502, f"{_pname(rec.provider)} is unreachable at {key.base_url}: "
                                       f"{_reason(exc)}", code="upstream_unreachable") from None
            if resp.status == 401 and attempt == 0 and eng.keys.invalidate(rec.provider):
                # Server-issued key was rotated or revoked: fetch a fresh one, once.
                resp.close()
                try:
                    key = await eng.keys.get(rec.provider)
                except KeyUnavailable as exc:
                    raise _ProxyError(exc.status, exc.message, code=exc.code) from None
                continue
            break
        try:
            rec.status = resp.status
            out_headers = {**returned_headers(resp.headers), **hdrs}
            ctype = resp.headers.get("content-type", "")
            if resp.status == 200 and ctype.startswith("text/event-stream"):
                task = asyncio.current_task()
                assert task is not None
                self.streams.add(task)
                try:
                    return await self._relay_stream(request, rec, resp, shape, client_usage, include_usage, res,
                                                    t0, out_headers)
                finally:
                    self.streams.discard(task)
            return await self._relay_whole(rec, resp, res, t0, out_headers)
        finally:
            # Closing (not releasing) an unfinished response drops the connection so the upstream
            # stops generating — that is how a client disconnect cancels the upstream request.
            if not resp.closed:
                resp.close()

    async def _relay_whole(
        self, rec: RequestRecord, resp: UpstreamResponse, res: Reservation, t0: float,
        out_headers: dict[str, str],
    ) -> web.Response:
        eng = self.engine
        try:
            data = await resp.read()
        except TimeoutError:
            raise _ProxyError(504, f"{_pname(rec.provider)} response timed out", code="upstream_timeout") from None
        except UpstreamError as exc:
            raise _ProxyError(502, f"{_pname(rec.provider)} connection failed: {_reason(exc)}",
                              code="upstream_unreachable") from None
        rec.ttft_ms = (time.perf_counter() - t0) * 1000.0
        limit = eng.settings.body_preview_bytes
        rec.upstream_response = preview(data, limit)
        status = resp.status
        parsed: Any = None
        try:
            parsed = orjson.loads(data) if data else None
        except ValueError:
            parsed = None
        if status >= 400 or not isinstance(parsed, dict):
            rec.state = "error"
            rec.error = redact_text(_error_message(parsed, data, status))
            rec.error_code = str(status)
            eng.ledger.release(res)
            if rec.translated:
                body = anthropic_error_to_openai(status, parsed if isinstance(parsed, dict) else None,
                                                 fallback_message=rec.error)
                out = json.dumps(body).encode()
                rec.translated_response = preview(out, limit)
                return web.Response(status=status, body=out, headers={**out_headers,
                                                                       "content-type": "application/json"})
            # An upstream error that echoes the provider key must not hand it to the agent.
            return web.Response(status=status, body=redact_bytes(data), headers={
                **out_headers, "content-type": resp.headers.get("content-type", "application/json")})
        usage_obj = parsed.get("usage")
        usage = _usage(rec.provider, usage_obj if isinstance(usage_obj, dict) else None)
        if usage is None:
            # A server that reports no usage still billed the call: charge an estimate, marked so.
            usage = TokenUsage(input_tokens=estimate_output_tokens_from_text(len(rec.request_body or "")),
                               output_tokens=estimate_output_tokens_from_text(len(data)))
            self._charge(rec, res, usage, estimated=True)
        else:
            self._charge(rec, res, usage, estimated=False)
        rec.state = "ok"
        if rec.translated:
            out_obj = anthropic_to_openai_response(parsed, created=int(eng.clock.now()))
            data = dumps_json(out_obj)
            rec.translated_response = preview(data, limit)
        out_headers["x-iron-cost-usd"] = "unpriced" if rec.cost_micros is None else f"{rec.cost_micros / 1e6:.6f}"
        out_headers["content-type"] = "application/json"
        return web.Response(status=status, body=data, headers=out_headers)

    async def _relay_stream(
        self,
        request: web.Request,
        rec: RequestRecord,
        resp: UpstreamResponse,
        shape: Shape,
        client_usage: bool,
        include_usage: bool,
        res: Reservation,
        t0: float,
        out_headers: dict[str, str],
    ) -> web.StreamResponse:
        eng = self.engine
        limit = eng.settings.body_preview_bytes
        parser = SSEParser()
        st = _StreamState(rec, client_usage, include_usage, int(eng.clock.now()))
        out = _SSEResponse(status=200, headers={**out_headers, **_SSE_HEADERS})
        prepared = False
        up_log = _Capture(limit)
        tr_log = _Capture(limit) if st.translator is not None else None

        async def send(payload: bytes) -> None:
            nonlocal prepared
            if not prepared:
                await out.prepare(request)
                prepared = True
                rec.ttft_ms = (time.perf_counter() - t0) * 1000.0
            await out.write(payload)

        try:
            eof = False
            while not eof:
                got = await resp.next_chunk()
                if got is None:
                    # A last event without its closing blank line still counts.
                    eof, chunk, events = True, b"", parser.flush()
                else:
                    chunk = got
                    up_log.add(chunk)
                    events = parser.feed(chunk)
                if st.translator is None:
                    # Native: what to pass on needs no JSON parsing, so it goes out first and the
                    # accounting (usage, text length, errors) happens while the client reads it.
                    payload = st.passthrough(chunk, events)
                    try:
                        if payload:
                            await send(payload)
                    finally:
                        st.account(events)
                    continue
                payload = st.translate(events, prepared)
                if st.pre_stream_error is not None:
                    status, body = st.pre_stream_error
                    rec.status = status
                    raise _ProxyError(status, st.stream_error or "upstream error", body=body)
                if payload:
                    if tr_log is not None:
                        tr_log.add(payload)
                    await send(payload)
                if st.stream_error is not None and st.translator is not None:
                    break
        except TimeoutError:
            st.stream_error = f"{_pname(rec.provider)} stream timed out"
            if not prepared:
                raise _ProxyError(504, st.stream_error, code="upstream_timeout") from None
            rec.status = 200
            await _write_quietly(out, _stream_error_event(shape, st.stream_error))
        except UpstreamError as exc:
            st.stream_error = f"{_pname(rec.provider)} stream broke: {_reason(exc)}"
            if not prepared:
                raise _ProxyError(502, st.stream_error, code="upstream_unreachable") from None
            await _write_quietly(out, _stream_error_event(shape, st.stream_error))
        except (ConnectionResetError, aiohttp.ClientConnectionResetError, asyncio.CancelledError) as exc:
            # Either the client went away (resp.close() in the caller then cancels the upstream call) or
            # iron-tui is shutting down. Charge for what was generated either way.
            if eng.shutting_down:
                rec.error, rec.error_code, rec.status = "iron-tui shut down mid-stream", "shutdown", 503
                if prepared:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(out.write(_stream_error_event(shape, rec.error)), 0.2)
            else:
                rec.error, rec.error_code, rec.status = ("client disconnected mid-stream", "client_disconnected",
                                                         499)
            self._charge_stream(rec, res, st, complete=False)
            rec.state = "error"
            rec.upstream_response = up_log.text()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return out
        rec.upstream_response = up_log.text()
        if tr_log is not None:
            rec.translated_response = tr_log.text()
        self._charge_stream(rec, res, st, complete=st.finished)
        if st.stream_error is not None:
            rec.state, rec.error, rec.error_code = "error", redact_text(st.stream_error), "stream_error"
        elif not st.finished:
            rec.state, rec.error, rec.error_code = "error", "upstream stream ended before completion", \
                "stream_incomplete"
            if not prepared:
                # Nothing reached the client: a real error status beats an empty 200 stream.
                rec.status = 502
                raise _ProxyError(502, f"{_pname(rec.provider)} ended the stream without sending anything",
                                  code="upstream_empty_stream")
        else:
            rec.state = "ok"
        if not prepared:
            await out.prepare(request)
        with contextlib.suppress(ConnectionResetError, aiohttp.ClientConnectionResetError):
            await out.write_eof()
        return out

    # --- money -------------------------------------------------------------------------------

    def _charge(self, rec: RequestRecord, res: Reservation, usage: TokenUsage | None, *, estimated: bool) -> None:
        eng = self.engine
        if usage is None:
            eng.ledger.settle(res, 0 if rec.priced else None, None, estimated=True)
            rec.cost_micros = 0 if rec.priced else None
            rec.cost_estimated = True
            return
        rec.input_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        rec.output_tokens = usage.output_tokens
        rec.cache_read_tokens = usage.cache_read_tokens
        rec.cache_write_tokens = usage.cache_write_tokens
        cost = eng.pricer.cost(rec.provider, rec.model, usage) if rec.priced else None
        rec.cost_micros = cost
        rec.cost_estimated = estimated
        eng.ledger.settle(res, cost, usage, estimated=estimated)

    def _charge_stream(self, rec: RequestRecord, res: Reservation, st: _StreamState, *, complete: bool) -> None:
        if res.settled:
            return
        generated = min(estimate_output_tokens_from_text(st.text_chars), rec.max_output_tokens or 1 << 62)
        usage_raw = st.translator.usage if st.translator is not None else st.anthropic_usage
        if rec.provider == "anthropic" and usage_raw.get("input_tokens") is not None:
            usage: TokenUsage = TokenUsage.from_anthropic(usage_raw)
            if not complete:
                # message_start already says output_tokens=1: a cut stream generated what we relayed.
                usage = replace(usage, output_tokens=max(usage.output_tokens, generated))
            estimated = not complete
        elif st.openai_usage is not None:
            usage = TokenUsage.from_openai(st.openai_usage)
            estimated = False
        else:
            # No usage from upstream (cut short, or a server that never reports it): estimate what was
            # generated, never zero, and mark it so it shows as estimated.
            inp = estimate_output_tokens_from_text(len(rec.request_body or ""))
            usage = TokenUsage(input_tokens=inp, output_tokens=generated)
            estimated = True
        self._charge(rec, res, usage, estimated=estimated)


class _SSEResponse(web.StreamResponse):
    """A stream whose headers leave with its first chunk: one socket write, not two, before the client
    sees anything (aiohttp ≥ 3.12 honours this; older versions just send the headers at prepare)."""

    _send_headers_immediately = False


class _StreamState:
    """What a relayed SSE stream has told us so far, and the bytes to pass on for each upstream chunk."""

    __slots__ = ("anthropic_usage", "client_usage", "finished", "openai_usage", "pre_stream_error", "rec",
                 "responses_api", "stream_error", "text_chars", "translator")

    def __init__(self, rec: RequestRecord, client_usage: bool, include_usage: bool, created: int) -> None:
        self.rec = rec
        self.client_usage = client_usage
        self.translator = (AnthropicStreamTranslator(created=created, include_usage=include_usage)
                           if rec.translated else None)
        self.responses_api = rec.api == "openai.responses"
        self.anthropic_usage: dict[str, Any] = {}
        self.openai_usage: dict[str, Any] | None = None
        self.text_chars = 0
        self.stream_error: str | None = None
        self.pre_stream_error: tuple[int, dict[str, Any]] | None = None
        self.finished = False

    def passthrough(self, chunk: bytes, events: list[tuple[str, str, bytes]]) -> bytes:
        """Native streams: the chunk as is, or — when iron-tui asked for usage the client did not — the
        complete events minus the usage-only chunk (re-framed, so no partial bytes are left behind)."""
        if self.client_usage or self.rec.provider == "anthropic":
            return chunk
        return b"".join(raw for _ev, data, raw in events
                        if not (_USAGE_KEY.search(data) and _usage_only_chunk(data)))

    def account(self, events: list[tuple[str, str, bytes]]) -> None:
        """Usage, generated-text length, completion and errors from native events."""
        if self.rec.provider == "anthropic":
            self._anthropic(events)
        else:
            self._openai(events)

    def translate(self, events: list[tuple[str, str, bytes]], prepared: bool) -> bytes:
        """Translated streams: OpenAI chunks for these Anthropic events, with the accounting done."""
        assert self.translator is not None
        parts: list[bytes] = []
        for ev, data, _raw in events:
            try:
                obj = orjson.loads(data)
            except (ValueError, RecursionError):
                continue
            if not isinstance(obj, dict):
                continue
            if ev == "error" or obj.get("type") == "error":
                err = obj.get("error")
                err = err if isinstance(err, dict) else {"type": "api_error", "message": str(obj)}
                self.stream_error = str(err.get("message") or err.get("type"))
                status = anthropic_stream_error_status(err)
                if not prepared and not parts:
                    self.pre_stream_error = (status, anthropic_error_to_openai(status, {"type": "error",
                                                                                        "error": err}))
                    return b""
                parts.append(b"data: " + json.dumps(anthropic_error_to_openai(status, {
                    "type": "error", "error": err})).encode() + b"\n\n")
                break
            for c in self.translator.feed(ev, obj):
                for choice in c.get("choices") or ():
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        self.text_chars += len(content)
                parts.append(b"data: " + dumps_json(c) + b"\n\n")
            if self.translator.done:
                parts.append(_DONE)
                self.finished = True
        return b"".join(parts)

    def _anthropic(self, events: list[tuple[str, str, bytes]]) -> None:
        for ev, data, _raw in events:
            if ev == "content_block_delta":
                self.text_chars += max(0, len(data) - _CHUNK_OVERHEAD)
            elif ev in ("message_start", "message_delta", "error"):
                self.stream_error = _fold_anthropic(ev, data, self.anthropic_usage) or self.stream_error
            elif ev == "message_stop":
                self.finished = True

    def _openai(self, events: list[tuple[str, str, bytes]]) -> None:
        for ev, data, _raw in events:
            if data == "[DONE]":
                self.finished = True
                continue
            try:
                obj = orjson.loads(data)
            except (ValueError, RecursionError):
                continue
            if not isinstance(obj, dict):
                continue
            if self.responses_api:
                self._responses_event(ev, obj)
            else:
                usage = obj.get("usage")
                if isinstance(usage, dict):
                    self.openai_usage = usage
                for choice in obj.get("choices") or ():
                    if isinstance(choice, dict):
                        delta = choice.get("delta")
                        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
                        if isinstance(text, str):
                            self.text_chars += len(text)
            err = obj.get("error")
            if isinstance(err, dict):
                self.stream_error = str(err.get("message") or "stream error")

    def _responses_event(self, ev: str, obj: dict[str, Any]) -> None:
        kind = obj.get("type") or ev
        if kind == "response.output_text.delta" and isinstance(obj.get("delta"), str):
            self.text_chars += len(obj["delta"])
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.finished = True
            response = obj.get("response")
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                self.openai_usage = response["usage"]
            if kind == "response.failed":
                err = response.get("error") if isinstance(response, dict) else None
                self.stream_error = str((err or {}).get("message") or "response failed")


# --- helpers -------------------------------------------------------------------------------------


class _Capture:
    """Keeps the first `limit` bytes of a stream for the detail view."""

    __slots__ = ("_limit", "_parts", "_size", "_total")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._total = 0

    def add(self, b: bytes) -> None:
        self._total += len(b)
        if self._size < self._limit:
            self._parts.append(b)
            self._size += len(b)

    def text(self) -> str:
        return preview(b"".join(self._parts), self._limit, total=self._total)


_USAGE_KEY = re.compile(r'"usage"\s*:\s*\{')


def _usage_only_chunk(data: str) -> bool:
    """The usage chunk `include_usage` adds: a usage object and no choices."""
    try:
        obj = orjson.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and isinstance(obj.get("usage"), dict) and not obj.get("choices")


def _join(base: str, path: str) -> str:
    # Users often configure OpenAI-compatible base URLs ending in /v1; do not double it.
    if base.endswith("/v1") and path.startswith("/v1/"):
        return base + path[3:]
    return base + path


def _pname(provider: str) -> str:
    return {"openai": "OpenAI", "anthropic": "Anthropic"}.get(provider, provider)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


def _error_message(parsed: Any, data: bytes, status: int) -> str:
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:500]
        if isinstance(err, str):
            return (err + (": " + str(parsed.get("message")) if parsed.get("message") else ""))[:500]
    if status < 400:
        return "upstream answered with a body that is not a JSON object"
    text = data[:300].decode("utf-8", "replace").strip()
    return f"HTTP {status}" + (f": {text}" if text else "")


def _usage(provider: str, usage: dict[str, Any] | None) -> TokenUsage | None:
    if usage is None:
        return None
    return TokenUsage.from_anthropic(usage) if provider == "anthropic" else TokenUsage.from_openai(usage)


def _fold_anthropic(ev: str, data: str, acc: dict[str, Any]) -> str | None:
    """Fold message_start + message_delta usage (output_tokens is cumulative: take the latest)."""
    if ev == "content_block_delta":
        return None
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if ev == "message_start":
        u = (obj.get("message") or {}).get("usage") or {}
        acc.update({k: v for k, v in u.items() if isinstance(v, int)})
    elif ev == "message_delta":
        u = obj.get("usage") or {}
        for k, v in u.items():
            if isinstance(v, int):
                acc[k] = v
    elif ev == "error":
        err = obj.get("error") or {}
        return str(err.get("message") or err.get("type") or "stream error")
    return None


def _stream_error_event(shape: Shape, message: str) -> bytes:
    if shape == "anthropic":
        body = {"type": "error", "error": {"type": "api_error", "message": message}}
        return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"
    return b"data: " + json.dumps({"error": {"message": message, "type": "api_error", "param": None,
                                             "code": "stream_error"}}).encode() + b"\n\n"


async def _write_quietly(out: web.StreamResponse, data: bytes) -> None:
    try:
        await out.write(data)
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass

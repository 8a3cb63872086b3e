"""The one request path every call takes, whatever dialect pair serves it:

    auth → read → parse → route (model → provider + key) → pair (registry) → translate request →
    admit (budget) → upstream → relay (whole or stream, `relay.py`) → price → settle → record

Every call that gets past auth produces exactly one `RequestRecord`, finished on every path (success,
upstream error, proxy-made error, client disconnect), so spend, history, the feed and analytics agree
and no budget reservation outlives its request.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from iron_tui.core.budget_state import Reservation
from iron_tui.core.dialects import registry
from iron_tui.core.dialects.base import Pair, RequestContext, Translated, TranslationError
from iron_tui.core.dialects.client_apis import shape_of
from iron_tui.core.dialects.provider_apis import with_cap_field
from iron_tui.core.events import Notice, RequestRecord, RequestStarted
from iron_tui.core.json_bytes import dumps as dumps_json
from iron_tui.core.keys import KeyUnavailable, ResolvedKey
from iron_tui.core.providers import Route, UnknownModel, upstream_url
from iron_tui.core.proxy import admission
from iron_tui.core.proxy.attempts import RetryBudget, attempt, retry_after_seconds, retryable_status
from iron_tui.core.proxy.auth import Authenticator, unauthorized
from iron_tui.core.proxy.errors import (
    ProxyError,
    error_body,
    error_response,
    json_response,
    provider_name,
    reason,
)
from iron_tui.core.proxy.headers import upstream_headers
from iron_tui.core.proxy.relay import Relay
from iron_tui.core.proxy.request_body import read_json
from iron_tui.core.redact import preview, redact_text
from iron_tui.core.request_numbers import fit_caps_to_model, validate_numbers
from iron_tui.core.safe_text import clean_name
from iron_tui.core.upstream import UpstreamError, UpstreamResponse

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine

_CLIENT_NAMES = {
    "openai.chat": "/v1/chat/completions",
    "openai.responses": "/v1/responses",
    "anthropic.messages": "/v1/messages",
    "openai.completions": "/v1/completions",
    "openai.embeddings": "/v1/embeddings",
}


_KEY_CODES = frozenset({"missing_provider_key", "provider_key_unavailable"})


class Call:
    """What the pipeline knows about one call while it runs."""

    __slots__ = ("agent_id", "client_api", "ctx", "forced", "hdrs", "native", "pair", "query", "rec",
                 "reservation", "started", "t0", "tr", "upstream_api")

    rec: RequestRecord
    reservation: Reservation | None
    started: bool
    pair: Pair
    upstream_api: str
    native: bool
    ctx: RequestContext
    tr: Translated
    agent_id: str | None

    def __init__(self, client_api: str, forced: str | None, query: str, hdrs: dict[str, str]) -> None:
        self.client_api = client_api
        self.forced = forced
        self.query = query
        self.hdrs = hdrs
        self.t0 = time.perf_counter()


class Pipeline:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.auth = Authenticator(engine.token, engine.agent_token)
        self.relay = Relay(engine)
        self.inflight = 0
        self._rng = random.Random()

    async def run(self, request: web.Request, client_api: str, forced: str | None) -> web.StreamResponse:
        eng = self.engine
        shape = shape_of(client_api)
        rid = eng.ids.request_id()
        hdrs = {"x-iron-request-id": rid}
        who = self.auth.check(request.headers)
        if who is None:
            return unauthorized(shape, hdrs)
        parsed = await read_json(request, eng.settings.max_body_bytes, eng.settings.body_timeout, shape, hdrs)
        if isinstance(parsed, web.Response):
            return parsed
        body, raw = parsed
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return error_response(shape, 400, "'model' is required and must be a non-empty string",
                                  param="model", headers=hdrs)
        call = Call(client_api, forced, request.query_string, hdrs)
        try:
            route = eng.providers.resolve(model, forced)
        except UnknownModel as exc:
            return error_response(shape, 400, exc.message, param="model", code="model_not_found", headers=hdrs)
        rec = call.rec = RequestRecord(
            id=rid, started_at=eng.clock.now(), method=request.method, path=request.path, api=client_api,
            model=route.model, provider=route.provider,  # type: ignore[arg-type]
            stream=body.get("stream") is True, agent_id=who[0],
        )
        if route.model != model:
            rec.client_model = clean_name(model)
        rec.traceparent = request.headers.get("traceparent")
        rec.request_body = preview(raw, eng.settings.body_preview_bytes)
        call.reservation = None
        call.started = False
        try:
            return await self._serve(request, call, body, raw, route)
        except ProxyError as exc:
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
            if call.reservation is not None and not call.reservation.settled:
                eng.ledger.release(call.reservation)
            if rec.latency_ms is None:
                rec.latency_ms = (time.perf_counter() - call.t0) * 1000.0
            if rec.state == "pending":
                # Cancelled (client went away) before anything recorded an outcome.
                rec.state = "error"
                rec.error = rec.error or "client disconnected"
                rec.error_code = rec.error_code or "client_disconnected"
                rec.status = rec.status or 499
            if not call.started:
                eng.history.add(rec)
            eng.request_finished(rec)

    # --- routes, retries, fallbacks ----------------------------------------------------------------

    async def _serve(self, request: web.Request, call: Call, body: dict[str, Any], raw: bytes,
                     primary: Route) -> web.StreamResponse:
        """Try the model's route, then its fallbacks; each route up to `[retries] attempts` times while it
        fails before its first byte. The last failure is what the client gets."""
        eng = self.engine
        rec = call.rec
        routes = [primary, *self._fallback_routes(call, primary)]
        retry = eng.settings.retries
        budget = RetryBudget(retry.attempts, retry.max_wait, retry.backoff, self._rng)
        last: ProxyError | None = None
        for i, route in enumerate(routes):
            later = routes[i + 1:]
            if later and not eng.health.available(route.provider) and any(
                    eng.health.available(r.provider) for r in later):
                rec.attempts += (attempt(eng.clock.now(), route.provider, route.model, None,
                                         "skipped: provider down", 0.0, "skipped"),)
                continue
            try:
                key, send_body = await self._prepare(call, body, raw, route)
            except ProxyError as exc:
                # The model the client named: its refusals (a bad request, the budget) are final; only an
                # unavailable key moves on to the fallbacks. A fallback that cannot be set up is skipped.
                if i == 0 and (not later or exc.code not in _KEY_CODES):
                    raise
                rec.attempts += (attempt(eng.clock.now(), route.provider, route.model, exc.status, exc.message, 0.0,
                                         exc.code),)
                last = last or exc
                continue
            for n in range(1, retry.attempts + 1):
                outcome = await self._attempt(request, call, key, send_body, route, budget, n, bool(later))
                if isinstance(outcome, web.StreamResponse):
                    return outcome
                error, wait = outcome
                last = error
                if wait is None:
                    break  # this route is done: fall back (or give up)
                await asyncio.sleep(wait)
                budget.spend(wait)
                if rec.attempts:
                    rec.attempts = (*rec.attempts[:-1], replace(rec.attempts[-1], waited_ms=wait * 1000.0))
        assert last is not None
        raise last

    def _fallback_routes(self, call: Call, primary: Route) -> list[Route]:
        table = self.engine.providers
        out: list[Route] = []
        for name in table.fallbacks(call.rec.client_model or call.rec.model, primary):
            try:
                r = table.resolve(name)
            except UnknownModel:
                call.rec.warnings.append(f"fallback {name!r} names no known provider: skipped")
                continue
            if (r.provider, r.model) != (primary.provider, primary.model):
                out.append(r)
        return out

    async def _prepare(self, call: Call, body: dict[str, Any], raw: bytes,
                       route: Route) -> tuple[ResolvedKey, bytes]:
        """Set the call up for `route`: key, pair, upstream body and the reservation (which follows the
        route: a fallback to another model reserves that model's worst case instead)."""
        eng = self.engine
        rec = call.rec
        model = clean_name(route.model)  # as RequestRecord keeps client-chosen names: capped, escaped
        if rec.provider != route.provider or rec.model != model:  # a fallback: keep what was asked
            rec.client_model = rec.client_model or rec.model
        rec.provider, rec.model = route.provider, model  # type: ignore[assignment]
        key = eng.keys.cached(route.provider)
        if key is None:
            try:
                key = await eng.keys.get(route.provider)
            except KeyUnavailable as exc:
                raise ProxyError(exc.status, exc.message, code=exc.code) from None
        send_body, upstream_obj = self._translate(call, body, raw, route)
        if call.reservation is not None:
            eng.ledger.release(call.reservation)
            call.reservation = None
        call.reservation, send_body = admission.admit(eng, call, upstream_obj, send_body)
        if call.reservation.journaled:  # on disk before it goes upstream (crash-proof)
            await eng.ledger.durable(call.reservation)
        if not call.started:
            eng.history.add(rec)
            if eng.bus.wants(RequestStarted):  # a dashboard or feed client: else no summary to build
                eng.bus.publish(RequestStarted(rec.started_at, rec.summary()))
            call.started = True
        return key, send_body

    async def _attempt(self, request: web.Request, call: Call, key: ResolvedKey, send_body: bytes, route: Route,
                       budget: RetryBudget, n: int, fallback_left: bool
                       ) -> web.StreamResponse | tuple[ProxyError, float | None]:
        """One try: the relayed answer, or (the failure, seconds to wait before the next try or None)."""
        eng = self.engine
        rec = call.rec
        t = time.perf_counter()
        t_wall = eng.clock.now()
        self.inflight += 1
        try:
            try:
                resp = await self._send(request, call, key, send_body)
            except ProxyError as exc:  # could not connect, or no answer in time
                eng.health.record(route.provider, ok=False, error=exc.message)
                rec.attempts += (attempt(t_wall, route.provider, route.model, None, exc.message,
                                         (time.perf_counter() - t) * 1000.0, exc.code),)
                wait = budget.delay(n, None)
                if wait is None and not fallback_left:
                    raise
                return exc, wait
            latency = (time.perf_counter() - t) * 1000.0
            try:
                if retryable_status(resp.status):
                    wait = budget.delay(n, retry_after_seconds(resp.headers, eng.clock.now()))
                    if wait is not None or fallback_left:
                        error = await self.relay.consume_error(call, resp)
                        eng.health.record(route.provider, ok=False, hard=resp.status != 429, error=error.message)
                        rec.attempts += (attempt(t_wall, route.provider, route.model, resp.status, error.message,
                                                 latency),)
                        return error, wait
                    eng.health.record(route.provider, ok=False, hard=resp.status != 429)
                else:
                    eng.health.record(route.provider, ok=True, latency_ms=latency)
                if rec.attempts:
                    rec.attempts += (attempt(t_wall, route.provider, route.model, resp.status, None, latency),)
                assert call.reservation is not None
                return await self.relay.relay(request, call, resp, call.reservation)
            finally:
                # Closing (not releasing) an unfinished response drops the connection so the upstream
                # stops generating — that is how a client disconnect cancels the upstream request.
                if not resp.closed:
                    resp.close()
        finally:
            self.inflight -= 1

    def _translate(self, call: Call, body: dict[str, Any], raw: bytes, route: Route) -> tuple[bytes, dict[str, Any]]:
        """Pick the pair and build the upstream body: (bytes to send, the same as a dict)."""
        eng = self.engine
        rec = call.rec
        spec = eng.providers.specs.get(route.provider)
        apis = spec.apis if spec is not None else ("openai",)
        chosen = registry.select(call.client_api, apis)
        if chosen is None:
            raise ProxyError(
                400, f"model {route.model!r} is served by {provider_name(route.provider)}, which cannot answer "
                     f"{_CLIENT_NAMES.get(call.client_api, call.client_api)} calls",
                param="model", code="unsupported_model")
        call.pair, call.upstream_api, call.native = chosen
        rec.translated = not call.native
        rec.upstream_api = call.upstream_api
        call.ctx = RequestContext(
            model=route.model, client_model=rec.client_model or route.model, stream=rec.stream,
            created=int(eng.clock.now()),
            max_output_tokens=(eng.limits.send_cap(route.provider, route.model) if call.upstream_api == "anthropic"
                               else None),
            new_id=_id_minter(rec.id),
        )
        try:
            if call.client_api == "openai.responses" and "previous_response_id" in body:
                if not call.native:
                    call.ctx.previous_items = eng.responses.load(body["previous_response_id"])
                elif (expanded := eng.responses.expand_for_openai(body)) is not None:
                    body, raw = expanded, dumps_json(expanded)
            max_output = eng.limits.max_output(route.provider, route.model)
            # Routed to another model than named: the client's output cap was meant for that one.
            sent, lowered = fit_caps_to_model(call.client_api, body, max_output) if rec.client_model else (body, [])
            rec.warnings.extend(lowered)
            validate_numbers(call.client_api, sent, max_output=max_output)
            tr: Translated = call.pair.request(sent, call.ctx)
        except TranslationError as exc:
            raise ProxyError(400, exc.message, param=exc.param, code=exc.code or "unsupported_parameter") from None
        if not call.native and call.upstream_api == "openai" and spec is not None:
            tr.body = with_cap_field(tr.body, spec.cap_field)  # the field this provider reads
        call.tr = tr
        call.ctx.include_usage = tr.include_usage
        call.ctx.state = tr.state
        rec.warnings.extend(tr.warnings)
        if tr.body is body:
            return raw, body
        try:
            out = dumps_json(tr.body)
        except (RecursionError, ValueError, TypeError):  # a pair let hostile nesting through
            raise ProxyError(400, "the request is nested too deeply to forward", code="invalid_request") from None
        if not call.native:
            rec.translated_request = preview(out, eng.settings.body_preview_bytes)
        return out, tr.body

    # --- upstream --------------------------------------------------------------------------------

    async def _send(self, request: web.Request, call: Call, key: ResolvedKey, body: bytes) -> UpstreamResponse:
        eng = self.engine
        rec = call.rec
        spec = eng.providers.specs.get(rec.provider)
        for refetch in (0, 1):
            url = upstream_url(key.base_url, call.tr.path, call.query if call.native else "", call.upstream_api)
            headers = upstream_headers(request.headers, call.upstream_api, key.key)
            if spec is not None and spec.headers:
                headers.update(spec.headers)
            try:
                resp = await eng.upstream.post(url, body, headers)
            except TimeoutError:
                raise ProxyError(504, f"{provider_name(rec.provider)} did not answer in time (connect timeout "
                                      f"{eng.settings.connect_timeout:g}s, read timeout "
                                      f"{eng.settings.upstream_timeout:g}s)", code="upstream_timeout") from None
            except UpstreamError as exc:
                raise ProxyError(502, f"{provider_name(rec.provider)} is unreachable at {_origin(key.base_url)}: "
                                      f"{reason(exc)}", code="upstream_unreachable") from None
            if resp.status == 401 and refetch == 0 and eng.keys.invalidate(rec.provider):
                # Server-issued key was rotated or revoked: fetch a fresh one, once.
                resp.close()
                try:
                    key = await eng.keys.get(rec.provider)
                except KeyUnavailable as exc:
                    raise ProxyError(exc.status, exc.message, code=exc.code) from None
                continue
            return resp
        raise AssertionError("unreachable")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _id_minter(rid: str) -> Any:
    """Ids a pair mints for objects the client expects (e.g. `resp_…`), unique per call and derived
    from the request id so tests with sequential ids see stable ones."""
    n = 0

    def new_id(prefix: str) -> str:
        nonlocal n
        n += 1
        return f"{prefix}_{rid.replace('-', '')}{n:02d}"

    return new_id

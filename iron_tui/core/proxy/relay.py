"""Relaying the upstream's answer to the client — whole here, streamed in `stream_relay.py` — native or
through the call's pair, with the money settled (`settle.py`) and the record finished on every path.

For every pair: every byte sent to the client passes the provider-key scrubber (`scrub.py`); an upstream
error reaches a translated client in its own API's shape, key-redacted; an answer the pair cannot
translate is a 502; a failed answer that will be retried is read and kept (`consume_error`), so the
client gets the last one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from iron_tui.core.budget_state import Reservation
from iron_tui.core.dialects.base import UpstreamFormatError
from iron_tui.core.dialects.client_apis import client_error_body
from iron_tui.core.dialects.provider_apis import (
    error_info,
    usage_of,
    web_search_calls,
)
from iron_tui.core.estimate import estimate_output_tokens_from_text
from iron_tui.core.json_bytes import dumps as dumps_json
from iron_tui.core.pricing import TokenUsage
from iron_tui.core.proxy.direct_response import WholeResponse
from iron_tui.core.proxy.errors import ProxyError, provider_name, reason
from iron_tui.core.proxy.headers import returned_headers
from iron_tui.core.proxy.scrub import scrub, scrub_headers
from iron_tui.core.proxy.settle import charge
from iron_tui.core.proxy.stream_relay import StreamRelay
from iron_tui.core.redact import preview, redact_bytes, redact_text
from iron_tui.core.upstream import UpstreamError, UpstreamResponse

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine
    from iron_tui.core.proxy.pipeline import Call

class Relay:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Streams being relayed: their upstream response (failed at shutdown so each ends cleanly) and the
        # handler task (cancelled only if it does not end by itself).
        self.streams: dict[UpstreamResponse, asyncio.Task[Any]] = {}
        self._streams = StreamRelay(engine)

    def relay(self, request: web.Request, call: Call, resp: UpstreamResponse,
              res: Reservation) -> Coroutine[Any, Any, web.StreamResponse]:
        """The coroutine relaying `resp` (returned, not awaited here: one coroutine layer fewer a call)."""
        rec = call.rec
        rec.status = resp.status
        rec.upstream_api = call.upstream_api
        out_headers = {**scrub_headers(returned_headers(resp.headers)), **call.hdrs}
        if rec.capped_max_tokens is not None:
            out_headers["x-iron-max-tokens"] = str(rec.capped_max_tokens)  # capped by budget
        if resp.status == 200 and resp.headers.get("content-type", "").startswith("text/event-stream"):
            return self._stream(request, call, resp, res, out_headers)
        return self._whole(call, resp, res, out_headers)

    async def _stream(self, request: web.Request, call: Call, resp: UpstreamResponse, res: Reservation,
                      out_headers: dict[str, str]) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self.streams[resp] = task
        try:
            return await self._streams.relay(request, call, resp, res, out_headers)
        finally:
            self.streams.pop(resp, None)

    async def consume_error(self, call: Call, resp: UpstreamResponse) -> ProxyError:
        """Read a failed answer that will be retried (or fallen back from) and keep it as the error the
        client gets should it be the last one."""
        rec = call.rec
        try:
            data = await asyncio.wait_for(resp.read(), self.engine.settings.upstream_timeout)
        except (TimeoutError, UpstreamError):
            data = b""
        resp.close()
        rec.upstream_response = preview(data, self.engine.settings.body_preview_bytes)
        try:
            parsed: Any = orjson.loads(data) if data else None
        except ValueError:
            parsed = None
        up_type, message = error_info(parsed, data, resp.status)
        message = redact_text(message)
        headers = scrub_headers(returned_headers(resp.headers))
        if call.native and isinstance(parsed, dict):
            body = orjson.loads(redact_bytes(data))
        else:
            body = client_error_body(call.client_api, resp.status, message, upstream_type=up_type)
        return ProxyError(resp.status, f"{provider_name(rec.provider)}: {message}", code=str(resp.status),
                          body=body, headers=headers)

    # --- whole answers -----------------------------------------------------------------------------

    async def _whole(self, call: Call, resp: UpstreamResponse, res: Reservation,
                     out_headers: dict[str, str]) -> web.StreamResponse:
        eng = self.engine
        rec = call.rec
        try:
            data = await resp.read()
        except TimeoutError:
            raise ProxyError(504, f"{provider_name(rec.provider)} response timed out", code="upstream_timeout") from None
        except UpstreamError as exc:
            raise ProxyError(502, f"{provider_name(rec.provider)} connection failed: {reason(exc)}",
                             code="upstream_unreachable") from None
        rec.ttft_ms = (time.perf_counter() - call.t0) * 1000.0
        limit = eng.settings.body_preview_bytes
        rec.upstream_response = preview(data, limit)
        status = resp.status
        parsed: Any = None
        try:
            parsed = orjson.loads(data) if data else None
        except ValueError:
            parsed = None
        if status >= 400 or not isinstance(parsed, dict):
            up_type, message = error_info(parsed, data, status)
            rec.state, rec.error, rec.error_code = "error", redact_text(message), str(status)
            eng.ledger.release(res)
            if call.native and isinstance(parsed, dict):
                # The provider's own error, as it sent it: except that one echoing the provider key must
                # not hand it to the agent.
                return WholeResponse(status, redact_bytes(data), {
                    **out_headers, "content-type": resp.headers.get("content-type", "application/json")})
            # A translated call's error, or one that is no JSON object (a gateway's HTML page, plain text,
            # an empty body): in the client's API shape, which its SDK can read.
            status = status if status >= 400 else 502
            out = dumps_json(client_error_body(call.client_api, status, rec.error, upstream_type=up_type))
            rec.translated_response = preview(out, limit)
            return WholeResponse(status, out, {**out_headers, "content-type": "application/json"})
        usage = usage_of(call.upstream_api, parsed)
        if usage is None:
            # A server that reports no usage still billed the call: charge an estimate, marked so.
            usage = TokenUsage(input_tokens=estimate_output_tokens_from_text(len(rec.request_body or "")),
                               output_tokens=estimate_output_tokens_from_text(len(data)),
                               web_search_requests=web_search_calls(call.upstream_api, parsed))
            charge(eng, rec, res, usage, estimated=True)
        else:
            charge(eng, rec, res, usage, estimated=False)
        if not call.native:
            try:
                translated = call.pair.response(parsed, call.ctx)
                data = dumps_json(translated)
            except UpstreamFormatError as exc:
                msg = f"{provider_name(rec.provider)} answered in a form iron-tui cannot translate: {exc.message}"
                rec.state, rec.error, rec.error_code, rec.status = "error", redact_text(msg), "upstream_format", 502
                body = dumps_json(client_error_body(call.client_api, 502, rec.error))
                return WholeResponse(502, body, {**out_headers, "content-type": "application/json"})
            rec.translated_response = preview(data, limit)
            if call.client_api == "openai.responses":
                eng.responses.remember(call.ctx, translated)
        rec.state = "ok"
        out_headers["x-iron-cost-usd"] = "unpriced" if rec.cost_micros is None else f"{rec.cost_micros / 1e6:.6f}"
        out_headers["content-type"] = "application/json"
        return WholeResponse(status, scrub(data), out_headers)

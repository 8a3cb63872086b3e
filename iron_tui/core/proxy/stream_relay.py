"""Relaying a streamed answer (SSE), native or through the call's pair, chunk by chunk as it arrives.

A stream that has started always ends cleanly: an upstream error, an untranslatable event, an upstream
that dies, a bug of ours or a shutdown each end it with an error frame in the client's framing and a
proper end of the chunked body — never a second HTTP response inside it. What was relayed is charged, and
journaled as it goes (a crash charges it too). A stream whose final event went out is a success even if
the client hangs up right after it. Every byte goes through the provider-key scrubber.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web

from iron_tui.core.budget_state import Reservation
from iron_tui.core.dialects.base import DONE_EVENT, StreamTranslator, UpstreamFormatError
from iron_tui.core.dialects.client_apis import client_error_body, client_stream_error
from iron_tui.core.dialects.provider_apis import ChatAccount, StreamAccount, stream_account
from iron_tui.core.estimate import estimate_output_tokens_from_text
from iron_tui.core.events import Notice, RequestRecord
from iron_tui.core.pricing import TokenUsage
from iron_tui.core.proxy.direct_response import ChunkedResponse
from iron_tui.core.proxy.errors import ProxyError, provider_name, reason
from iron_tui.core.proxy.scrub import StreamScrubber
from iron_tui.core.proxy.settle import charge
from iron_tui.core.proxy.sse import SSEParser
from iron_tui.core.redact import preview, redact_text
from iron_tui.core.translate import anthropic_stream_error_status
from iron_tui.core.upstream import UpstreamError, UpstreamResponse

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine
    from iron_tui.core.proxy.pipeline import Call

SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no"}
_USAGE_KEY = re.compile(r'"usage"\s*:\s*\{')
_CLIENT_GONE = (ConnectionResetError, aiohttp.ClientConnectionResetError)


class _EarlyError(Exception):
    """An upstream error event before anything reached the client: answered with a real status."""

    def __init__(self, status: int, message: str, body: dict[str, Any]) -> None:
        super().__init__(message)
        self.status, self.message, self.body = status, message, body


class StreamRelay:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def relay(self, request: web.Request, call: Call, resp: UpstreamResponse, res: Reservation,
                      out_headers: dict[str, str]) -> web.StreamResponse:
        eng = self.engine
        rec = call.rec
        limit = eng.settings.body_preview_bytes
        parser = SSEParser()
        account = stream_account(call.upstream_api)
        translator = None if call.native else call.pair.stream(call.ctx)
        strip_usage = call.native and not call.tr.include_usage
        out = ChunkedResponse(200, {**out_headers, **SSE_HEADERS})  # its head leaves with the first chunk
        scrubber = StreamScrubber()
        up_log = _Capture(limit)
        tr_log = _Capture(limit) if translator is not None else None
        prepared = False
        failure: tuple[str, str] | None = None  # (message, code) to end the client's stream with

        async def send(payload: bytes) -> None:
            nonlocal prepared
            payload = scrubber.feed(payload)
            if not prepared:
                await out.prepare(request)
                prepared = True
                rec.ttft_ms = (time.perf_counter() - call.t0) * 1000.0
            if payload:
                await out.write(payload)

        def done() -> bool:
            return translator.done if translator is not None else account.finished

        try:
            while True:
                got = await resp.next_chunk()
                if got is None:  # a last event without its closing blank line still counts
                    chunk, events = b"", parser.flush()
                else:
                    chunk = got
                    up_log.add(chunk)
                    events = parser.feed(chunk)
                if translator is None:
                    # Native: what to pass on needs no JSON parsing, so it goes out first and the
                    # accounting (usage, text length, errors) happens while the client reads it.
                    payload = _without_usage_chunk(events) if strip_usage else chunk
                    try:
                        if payload:
                            await send(payload)
                    finally:
                        account.raw(events)
                        if res.journaled:
                            _checkpoint(eng, res, account)
                else:
                    payload = _translate(translator, account, events, prepared, call.client_api)
                    if translator.done and call.client_api == "openai.responses" and account.error is None:
                        # Kept before the final event leaves, so a client that sends its next request
                        # (previous_response_id) the moment it reads it always finds this one.
                        eng.responses.remember(call.ctx, getattr(translator, "response", None))
                    if res.journaled:
                        _checkpoint(eng, res, account)
                    if payload:
                        assert tr_log is not None
                        tr_log.add(payload)
                        await send(payload)
                    if account.error is not None:
                        break
                if got is None or done():
                    # The client has its whole answer: end now, not when the upstream closes.
                    break
        except _EarlyError as exc:
            rec.status = exc.status
            raise ProxyError(exc.status, exc.message, body=exc.body) from None
        except UpstreamFormatError as exc:
            failure = (f"{provider_name(rec.provider)} sent a stream event iron-tui cannot translate: "
                       f"{exc.message}", "upstream_format")
        except TimeoutError:
            failure = (f"{provider_name(rec.provider)} stream timed out", "upstream_timeout")
        except UpstreamError as exc:
            failure = (("iron-tui shut down mid-stream", "shutdown") if eng.shutting_down else
                       (f"{provider_name(rec.provider)} stream broke: {reason(exc)}", "upstream_unreachable"))
        except (*_CLIENT_GONE, asyncio.CancelledError) as exc:
            # The client went away (the pipeline's finally then cancels the upstream call), or iron-tui
            # is stopping. Charge for what was generated either way.
            finished = done()
            if finished:
                rec.state = "ok"
            elif eng.shutting_down:
                rec.state, rec.error, rec.error_code, rec.status = ("error", "iron-tui shut down mid-stream",
                                                                    "shutdown", 503)
            else:
                rec.state, rec.error, rec.error_code, rec.status = ("error", "client disconnected mid-stream",
                                                                    "client_disconnected", 499)
            self._finish_logs(rec, up_log, tr_log)
            self._charge_stream(rec, res, account, complete=finished)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return out
        except Exception as exc:
            if not prepared:
                raise  # nothing sent yet: the pipeline answers a JSON 500 in the caller's shape
            msg = redact_text(f"iron-tui internal error: {type(exc).__name__}: {exc}")[:500]
            eng.bus.publish(Notice(eng.clock.now(), "error", f"{rec.id}: {msg}"))
            failure = (msg, "internal_error")
        return await self._end(request, call, out, res, account, translator, scrubber, prepared, failure,
                               up_log, tr_log)

    async def _end(self, request: web.Request, call: Call, out: web.StreamResponse, res: Reservation,
                   account: StreamAccount, translator: StreamTranslator | None, scrubber: StreamScrubber,
                   prepared: bool, failure: tuple[str, str] | None, up_log: _Capture,
                   tr_log: _Capture | None) -> web.StreamResponse:
        """Settle the call and end the client's stream, with an error frame when it did not succeed."""
        rec = call.rec
        finished = translator.done if translator is not None else account.finished
        tail = b""
        if failure is not None:
            rec.state, rec.error, rec.error_code = "error", failure[0], failure[1]
            if failure[1] == "shutdown":
                rec.status = 503
        elif account.error is not None:
            rec.state, rec.error, rec.error_code = "error", redact_text(account.error), "stream_error"
            if translator is not None:  # (a native client got the provider's own error event)
                tail = client_stream_error(call.client_api, rec.error, type_=account.error_type or "api_error",
                                           sequence_number=_next_seq(translator, account))
        elif not finished:
            rec.state, rec.error, rec.error_code = "error", "upstream stream ended before completion", \
                "stream_incomplete"
            if not prepared:
                # Nothing reached the client: a real error status beats an empty 200 stream.
                self._finish_logs(rec, up_log, tr_log)
                rec.status = 502
                raise ProxyError(502, f"{provider_name(rec.provider)} ended the stream without sending anything",
                                 code="upstream_empty_stream")
            if translator is not None:
                closing = b"".join(translator.finish())
                tail = closing + client_stream_error(call.client_api, rec.error, code="stream_incomplete",
                                                     sequence_number=_next_seq(translator, account))
        else:
            rec.state = "ok"
        if failure is not None:
            if not prepared:
                self._finish_logs(rec, up_log, tr_log)
                status = {"upstream_timeout": 504, "shutdown": 503}.get(failure[1], 502)
                rec.status = status
                raise ProxyError(status, failure[0], code=failure[1])
            tail = client_stream_error(call.client_api, failure[0], code=failure[1],
                                       sequence_number=_next_seq(translator, account))
        if tr_log is not None and tail:
            tr_log.add(tail)
        self._finish_logs(rec, up_log, tr_log)
        self._charge_stream(rec, res, account, complete=finished and rec.state == "ok")
        with contextlib.suppress(*_CLIENT_GONE):
            tail = scrubber.feed(tail) + scrubber.flush()
            if not prepared:
                await out.prepare(request)
            if tail:
                await asyncio.wait_for(out.write(tail), 5.0)
            await out.write_eof()
        return out

    def _charge_stream(self, rec: RequestRecord, res: Reservation, account: StreamAccount, *,
                       complete: bool) -> None:
        if res.settled:
            return
        generated = min(estimate_output_tokens_from_text(account.text_chars), rec.max_output_tokens or 1 << 62)
        usage = account.usage()
        if usage is not None:
            if not complete and usage.output_tokens < generated:
                # Anthropic's message_start already says output_tokens=1: a cut stream generated what we
                # relayed.
                usage = dataclasses.replace(usage, output_tokens=generated)
            estimated = not complete
        else:
            # No usage from upstream (cut short, or a server that never reports it): estimate what was
            # generated, never zero, and mark it so it shows as estimated.
            inp = estimate_output_tokens_from_text(len(rec.request_body or ""))
            usage = TokenUsage(input_tokens=inp, output_tokens=generated, web_search_requests=account.web_searches)
            estimated = True
        charge(self.engine, rec, res, usage, estimated=estimated)

    @staticmethod
    def _finish_logs(rec: RequestRecord, up_log: _Capture, tr_log: _Capture | None) -> None:
        rec.upstream_response = up_log.text()
        if tr_log is not None:
            rec.translated_response = tr_log.text()



def _checkpoint(eng: Engine, res: Reservation, account: StreamAccount) -> None:
    """Journal what a stream has relayed so far (batched by the ledger: one write per interval, not per
    chunk), so a crash charges it — the web searches finished so far included (billed per search)."""
    usage = account.usage()
    inp, out, searches = -1, 0, account.web_searches
    if usage is not None:
        inp, out, searches = usage.total_input_tokens, usage.output_tokens, max(searches, usage.web_search_requests)
    eng.ledger.progress(res, input_tokens=inp, output_tokens=out, output_chars=account.text_chars,
                        web_searches=searches)


def _translate(translator: StreamTranslator, account: StreamAccount, events: list[tuple[str, str, bytes]],
               prepared: bool, client_api: str) -> bytes:
    """Client frames for these upstream events, with the accounting done on the parsed objects."""
    parts: list[bytes] = []
    for ev, data, _raw in events:
        if data == "[DONE]":
            if isinstance(account, ChatAccount):
                account.done()
            parts.extend(translator.feed(DONE_EVENT, {}))
            continue
        if not data.strip():
            continue
        try:
            obj = orjson.loads(data)
        except (ValueError, RecursionError):
            raise UpstreamFormatError(f"an event that is not JSON ({data[:80]!r})") from None
        if not isinstance(obj, dict):
            raise UpstreamFormatError(f"an event that is not a JSON object ({data[:80]!r})")
        account.obj(ev, obj)
        if account.error is not None:
            if not prepared and not parts:
                status = _error_status(obj)
                message = redact_text(account.error)
                raise _EarlyError(status, message, client_error_body(client_api, status, message,
                                                                     upstream_type=account.error_type))
            break
        parts.extend(translator.feed(ev, obj))
        if translator.done:
            break
    return b"".join(parts)


def _next_seq(translator: StreamTranslator | None, account: StreamAccount) -> int:
    """The `sequence_number` a Responses error frame added after the last relayed event must carry."""
    source = translator if translator is not None else account
    seq = getattr(source, "next_sequence_number", 0)
    return seq if type(seq) is int else 0


def _error_status(obj: dict[str, Any]) -> int:
    """The HTTP status an upstream stream error event stands for (Anthropic's types; else 502)."""
    inner = obj.get("error")
    err: dict[str, Any] = inner if isinstance(inner, dict) else obj
    status = anthropic_stream_error_status(err)
    return 502 if status == 500 and not isinstance(err.get("type"), str) else status


def _without_usage_chunk(events: list[tuple[str, str, bytes]]) -> bytes:
    """The complete events minus the usage-only chunk iron-tui asked for (re-framed, so no partial
    bytes are left behind)."""
    return b"".join(raw for _ev, data, raw in events if not (_USAGE_KEY.search(data) and _usage_only(data)))


def _usage_only(data: str) -> bool:
    try:
        obj = orjson.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and isinstance(obj.get("usage"), dict) and not obj.get("choices")


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




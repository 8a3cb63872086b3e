"""Simulated Anthropic Messages API, strict about request shape so translation bugs surface as 400s."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from iron_tui.sim.anthropic_extras import (
    check_output_config,
    check_thinking,
    structured_reply,
    thinking_reply,
)
from iron_tui.sim.anthropic_search import search_blocks, search_events, server_tool_usage
from iron_tui.sim.anthropic_validation import RequestScan, validate_request
from iron_tui.sim.base import ProviderApi, ReceivedRequest, exchange
from iron_tui.sim.script import (
    LEAD,
    NO_DIRECTIVES,
    TOOL_LEAD,
    Directives,
    TextReply,
    directed_calls,
    make_text,
    parse_directives,
    split_json,
    tokens_for_chars,
    tool_arguments,
    tool_tokens,
)

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Simulated invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}
_PREVIEW = 3  # text deltas sent before a mid-stream error or stall
MODELS = (
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17T00:00:00Z"),
    ("claude-opus-4-6", "Claude Opus 4.6", "2026-02-05T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
)
_MODEL_INFO = {
    m: {"type": "model", "id": m, "display_name": name, "created_at": at, "lifecycle": "active"}
    for m, name, at in MODELS
}
_MODELS_BODY = json.dumps({"data": list(_MODEL_INFO.values()), "has_more": False, "first_id": MODELS[0][0],
                           "last_id": MODELS[-1][0]}).encode()
_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"
_OVERLOADED_EVENT = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
)


def _error_body(status: int, message: str | None = None, type_: str | None = None) -> bytes:
    d_type, d_msg = _ERRORS.get(
        status, ("invalid_request_error" if status < 500 else "api_error", "Simulated error.")
    )
    return json.dumps(
        {"type": "error", "error": {"type": type_ or d_type, "message": message or d_msg}}
    ).encode()



_MESSAGE = (
    '{"id":"%s","type":"message","role":"assistant","model":%s,"content":%s,"stop_reason":"%s",'
    '"stop_sequence":%s%s}'
)
_USAGE = (
    '{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":'
    '{"ephemeral_5m_input_tokens":%d,"ephemeral_1h_input_tokens":0},"output_tokens":%d,"service_tier":"standard"}'
)


def _usage_json(usage: dict[str, Any], output: int, searches: list[dict[str, Any]]) -> str:
    write = usage["cache_creation_input_tokens"]
    out = _USAGE % (usage["input_tokens"], write, usage["cache_read_input_tokens"], write, output)
    return out[:-1] + ',"server_tool_use":' + json.dumps(server_tool_usage(searches)) + "}" if searches else out


def _sse(name: str, payload: str) -> bytes:
    return f"event: {name}\ndata: {payload}\n\n".encode()


@dataclass(slots=True)
class _ToolUse:
    id: str
    name: str
    input: dict[str, Any]
    json: str


class AnthropicSim(ProviderApi):
    provider = "anthropic"

    def headers(self, content_type: str = _JSON) -> dict[str, str]:
        return {
            "Content-Type": content_type,
            "request-id": f"req_sim{self.sim.next_id():024x}",
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-requests-remaining": "3999",
        }

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        type_: str | None = None,
        retry_after: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> web.Response:
        resp = web.Response(
            body=json.dumps(body).encode() if body is not None else _error_body(status, message, type_),
            status=status,
            headers=self.headers(),
        )
        if retry_after is not None or status == 429:
            resp.headers["retry-after"] = retry_after or "1"
        return resp

    def _check_headers(self, request: web.BaseRequest, *, need_version: bool = True) -> web.Response | None:
        key = request.headers.get("x-api-key")
        if key is None:
            # Newer Anthropic SDKs send the API key as a bearer token; the API accepts both.
            auth = request.headers.get("Authorization", "")
            key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if key not in self.sim.settings.anthropic_keys:
            return self.error(401)
        if need_version and "anthropic-version" not in request.headers:
            return self.error(400, "anthropic-version: header is required")
        return None

    # ---- messages ----------------------------------------------------------------------------------

    @exchange("anthropic")
    async def messages(
        self, request: web.Request, rec: ReceivedRequest, body: dict[str, Any] | None
    ) -> web.StreamResponse:
        refused = self._check_headers(request)
        if refused is not None:
            return refused
        if body is None:
            return self.error(400, "There was an error parsing the body of your request")
        problem, scan = validate_request(body)
        problem = problem or check_thinking(body) or check_output_config(body)
        if problem is not None:
            return self.error(400, problem)
        user_turn = scan.last_role == "user" and not scan.ends_with_tool_result
        d, prompt = parse_directives(scan.last_text) if user_turn else (NO_DIRECTIVES, "")
        d, fault_body = await self.before(request, d)
        stream = body.get("stream") is True
        if d.error:
            return self.error(d.error, retry_after=d.retry_after, body=fault_body)
        if not stream and (d.midstream_error or d.prestream_error):
            return self.error(529)

        usage = None if d.no_usage else self._usage(scan)
        text, calls = self._reply(body, scan, d, prompt, user_turn)
        thought = thinking_reply(body, prompt or scan.tool_result_text)
        choice = body.get("tool_choice")
        searches = search_blocks(body, prompt, d.searches, self.sim.next_id) \
            if user_turn and (not isinstance(choice, dict) or choice.get("type") != "none") else []
        output = (text.tokens if text else 0) + sum(tool_tokens(c.name, c.json) for c in calls)
        output += sum(tool_tokens(b["name"], json.dumps(b["input"])) for b in searches if "input" in b)
        output += thought[0].tokens if thought else 0
        if calls:
            stop_reason, stop_seq = "tool_use", None
        else:
            assert text is not None
            stop_reason = {"length": "max_tokens", "stop_sequence": "stop_sequence"}.get(
                text.finish, "end_turn"
            )
            stop_seq = text.stop_sequence
        msg_id = f"msg_sim{self.sim.next_id():020d}"
        model = body["model"]
        if stream:
            return await self._stream(
                request, d, msg_id, model, text, calls, stop_reason, stop_seq, usage, output, thought, searches
            )
        content: list[dict[str, Any]] = []
        if thought is not None:
            content.append({"type": "thinking", "thinking": thought[0].text, "signature": thought[1]})
        content.extend(searches)
        if text is not None:
            content.append({"type": "text", "text": text.text})
        content.extend({"type": "tool_use", "id": c.id, "name": c.name, "input": c.input} for c in calls)
        # Formatted rather than json.dumps'd whole: this is the benchmark's hot path.
        out = _MESSAGE % (
            msg_id,
            json.dumps(model),
            json.dumps(content),
            stop_reason,
            json.dumps(stop_seq),
            "" if usage is None else ',"usage":' + _usage_json(usage, output, searches),
        )
        return web.Response(body=out.encode(), headers=self.headers())

    def _usage(self, scan: RequestScan) -> dict[str, Any]:
        """Input and prompt-cache tokens: the longest already-seen breakpoint prefix is read from the cache,
        the rest up to the last breakpoint is written to it."""
        total = tokens_for_chars(scan.chars)
        read = write = 0
        if scan.breakpoints:
            keys = [self.sim.prefix_key(scan.elements[:n]) for _, n in scan.breakpoints]
            read_chars = 0
            for (chars, _), key in zip(reversed(scan.breakpoints), reversed(keys), strict=True):
                if key in self.sim._seen:
                    read_chars = chars
                    break
            for key in keys:
                self.sim.seen_before(key)
            cached = min(tokens_for_chars(scan.breakpoints[-1][0]), total)
            read = min(tokens_for_chars(read_chars), cached) if read_chars else 0
            write = cached - read
        return {
            "input_tokens": total - read - write,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard",
        }

    def _reply(
        self, body: dict[str, Any], scan: RequestScan, d: Directives, prompt: str, user_turn: bool
    ) -> tuple[TextReply | None, list[_ToolUse]]:
        choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
        assert isinstance(choice, dict)
        if scan.tools and user_turn and choice.get("type") != "none":
            wanted = 1 if choice.get("disable_parallel_tool_use") else max(d.tools or 1, 1)
            tools = scan.tools
            if choice.get("type") == "tool":
                tools = [t for t in tools if t.get("name") == choice.get("name")]
            if d.calls:
                planned = directed_calls(d, {t["name"]: t.get("input_schema") for t in tools})
                planned = planned[:1] if choice.get("disable_parallel_tool_use") else planned
            else:
                planned = [(t["name"], tool_arguments(t.get("input_schema"))) for t in tools[:wanted]]
            calls = [
                _ToolUse(f"toolu_sim{self.sim.next_id():016d}", name, args, json.dumps(args))
                for name, args in planned
            ]
            if calls:
                # Claude often explains before calling several tools; the sim does so for two or more.
                text = None
                if len(calls) > 1:
                    said = ["I'll", "call", *[c.name for c in calls]]
                    pieces = [w if i == 0 else " " + w for i, w in enumerate(said)]
                    text = TextReply(" ".join(said), pieces, len(said), "stop")
                return text, calls
        structured = structured_reply(body)
        if structured is not None:
            return structured, []
        words = d.words if d.words is not None else self.sim.settings.words
        stops = body.get("stop_sequences")
        if scan.last_role == "user" and scan.ends_with_tool_result:
            return make_text(scan.tool_result_text, words, body["max_tokens"], stops, TOOL_LEAD), []
        return make_text(prompt, words, body["max_tokens"], stops, LEAD), []

    async def _stream(
        self,
        request: web.Request,
        d: Directives,
        msg_id: str,
        model: str,
        text: TextReply | None,
        calls: list[_ToolUse],
        stop_reason: str,
        stop_seq: str | None,
        usage: dict[str, Any] | None,
        output: int,
        thought: tuple[TextReply, str] | None = None,
        searches: list[dict[str, Any]] | None = None,
    ) -> web.StreamResponse:
        headers = {**self.headers(_SSE), "Cache-Control": "no-cache"}
        delay = self.chunk_delay(d)
        if d.prestream_error:
            return await self.sim.stream(request, headers, [_OVERLOADED_EVENT], delay)
        start: dict[str, Any] = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        if usage is not None:
            start["usage"] = {**usage, "output_tokens": 1}
        events = [_sse("message_start", json.dumps({"type": "message_start", "message": start}))]
        index = 0
        if thought is not None:
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            events.append(_sse("content_block_start", json.dumps(
                {"type": "content_block_start", "index": 0, "content_block": opening})))
            events.extend(_sse("content_block_delta", json.dumps({"type": "content_block_delta", "index": 0,
                                                                   "delta": {"type": "thinking_delta", "thinking": p}}))
                          for p in thought[0].pieces)
            events.append(_sse("content_block_delta", json.dumps({"type": "content_block_delta", "index": 0, "delta": {
                "type": "signature_delta", "signature": thought[1]}})))
            events.append(_sse("content_block_stop", '{"type":"content_block_stop","index":0}'))
            index = 1
        if searches:
            events.extend(search_events(searches, index))
            index += len(searches)
        cut = 3 + _PREVIEW + (len(events) - 1 if searches else 0)  # a fault cuts after the searches
        if text is not None:
            events.append(_sse("content_block_start", f'{{"type":"content_block_start","index":{index},'
                                                      '"content_block":{"type":"text","text":""}}'))
            events.append(_sse("ping", '{"type": "ping"}'))
            head = f'event: content_block_delta\ndata: {{"type":"content_block_delta","index":{index},"delta":{{"type":"text_delta","text":'
            events.extend((head + json.dumps(p) + "}}\n\n").encode() for p in text.pieces)
            if d.midstream_error or d.stall:
                events = events[:cut]
                if d.midstream_error:
                    events.append(_OVERLOADED_EVENT)
                return await self.sim.stream(request, headers, events, delay, stall=d.stall)
            events.append(_sse("content_block_stop", f'{{"type":"content_block_stop","index":{index}}}'))
            index += 1
        for c in calls:
            block = {"type": "tool_use", "id": c.id, "name": c.name, "input": {}}
            events.append(_sse("content_block_start", json.dumps(
                {"type": "content_block_start", "index": index, "content_block": block})))
            if index == 0:
                events.append(_sse("ping", '{"type": "ping"}'))
            for piece in ["", *split_json(c.json)]:
                delta = {"type": "input_json_delta", "partial_json": piece}
                events.append(_sse("content_block_delta", json.dumps(
                    {"type": "content_block_delta", "index": index, "delta": delta})))
            events.append(_sse("content_block_stop", f'{{"type":"content_block_stop","index":{index}}}'))
            index += 1
        if d.midstream_error or d.stall:  # a tool-only reply: cut after the first block
            events = events[:cut]
            if d.midstream_error:
                events.append(_OVERLOADED_EVENT)
            return await self.sim.stream(request, headers, events, delay, stall=d.stall)
        delta_body: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_seq},
        }
        if usage is not None:
            delta_body["usage"] = {"output_tokens": output}
            if searches:
                delta_body["usage"]["server_tool_use"] = server_tool_usage(searches)
        events.append(_sse("message_delta", json.dumps(delta_body)))
        events.append(_sse("message_stop", '{"type":"message_stop"}'))
        return await self.sim.stream(request, headers, events, delay)

    @exchange("anthropic")
    async def count_tokens(
        self, request: web.Request, rec: ReceivedRequest, body: dict[str, Any] | None
    ) -> web.StreamResponse:
        refused = self._check_headers(request)
        if refused is not None:
            return refused
        if body is None:
            return self.error(400, "There was an error parsing the body of your request")
        problem, scan = validate_request(body, count_only=True)
        if problem is not None:
            return self.error(400, problem)
        body_out = json.dumps({"input_tokens": tokens_for_chars(scan.chars)}).encode()
        return web.Response(body=body_out, headers=self.headers())

    # ---- models ------------------------------------------------------------------------------------

    @exchange("anthropic")
    async def models(
        self, request: web.Request, rec: ReceivedRequest, body: dict[str, Any] | None
    ) -> web.StreamResponse:
        refused = self._check_headers(request, need_version=False)
        if refused is not None:
            return refused
        model_id = request.match_info.get("model")
        if model_id is None:
            return web.Response(body=_MODELS_BODY, headers=self.headers())
        info = _MODEL_INFO.get(model_id)
        if info is None:
            return self.error(404, f"model: {model_id}")
        return web.Response(body=json.dumps(info).encode(), headers=self.headers())

    @exchange("anthropic")
    async def not_found(
        self, request: web.Request, rec: ReceivedRequest, body: dict[str, Any] | None
    ) -> web.StreamResponse:
        return self.error(404, f"Not found: {request.method} {request.path}")

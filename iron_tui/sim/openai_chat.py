"""The simulated OpenAI API's plumbing (headers, errors, auth, directives) and its Chat Completions
endpoint; `OpenAISim` (openai_sim.py) adds the other endpoints."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from iron_tui.sim.base import ProviderApi, ReceivedRequest, exchange
from iron_tui.sim.openai_validation import ChatScan, chat_params_problem, error_body, scan_chat
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
    tool_schema_chars,
    tool_tokens,
)

PREVIEW = 3  # content chunks sent before a mid-stream error or stall
_JSON = "application/json"
SSE = "text/event-stream; charset=utf-8"


def _tools_chars(tools: Any) -> int:
    if not isinstance(tools, list):
        return 0
    n = 0
    for tool in tools:
        if isinstance(tool, dict):
            fn = tool["function"] if isinstance(tool.get("function"), dict) else tool
            n += tool_schema_chars(fn.get("name"), fn.get("description"), fn.get("parameters"))
    return n


def stop_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str)]
    return None


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_CHAT_COMPLETION = (
    '{"id":"%s","object":"chat.completion","created":%d,"model":%s,"choices":[{"index":0,"message":%s,'
    '"logprobs":null,"finish_reason":"%s"}],"service_tier":"default","system_fingerprint":"fp_sim"%s}'
)
_USAGE = (
    '{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":%d,'
    '"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    '"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}'
)


def _usage_json(prompt: int, completion: int, cached: int = 0) -> str:
    return _USAGE % (prompt, completion, prompt + completion, cached)


def usage_object(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


@dataclass(slots=True)
class _ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class _Reply:
    text: TextReply | None
    calls: list[_ToolCall] = field(default_factory=list)

    @property
    def finish(self) -> str:
        if self.calls:
            return "tool_calls"
        assert self.text is not None
        return "length" if self.text.finish == "length" else "stop"

    @property
    def tokens(self) -> int:
        if self.calls:
            return sum(tool_tokens(c.name, c.arguments) for c in self.calls)
        assert self.text is not None
        return self.text.tokens


def sse_data(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


class OpenAIChatSim(ProviderApi):
    provider = "openai"

    # ---- plumbing ----------------------------------------------------------------------------------

    def headers(self, rec: ReceivedRequest, content_type: str = _JSON) -> dict[str, str]:
        return {
            "Content-Type": content_type,
            "x-request-id": f"req_sim{self.sim.next_id():024x}",
            "openai-processing-ms": str(int((time.time() - rec.received_at) * 1000)),
            "openai-version": "2020-10-01",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
        }

    def respond(self, rec: ReceivedRequest, body: bytes, status: int = 200) -> web.Response:
        return web.Response(body=body, status=status, headers=self.headers(rec))

    def error(
        self,
        rec: ReceivedRequest,
        status: int,
        message: str | None = None,
        *,
        type_: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> web.Response:
        if status == 529:  # OpenAI has no 529; its overload answer is a 503
            status = 503
        resp = self.respond(
            rec,
            json.dumps(body).encode()
            if body is not None
            else error_body(status, message, type_, code, param),
            status,
        )
        if retry_after is not None or status == 429:
            resp.headers["retry-after"] = retry_after or "1"
        return resp

    def authorized(self, request: web.BaseRequest) -> bool:
        if self.sim.settings.open_access:
            return True
        auth = request.headers.get("Authorization", "")
        return auth[:7].lower() == "bearer " and auth[7:].strip() in self.sim.settings.openai_keys

    def auth_error(self, rec: ReceivedRequest) -> web.Response:
        return self.error(rec, 401)

    async def _start(
        self, request: web.Request, rec: ReceivedRequest, prompt_text: str | None
    ) -> tuple[Directives, str, web.Response | None]:
        """Directives, faults, latency and error directives; returns (directives, clean prompt, error)."""
        d, prompt = parse_directives(prompt_text) if prompt_text else (NO_DIRECTIVES, prompt_text or "")
        d, fault_body = await self.before(request, d)
        if rec.body is not None and rec.body.get("model") in self.sim.settings.overloaded_models:
            return d, prompt, self.error(rec, 503, "The engine is currently overloaded, please try again later",
                                         type_="server_error", code="overloaded")
        if d.error:
            return d, prompt, self.error(rec, d.error, retry_after=d.retry_after, body=fault_body)
        return d, prompt, None

    def _stream_error(self, rec: ReceivedRequest, d: Directives, stream: bool) -> web.Response | None:
        """Non-stream requests answer the mid/pre-stream error directives with an overload status."""
        if not stream and (d.midstream_error or d.prestream_error):
            return self.error(rec, 503)
        return None

    # ---- chat completions --------------------------------------------------------------------------

    @exchange("openai")
    async def chat(
        self, request: web.Request, rec: ReceivedRequest, body: dict[str, Any] | None
    ) -> web.StreamResponse:
        if not self.authorized(request):
            return self.auth_error(rec)
        if body is None:
            return self.error(rec, 400, "We could not parse the JSON body of your request.")
        model = body.get("model")
        messages = body.get("messages")
        if not isinstance(model, str) or not model:
            return self.error(rec, 400, "you must provide a model parameter", param="model")
        if not isinstance(messages, list) or not messages:
            return self.error(
                rec, 400, "'messages' must be a non-empty array.", param="messages", code="empty_array"
            )
        scan = scan_chat(messages)
        if scan.error is not None:
            return self.error(rec, 400, scan.error[0], param=scan.error[1], code=scan.error[2])
        refused = chat_params_problem(model, body)
        if refused is not None:
            return self.error(rec, 400, refused[0], param=refused[1], code=refused[2])
        user_text = scan.last_text if scan.last_role == "user" else None
        d, prompt, err = await self._start(request, rec, user_text)
        stream = body.get("stream") is True
        err = err or self._stream_error(rec, d, stream)
        if err is not None:
            return err

        tools = body.get("tools") if isinstance(body.get("tools"), list) else None
        tools_chars = _tools_chars(tools)
        prompt_tokens = tokens_for_chars(scan.chars + tools_chars)
        cached = 0
        cache_key = body.get("prompt_cache_key")
        if isinstance(cache_key, str) and len(messages) > 1:
            key = self.sim.prefix_key([cache_key, tools, messages[:-1]])
            if self.sim.seen_before(key, openai=True):
                cached = min(tokens_for_chars(scan.chars - scan.last_chars + tools_chars), prompt_tokens)

        reply = self._reply(body, tools, scan, d, prompt)
        usage = None if d.no_usage else _usage_json(prompt_tokens, reply.tokens, cached)
        cid = f"chatcmpl-sim{self.sim.next_id():020d}"
        created = int(time.time())
        if stream:
            return await self._chat_stream(request, rec, body, d, cid, created, model, reply, usage)
        if reply.calls:
            calls = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in reply.calls
            ]
            message = (
                '{"role":"assistant","content":null,"refusal":null,"annotations":[],"tool_calls":'
                + json.dumps(calls)
                + "}"
            )
        else:
            assert reply.text is not None
            content = json.dumps(reply.text.text)
            message = '{"role":"assistant","content":' + content + ',"refusal":null,"annotations":[]}'
        # Formatted rather than json.dumps'd: this is the benchmark's hot path.
        out = _CHAT_COMPLETION % (
            cid,
            created,
            json.dumps(model),
            message,
            reply.finish,
            "" if usage is None else ',"usage":' + usage,
        )
        return self.respond(rec, out.encode())

    def _reply(
        self, body: dict[str, Any], tools: list[Any] | None, scan: ChatScan, d: Directives, prompt: str
    ) -> _Reply:
        choice = body.get("tool_choice")
        if tools and scan.last_role == "user" and choice != "none":
            wanted = max(d.tools or 1, 1)
            if body.get("parallel_tool_calls") is False:
                wanted = 1
            fns = [
                t["function"] for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict)
            ]
            if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
                name = choice["function"].get("name")
                fns = [f for f in fns if f.get("name") == name][:1]
            if d.calls:
                planned = directed_calls(d, {str(f.get("name")): f.get("parameters") for f in fns})
                planned = planned[:1] if body.get("parallel_tool_calls") is False else planned
            else:
                planned = [(str(f.get("name", "tool")), tool_arguments(f.get("parameters"))) for f in fns[:wanted]]
            calls = [
                _ToolCall(f"call_sim{self.sim.next_id():016d}", name, json.dumps(args)) for name, args in planned
            ]
            if calls:
                return _Reply(None, calls)
        max_tokens = int_or_none(body.get("max_completion_tokens"))
        if max_tokens is None:
            max_tokens = int_or_none(body.get("max_tokens"))
        words = d.words if d.words is not None else self.sim.settings.words
        if scan.last_role == "tool":
            return _Reply(make_text(scan.last_text, words, max_tokens, stop_list(body.get("stop")), TOOL_LEAD))
        return _Reply(make_text(prompt, words, max_tokens, stop_list(body.get("stop")), LEAD))

    async def _chat_stream(
        self,
        request: web.Request,
        rec: ReceivedRequest,
        body: dict[str, Any],
        d: Directives,
        cid: str,
        created: int,
        model: str,
        reply: _Reply,
        usage: str | None,
    ) -> web.StreamResponse:
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        # Every chunk shares its envelope; format it once and splice the deltas in.
        head = (
            f'data: {{"id":"{cid}","object":"chat.completion.chunk","created":{created},'
            f'"model":{json.dumps(model)},"service_tier":"default","system_fingerprint":"fp_sim",'
            '"choices":[{"index":0,"delta":'
        )
        usage_null = ',"usage":null' if include_usage else ""
        tail = ',"logprobs":null,"finish_reason":null}]' + usage_null + "}\n\n"

        def chunk(delta: str) -> bytes:
            return (head + delta + tail).encode()

        events = [chunk('{"role":"assistant","content":"","refusal":null}')]
        if reply.calls:
            for k, c in enumerate(reply.calls):
                first = {
                    "index": k,
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": ""},
                }
                events.append(chunk('{"tool_calls":[' + json.dumps(first) + "]}"))
                for piece in split_json(c.arguments):
                    events.append(
                        chunk(
                            f'{{"tool_calls":[{{"index":{k},"function":{{"arguments":{json.dumps(piece)}}}}}]}}'
                        )
                    )
        else:
            assert reply.text is not None
            events.extend(chunk('{"content":' + json.dumps(p) + "}") for p in reply.text.pieces)
        if d.prestream_error or d.midstream_error:
            kept = [] if d.prestream_error else events[: 1 + PREVIEW]
            kept.append(b"data: " + error_body(500, None, None, None, None) + b"\n\n")
            return await self.sim.stream(request, self.headers(rec, SSE), kept, self.chunk_delay(d))
        if d.stall:
            return await self.sim.stream(
                request, self.headers(rec, SSE), events[: 1 + PREVIEW], self.chunk_delay(d), stall=True
            )
        events.append(
            (
                head + '{},"logprobs":null,"finish_reason":"' + reply.finish + '"}]' + usage_null + "}\n\n"
            ).encode()
        )
        if include_usage and usage is not None:
            events.append(
                (
                    f'data: {{"id":"{cid}","object":"chat.completion.chunk","created":{created},'
                    f'"model":{json.dumps(model)},"service_tier":"default","system_fingerprint":"fp_sim",'
                    f'"choices":[],"usage":{usage}}}\n\n'
                ).encode()
            )
        events.append(DONE)
        return await self.sim.stream(request, self.headers(rec, SSE), events, self.chunk_delay(d))

    # ---- legacy completions ------------------------------------------------------------------------

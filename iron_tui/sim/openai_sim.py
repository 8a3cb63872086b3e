"""Simulated OpenAI API: chat completions, legacy completions, embeddings, responses, models."""

from __future__ import annotations

import base64
import json
import random
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from iron_tui.sim.base import ProviderApi, ReceivedRequest, SimState, exchange
from iron_tui.sim.openai_responses import Refusal, ResponsesState, build_response, response_events, sse_events
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

_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Simulated invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
    403: (
        "You are not allowed to access this resource.",
        "invalid_request_error",
        "unsupported_country_region_territory",
    ),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    413: ("Request too large.", "invalid_request_error", None),
    429: ("Rate limit reached for requests. Please try again in 1s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_IMAGE_CHARS = 340  # ≈ 85 tokens, OpenAI's low-detail image cost
_PREVIEW = 3  # content chunks sent before a mid-stream error or stall
MODELS = (
    "gpt-4o", "gpt-4o-mini", "gpt-5", "gpt-5-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini", "o4-mini",
    "gpt-3.5-turbo-instruct", "text-embedding-3-small", "text-embedding-3-large",
)  # fmt: skip
_MODELS_BODY = json.dumps(
    {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": 1_715_367_049, "owned_by": "system"} for m in MODELS
        ],
    }
).encode()
_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"


def _error_body(
    status: int, message: str | None, type_: str | None, code: str | None, param: str | None
) -> bytes:
    d_msg, d_type, d_code = _ERRORS.get(
        status, ("Simulated error.", "invalid_request_error" if status < 500 else "server_error", None)
    )
    err = {"message": message or d_msg, "type": type_ or d_type, "param": param, "code": code or d_code}
    return json.dumps({"error": err}).encode()


def _content(content: Any) -> tuple[str, int]:
    """(text, chars) of an OpenAI message content: a string or a list of parts."""
    if isinstance(content, str):
        return content, len(content)
    if not isinstance(content, list):
        return "", 0
    texts: list[str] = []
    chars = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
            chars += len(part["text"])
        elif kind in ("image_url", "input_image"):
            chars += _IMAGE_CHARS
        else:
            chars += len(json.dumps(part))
    return " ".join(texts), chars


@dataclass(slots=True)
class _ChatScan:
    chars: int = 0
    last_chars: int = 0
    last_role: str = ""
    last_text: str = ""
    error: tuple[str, str, str | None] | None = None  # message, param, code


def _scan_chat(messages: list[Any]) -> _ChatScan:
    """One pass over the messages: character count, the last turn, and OpenAI's structural checks."""
    scan = _ChatScan()
    open_ids: set[str] = set()
    order: dict[str, int] = {}  # the last assistant turn's tool call ids, in call order
    answered: tuple[int, str] = (-1, "")  # (rank in `order`, text) of the latest-called result so far
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            scan.error = (
                f"Invalid type for 'messages[{i}]': expected an object.",
                f"messages[{i}]",
                "invalid_type",
            )
            return scan
        role = m.get("role")
        if role not in _ROLES:
            scan.error = (
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', "
                "'tool', and 'developer'.",
                f"messages[{i}].role",
                "invalid_value",
            )
            return scan
        if open_ids and role != "tool":
            scan.error = (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: "
                f"{', '.join(sorted(open_ids))}",
                f"messages.[{i}].role",
                None,
            )
            return scan
        text, chars = _content(m.get("content"))
        if role == "assistant" and isinstance(m.get("tool_calls"), list):
            order, answered = {}, (-1, "")
            for tc in m["tool_calls"]:
                fn = tc.get("function") if isinstance(tc, dict) else None
                if isinstance(fn, dict):
                    chars += len(str(fn.get("name", ""))) + len(str(fn.get("arguments", "")))
                if isinstance(tc, dict) and isinstance(tc.get("id"), str):
                    open_ids.add(tc["id"])
                    order[tc["id"]] = len(order)
        elif role == "tool":
            call_id = m.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in open_ids:
                scan.error = (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    "with 'tool_calls'.",
                    f"messages.[{i}].role",
                    None,
                )
                return scan
            open_ids.discard(call_id)
            # The reply follows the last call's result, whatever order the client sent them in.
            answered = max(answered, (order.get(call_id, -1), text), key=lambda a: a[0])
            text = answered[1]
        scan.chars += chars
        if role in ("system", "developer") and scan.last_role:
            continue  # a late system message (Claude Code's reminders) does not change whose turn it is
        scan.last_chars = chars
        scan.last_role = role
        scan.last_text = text
    return scan


def _is_reasoning(model: str) -> bool:
    m = model.lower()
    return m.startswith(("o1", "o3", "o4", "gpt-5")) and "-chat" not in m


def _chat_params_problem(model: str, body: dict[str, Any]) -> tuple[str, str, str | None] | None:
    """OpenAI's 400s for parameters a model refuses (the ones a translator can get wrong)."""
    if _is_reasoning(model):
        if body.get("max_tokens") is not None:
            return ("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                    "'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter")
        for name in ("temperature", "top_p"):
            if body.get(name) not in (None, 1):
                return (f"Unsupported value: '{name}' does not support {body[name]} with this model. Only the "
                        "default (1) value is supported.", name, "unsupported_value")
        if body.get("stop") is not None:
            return ("Unsupported parameter: 'stop' is not supported with this model.", "stop",
                    "unsupported_parameter")
    elif body.get("reasoning_effort") is not None:
        return ("Unrecognized request argument supplied: reasoning_effort", "reasoning_effort", None)
    stop = body.get("stop")
    if isinstance(stop, list) and len(stop) > 4:
        return (f"Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array "
                f"with length {len(stop)} instead.", "stop", "array_above_max_length")
    for i, m in enumerate(body["messages"]):
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list) and m.get("role") != "user" and any(
            isinstance(p, dict) and p.get("type") in ("image_url", "input_audio", "file") for p in content
        ):
            return (f"Invalid 'messages[{i}]'. Image URLs are only allowed for messages with role 'user', "
                    f"but this message with role '{m.get('role')}' contains an image URL.",
                    f"messages[{i}]", "invalid_value")
    return None


def _tools_chars(tools: Any) -> int:
    if not isinstance(tools, list):
        return 0
    n = 0
    for tool in tools:
        if isinstance(tool, dict):
            fn = tool["function"] if isinstance(tool.get("function"), dict) else tool
            n += tool_schema_chars(fn.get("name"), fn.get("description"), fn.get("parameters"))
    return n


def _stops(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str)]
    return None


def _int_or_none(value: Any) -> int | None:
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


def _usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
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


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


_DONE = b"data: [DONE]\n\n"
_VECTORS: dict[tuple[str, int, bool], str] = {}
_VECTOR_CACHE = 512


def _vector_json(text: str, dims: int, as_base64: bool) -> str:
    """A deterministic unit vector for `text`, JSON-encoded (a float list or a base64 float32 string)."""
    key = (text, dims, as_base64)
    cached = _VECTORS.get(key)
    if cached is not None:
        return cached
    rng = random.Random(text)
    values = [rng.uniform(-1.0, 1.0) for _ in range(dims)]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    values = [v / norm for v in values]
    if as_base64:
        encoded = '"' + base64.b64encode(struct.pack(f"<{dims}f", *values)).decode() + '"'
    else:
        encoded = json.dumps([round(v, 8) for v in values])
    if len(_VECTORS) >= _VECTOR_CACHE:
        _VECTORS.clear()
    _VECTORS[key] = encoded
    return encoded


class OpenAISim(ProviderApi):
    provider = "openai"

    def __init__(self, sim: SimState) -> None:
        super().__init__(sim)
        self.responses_state = ResponsesState()  # stored responses, for previous_response_id

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
            else _error_body(status, message, type_, code, param),
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
        scan = _scan_chat(messages)
        if scan.error is not None:
            return self.error(rec, 400, scan.error[0], param=scan.error[1], code=scan.error[2])
        refused = _chat_params_problem(model, body)
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
        self, body: dict[str, Any], tools: list[Any] | None, scan: _ChatScan, d: Directives, prompt: str
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
        max_tokens = _int_or_none(body.get("max_completion_tokens"))
        if max_tokens is None:
            max_tokens = _int_or_none(body.get("max_tokens"))
        words = d.words if d.words is not None else self.sim.settings.words
        if scan.last_role == "tool":
            return _Reply(make_text(scan.last_text, words, max_tokens, _stops(body.get("stop")), TOOL_LEAD))
        return _Reply(make_text(prompt, words, max_tokens, _stops(body.get("stop")), LEAD))

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
            kept = [] if d.prestream_error else events[: 1 + _PREVIEW]
            kept.append(b"data: " + _error_body(500, None, None, None, None) + b"\n\n")
            return await self.sim.stream(request, self.headers(rec, _SSE), kept, self.chunk_delay(d))
        if d.stall:
            return await self.sim.stream(
                request, self.headers(rec, _SSE), events[: 1 + _PREVIEW], self.chunk_delay(d), stall=True
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
        events.append(_DONE)
        return await self.sim.stream(request, self.headers(rec, _SSE), events, self.chunk_delay(d))

    # ---- legacy completions ------------------------------------------------------------------------

    @exchange("openai")
    async def completions(
        self, request: web.Request, rec: ReceivedRequest, body: dict[str, Any] | None
    ) -> web.StreamResponse:
        if not self.authorized(request):
            return self.auth_error(rec)
        if body is None or not isinstance(body.get("model"), str):
            return self.error(rec, 400, "you must provide a model parameter", param="model")
        raw_prompt = body.get("prompt", "")
        if isinstance(raw_prompt, list):
            raw_prompt = next((p for p in raw_prompt if isinstance(p, str)), "")
        text = raw_prompt if isinstance(raw_prompt, str) else ""
        d, prompt, err = await self._start(request, rec, text)
        stream = body.get("stream") is True
        err = err or self._stream_error(rec, d, stream)
        if err is not None:
            return err
        max_tokens = _int_or_none(body.get("max_tokens"))
        words = d.words if d.words is not None else self.sim.settings.words
        reply = make_text(prompt, words, 16 if max_tokens is None else max_tokens, _stops(body.get("stop")))
        finish = "length" if reply.finish == "length" else "stop"
        usage = None if d.no_usage else _usage(tokens_for_chars(len(text)), reply.tokens)
        cid = f"cmpl-sim{self.sim.next_id():020d}"
        base = {"id": cid, "object": "text_completion", "created": int(time.time()), "model": body["model"]}
        if not stream:
            out = {
                **base,
                "choices": [{"text": reply.text, "index": 0, "logprobs": None, "finish_reason": finish}],
                "system_fingerprint": "fp_sim",
            }
            if usage is not None:
                out["usage"] = usage
            return self.respond(rec, json.dumps(out).encode())
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        extra = {"usage": None} if include_usage else {}
        events = [
            _sse(
                {
                    **base,
                    "choices": [{"text": p, "index": 0, "logprobs": None, "finish_reason": None}],
                    **extra,
                }
            )
            for p in reply.pieces
        ]
        if d.midstream_error or d.prestream_error:
            events = [] if d.prestream_error else events[:_PREVIEW]
            events.append(b"data: " + _error_body(500, None, None, None, None) + b"\n\n")
            return await self.sim.stream(request, self.headers(rec, _SSE), events, self.chunk_delay(d))
        events.append(
            _sse(
                {
                    **base,
                    "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": finish}],
                    **extra,
                }
            )
        )
        if include_usage and usage is not None:
            events.append(_sse({**base, "choices": [], "usage": usage}))
        events.append(_DONE)
        return await self.sim.stream(
            request, self.headers(rec, _SSE), events, self.chunk_delay(d), stall=d.stall
        )

    # ---- embeddings --------------------------------------------------------------------------------

    @exchange("openai")
    async def embeddings(
        self, request: web.Request, rec: ReceivedRequest, body: dict[str, Any] | None
    ) -> web.StreamResponse:
        if not self.authorized(request):
            return self.auth_error(rec)
        if body is None or not isinstance(body.get("model"), str):
            return self.error(rec, 400, "you must provide a model parameter", param="model")
        raw = body.get("input")
        inputs: list[Any] = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
        if raw is None or raw == "" or raw == []:
            return self.error(rec, 400, "'input' cannot be an empty string.", param="input")
        texts = [x if isinstance(x, str) else json.dumps(x) for x in inputs]
        d, _, err = await self._start(request, rec, texts[-1])
        if err is not None:
            return err
        model = body["model"]
        dims = _int_or_none(body.get("dimensions")) or (3072 if model.endswith("-large") else 1536)
        as_b64 = body.get("encoding_format") == "base64"
        tokens = sum(
            len(x) if isinstance(x, list) else tokens_for_chars(len(t))
            for x, t in zip(inputs, texts, strict=True)
        )
        data = ",".join(
            f'{{"object":"embedding","index":{i},"embedding":{_vector_json(t, dims, as_b64)}}}'
            for i, t in enumerate(texts)
        )
        usage = "" if d.no_usage else f',"usage":{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}'
        return self.respond(
            rec, f'{{"object":"list","data":[{data}],"model":{json.dumps(model)}{usage}}}'.encode()
        )

    # ---- responses (the request and reply logic lives in openai_responses.py) ----------------------

    @exchange("openai")
    async def responses(
        self, request: web.Request, rec: ReceivedRequest, body: dict[str, Any] | None
    ) -> web.StreamResponse:
        if not self.authorized(request):
            return self.auth_error(rec)
        if body is None or not isinstance(body.get("model"), str):
            return self.error(rec, 400, "Missing required parameter: 'model'.", param="model",
                              code="missing_required_parameter")
        raw = body.get("input")
        last_user = raw if isinstance(raw, str) else ""
        for item in raw if isinstance(raw, list) else ():
            if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
                last_user = _content(item.get("content"))[0]
            elif isinstance(item, dict) and item.get("type") in ("function_call_output", "custom_tool_call_output"):
                last_user = ""  # directives only count in a user turn
        d, prompt, err = await self._start(request, rec, last_user or None)
        stream = body.get("stream") is True
        err = err or self._stream_error(rec, d, stream)
        if err is not None:
            return err
        n = self.sim.next_id()
        words = d.words if d.words is not None else self.sim.settings.words
        try:
            final = build_response(body, self.responses_state, f"resp_sim{n:020d}", n, words, prompt, d.tools,
                                   not d.no_usage)
        except Refusal as exc:
            return self.error(rec, 400, exc.message, param=exc.param, code=exc.code)
        if not stream:
            return self.respond(rec, json.dumps(final).encode())
        events = sse_events(response_events(final))
        if d.midstream_error or d.prestream_error:
            events = [] if d.prestream_error else events[: 4 + _PREVIEW]
            error = {"type": "error", "sequence_number": len(events), "code": "server_error",
                     "message": _ERRORS[500][0], "param": None}
            events.append(f"event: error\ndata: {json.dumps(error)}\n\n".encode())
            return await self.sim.stream(request, self.headers(rec, _SSE), events, self.chunk_delay(d))
        if d.stall:
            events = events[: 4 + _PREVIEW]
        return await self.sim.stream(request, self.headers(rec, _SSE), events, self.chunk_delay(d), stall=d.stall)

    # ---- models ------------------------------------------------------------------------------------

    @exchange("openai")
    async def models(
        self, request: web.Request, rec: ReceivedRequest, body: dict[str, Any] | None
    ) -> web.StreamResponse:
        if not self.authorized(request):
            return self.auth_error(rec)
        model_id = request.match_info.get("model")
        served = self.sim.settings.served_models
        if model_id is None:
            if served is not None:
                return self.respond(rec, json.dumps({"object": "list", "data": [
                    {"id": m, "object": "model", "created": 1_715_367_049, "owned_by": "library"}
                    for m in served]}).encode())
            return self.respond(rec, _MODELS_BODY)
        if model_id not in (MODELS if served is None else served):
            return self.error(
                rec, 404, f"The model '{model_id}' does not exist", param="model", code="model_not_found"
            )
        return self.respond(
            rec,
            json.dumps(
                {"id": model_id, "object": "model", "created": 1_715_367_049, "owned_by": "system"}
            ).encode(),
        )

    @exchange("openai")
    async def not_found(
        self, request: web.Request, rec: ReceivedRequest, body: dict[str, Any] | None
    ) -> web.StreamResponse:
        err = {"message": f"Invalid URL ({request.method} {request.path})", "type": "invalid_request_error"}
        return self.error(rec, 404, body={"error": {**err, "param": None, "code": None}})

"""Simulated OpenAI API: chat completions, legacy completions, embeddings, responses, models."""

from __future__ import annotations

import base64
import json
import random
import struct
import time
from typing import Any

from aiohttp import web

from iron_tui.sim.base import ReceivedRequest, SimState, exchange
from iron_tui.sim.openai_chat import (
    DONE,
    PREVIEW,
    SSE,
    OpenAIChatSim,
    int_or_none,
    sse_data,
    stop_list,
    usage_object,
)
from iron_tui.sim.openai_responses import Refusal, ResponsesState, build_response, response_events, sse_events
from iron_tui.sim.openai_validation import ERRORS, error_body, message_content
from iron_tui.sim.script import make_text, tokens_for_chars

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


class OpenAISim(OpenAIChatSim):
    def __init__(self, sim: SimState) -> None:
        super().__init__(sim)
        self.responses_state = ResponsesState()  # stored responses, for previous_response_id

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
        max_tokens = int_or_none(body.get("max_tokens"))
        words = d.words if d.words is not None else self.sim.settings.words
        reply = make_text(prompt, words, 16 if max_tokens is None else max_tokens, stop_list(body.get("stop")))
        finish = "length" if reply.finish == "length" else "stop"
        usage = None if d.no_usage else usage_object(tokens_for_chars(len(text)), reply.tokens)
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
            sse_data(
                {
                    **base,
                    "choices": [{"text": p, "index": 0, "logprobs": None, "finish_reason": None}],
                    **extra,
                }
            )
            for p in reply.pieces
        ]
        if d.midstream_error or d.prestream_error:
            events = [] if d.prestream_error else events[:PREVIEW]
            events.append(b"data: " + error_body(500, None, None, None, None) + b"\n\n")
            return await self.sim.stream(request, self.headers(rec, SSE), events, self.chunk_delay(d))
        events.append(
            sse_data(
                {
                    **base,
                    "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": finish}],
                    **extra,
                }
            )
        )
        if include_usage and usage is not None:
            events.append(sse_data({**base, "choices": [], "usage": usage}))
        events.append(DONE)
        return await self.sim.stream(
            request, self.headers(rec, SSE), events, self.chunk_delay(d), stall=d.stall
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
        dims = int_or_none(body.get("dimensions")) or (3072 if model.endswith("-large") else 1536)
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
                last_user = message_content(item.get("content"))[0]
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
                                   not d.no_usage, searches=d.searches)
        except Refusal as exc:
            return self.error(rec, 400, exc.message, param=exc.param, code=exc.code)
        if not stream:
            return self.respond(rec, json.dumps(final).encode())
        events = sse_events(response_events(final))
        if d.midstream_error or d.prestream_error:
            events = [] if d.prestream_error else events[: 4 + PREVIEW]
            error = {"type": "error", "sequence_number": len(events), "code": "server_error",
                     "message": ERRORS[500][0], "param": None}
            events.append(f"event: error\ndata: {json.dumps(error)}\n\n".encode())
            return await self.sim.stream(request, self.headers(rec, SSE), events, self.chunk_delay(d))
        if d.stall:
            events = events[: 4 + PREVIEW]
        return await self.sim.stream(request, self.headers(rec, SSE), events, self.chunk_delay(d), stall=d.stall)

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

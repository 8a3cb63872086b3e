"""Simulated Anthropic Messages API, strict about request shape so translation bugs surface as 400s."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from iron_tui.sim.anthropic_extras import (
    check_output_config,
    check_thinking,
    structured_reply,
    thinking_reply,
)
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
    tool_schema_chars,
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
_ALLOWED_KEYS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature",
        "top_k", "top_p", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers",
        "context_management", "output_config", "output_format", "inference_geo", "cache_control",
    }
)  # fmt: skip
_BLOCK_TYPES = frozenset(
    {
        "text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
        "search_result", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
        "code_execution_tool_result", "container_upload", "mcp_tool_use", "mcp_tool_result",
    }
)  # fmt: skip
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_IMAGE_CHARS = 340  # same as the OpenAI sim, so a translated image costs the same
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
_MODELS_BODY = json.dumps(
    {
        "data": list(_MODEL_INFO.values()),
        "has_more": False,
        "first_id": MODELS[0][0],
        "last_id": MODELS[-1][0],
    }
).encode()
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


def _block_chars(block: dict[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return len(text) if isinstance(text, str) else 0
    if kind == "image":
        return _IMAGE_CHARS
    if kind == "tool_use":
        return len(str(block.get("name", ""))) + len(json.dumps(block.get("input", {})))
    if kind == "tool_result":
        return len(_result_text(block.get("content")))
    if kind == "thinking":
        return len(str(block.get("thinking", "")))
    return len(json.dumps(block))


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


@dataclass(slots=True)
class _Scan:
    chars: int = 0
    # Prompt-cache breakpoints: (characters up to and including the marked block, elements before it).
    breakpoints: list[tuple[int, int]] = field(default_factory=list)
    elements: list[Any] = field(default_factory=list)  # tools, system blocks, then (message, role, block)
    last_role: str = ""
    last_text: str = ""  # text blocks of the last user turn
    ends_with_tool_result: bool = False
    tool_result_text: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)  # custom tools (those with a schema)

    def add(self, element: Any, chars: int, cache_control: Any) -> None:
        self.chars += chars
        self.elements.append(element)
        if cache_control:
            self.breakpoints.append((self.chars, len(self.elements)))


def _validate(body: dict[str, Any], *, count_only: bool = False) -> tuple[str | None, _Scan]:
    """Anthropic's request checks (the ones a translator can get wrong); returns (error, scan)."""
    scan = _Scan()
    allowed = (
        _ALLOWED_KEYS - {"max_tokens", "stream", "stop_sequences", "temperature", "top_k", "top_p"}
        if count_only
        else _ALLOWED_KEYS
    )
    for key in body:
        if key not in allowed:
            return f"{key}: Extra inputs are not permitted", scan
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required", scan
    if not count_only:
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            return "max_tokens: Field required", scan
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            return "max_tokens: Input should be greater than or equal to 1", scan
    temperature = body.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 1):
        return "temperature: Input should be less than or equal to 1", scan
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            return "stop_sequences: Input should be a valid list of strings", scan
        if any(not s.strip() for s in stops):
            return "stop_sequences: each stop sequence must contain non-whitespace", scan

    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list", scan
        for k, tool in enumerate(tools):
            if not isinstance(tool, dict):
                return f"tools.{k}: Input should be a valid dictionary", scan
            if tool.get("type") in (None, "custom"):
                if not isinstance(tool.get("name"), str) or not _TOOL_NAME.match(tool["name"]):
                    return (
                        f"tools.{k}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'",
                        scan,
                    )
                if not isinstance(tool.get("input_schema"), dict):
                    return f"tools.{k}.custom.input_schema: Field required", scan
            # A deferred tool (tool search beta; Claude Code sends a placeholder one) is not in the
            # model's context until a tool search loads it: it cannot be called and costs no input.
            deferred = tool.get("defer_loading") is True
            if tool.get("type") in (None, "custom") and not deferred:
                scan.tools.append(tool)
            chars = 0 if deferred else tool_schema_chars(tool.get("name"), tool.get("description"),
                                                          tool.get("input_schema"))
            scan.add(tool, chars, tool.get("cache_control"))
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            return (
                "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'",
                scan,
            )
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            return "tool_choice.tool.name: Field required", scan
        if choice["type"] in ("any", "tool") and not tools:
            return "tool_choice: tool_choice may only be specified while providing tools", scan

    system = body.get("system")
    if isinstance(system, str):
        scan.add(system, len(system), None)
    elif isinstance(system, list):
        for k, block in enumerate(system):
            if (
                not isinstance(block, dict)
                or block.get("type") != "text"
                or not isinstance(block.get("text"), str)
            ):
                return f"system.{k}: Input should be a valid text block", scan
            scan.add(block, len(block["text"]), block.get("cache_control"))
    elif system is not None:
        return "system: Input should be a valid string or list of text blocks", scan

    messages = body.get("messages")
    if messages is None:
        return "messages: Field required", scan
    if not isinstance(messages, list):
        return "messages: Input should be a valid list", scan
    if not messages:
        return "messages: at least one message is required", scan
    prev_role: str | None = None
    open_ids: dict[str, None] = {}  # tool_use ids of the previous assistant turn, in call order
    last = len(messages) - 1
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"messages.{i}: Input should be a valid dictionary", scan
        role = m.get("role")
        if role == "system":
            # Mid-conversation system messages (what Claude Code sends): after a user turn, followed by
            # an assistant turn or last, never first, never two in a row, text only.
            problem = _system_message_problem(messages, i)
            if problem is not None:
                return problem, scan
            text = m["content"] if isinstance(m.get("content"), str) else _result_text(m.get("content"))
            scan.add((i, role, text), len(text), None)
            continue
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'", scan
        if i == 0 and role != "user":
            return 'messages: first message must use the "user" role', scan
        if role == prev_role:
            return (
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row'
            ), scan
        prev_role = role
        content = m.get("content")
        final_assistant = i == last and role == "assistant"
        texts: list[str] = []
        results: dict[str, str] = {}  # tool_use id → result text
        use_ids: dict[str, None] = {}
        ends_with_result = False
        if isinstance(content, str):
            if not content and not final_assistant:
                return (
                    f"messages.{i}: all messages must have non-empty content except for the optional final "
                    "assistant message"
                ), scan
            texts.append(content)
            scan.add((i, role, content), len(content), None)
        elif isinstance(content, list):
            if not content and not final_assistant:
                return (
                    f"messages.{i}: all messages must have non-empty content except for the optional final "
                    "assistant message"
                ), scan
            for j, block in enumerate(content):
                kind = block.get("type") if isinstance(block, dict) else None
                if kind not in _BLOCK_TYPES:
                    return (
                        f"messages.{i}.content.{j}.type: Input tag '{kind}' found using 'type' does not match "
                        f"any of the expected tags: {', '.join(sorted(_BLOCK_TYPES))}"
                    ), scan
                assert isinstance(block, dict)
                ends_with_result = kind == "tool_result"
                if kind == "text":
                    if not isinstance(block.get("text"), str) or not block["text"]:
                        return "messages: text content blocks must be non-empty", scan
                    texts.append(block["text"])
                elif kind == "tool_use":
                    if role != "assistant":
                        return (
                            f"messages.{i}.content.{j}: tool_use blocks are only allowed in assistant messages",
                            scan,
                        )
                    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                        return f"messages.{i}.content.{j}.tool_use: id and name are required", scan
                    if not isinstance(block.get("input"), dict):
                        return (
                            f"messages.{i}.content.{j}.tool_use.input: Input should be a valid dictionary",
                            scan,
                        )
                    use_ids[block["id"]] = None
                elif kind == "tool_result":
                    tool_use_id = block.get("tool_use_id")
                    if role != "user" or not isinstance(tool_use_id, str) or tool_use_id not in open_ids:
                        return (
                            f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{tool_use_id}. Each `tool_result` block must have a corresponding `tool_use` block "
                            "in the previous message."
                        ), scan
                    results[tool_use_id] = _result_text(block.get("content"))
                scan.add((i, role, block), _block_chars(block), block.get("cache_control"))
        else:
            return f"messages.{i}.content: Input should be a valid list", scan
        missing = sorted(u for u in open_ids if u not in results) if role == "user" else []
        if missing:
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message."
            ), scan
        if results:  # the reply follows the last call's result, whatever order the client sent them in
            scan.tool_result_text = results[[u for u in open_ids if u in results][-1]]
        open_ids = use_ids
        scan.last_role = role
        if role == "user":
            scan.last_text = " ".join(texts)
            scan.ends_with_tool_result = ends_with_result
    return None, scan


def _system_message_problem(messages: list[Any], i: int) -> str | None:
    content = messages[i].get("content")
    if isinstance(content, list):
        if not content or any(not isinstance(b, dict) or b.get("type") != "text" for b in content):
            return f"messages.{i}.content: system messages may only contain text blocks"
    elif not isinstance(content, str) or not content:
        return f"messages.{i}.content: system messages must have non-empty text content"
    before = messages[i - 1].get("role") if i > 0 and isinstance(messages[i - 1], dict) else None
    if before != "user":
        return f"messages.{i}: a system message must follow a user message"
    after = messages[i + 1].get("role") if i + 1 < len(messages) and isinstance(messages[i + 1], dict) else None
    if after not in (None, "assistant"):
        return f"messages.{i}: a system message must be the last message or be followed by an assistant message"
    return None


_MESSAGE = (
    '{"id":"%s","type":"message","role":"assistant","model":%s,"content":%s,"stop_reason":"%s",'
    '"stop_sequence":%s%s}'
)
_USAGE = (
    '{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":'
    '{"ephemeral_5m_input_tokens":%d,"ephemeral_1h_input_tokens":0},"output_tokens":%d,"service_tier":"standard"}'
)


def _usage_json(usage: dict[str, Any], output: int) -> str:
    write = usage["cache_creation_input_tokens"]
    return _USAGE % (usage["input_tokens"], write, usage["cache_read_input_tokens"], write, output)


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
        problem, scan = _validate(body)
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
        output = (text.tokens if text else 0) + sum(tool_tokens(c.name, c.json) for c in calls)
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
                request, d, msg_id, model, text, calls, stop_reason, stop_seq, usage, output, thought
            )
        content: list[dict[str, Any]] = []
        if thought is not None:
            content.append({"type": "thinking", "thinking": thought[0].text, "signature": thought[1]})
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
            "" if usage is None else ',"usage":' + _usage_json(usage, output),
        )
        return web.Response(body=out.encode(), headers=self.headers())

    def _usage(self, scan: _Scan) -> dict[str, Any]:
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
        self, body: dict[str, Any], scan: _Scan, d: Directives, prompt: str, user_turn: bool
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
        if text is not None:
            events.append(
                _sse(
                    "content_block_start",
                    f'{{"type":"content_block_start","index":{index},"content_block":{{"type":"text","text":""}}}}',
                )
            )
            events.append(_sse("ping", '{"type": "ping"}'))
            head = f'event: content_block_delta\ndata: {{"type":"content_block_delta","index":{index},"delta":{{"type":"text_delta","text":'
            events.extend((head + json.dumps(p) + "}}\n\n").encode() for p in text.pieces)
            if d.midstream_error or d.stall:
                events = events[: 3 + _PREVIEW]
                if d.midstream_error:
                    events.append(_OVERLOADED_EVENT)
                return await self.sim.stream(request, headers, events, delay, stall=d.stall)
            events.append(_sse("content_block_stop", f'{{"type":"content_block_stop","index":{index}}}'))
            index += 1
        for c in calls:
            block = {"type": "tool_use", "id": c.id, "name": c.name, "input": {}}
            events.append(
                _sse(
                    "content_block_start",
                    json.dumps({"type": "content_block_start", "index": index, "content_block": block}),
                )
            )
            if index == 0:
                events.append(_sse("ping", '{"type": "ping"}'))
            for piece in ["", *split_json(c.json)]:
                delta = {"type": "input_json_delta", "partial_json": piece}
                events.append(
                    _sse(
                        "content_block_delta",
                        json.dumps({"type": "content_block_delta", "index": index, "delta": delta}),
                    )
                )
            events.append(_sse("content_block_stop", f'{{"type":"content_block_stop","index":{index}}}'))
            index += 1
        if d.midstream_error or d.stall:  # a tool-only reply: cut after the first block
            events = events[: 3 + _PREVIEW]
            if d.midstream_error:
                events.append(_OVERLOADED_EVENT)
            return await self.sim.stream(request, headers, events, delay, stall=d.stall)
        delta_body: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_seq},
        }
        if usage is not None:
            delta_body["usage"] = {"output_tokens": output}
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
        problem, scan = _validate(body, count_only=True)
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

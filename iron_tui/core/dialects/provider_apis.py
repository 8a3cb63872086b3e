"""What the pipeline needs to know of each provider dialect, whatever the client speaks: where the output
cap lives in a request, how a response reports usage, how an error reads, and how to follow a stream
(usage, generated text, its end, its errors) — once for every pair.

Stream accounting is fed either raw SSE events (native relays: only the events that carry usage are
parsed, so passing bytes through stays cheap) or already-parsed objects (translated relays, which parse
every event for the translator anyway).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import orjson

from iron_tui.core.pricing import TokenUsage

__all__ = ["StreamAccount", "error_info", "output_cap", "stream_account", "usage_of", "web_search_calls",
           "with_output_cap"]

# Bytes of JSON framing around a streamed Anthropic delta: only used to estimate tokens of a cut stream
# when the native relay does not parse content deltas.
_DELTA_OVERHEAD = 80
_SEARCH_RESULT = '"web_search_tool_result"'  # only such block starts are parsed by a native relay

Event = tuple[str, str, bytes]  # (event name, data, raw bytes) from core/proxy/sse.py


# --- output caps -----------------------------------------------------------------------------------


def output_cap(api: str, body: dict[str, Any]) -> int | None:
    """The output-token cap a request body for provider dialect `api` carries (None: none set)."""
    if api == "anthropic":
        return _count(body.get("max_tokens"))
    if api == "openai-responses":
        return _count(body.get("max_output_tokens"))
    a, b = _count(body.get("max_completion_tokens")), _count(body.get("max_tokens"))
    if a is None:
        return b
    return a if b is None else max(a, b)


def with_output_cap(api: str, body: dict[str, Any], cap: int,
                    chat_field: str = "max_completion_tokens") -> dict[str, Any]:
    """A copy of `body` whose output cap is `cap` (in the field that dialect reads). `chat_field`: the
    Chat Completions field the provider reads when the body names none (ProviderSpec.cap_field)."""
    out = dict(body)
    if api == "anthropic":
        out["max_tokens"] = cap
    elif api == "openai-responses":
        out["max_output_tokens"] = cap
    else:
        # Chat: whichever field(s) the body already uses, else the provider's; completions: max_tokens.
        fields: list[str] = [f for f in ("max_completion_tokens", "max_tokens") if f in out]
        if not fields:
            fields = ["max_tokens" if "prompt" in out else chat_field]
        for f in fields:
            out[f] = cap
    return out


def with_cap_field(body: dict[str, Any], field: str) -> dict[str, Any]:
    """A Chat Completions body whose output cap is in `field` (the provider's), moved from the other
    field if a translation put it there; the same dict when nothing had to change."""
    other = "max_tokens" if field == "max_completion_tokens" else "max_completion_tokens"
    if other not in body or field in body:
        return body
    out = dict(body)
    out[field] = out.pop(other)
    return out


def _count(value: Any) -> int | None:
    if type(value) is int:
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and value.is_integer():
        return int(value)
    return None


# --- usage and errors of whole responses --------------------------------------------------------------


def usage_of(api: str, body: dict[str, Any]) -> TokenUsage | None:
    """Usage reported by a non-stream response of provider dialect `api`; None when it reports none.
    A Responses answer's server-side web searches are its `web_search_call` output items."""
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None
    if api == "anthropic":
        return TokenUsage.from_anthropic(usage)
    return _with_searches(TokenUsage.from_openai(usage), web_search_calls(api, body))


def web_search_calls(api: str, body: dict[str, Any]) -> int:
    """Server-side web searches a non-stream response of dialect `api` ran and OpenAI bills, but does not
    count in `usage`: the Responses API's `web_search_call` output items, whatever their status (a
    search that failed was still called). 0 for the other dialects (Anthropic counts its own in usage)."""
    if api != "openai-responses":
        return 0
    return len(_search_ids(body.get("output")))


def _with_searches(usage: TokenUsage, searches: int) -> TokenUsage:
    return dataclasses.replace(usage, web_search_requests=searches) if searches else usage


def _search_ids(output: Any) -> list[str | None]:
    """The id (None when it has none) of each `web_search_call` item of a Responses `output`."""
    if not isinstance(output, list):
        return []
    return [item.get("id") if isinstance(item.get("id"), str) else None for item in output
            if isinstance(item, dict) and item.get("type") == "web_search_call"]


def error_info(parsed: Any, data: bytes, status: int) -> tuple[str | None, str]:
    """(provider's error type, message) of an upstream error answer, whatever its shape."""
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict):
            kind = err.get("type")
            msg = err.get("message")
            return (kind if isinstance(kind, str) and kind != "error" else None,
                    str(msg)[:2000] if msg else f"HTTP {status}")
        if isinstance(err, str):  # some OpenAI-compatible servers: {"error": "...", "message": "..."}
            extra = parsed.get("message")
            return None, (err + (": " + str(extra) if extra else ""))[:2000]
        if isinstance(parsed.get("message"), str):
            return None, parsed["message"][:2000]
    if status < 400:
        return None, "upstream answered with a body that is not a JSON object"
    text = data[:300].decode("utf-8", "replace").strip()
    return None, f"HTTP {status}" + (f": {text}" if text else "")


# --- streams ---------------------------------------------------------------------------------------


class StreamAccount:
    """What an upstream stream has told so far: usage, generated characters, whether it ended, errors."""

    __slots__ = ("_usage", "error", "error_type", "finished", "text_chars")

    def __init__(self) -> None:
        self.finished = False
        self.text_chars = 0
        self.error: str | None = None  # message of an upstream error event
        self.error_type: str | None = None  # the provider's error type, when it said one
        self._usage: dict[str, Any] | None = None

    def raw(self, events: list[Event]) -> None:
        """Account native events: parse only what carries usage, errors or the end."""
        for ev, data, _raw in events:
            obj = _loads(data)
            if obj is not None:
                self.obj(ev, obj)

    def obj(self, ev: str, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    def usage(self) -> TokenUsage | None:
        raise NotImplementedError

    @property
    def web_searches(self) -> int:
        """Server-side web searches seen that the usage does not count (so far, for a cut stream)."""
        return 0

    def _error(self, err: Any, fallback: str) -> None:
        if isinstance(err, dict):
            kind = err.get("type") if isinstance(err.get("type"), str) else err.get("code")
            self.error_type = kind if isinstance(kind, str) else None
            self.error = str(err.get("message") or kind or fallback)[:2000]
        else:
            self.error = (str(err) if err else fallback)[:2000]


class AnthropicAccount(StreamAccount):
    """Anthropic Messages events. Server-side web searches (billed per search) are counted as their
    results stream — each `web_search_tool_result` block that holds results, as an error result is not
    billed — so a stream cut before its final `message_delta` is still charged for them; that event's
    `usage.server_tool_use.web_search_requests`, when larger, wins."""

    __slots__ = ("_searches",)

    def __init__(self) -> None:
        super().__init__()
        self._searches = 0

    def raw(self, events: list[Event]) -> None:
        for ev, data, _raw in events:
            if ev == "content_block_delta":
                # The hot event: its length tells the generated text closely enough for a cut stream.
                self.text_chars += max(0, len(data) - _DELTA_OVERHEAD)
            elif ev == "message_stop":
                self.finished = True
            elif ev in ("message_start", "message_delta", "error") or (
                    ev == "content_block_start" and _SEARCH_RESULT in data):
                obj = _loads(data)
                if obj is not None:
                    self.obj(ev, obj)

    def obj(self, ev: str, obj: dict[str, Any]) -> None:
        kind = ev if ev != "message" else obj.get("type")
        if kind == "content_block_delta":
            delta = obj.get("delta")
            if isinstance(delta, dict):
                for field in ("text", "partial_json", "thinking"):
                    piece = delta.get(field)
                    if isinstance(piece, str):
                        self.text_chars += len(piece)
        elif kind == "content_block_start":
            block = obj.get("content_block")
            if isinstance(block, dict) and block.get("type") == "web_search_tool_result" \
                    and isinstance(block.get("content"), list):
                self._searches += 1
        elif kind == "message_start":
            msg = obj.get("message")
            self._fold(msg.get("usage") if isinstance(msg, dict) else None)
        elif kind == "message_delta":
            self._fold(obj.get("usage"))
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            self._error(obj.get("error"), "stream error")

    def _fold(self, usage: Any) -> None:
        # Anthropic's streamed counts are cumulative: a present, non-null field replaces the one held.
        if not isinstance(usage, dict):
            return
        acc = self._usage
        if acc is None:
            acc = self._usage = {}
        for k, v in usage.items():
            if v is not None:
                acc[k] = v

    @property
    def web_searches(self) -> int:
        return self._searches

    def usage(self) -> TokenUsage | None:
        if self._usage is None or self._usage.get("input_tokens") is None:
            return None
        usage = TokenUsage.from_anthropic(self._usage)
        return _with_searches(usage, self._searches) if self._searches > usage.web_search_requests else usage


class ChatAccount(StreamAccount):
    """OpenAI Chat Completions (and legacy completions) chunks."""

    __slots__ = ()

    def raw(self, events: list[Event]) -> None:
        for ev, data, _raw in events:
            if data == "[DONE]":
                self.finished = True
                continue
            obj = _loads(data)
            if obj is not None:
                self.obj(ev, obj)

    def obj(self, ev: str, obj: dict[str, Any]) -> None:
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        choices = obj.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict):
                    delta = choice.get("delta")
                    text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
                    if isinstance(text, str):
                        self.text_chars += len(text)
        if "error" in obj:
            self._error(obj["error"], "stream error")

    def done(self) -> None:
        """`data: [DONE]` (which is not JSON) arrived on a translated relay."""
        self.finished = True

    def usage(self) -> TokenUsage | None:
        return None if self._usage is None else TokenUsage.from_openai(self._usage)


class ResponsesAccount(StreamAccount):
    """OpenAI Responses API events. Web searches (billed per call, absent from `usage`) are the
    `web_search_call` items: those of the final response's `output`, and — so a stream cut before its end
    is charged for the searches it ran — each one seen completed on the way (`response.web_search_call.
    completed`, `response.output_item.done`); counted once per item id."""

    __slots__ = ("_final_unnamed", "_searches", "next_sequence_number")

    def __init__(self) -> None:
        super().__init__()
        self.next_sequence_number = 0  # for an error frame the relay adds to a native stream
        self._searches: set[str] = set()  # ids of the web_search_call items seen done
        self._final_unnamed = 0  # web_search_call items without an id in the final output

    def obj(self, ev: str, obj: dict[str, Any]) -> None:
        seq = obj.get("sequence_number")
        if type(seq) is int:
            self.next_sequence_number = seq + 1
        kind = obj.get("type") or ev
        if kind == "response.output_text.delta":
            delta = obj.get("delta")
            if isinstance(delta, str):
                self.text_chars += len(delta)
        elif kind == "response.web_search_call.completed":
            self._search_done(obj.get("item_id"))
        elif kind == "response.output_item.done":
            item = obj.get("item")
            if isinstance(item, dict) and item.get("type") == "web_search_call":
                self._search_done(item.get("id"))
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.finished = True
            response = obj.get("response")
            if isinstance(response, dict):
                if isinstance(response.get("usage"), dict):
                    self._usage = response["usage"]
                ids = _search_ids(response.get("output"))
                self._searches.update(i for i in ids if i is not None)
                self._final_unnamed = ids.count(None)  # (events without an id cannot be told apart)
                if kind == "response.failed":
                    self._error(response.get("error"), "response failed")
        elif kind == "error":
            self._error(obj, "stream error")

    def _search_done(self, item_id: Any) -> None:
        if isinstance(item_id, str):
            self._searches.add(item_id)

    @property
    def web_searches(self) -> int:
        return len(self._searches) + self._final_unnamed

    def usage(self) -> TokenUsage | None:
        if self._usage is None:
            return None
        return _with_searches(TokenUsage.from_openai(self._usage), self.web_searches)


def stream_account(api: str) -> StreamAccount:
    if api == "anthropic":
        return AnthropicAccount()
    if api == "openai-responses":
        return ResponsesAccount()
    return ChatAccount()


def _loads(data: str) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(data)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None

"""Anthropic Messages SSE events → the Responses event sequence (`responses/events.py`), one at a time.

message_start → response.created + response.in_progress; each content block → one output item
(text → message, thinking → reasoning, tool_use → function_call / custom_tool_call); message_stop →
response.completed (or .incomplete) with the folded usage (Anthropic's counts are cumulative: the
latest value wins). A custom tool's input arrives as the JSON of `{"input": …}`: it is sent as one
delta when its block ends. `ping`, `error` (handled by the pipeline) and unknown events yield nothing.
"""

from __future__ import annotations

from typing import Any

from iron_tui.core.bounded_json import dumps_text, loads_exact
from iron_tui.core.dialects.base import RequestContext, UpstreamFormatError
from iron_tui.core.dialects.responses.events import EventWriter, OpenItem
from iron_tui.core.dialects.responses.output import (
    custom_input_text,
    encode_reasoning,
    id_source,
    obj_of,
    state_of,
)
from iron_tui.core.dialects.responses_anthropic.response import incomplete_reason, usage_of

__all__ = ["AnthropicToResponsesStream"]

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


class _Block:
    __slots__ = ("extra", "item", "json", "kind", "streamed")

    def __init__(self, item: OpenItem, kind: str, extra: str = "") -> None:
        self.item = item
        self.kind = kind  # text | thinking | redacted | function | custom
        self.extra = extra  # thinking: the signature so far; redacted: its data
        self.json: list[str] = []  # custom tools: the input JSON so far
        self.streamed = False  # function: whether any arguments text went out


class AnthropicToResponsesStream:
    __slots__ = ("_blocks", "_ctx", "_pending", "_reasoning_chars", "_state", "_stop_reason", "_usage", "_writer",
                 "done")

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx
        self._state = state_of(ctx)
        self._writer: EventWriter | None = None
        self._blocks: dict[Any, _Block] = {}
        self._usage: dict[str, int] = {}
        self._stop_reason: object = None
        self._reasoning_chars = 0
        # A finished text block, closed only once the next block or the stop reason shows whether the
        # answer was cut (OpenAI marks a cut message item "incomplete").
        self._pending: OpenItem | None = None
        self.done = False

    @property
    def response(self) -> dict[str, Any] | None:
        """The final response object once the stream completed (what `previous_response_id` stores)."""
        return self._writer.response if self._writer is not None else None

    def _start(self, message_id: str) -> list[bytes]:
        ids = id_source(self._ctx, message_id)
        self._writer = EventWriter(self._state, self._ctx, ids("resp"), ids)
        return self._writer.start()

    def _fold(self, usage: object) -> None:
        for name in _USAGE_FIELDS:
            value = obj_of(usage).get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                self._usage[name] = value

    @property
    def next_sequence_number(self) -> int:
        """What an error frame the pipeline adds must carry (Responses events count from 0)."""
        return 0 if self._writer is None else self._writer.next_sequence_number

    def feed(self, event: str, data: dict[str, Any]) -> list[bytes]:
        if self.done:
            return []
        kind = data.get("type") or event
        if kind == "message_start":
            if self._writer is not None:
                return []
            message = obj_of(data.get("message"))
            self._fold(message.get("usage"))
            return self._start(_str(message.get("id")))
        if kind not in ("content_block_start", "content_block_delta", "content_block_stop", "message_delta",
                        "message_stop"):
            return []  # ping, error (the pipeline's), unknown events
        out = self._start("") if self._writer is None else []
        writer = self._writer
        assert writer is not None
        if kind == "content_block_delta":
            out.extend(self._delta(writer, data))
        elif kind == "content_block_start":
            out.extend(self._flush(writer))
            out.extend(self._block_start(writer, data))
        elif kind == "content_block_stop":
            out.extend(self._block_stop(writer, _index(data)))
        elif kind == "message_delta":
            self._fold(data.get("usage"))
            self._stop_reason = obj_of(data.get("delta")).get("stop_reason", self._stop_reason)
            out.extend(self._flush(writer))
        else:  # message_stop
            for index in list(self._blocks):
                out.extend(self._block_stop(writer, index))
            out.extend(self._flush(writer))
            out.extend(writer.finish(usage_of(self._usage, self._reasoning_chars),
                                     incomplete_reason(self._stop_reason)))
            self.done = True
        return out

    def _flush(self, writer: EventWriter) -> list[bytes]:
        it, self._pending = self._pending, None
        if it is None:
            return []
        return writer.close(it, status="incomplete" if incomplete_reason(self._stop_reason) else "completed")

    def _block_start(self, writer: EventWriter, data: dict[str, Any]) -> list[bytes]:
        block = obj_of(data.get("content_block"))
        index = _index(data)
        btype = block.get("type")
        if btype == "text":
            it, out = writer.open_message()
            self._blocks[index] = _Block(it, "text")
            return out + writer.delta(it, _str(block.get("text")))
        if btype == "thinking":
            it, out = writer.open_reasoning(summary=self._state.options.summary is not None)
            self._blocks[index] = _Block(it, "thinking", _str(block.get("signature")))
            return out + writer.delta(it, _str(block.get("thinking")))
        if btype == "redacted_thinking":
            it, out = writer.open_reasoning(summary=False)
            self._blocks[index] = _Block(it, "redacted", _str(block.get("data")))
            return out
        if btype == "tool_use":
            wire = _str(block.get("name"))
            name, namespace = self._state.tools.client_name(wire)
            kind = self._state.tools.kind_of(wire)
            it, out = writer.open_call(kind, _str(block.get("id")), name, namespace)
            entry = self._blocks[index] = _Block(it, kind)
            initial = block.get("input")
            if initial:  # the input is normally streamed; a non-empty start value counts too
                try:
                    text = dumps_text(initial)
                except ValueError as exc:
                    raise UpstreamFormatError(f"a tool_use input cannot be serialised: {exc}") from None
                if kind == "custom":
                    entry.json.append(text)
                else:
                    entry.streamed = True
                    out += writer.delta(it, text)
            return out
        return []  # blocks of server tools this translation never asks for

    def _delta(self, writer: EventWriter, data: dict[str, Any]) -> list[bytes]:
        entry = self._blocks.get(_index(data))
        if entry is None:
            return []
        delta = obj_of(data.get("delta"))
        dtype = delta.get("type")
        if dtype == "text_delta" and entry.kind == "text":
            return writer.delta(entry.item, _str(delta.get("text")))
        if dtype == "thinking_delta" and entry.kind == "thinking":
            return writer.delta(entry.item, _str(delta.get("thinking")))
        if dtype == "signature_delta" and entry.kind == "thinking":
            entry.extra += _str(delta.get("signature"))
            return []
        if dtype == "input_json_delta":
            piece = _str(delta.get("partial_json"))
            if entry.kind == "custom":
                entry.json.append(piece)
            elif entry.kind == "function" and piece:
                entry.streamed = True
                return writer.delta(entry.item, piece)
        return []  # citations and deltas this version does not know

    def _block_stop(self, writer: EventWriter, index: Any) -> list[bytes]:
        entry = self._blocks.pop(index, None)
        if entry is None:
            return []
        it = entry.item
        if entry.kind == "thinking":
            thought = "".join(it.buf)
            self._reasoning_chars += len(thought)
            enc = encode_reasoning([{"type": "thinking", "thinking": thought, "signature": entry.extra}])
            return writer.close(it, encrypted=enc)
        if entry.kind == "redacted":
            return writer.close(it, encrypted=encode_reasoning([{"type": "redacted_thinking",
                                                                 "data": entry.extra}]))
        out: list[bytes] = []
        if entry.kind == "text":
            out = self._flush(writer)
            self._pending = it
            return out
        if entry.kind == "custom":
            raw = "".join(entry.json)
            try:
                parsed: object = loads_exact(raw) if raw.strip() else {}
            except ValueError:
                parsed = raw
            out = writer.delta(it, custom_input_text(parsed) if not isinstance(parsed, str) else parsed)
        elif entry.kind == "function" and not entry.streamed:
            out = writer.delta(it, "{}")  # a call without arguments streams none; "{}" parses
        return out + writer.close(it)

    def finish(self) -> list[bytes]:
        return []  # a cut stream has no honest ending here; the pipeline reports the failure


def _index(data: dict[str, Any]) -> int:
    """A content block's index; anything but an integer (a malformed upstream event) matches no block."""
    index = data.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else -1

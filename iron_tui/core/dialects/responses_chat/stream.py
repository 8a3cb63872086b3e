"""OpenAI Chat Completions chunks → the Responses event sequence (`responses/events.py`).

Reasoning deltas (`reasoning_content` / `reasoning`) → a reasoning item streamed as raw reasoning
text; `content` → a message item; each tool call index → a function (or custom tool) call item. Tool
calls stay open until the choice finishes, so a provider that interleaves parallel calls still yields
whole items; a custom tool's `{"input": …}` arguments go out as one input delta when it closes.
The stream ends (response.completed / .incomplete) at `[DONE]`, after the usage chunk the request asked
for, or — when the upstream closes without `[DONE]` — in `finish()` if a finish_reason was seen.
"""

from __future__ import annotations

from typing import Any

from iron_tui.core.dialects.base import DONE_EVENT, RequestContext, UpstreamFormatError
from iron_tui.core.dialects.responses.events import EventWriter, OpenItem
from iron_tui.core.dialects.responses.output import id_source, obj_of, state_of, text_of
from iron_tui.core.dialects.responses_chat.response import (
    chat_reasoning,
    custom_input_of,
    incomplete_reason,
    usage_of,
)

__all__ = ["ChatToResponsesStream"]


class _Call:
    __slots__ = ("item", "kind", "parts")

    def __init__(self, item: OpenItem, kind: str) -> None:
        self.item = item
        self.kind = kind
        self.parts: list[str] = []  # custom tools: the arguments JSON so far


class ChatToResponsesStream:
    __slots__ = ("_calls", "_ctx", "_finish", "_reasoning", "_state", "_text", "_usage", "_writer", "done")

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx
        self._state = state_of(ctx)
        self._writer: EventWriter | None = None
        self._text: OpenItem | None = None
        self._reasoning: OpenItem | None = None
        self._calls: dict[Any, _Call] = {}
        self._finish: object = None
        self._usage: object = None
        self.done = False

    @property
    def response(self) -> dict[str, Any] | None:
        return self._writer.response if self._writer is not None else None

    def _start(self, chunk: dict[str, Any]) -> tuple[EventWriter, list[bytes]]:
        if self._writer is not None:
            return self._writer, []
        cid = chunk.get("id")
        ids = id_source(self._ctx, cid if isinstance(cid, str) else "")
        self._writer = EventWriter(self._state, self._ctx, ids("resp"), ids)
        return self._writer, self._writer.start()

    @property
    def next_sequence_number(self) -> int:
        """What an error frame the pipeline adds must carry (Responses events count from 0)."""
        return 0 if self._writer is None else self._writer.next_sequence_number

    def feed(self, event: str, data: dict[str, Any]) -> list[bytes]:
        if self.done:
            return []
        if event == DONE_EVENT:
            return self._end()
        if "error" in data:
            return []  # the pipeline turns upstream errors into the client's error frame
        writer, out = self._start(data)
        if isinstance(data.get("usage"), dict):
            self._usage = data["usage"]
        choices = data.get("choices")
        choice = obj_of(choices[0]) if isinstance(choices, list) and choices else {}
        delta = obj_of(choice.get("delta"))
        thought = chat_reasoning(delta)
        if thought:
            if self._reasoning is None:
                self._reasoning, opened = writer.open_reasoning(summary=False, raw=True)
                out += opened
            out += writer.delta(self._reasoning, thought)
        text = delta.get("content")
        if isinstance(text, str) and text:
            out += self._close_reasoning(writer)
            if self._text is None:
                self._text, opened = writer.open_message()
                out += opened
            out += writer.delta(self._text, text)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            out += self._tool_delta(writer, obj_of(call))
        if choice.get("finish_reason") is not None:
            self._finish = choice["finish_reason"]
        return out

    def _close_reasoning(self, writer: EventWriter) -> list[bytes]:
        if self._reasoning is None or self._reasoning.index not in writer.open:
            return []
        return writer.close(self._reasoning)

    def _tool_delta(self, writer: EventWriter, call: dict[str, Any]) -> list[bytes]:
        index = call.get("index")
        if index is None:  # servers that leave it out: a call with an id is a new one, else the last
            index = len(self._calls) if call.get("id") or not self._calls else next(reversed(self._calls))
        elif isinstance(index, bool) or not isinstance(index, int):
            raise UpstreamFormatError(f"a tool call index that is not an integer ({index!r})")
        fn = obj_of(call.get("function"))
        out: list[bytes] = []
        entry = self._calls.get(index)
        if entry is None:
            out += self._close_reasoning(writer)
            if self._text is not None:
                out += writer.close(self._text)
                self._text = None
            wire = text_of(fn.get("name"))
            call_id = text_of(call.get("id")) or writer.ids("call")
            name, namespace = self._state.tools.client_name(wire)
            kind = self._state.tools.kind_of(wire)
            item, opened = writer.open_call(kind, call_id, name, namespace)
            entry = self._calls[index] = _Call(item, kind)
            out += opened
        piece = fn.get("arguments")
        if isinstance(piece, str) and piece:
            if entry.kind == "custom":
                entry.parts.append(piece)
            else:
                out += writer.delta(entry.item, piece)
        return out

    def _end(self) -> list[bytes]:
        writer, out = self._start({})
        out += self._close_reasoning(writer)
        for entry in self._calls.values():
            if entry.kind == "custom":
                out += writer.delta(entry.item, custom_input_of("".join(entry.parts)))
            elif not entry.item.buf:
                out += writer.delta(entry.item, "{}")
        out += writer.finish(usage_of(self._usage), incomplete_reason(self._finish))
        self.done = True
        return out

    def finish(self) -> list[bytes]:
        # Some compatible servers close without [DONE]: a seen finish_reason still ends the response.
        return self._end() if self._finish is not None else []

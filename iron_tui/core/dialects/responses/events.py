"""The streamed Responses event sequence, the same for every provider a Responses client is served from.

    response.created → response.in_progress
    per output item:  response.output_item.added
        message:      content_part.added → output_text.delta* → output_text.done → content_part.done
        reasoning:    reasoning_summary_part.added → reasoning_summary_text.delta* → …text.done → …part.done
                      (raw reasoning instead: content_part.added → reasoning_text.delta* → …done → …done)
        function:     function_call_arguments.delta* → function_call_arguments.done
        custom tool:  custom_tool_call_input.delta* → custom_tool_call_input.done
                      response.output_item.done
    response.completed | response.incomplete (with usage)

Every event carries `type` and a `sequence_number` counting from 0, as the SDKs, the Agents SDK and Codex
expect (shapes checked against the SDK's event types and a recorded OpenAI stream). A provider's stream
translator only calls `open_*`, `delta`, `close` and `finish`; several items may be open at once (chat
providers may interleave parallel tool calls), each event names its `output_index`.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from iron_tui.core.dialects.base import RequestContext
from iron_tui.core.dialects.responses.output import (
    ResponsesState,
    custom_call_item,
    function_call_item,
    message_item,
    reasoning_item,
    response_object,
)

__all__ = ["EventWriter", "OpenItem"]

Kind = Literal["message", "reasoning", "function", "custom"]


class OpenItem:
    """An output item being streamed."""

    __slots__ = ("buf", "index", "item", "kind", "raw", "started_part", "summary")

    def __init__(self, index: int, kind: Kind, item: dict[str, Any], *, summary: bool = False,
                 raw: bool = False) -> None:
        self.index = index
        self.kind = kind
        self.item = item
        self.buf: list[str] = []
        self.summary = summary  # reasoning: stream the text as a summary
        self.raw = raw  # reasoning: stream the text as raw reasoning_text content
        self.started_part = False


class EventWriter:
    __slots__ = ("_ctx", "_seq", "_state", "done", "ids", "open", "output", "response", "response_id")

    def __init__(self, state: ResponsesState, ctx: RequestContext, response_id: str, ids: Any) -> None:
        self._state = state
        self._ctx = ctx
        self._seq = 0
        self.ids = ids  # prefix -> new id
        self.response_id = response_id
        self.output: list[dict[str, Any]] = []  # finished items, by output_index
        self.open: dict[int, OpenItem] = {}
        self.response: dict[str, Any] | None = None  # the final response object, once finished
        self.done = False

    @property
    def next_sequence_number(self) -> int:
        return self._seq

    def _ev(self, kind: str, fields: dict[str, Any]) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def start(self) -> list[bytes]:
        pending = response_object(self._state, self._ctx, self.response_id, status="in_progress", output=[],
                                  usage=None)
        return [self._ev("response.created", {"response": pending}),
                self._ev("response.in_progress", {"response": pending})]

    # --- items ------------------------------------------------------------------------------------

    def _open(self, kind: Kind, item: dict[str, Any], **flags: bool) -> tuple[OpenItem, list[bytes]]:
        it = OpenItem(len(self.output), kind, item, **flags)
        self.output.append(item)
        self.open[it.index] = it
        return it, [self._ev("response.output_item.added", {"item": item, "output_index": it.index})]

    def open_message(self) -> tuple[OpenItem, list[bytes]]:
        it, out = self._open("message", message_item(self.ids("msg"), "", status="in_progress"))
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        out.append(self._ev("response.content_part.added", {"content_index": 0, "item_id": it.item["id"],
                                                            "output_index": it.index, "part": part}))
        return it, out

    def open_reasoning(self, *, summary: bool, raw: bool = False) -> tuple[OpenItem, list[bytes]]:
        item = reasoning_item(self.ids("rs"), summary=None, encrypted=None)
        return self._open("reasoning", item, summary=summary, raw=raw)

    def open_call(self, kind: Literal["function", "custom"], call_id: str, name: str,
                  namespace: str | None) -> tuple[OpenItem, list[bytes]]:
        if kind == "function":
            item = function_call_item(self.ids("fc"), call_id, name, namespace, "", status="in_progress")
        else:
            item = custom_call_item(self.ids("ctc"), call_id, name, namespace, "", status="in_progress")
        return self._open(kind, item)

    def delta(self, it: OpenItem, text: str) -> list[bytes]:
        if not text:
            return []
        it.buf.append(text)
        ids = {"item_id": it.item["id"], "output_index": it.index}
        if it.kind == "message":
            return [self._ev("response.output_text.delta",
                             {"content_index": 0, "delta": text, **ids, "logprobs": []})]
        if it.kind == "function":
            return [self._ev("response.function_call_arguments.delta", {"delta": text, **ids})]
        if it.kind == "custom":
            return [self._ev("response.custom_tool_call_input.delta", {"delta": text, **ids})]
        out: list[bytes] = []
        if it.summary:
            if not it.started_part:
                it.started_part = True
                out.append(self._ev("response.reasoning_summary_part.added",
                                    {**ids, "part": {"type": "summary_text", "text": ""}, "summary_index": 0}))
            out.append(self._ev("response.reasoning_summary_text.delta", {**ids, "summary_index": 0,
                                                                           "delta": text}))
        elif it.raw:
            if not it.started_part:
                it.started_part = True
                out.append(self._ev("response.content_part.added", {
                    "content_index": 0, **ids, "part": {"type": "reasoning_text", "text": ""}}))
            out.append(self._ev("response.reasoning_text.delta", {"content_index": 0, "delta": text, **ids}))
        return out

    def close(self, it: OpenItem, *, encrypted: str | None = None, status: str = "completed") -> list[bytes]:
        """Finish an item (`encrypted`: a reasoning item's encrypted_content)."""
        self.open.pop(it.index, None)
        text = "".join(it.buf)
        ids = {"item_id": it.item["id"], "output_index": it.index}
        out: list[bytes] = []
        item = it.item
        if it.kind == "message":
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
            out.append(self._ev("response.output_text.done", {"content_index": 0, **ids, "logprobs": [],
                                                              "text": text}))
            out.append(self._ev("response.content_part.done", {"content_index": 0, **ids, "part": part}))
            item = message_item(item["id"], text, status=status)
        elif it.kind == "function":
            out.append(self._ev("response.function_call_arguments.done", {"arguments": text, **ids}))
            item = {**item, "status": status, "arguments": text}
        elif it.kind == "custom":
            out.append(self._ev("response.custom_tool_call_input.done", {"input": text, **ids}))
            item = {**item, "status": status, "input": text}
        else:
            if it.started_part and it.summary:
                part = {"type": "summary_text", "text": text}
                out.append(self._ev("response.reasoning_summary_text.done",
                                    {**ids, "summary_index": 0, "text": text}))
                out.append(self._ev("response.reasoning_summary_part.done",
                                    {**ids, "part": part, "summary_index": 0}))
            elif it.started_part and it.raw:
                part = {"type": "reasoning_text", "text": text}
                out.append(self._ev("response.reasoning_text.done", {"content_index": 0, **ids, "text": text}))
                out.append(self._ev("response.content_part.done", {"content_index": 0, **ids, "part": part}))
            item = reasoning_item(item["id"], summary=text if it.summary else None, encrypted=encrypted,
                                  text=text if it.raw else None)
        self.output[it.index] = item
        out.append(self._ev("response.output_item.done", {"item": item, "output_index": it.index}))
        return out

    def finish(self, usage: dict[str, Any] | None, incomplete_reason: str | None = None) -> list[bytes]:
        """Close what is still open and end the stream with response.completed (or .incomplete)."""
        out: list[bytes] = []
        status = "incomplete" if incomplete_reason else "completed"
        for index in sorted(self.open):
            out.extend(self.close(self.open[index], status="incomplete" if incomplete_reason else "completed"))
        self.response = response_object(self._state, self._ctx, self.response_id, status=status,
                                        output=self.output, usage=usage, incomplete_reason=incomplete_reason)
        out.append(self._ev("response.incomplete" if incomplete_reason else "response.completed",
                            {"response": self.response}))
        self.done = True
        return out

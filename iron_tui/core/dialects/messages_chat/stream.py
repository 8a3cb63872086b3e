"""OpenAI `chat.completion.chunk` stream → the Anthropic Messages event sequence.

message_start (at the first chunk) → per block content_block_start / _delta / _stop (thinking from
`reasoning_content`/`reasoning`, text from `content`, one tool_use per tool call with
`input_json_delta` pieces) → message_delta (stop_reason, full usage) → message_stop.

OpenAI sends the finish_reason in one chunk and the usage in a later one (`choices: []`, asked for with
`stream_options.include_usage`); the closing events go out once both arrived. An upstream that never
sends usage is closed at `data: [DONE]` (`feed(DONE_EVENT, {})`), or by `finish()` at EOF, with the usage
it did report (zero otherwise). A stream that ended before `[DONE]` and any finish_reason gets nothing
from `finish()`: the pipeline reports the truncation.
"""

from __future__ import annotations

from typing import Any

from iron_tui.core.dialects.base import DONE_EVENT, RequestContext, UpstreamFormatError, sse_event
from iron_tui.core.dialects.messages_chat.response import anthropic_usage, message_id_for, stop_reason_for

__all__ = ["ChatToMessagesStream"]


class ChatToMessagesStream:
    __slots__ = ("_ctx", "_finish", "_index", "_open", "_saw_tool", "_tools", "_usage", "done", "started")

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx
        self._index = 0  # the next Anthropic content block index
        self._open: tuple[str, object] | None = None  # (kind, key) of the block being streamed
        self._tools: dict[object, int] = {}  # OpenAI tool-call key → Anthropic block index
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._saw_tool = False
        self.started = False
        self.done = False

    # -- blocks ----------------------------------------------------------------------------------

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(sse_event("content_block_stop", {"type": "content_block_stop", "index": self._index - 1}))
            self._open = None

    def _start_block(self, kind: str, key: object, block: dict[str, Any], out: list[bytes]) -> int:
        self._close_block(out)
        index = self._index
        self._index += 1
        self._open = (kind, key)
        out.append(sse_event("content_block_start",
                             {"type": "content_block_start", "index": index, "content_block": block}))
        return index

    def _delta(self, index: int, delta: dict[str, Any], out: list[bytes]) -> None:
        out.append(sse_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))

    def _thinking(self, text: str, out: list[bytes]) -> None:
        if self._open is None or self._open[0] != "thinking":
            self._start_block("thinking", None, {"type": "thinking", "thinking": "", "signature": ""}, out)
        self._delta(self._index - 1, {"type": "thinking_delta", "thinking": text}, out)

    def _text(self, text: str, out: list[bytes]) -> None:
        if self._open is None or self._open[0] != "text":
            self._start_block("text", None, {"type": "text", "text": ""}, out)
        self._delta(self._index - 1, {"type": "text_delta", "text": text}, out)

    def _tool_call(self, call: object, position: int, out: list[bytes]) -> None:
        if not isinstance(call, dict):
            raise UpstreamFormatError("a streamed tool call is not an object")
        function = call.get("function")
        if function is None:
            function = {}
        if not isinstance(function, dict):
            raise UpstreamFormatError("a streamed tool call's function is not an object")
        raw_index, call_id = call.get("index"), call.get("id")
        if isinstance(raw_index, int) and not isinstance(raw_index, bool):
            key: object = raw_index
        elif isinstance(call_id, str) and call_id:
            key = call_id
        else:
            key = self._open[1] if self._open is not None and self._open[0] == "tool" else position
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            raise UpstreamFormatError("streamed tool-call arguments are not text")
        index = self._tools.get(key)
        if index is None:
            name = function.get("name")
            if not isinstance(call_id, str) or not call_id:
                call_id = self._ctx.new_id("toolu") if self._ctx.new_id is not None else f"toolu_{self._index}"
            block = {"type": "tool_use", "id": call_id, "name": name if isinstance(name, str) else "",
                     "input": {}}
            index = self._start_block("tool", key, block, out)
            self._tools[key] = index
            self._saw_tool = True
        if arguments:
            self._delta(index, {"type": "input_json_delta", "partial_json": arguments}, out)

    # -- events ----------------------------------------------------------------------------------

    def _message_start(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        self.started = True
        message: dict[str, Any] = {
            "id": message_id_for(chunk.get("id"), self._ctx),
            "type": "message",
            "role": "assistant",
            "model": self._ctx.client_model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(chunk.get("usage")),
        }
        out.append(sse_event("message_start", {"type": "message_start", "message": message}))

    def _choice(self, choice: object, out: list[bytes]) -> None:
        if not isinstance(choice, dict):
            raise UpstreamFormatError("a stream choice is not an object")
        if choice.get("index", 0) != 0:
            return  # n > 1 is never requested; ignore stray choices
        delta = choice.get("delta")
        if delta is not None:
            if not isinstance(delta, dict):
                raise UpstreamFormatError("a stream delta is not an object")
            for name in ("reasoning_content", "reasoning"):
                reasoning = delta.get(name)
                if isinstance(reasoning, str) and reasoning:
                    self._thinking(reasoning, out)
                    break
            content = delta.get("content")
            if content is not None and not isinstance(content, str):
                raise UpstreamFormatError("a stream delta's content is not text")
            if content:
                self._text(content, out)
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self._text(refusal, out)
                self._finish = self._finish or "content_filter"
            calls = delta.get("tool_calls")
            if calls is not None:
                if not isinstance(calls, list):
                    raise UpstreamFormatError("a stream delta's tool_calls is not a list")
                for position, call in enumerate(calls):
                    self._tool_call(call, position, out)
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            self._finish = finish

    def _close(self, out: list[bytes]) -> None:
        self._close_block(out)
        stop_reason = stop_reason_for(self._finish)
        if self._saw_tool and stop_reason == "end_turn":
            stop_reason = "tool_use"
        out.append(sse_event("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": anthropic_usage(self._usage),
        }))
        out.append(sse_event("message_stop", {"type": "message_stop"}))
        self.done = True

    def feed(self, event: str, data: dict[str, Any]) -> list[bytes]:
        if self.done or not isinstance(data, dict) or "error" in data:
            return []  # an upstream error object is the pipeline's to report
        out: list[bytes] = []
        if not self.started:
            self._message_start(data, out)
        if event == DONE_EVENT:  # `data: [DONE]`: the upstream's normal end, whatever it reported before
            self._close(out)
            return out
        usage = data.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        elif usage is not None:
            raise UpstreamFormatError("a stream chunk's usage is not an object")
        choices = data.get("choices")
        if choices is not None:
            if not isinstance(choices, list):
                raise UpstreamFormatError("a stream chunk's choices is not a list")
            for choice in choices:
                self._choice(choice, out)
        if self._finish is not None and self._usage is not None:
            self._close(out)
        return out

    def finish(self) -> list[bytes]:
        if self.done or not self.started or self._finish is None:
            return []
        out: list[bytes] = []
        self._close(out)
        return out

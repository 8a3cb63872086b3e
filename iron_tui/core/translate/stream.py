"""Anthropic Messages SSE events → OpenAI `chat.completion.chunk` dicts, one event at a time.

The translator is a small state machine fed with already-parsed SSE events; it never touches a socket.
The proxy serialises each returned chunk as ``data: <json>\\n\\n`` and, once `done` is True, sends
``data: [DONE]``. Chunks are built as fresh small dicts (no copying of upstream payloads) because this
runs once per streamed token.
"""

from __future__ import annotations

from typing import Any

from iron_tui.core.translate.errors import UpstreamFormatError
from iron_tui.core.translate.response import (
    anthropic_usage_to_openai,
    finish_reason_for,
    openai_id_for,
    tool_arguments_json,
)

__all__ = ["AnthropicStreamTranslator"]


def _field(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UpstreamFormatError(f"an upstream stream event's '{name}' is not an object")
    return value


def _index(data: dict[str, Any]) -> int:
    index = data.get("index")
    if isinstance(index, int) and not isinstance(index, bool):
        return index
    if index is None:
        return -1
    raise UpstreamFormatError("an upstream stream event's 'index' is not an integer")

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class AnthropicStreamTranslator:
    """Translate one Anthropic streaming response into OpenAI chunks.

    `feed(event, data)` returns the chunks to send *now*. At ``message_stop`` it appends the finish chunk
    if `message_delta` never provided one, and then calls `final_chunks()` itself, so the caller must not
    call `final_chunks()` again after a normal end (it would return ``[]`` anyway: it emits once).
    If the upstream stream ends without ``message_stop``, the caller may call `final_chunks()` to still
    deliver the usage chunk.

    An ``error`` event yields no chunk: it is stored in `error` (the Anthropic error object) for the
    caller, who either answers with `anthropic_stream_error_status(error)` (nothing sent yet) or sends
    ``data: {"error": ...}`` built by `anthropic_error_to_openai` and closes.
    """

    __slots__ = (
        "_created",
        "_final_sent",
        "_finish_sent",
        "_id",
        "_include_usage",
        "_model",
        "_next_thinking",
        "_next_tool",
        "_thinking",
        "_tool_args_sent",
        "_tool_blocks",
        "done",
        "error",
        "finish_reason",
        "started",
        "usage",
    )

    def __init__(self, *, created: int, include_usage: bool) -> None:
        self._created = created
        self._include_usage = include_usage
        self._id = "chatcmpl-unknown"
        self._model = ""
        self._next_tool = 0
        self._next_thinking = 0
        # Anthropic block index → (thinking text pieces, signature) of a thinking block being streamed.
        self._thinking: dict[int, tuple[list[str], str]] = {}
        # Anthropic content-block index → OpenAI tool-call index k (k counts tool calls only, from 0).
        self._tool_blocks: dict[int, int] = {}
        # Whether any non-empty arguments text went out for tool call k (else "{}" is sent at block stop).
        self._tool_args_sent: list[bool] = []
        self._finish_sent = False
        self._final_sent = False
        self.started = False  # True once the first chunk was produced
        self.done = False  # True after message_stop
        self.error: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.usage: dict[str, int] = dict.fromkeys(_USAGE_FIELDS, 0)

    # -- helpers ---------------------------------------------------------------------------------------

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self._include_usage:
            # OpenAI's contract: with include_usage every chunk carries "usage": null except the last.
            chunk["usage"] = None
        return chunk

    def _fold_usage(self, usage: object) -> None:
        # Anthropic usage values are cumulative: always take the latest value, never add.
        if not isinstance(usage, dict):
            return
        folded = self.usage
        for field in _USAGE_FIELDS:
            value = usage.get(field)
            if isinstance(value, int) and not isinstance(value, bool):
                folded[field] = value

    # -- public ----------------------------------------------------------------------------------------

    def feed(self, event: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Chunks to emit for one Anthropic SSE event (`event` may be "" or "message" when only
        `data.type` says what it is). Malformed event data is an UpstreamFormatError."""
        if self.done:
            return []
        if not isinstance(data, dict):
            raise UpstreamFormatError("an upstream stream event is not a JSON object")
        kind = data.get("type") if event in ("", "message") else event
        if kind == "content_block_delta":
            return self._block_delta(_field(data, "delta"), _index(data))
        if kind == "message_start":
            message = _field(data, "message")
            self._id = openai_id_for(message.get("id"))
            model = message.get("model")
            self._model = model if isinstance(model, str) else ""
            self._fold_usage(message.get("usage"))
            self.started = True
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(_field(data, "content_block"), _index(data))
        if kind == "content_block_stop":
            return self._block_stop(_index(data))
        if kind == "message_delta":
            self._fold_usage(data.get("usage"))
            if self._finish_sent:
                return []
            delta = data.get("delta")
            self.finish_reason = finish_reason_for(delta.get("stop_reason") if isinstance(delta, dict) else None)
            self._finish_sent = True
            return [self._chunk({}, self.finish_reason)]
        if kind == "message_stop":
            self.done = True
            out: list[dict[str, Any]] = []
            if not self._finish_sent:
                self.finish_reason = "stop"
                self._finish_sent = True
                out.append(self._chunk({}, "stop"))
            out.extend(self.final_chunks())
            return out
        if kind == "error":
            inner = data.get("error")
            self.error = inner if isinstance(inner, dict) else data
            return []
        return []  # ping and event types this version does not know

    def _block_start(self, block: dict[str, Any], index: int) -> list[dict[str, Any]]:
        btype = block.get("type")
        if btype == "tool_use":
            k = self._next_tool
            self._next_tool += 1
            self._tool_blocks[index] = k
            initial = block.get("input")
            arguments = tool_arguments_json(initial) if initial else ""
            self._tool_args_sent.append(bool(arguments))
            call_id, name = block.get("id"), block.get("name")
            call = {
                "index": k,
                "id": call_id if isinstance(call_id, str) else "",
                "type": "function",
                "function": {"name": name if isinstance(name, str) else "", "arguments": arguments},
            }
            return [self._chunk({"tool_calls": [call]})]
        if btype == "text":
            text = block.get("text")
            return [self._chunk({"content": text})] if isinstance(text, str) and text else []
        if btype == "thinking":
            text = block.get("thinking")
            signature = block.get("signature")
            self._thinking[index] = ([text] if isinstance(text, str) and text else [],
                                     signature if isinstance(signature, str) else "")
            return [self._chunk({"reasoning_content": text})] if isinstance(text, str) and text else []
        if btype == "redacted_thinking":
            data = block.get("data")
            return [self._thinking_block({"type": "redacted_thinking", "data": data if isinstance(data, str) else ""})]
        return []

    def _block_delta(self, delta: dict[str, Any], index: int) -> list[dict[str, Any]]:
        dtype = delta.get("type")
        if dtype == "text_delta":
            text = delta.get("text")
            return [self._chunk({"content": text})] if isinstance(text, str) and text else []
        if dtype == "input_json_delta":
            k = self._tool_blocks.get(index)
            piece = delta.get("partial_json")
            if k is None or not isinstance(piece, str) or not piece:
                return []  # input of a non-function block (e.g. server tool), or an empty piece
            self._tool_args_sent[k] = True
            return [self._chunk({"tool_calls": [{"index": k, "function": {"arguments": piece}}]})]
        thinking = self._thinking.get(index)
        if dtype == "thinking_delta" and thinking is not None:
            text = delta.get("thinking")
            if not isinstance(text, str) or not text:
                return []
            thinking[0].append(text)
            return [self._chunk({"reasoning_content": text})]
        if dtype == "signature_delta" and thinking is not None:
            signature = delta.get("signature")
            if isinstance(signature, str):
                self._thinking[index] = (thinking[0], thinking[1] + signature)
        return []  # citations_delta, unknown deltas

    def _block_stop(self, index: int) -> list[dict[str, Any]]:
        k = self._tool_blocks.get(index)
        if k is not None and not self._tool_args_sent[k]:
            # A tool without arguments streams no JSON at all; send "{}" so the accumulated
            # arguments parse, exactly as the non-streaming translation renders the empty input.
            self._tool_args_sent[k] = True
            return [self._chunk({"tool_calls": [{"index": k, "function": {"arguments": "{}"}}]})]
        thinking = self._thinking.pop(index, None)
        if thinking is not None:
            texts, signature = thinking
            return [self._thinking_block({"type": "thinking", "thinking": "".join(texts), "signature": signature})]
        return []

    def _thinking_block(self, block: dict[str, Any]) -> dict[str, Any]:
        # The whole block once it is complete, `index` = its position among this reply's thinking blocks
        # (the openai SDK's stream accumulator merges list entries by index).
        k = self._next_thinking
        self._next_thinking += 1
        return self._chunk({"thinking_blocks": [{"index": k, **block}]})

    def final_chunks(self) -> list[dict[str, Any]]:
        """The usage chunk (``choices: []``) if the client asked for usage; emitted at most once."""
        if self._final_sent or not self._include_usage:
            return []
        self._final_sent = True
        return [
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": anthropic_usage_to_openai(self.usage),
            }
        ]

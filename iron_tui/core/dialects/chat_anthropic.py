"""OpenAI Chat Completions client → Anthropic Messages provider: the pair over `core/translate/`."""

from __future__ import annotations

from typing import Any

from iron_tui.core.dialects.base import DONE_EVENT, RequestContext, Translated, sse_data
from iron_tui.core.translate import (
    AnthropicStreamTranslator,
    anthropic_to_openai_response,
    openai_to_anthropic_request,
)

_DONE = b"data: [DONE]\n\n"


class ChatToAnthropic:
    client = "openai.chat"
    provider = "anthropic"

    def request(self, body: dict[str, Any], ctx: RequestContext) -> Translated:
        tr = openai_to_anthropic_request(body, default_max_tokens=ctx.max_output_tokens or 4096)
        tr.body["model"] = ctx.model
        return Translated(tr.body, "/v1/messages", include_usage=tr.include_usage, warnings=tr.warnings)

    def response(self, body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return anthropic_to_openai_response(body, created=ctx.created)

    def stream(self, ctx: RequestContext) -> _Stream:
        return _Stream(ctx)


class _Stream:
    __slots__ = ("_tr", "done")

    def __init__(self, ctx: RequestContext) -> None:
        # The client's include_usage decides whether it gets the usage chunk; it is on ctx via the request.
        self._tr = AnthropicStreamTranslator(created=ctx.created, include_usage=ctx.include_usage)
        self.done = False

    def feed(self, event: str, data: dict[str, Any]) -> list[bytes]:
        if event == DONE_EVENT:
            return []
        out = [sse_data(c) for c in self._tr.feed(event, data)]
        if self._tr.done:
            out.append(_DONE)
            self.done = True
        return out

    def finish(self) -> list[bytes]:
        return [sse_data(c) for c in self._tr.final_chunks()]


PAIR = ChatToAnthropic()

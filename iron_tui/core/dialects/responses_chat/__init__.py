"""OpenAI Responses client → OpenAI Chat Completions provider: Responses clients (Codex, the Agents SDK)
on chat-only OpenAI-compatible servers. `PAIR` is what the registry selects."""

from __future__ import annotations

from typing import Any

from iron_tui.core.dialects.base import ClientApi, ProviderApi, RequestContext, Translated
from iron_tui.core.dialects.responses_chat.request import translate_request
from iron_tui.core.dialects.responses_chat.response import translate_response
from iron_tui.core.dialects.responses_chat.stream import ChatToResponsesStream

__all__ = ["PAIR", "ChatToResponsesStream", "ResponsesToChat"]


class ResponsesToChat:
    client: ClientApi = "openai.responses"
    provider: ProviderApi = "openai"

    def request(self, body: dict[str, Any], ctx: RequestContext) -> Translated:
        return translate_request(body, ctx)

    def response(self, body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return translate_response(body, ctx)

    def stream(self, ctx: RequestContext) -> ChatToResponsesStream:
        return ChatToResponsesStream(ctx)


PAIR = ResponsesToChat()

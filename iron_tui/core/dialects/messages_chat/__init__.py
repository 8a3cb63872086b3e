"""Anthropic Messages clients served by an OpenAI Chat Completions provider (a non-Claude model on
/v1/messages): `PAIR` implements the contract in `core/dialects/base.py`."""

from __future__ import annotations

from typing import Any

from iron_tui.core.dialects.base import ClientApi, ProviderApi, RequestContext, Translated
from iron_tui.core.dialects.messages_chat.count_tokens import ESTIMATE_HEADER, estimate_input_tokens
from iron_tui.core.dialects.messages_chat.request import messages_to_chat_request
from iron_tui.core.dialects.messages_chat.response import chat_to_message_response
from iron_tui.core.dialects.messages_chat.stream import ChatToMessagesStream

__all__ = ["ESTIMATE_HEADER", "PAIR", "MessagesToChat", "estimate_input_tokens"]


class MessagesToChat:
    client: ClientApi = "anthropic.messages"
    provider: ProviderApi = "openai"

    def request(self, body: dict[str, Any], ctx: RequestContext) -> Translated:
        return messages_to_chat_request(body, ctx)

    def response(self, body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return chat_to_message_response(body, ctx)

    def stream(self, ctx: RequestContext) -> ChatToMessagesStream:
        return ChatToMessagesStream(ctx)


PAIR = MessagesToChat()

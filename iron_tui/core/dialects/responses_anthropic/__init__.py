"""OpenAI Responses client → Anthropic Messages provider: Codex, the Agents SDK and `client.responses`
on Claude models. `PAIR` is what the registry selects."""

from __future__ import annotations

from typing import Any

from iron_tui.core.dialects.base import ClientApi, ProviderApi, RequestContext, Translated
from iron_tui.core.dialects.responses_anthropic.request import translate_request
from iron_tui.core.dialects.responses_anthropic.response import translate_response
from iron_tui.core.dialects.responses_anthropic.stream import AnthropicToResponsesStream

__all__ = ["PAIR", "AnthropicToResponsesStream", "ResponsesToAnthropic"]


class ResponsesToAnthropic:
    client: ClientApi = "openai.responses"
    provider: ProviderApi = "anthropic"

    def request(self, body: dict[str, Any], ctx: RequestContext) -> Translated:
        return translate_request(body, ctx)

    def response(self, body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return translate_response(body, ctx)

    def stream(self, ctx: RequestContext) -> AnthropicToResponsesStream:
        return AnthropicToResponsesStream(ctx)


PAIR = ResponsesToAnthropic()

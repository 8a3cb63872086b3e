"""Pure OpenAI Chat Completions ⇄ Anthropic Messages translation (no I/O; see reference/translation.md).

The proxy calls:
- `openai_to_anthropic_request(body)` → `TranslatedRequest` (raises `TranslationError` → 400),
- `anthropic_to_openai_response(message, created=...)` for non-streaming replies,
- `AnthropicStreamTranslator(created=..., include_usage=...).feed(event, data)` per upstream SSE event,
- `anthropic_error_to_openai(status, body)` / `anthropic_stream_error_status(error)` for failures.
"""

from __future__ import annotations

from iron_tui.core.translate.errors import (
    TranslationError,
    anthropic_error_to_openai,
    anthropic_stream_error_status,
    openai_error_type_for_status,
)
from iron_tui.core.translate.request import TranslatedRequest, openai_to_anthropic_request
from iron_tui.core.translate.response import (
    anthropic_to_openai_response,
    anthropic_usage_to_openai,
    finish_reason_for,
)
from iron_tui.core.translate.stream import AnthropicStreamTranslator

__all__ = [
    "AnthropicStreamTranslator",
    "TranslatedRequest",
    "TranslationError",
    "anthropic_error_to_openai",
    "anthropic_stream_error_status",
    "anthropic_to_openai_response",
    "anthropic_usage_to_openai",
    "finish_reason_for",
    "openai_error_type_for_status",
    "openai_to_anthropic_request",
]

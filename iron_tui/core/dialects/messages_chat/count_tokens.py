"""`POST /v1/messages/count_tokens` for a model that is not Claude: an honest estimate, marked as one.

No provider counts tokens for Anthropic-shaped bodies, and iron-tui downloads no tokenizer, so the
count is an estimate: UTF-8 bytes / 4 of every text the model would read (system, messages, tool
calls and results, tool definitions as JSON), plus the per-message and per-tool framing OpenAI
documents (3-4 tokens a message) and a fixed cost per image (765 tokens: a 1024×1024 image at high
detail on gpt-4o) or document page guess. English BPE text averages ~4.5 bytes a token, so the
estimate runs a little high for English and close for code and other scripts. The pipeline answers
with `{"input_tokens": N}` plus the header `ESTIMATE_HEADER: "estimate"` so callers can tell.
"""

from __future__ import annotations

from typing import Any

from iron_tui.core.bounded_json import dumps_text
from iron_tui.core.dialects.base import TranslationError

__all__ = ["ESTIMATE_HEADER", "estimate_input_tokens"]

ESTIMATE_HEADER = "x-iron-token-count"
BYTES_PER_TOKEN = 4
PER_MESSAGE_TOKENS = 4
PER_REQUEST_TOKENS = 3
PER_TOOL_TOKENS = 10
IMAGE_TOKENS = 765
DOCUMENT_TOKENS = 1_500  # a PDF given as base64: its size says little about its text


def _bytes(value: object) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "replace"))
    try:
        return len(dumps_text(value).encode())
    except ValueError:
        return 0


def _content_tokens(content: object, budget: list[int]) -> int:
    """Tokens of a content value; `budget` bounds the walk (a hostile body cannot make it quadratic)."""
    if isinstance(content, str):
        return -(-_bytes(content) // BYTES_PER_TOKEN)
    if not isinstance(content, list):
        return 0
    tokens = 0
    for block in content:
        budget[0] -= 1
        if budget[0] < 0 or not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            tokens += _content_tokens(block.get("text"), budget)
        elif kind == "image":
            tokens += IMAGE_TOKENS
        elif kind == "document":
            source = block.get("source")
            data = source.get("data") if isinstance(source, dict) else None
            is_text = isinstance(source, dict) and source.get("type") == "text"
            tokens += _content_tokens(data, budget) if is_text else DOCUMENT_TOKENS
        elif kind == "tool_use":
            tokens += -(-(_bytes(block.get("name")) + _bytes(block.get("input"))) // BYTES_PER_TOKEN)
        elif kind == "tool_result":
            tokens += _content_tokens(block.get("content"), budget)
        elif kind == "thinking":
            continue  # earlier reasoning is not sent to the model again
        else:
            tokens += -(-_bytes(block) // BYTES_PER_TOKEN)
    return tokens


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """Estimated input tokens of an Anthropic count_tokens body (raises TranslationError if malformed)."""
    if not isinstance(body, dict):
        raise TranslationError("the request body must be a JSON object", None, "invalid_request_error")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise TranslationError("messages: Field required", "messages", "invalid_request_error")
    budget = [100_000]
    tokens = PER_REQUEST_TOKENS + _content_tokens(body.get("system"), budget)
    for message in messages:
        if isinstance(message, dict):
            tokens += PER_MESSAGE_TOKENS + _content_tokens(message.get("content"), budget)
    tools = body.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, dict):
                tokens += PER_TOOL_TOKENS + -(-_bytes(tool) // BYTES_PER_TOKEN)
    return tokens

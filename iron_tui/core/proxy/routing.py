"""Which provider serves a model, by name. Pure and cheap: called on every request."""

from __future__ import annotations

_OPENAI_PREFIXES = ("gpt", "o1", "o3", "o4", "chatgpt", "text-embedding", "davinci", "babbage", "omni-moderation")


def provider_for_model(model: str) -> str | None:
    """`claude*` → anthropic; OpenAI families → openai; anything else → None (caller decides)."""
    m = model.lower()
    if m.startswith("claude"):
        return "anthropic"
    if m.startswith(_OPENAI_PREFIXES):
        return "openai"
    return None


PROVIDER_NAMES = {"openai": "OpenAI", "anthropic": "Anthropic"}
KEY_HINTS = {
    "openai": "--openai-key or OPENAI_API_KEY",
    "anthropic": "--anthropic-key or ANTHROPIC_API_KEY",
}


"""What the Anthropic → OpenAI translation needs to know about the target model's family."""

from __future__ import annotations

import re

__all__ = ["is_openai_family", "is_reasoning_model"]

# OpenAI's own chat models (DESIGN.md §3 routing). Other names reach OpenAI-compatible servers
# (Ollama, vLLM, Groq…), whose chat templates often refuse system messages after the first turn.
_OPENAI_FAMILY = re.compile(r"^(gpt-|o\d|chatgpt-|ft:|codex-|computer-use-)", re.IGNORECASE)
# Reasoning models: `reasoning_effort`, no temperature/top_p/stop (OpenAI answers 400 "Unsupported
# parameter" for them). gpt-5 chat variants (`gpt-5-chat-latest`) are not reasoning models.
_REASONING = re.compile(r"^(ft:)?(o\d|gpt-5)", re.IGNORECASE)


def is_openai_family(model: str) -> bool:
    return bool(_OPENAI_FAMILY.match(model))


def is_reasoning_model(model: str) -> bool:
    return bool(_REASONING.match(model)) and "-chat" not in model.lower()

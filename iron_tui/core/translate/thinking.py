"""Extended thinking through the OpenAI Chat Completions → Anthropic translation, both ways.

Request:
- `thinking` (Anthropic's own object, e.g. sent with the openai SDK's `extra_body`) is passed through.
- `reasoning_effort` → `thinking: {type: enabled, budget_tokens}`: low 1,024, medium 4,096, high 16,384,
  xhigh 32,768 tokens, always below `max_tokens` (which includes thinking on Anthropic, as
  `max_completion_tokens` includes reasoning on OpenAI): at most three quarters of the client's cap;
  with no client cap, `max_tokens` grows to budget + 4,096 so the answer keeps its room. A budget under
  Anthropic's minimum (1,024) means no thinking (warning). `none` / `minimal` → no thinking.
- With thinking on, Anthropic refuses temperature ≠ 1, top_k, top_p < 0.95 and forced tool use: those
  sampling values are not sent (warning); a forced tool_choice turns effort-derived thinking off.
- Assistant messages' `thinking_blocks` (LiteLLM's convention: `[{type: thinking, thinking, signature}
  | {type: redacted_thinking, data}]`) become the turn's leading thinking blocks, signatures intact, so a
  multi-turn tool loop with thinking works. `reasoning_content` alone is not sent back (without its
  signature Anthropic would refuse it).

Response: thinking blocks → `message.reasoning_content` (the text; the field LiteLLM, DeepSeek and
LangChain read) and `message.thinking_blocks` (each block whole, redacted ones opaque). Streaming: each
`thinking_delta` → `delta.reasoning_content`; at the block's end one `delta.thinking_blocks` entry with
the whole block and its signature (`index` = the thinking block's position, so the openai SDK's
accumulator appends it).
"""

from __future__ import annotations

from typing import Any

from iron_tui.core.bounded_json import nesting_exceeds
from iron_tui.core.translate.errors import TranslationError

__all__ = [
    "EFFORT_BUDGETS",
    "MIN_BUDGET",
    "constrain_sampling",
    "history_thinking_blocks",
    "response_thinking_fields",
    "thinking_config",
]

EFFORT_BUDGETS = {"low": 1024, "medium": 4096, "high": 16_384, "xhigh": 32_768}
NO_THINKING_EFFORTS = frozenset({"none", "minimal"})
MIN_BUDGET = 1024  # Anthropic's minimum budget_tokens
ANSWER_ROOM = 4096  # output kept for the answer when the client set no cap


def thinking_config(
    body: dict[str, Any], max_tokens: int, *, client_capped: bool, forced_tool: bool, warnings: list[str]
) -> tuple[dict[str, Any] | None, int]:
    """(Anthropic `thinking` or None, the `max_tokens` to send)."""
    explicit = body.get("thinking")
    if explicit is not None:
        kind = explicit.get("type") if isinstance(explicit, dict) else None
        if kind not in ("enabled", "disabled", "adaptive") or nesting_exceeds(explicit, 8):
            raise TranslationError(
                "'thinking' must be {type: enabled, budget_tokens}, {type: adaptive} or {type: disabled}",
                "thinking",
                "invalid_value",
            )
        return explicit, max_tokens
    effort = body.get("reasoning_effort")
    if effort is None:
        return None, max_tokens
    if not isinstance(effort, str) or (effort not in EFFORT_BUDGETS and effort not in NO_THINKING_EFFORTS):
        raise TranslationError(
            "'reasoning_effort' must be one of none, minimal, low, medium, high, xhigh",
            "reasoning_effort",
            "invalid_value",
        )
    if effort in NO_THINKING_EFFORTS:
        return None, max_tokens
    if forced_tool:
        warnings.append("reasoning_effort not sent: Claude cannot think while tool_choice forces a tool")
        return None, max_tokens
    want = EFFORT_BUDGETS[effort]
    if not client_capped:
        max_tokens = max(max_tokens, want + ANSWER_ROOM)
        return {"type": "enabled", "budget_tokens": want}, max_tokens
    budget = min(want, max_tokens - max_tokens // 4)
    if budget < MIN_BUDGET:
        warnings.append(
            f"reasoning_effort not sent: max tokens {max_tokens} leave no room for Claude's minimum "
            f"thinking budget ({MIN_BUDGET})"
        )
        return None, max_tokens
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


def constrain_sampling(out: dict[str, Any], warnings: list[str]) -> None:
    """Drop the sampling values Anthropic refuses while thinking is on."""
    dropped = []
    if out.get("temperature", 1) != 1:
        dropped.append("temperature")
        del out["temperature"]
    if "top_k" in out:
        dropped.append("top_k")
        del out["top_k"]
    if out.get("top_p", 1) < 0.95:
        dropped.append("top_p")
        del out["top_p"]
    if dropped:
        warnings.append(f"not sent with thinking on (Anthropic refuses them): {', '.join(dropped)}")


def history_thinking_blocks(message: dict[str, Any], param: str) -> list[dict[str, Any]]:
    """The Anthropic thinking blocks an assistant message carries back in `thinking_blocks`."""
    raw = message.get("thinking_blocks")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TranslationError("'thinking_blocks' must be a list", f"{param}.thinking_blocks", "invalid_type")
    blocks: list[dict[str, Any]] = []
    for j, block in enumerate(raw):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "thinking" and isinstance(block, dict):
            thinking, signature = block.get("thinking"), block.get("signature")
            if isinstance(thinking, str) and isinstance(signature, str) and signature:
                blocks.append({"type": "thinking", "thinking": thinking, "signature": signature})
                continue
        elif kind == "redacted_thinking" and isinstance(block, dict) and isinstance(block.get("data"), str):
            blocks.append({"type": "redacted_thinking", "data": block["data"]})
            continue
        raise TranslationError(
            "thinking blocks need {type: thinking, thinking, signature} or {type: redacted_thinking, data}",
            f"{param}.thinking_blocks[{j}]",
            "invalid_value",
        )
    return blocks


def response_thinking_fields(content: object) -> dict[str, Any]:
    """`reasoning_content` and `thinking_blocks` for an Anthropic message's content ({} when none)."""
    texts: list[str] = []
    blocks: list[dict[str, Any]] = []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "thinking":
            text = block.get("thinking")
            text = text if isinstance(text, str) else ""
            signature = block.get("signature")
            texts.append(text)
            blocks.append({"type": "thinking", "thinking": text,
                           "signature": signature if isinstance(signature, str) else ""})
        elif kind == "redacted_thinking":
            data = block.get("data")
            blocks.append({"type": "redacted_thinking", "data": data if isinstance(data, str) else ""})
    if not blocks:
        return {}
    return {"reasoning_content": "".join(texts), "thinking_blocks": blocks}

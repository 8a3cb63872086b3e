"""Extended thinking and structured output for the simulated Anthropic API — as strict as the real one
where a translator can go wrong.

Thinking (`thinking: {type: enabled, budget_tokens}` or `{type: adaptive}`): the reply starts with a
thinking block whose signature is an HMAC of its text, so a block sent back later is checked like
Anthropic checks it (edited text or a made-up signature → 400). With `display: "omitted"` (what
Claude Code asks for) the block comes back with empty text, still billed, and its signature carries
the hidden text, so the empty block sent back later is accepted like the real API accepts it. Refused as the API refuses them: a
budget under 1024 or not below max_tokens, temperature other than 1, top_k, top_p under 0.95, a
tool_choice that forces a tool, and a tool loop whose last assistant turn does not start with its
thinking block.

Structured output (`output_config.format: {type: json_schema, schema}`): the reply text is JSON with
the schema's property names (the same values `tool_arguments` gives tool calls).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from iron_tui.sim.script import TextReply, reply_words, tool_arguments

__all__ = ["check_output_config", "check_thinking", "signature", "structured_reply", "thinking_reply"]

_KEY = b"iron-tui-sim-thinking"
_THINKING = ("thinking", "redacted_thinking")
THINKING_LEAD = ("Simulated", "thinking", "about:")


def signature(text: str) -> str:
    return base64.b64encode(hmac.new(_KEY, text.encode(), hashlib.sha256).digest()).decode()


_OMITTED = "omitted."  # prefix of a signature that carries its (hidden) thinking text


def _omitted_signature(text: str) -> str:
    return _OMITTED + base64.b64encode(text.encode()).decode() + "." + signature(text)


def _signature_ok(text: str, sig: str) -> bool:
    if not text and sig.startswith(_OMITTED):
        sealed, _, mac = sig[len(_OMITTED):].partition(".")
        try:
            hidden = base64.b64decode(sealed, validate=True).decode()
        except ValueError:
            return False
        return hmac.compare_digest(mac, signature(hidden))
    return hmac.compare_digest(sig, signature(text))


def _display(body: dict[str, Any]) -> object:
    thinking = body.get("thinking")
    return thinking.get("display") if isinstance(thinking, dict) else None


def _enabled(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _check_config(body: dict[str, Any]) -> str | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "disabled", "adaptive"):
        return "thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'"
    if kind == "enabled":
        assert isinstance(thinking, dict)
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if budget >= body.get("max_tokens", 0):
            return "`max_tokens` must be greater than `thinking.budget_tokens`"
    if kind == "disabled":
        return None
    if _display(body) not in (None, "summarized", "omitted"):
        return f"thinking.{kind}.display: Input should be 'summarized' or 'omitted'"
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        return "`temperature` may only be set to 1 when thinking is enabled or in adaptive mode."
    if body.get("top_k") is not None:
        return "`top_k` must be unset when thinking is enabled or in adaptive mode."
    top_p = body.get("top_p")
    if top_p is not None and top_p < 0.95:
        return "`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled."
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        return "Thinking may not be enabled when `tool_choice` forces tool use."
    return None


def check_thinking(body: dict[str, Any]) -> str | None:
    """The first reason the real API would refuse this request's thinking, or None."""
    problem = _check_config(body)
    if problem is not None:
        return problem
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for i, m in enumerate(messages):
        content = m.get("content") if isinstance(m, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else ()):
            if not isinstance(block, dict) or block.get("type") not in _THINKING:
                continue
            if m.get("role") != "assistant":
                return f"messages.{i}.content.{j}: thinking blocks are only allowed in assistant messages"
            if block.get("type") == "thinking":
                text, sig = block.get("thinking"), block.get("signature")
                if not isinstance(text, str) or not isinstance(sig, str) or not _signature_ok(text, sig):
                    return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
            elif not isinstance(block.get("data"), str):
                return f"messages.{i}.content.{j}.redacted_thinking.data: Field required"
    if _enabled(body) and len(messages) >= 2:
        last, prev = messages[-1], messages[-2]
        results = isinstance(last, dict) and isinstance(last.get("content"), list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in last["content"])
        if results and isinstance(prev, dict) and isinstance(prev.get("content"), list) and prev["content"]:
            first = prev["content"][0]
            kind = first.get("type") if isinstance(first, dict) else None
            if kind not in _THINKING:
                return (f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, "
                        f"but found `{kind}`. When `thinking` is enabled, a final `assistant` message must start "
                        "with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` "
                        "blocks).")
    return None


def thinking_reply(body: dict[str, Any], prompt: str) -> tuple[TextReply, str] | None:
    """(thinking text reply, its signature) when the request thinks, else None."""
    if not _enabled(body):
        return None
    words = reply_words(prompt, 8, THINKING_LEAD)
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    text = "".join(pieces)
    if _display(body) == "omitted":  # billed as thought, shown as nothing: no thinking deltas
        return TextReply("", [], len(pieces), "stop"), _omitted_signature(text)
    return TextReply(text, pieces, len(pieces), "stop"), signature(text)


def check_output_config(body: dict[str, Any]) -> str | None:
    config = body.get("output_config")
    if config is None:
        return None
    if not isinstance(config, dict):
        return "output_config: Input should be a valid dictionary"
    fmt = config.get("format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "json_schema"
                            or not isinstance(fmt.get("schema"), dict)):
        return "output_config.format: Input should be {type: json_schema, schema: {...}}"
    effort = config.get("effort")
    if effort is not None and effort not in ("low", "medium", "high", "xhigh", "max"):
        return "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
    return None


def structured_reply(body: dict[str, Any]) -> TextReply | None:
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if not isinstance(fmt, dict):
        return None
    text = json.dumps(tool_arguments(fmt.get("schema")))
    pieces = [text[i:i + 8] for i in range(0, len(text), 8)]
    return TextReply(text, pieces, len(pieces), "stop")

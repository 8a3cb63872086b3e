"""What the real Anthropic Messages API refuses, checked in one pass over a request (`validate_request`):
missing or unknown fields, bad numbers and stop sequences, tools and tool_choice, system, content block
types, tool_use/tool_result pairing, system messages mid-conversation. The same pass counts the characters
and notes the prompt-cache breakpoints the simulated reply bills from (`RequestScan`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from iron_tui.sim.script import tool_schema_chars

_ALLOWED_KEYS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature",
        "top_k", "top_p", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers",
        "context_management", "output_config", "output_format", "inference_geo", "cache_control",
    }
)  # fmt: skip
_BLOCK_TYPES = frozenset(
    {
        "text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
        "search_result", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
        "code_execution_tool_result", "container_upload", "mcp_tool_use", "mcp_tool_result",
    }
)  # fmt: skip
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_IMAGE_CHARS = 340  # same as the OpenAI sim, so a translated image costs the same


def _block_chars(block: dict[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return len(text) if isinstance(text, str) else 0
    if kind == "image":
        return _IMAGE_CHARS
    if kind == "tool_use":
        return len(str(block.get("name", ""))) + len(json.dumps(block.get("input", {})))
    if kind == "tool_result":
        return len(_result_text(block.get("content")))
    if kind == "thinking":
        return len(str(block.get("thinking", "")))
    return len(json.dumps(block))


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


@dataclass(slots=True)
class RequestScan:
    chars: int = 0
    # Prompt-cache breakpoints: (characters up to and including the marked block, elements before it).
    breakpoints: list[tuple[int, int]] = field(default_factory=list)
    elements: list[Any] = field(default_factory=list)  # tools, system blocks, then (message, role, block)
    last_role: str = ""
    last_text: str = ""  # text blocks of the last user turn
    ends_with_tool_result: bool = False
    tool_result_text: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)  # custom tools (those with a schema)

    def add(self, element: Any, chars: int, cache_control: Any) -> None:
        self.chars += chars
        self.elements.append(element)
        if cache_control:
            self.breakpoints.append((self.chars, len(self.elements)))


def validate_request(body: dict[str, Any], *, count_only: bool = False) -> tuple[str | None, RequestScan]:
    """Anthropic's request checks (the ones a translator can get wrong); returns (error, scan)."""
    scan = RequestScan()
    allowed = (
        _ALLOWED_KEYS - {"max_tokens", "stream", "stop_sequences", "temperature", "top_k", "top_p"}
        if count_only
        else _ALLOWED_KEYS
    )
    for key in body:
        if key not in allowed:
            return f"{key}: Extra inputs are not permitted", scan
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required", scan
    if not count_only:
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            return "max_tokens: Field required", scan
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            return "max_tokens: Input should be greater than or equal to 1", scan
    temperature = body.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 1):
        return "temperature: Input should be less than or equal to 1", scan
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            return "stop_sequences: Input should be a valid list of strings", scan
        if any(not s.strip() for s in stops):
            return "stop_sequences: each stop sequence must contain non-whitespace", scan

    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list", scan
        for k, tool in enumerate(tools):
            if not isinstance(tool, dict):
                return f"tools.{k}: Input should be a valid dictionary", scan
            if tool.get("type") in (None, "custom"):
                if not isinstance(tool.get("name"), str) or not _TOOL_NAME.match(tool["name"]):
                    return (
                        f"tools.{k}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'",
                        scan,
                    )
                if not isinstance(tool.get("input_schema"), dict):
                    return f"tools.{k}.custom.input_schema: Field required", scan
            # A deferred tool (tool search beta; Claude Code sends a placeholder one) is not in the
            # model's context until a tool search loads it: it cannot be called and costs no input.
            deferred = tool.get("defer_loading") is True
            if tool.get("type") in (None, "custom") and not deferred:
                scan.tools.append(tool)
            chars = 0 if deferred else tool_schema_chars(tool.get("name"), tool.get("description"),
                                                          tool.get("input_schema"))
            scan.add(tool, chars, tool.get("cache_control"))
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            return (
                "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'",
                scan,
            )
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            return "tool_choice.tool.name: Field required", scan
        if choice["type"] in ("any", "tool") and not tools:
            return "tool_choice: tool_choice may only be specified while providing tools", scan

    system = body.get("system")
    if isinstance(system, str):
        scan.add(system, len(system), None)
    elif isinstance(system, list):
        for k, block in enumerate(system):
            if (
                not isinstance(block, dict)
                or block.get("type") != "text"
                or not isinstance(block.get("text"), str)
            ):
                return f"system.{k}: Input should be a valid text block", scan
            scan.add(block, len(block["text"]), block.get("cache_control"))
    elif system is not None:
        return "system: Input should be a valid string or list of text blocks", scan

    messages = body.get("messages")
    if messages is None:
        return "messages: Field required", scan
    if not isinstance(messages, list):
        return "messages: Input should be a valid list", scan
    if not messages:
        return "messages: at least one message is required", scan
    prev_role: str | None = None
    open_ids: dict[str, None] = {}  # tool_use ids of the previous assistant turn, in call order
    last = len(messages) - 1
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"messages.{i}: Input should be a valid dictionary", scan
        role = m.get("role")
        if role == "system":
            # Mid-conversation system messages (what Claude Code sends): after a user turn, followed by
            # an assistant turn or last, never first, never two in a row, text only.
            problem = _system_message_problem(messages, i)
            if problem is not None:
                return problem, scan
            text = m["content"] if isinstance(m.get("content"), str) else _result_text(m.get("content"))
            scan.add((i, role, text), len(text), None)
            continue
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'", scan
        if i == 0 and role != "user":
            return 'messages: first message must use the "user" role', scan
        if role == prev_role:
            return (
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row'
            ), scan
        prev_role = role
        content = m.get("content")
        final_assistant = i == last and role == "assistant"
        texts: list[str] = []
        results: dict[str, str] = {}  # tool_use id → result text
        use_ids: dict[str, None] = {}
        ends_with_result = False
        if isinstance(content, str):
            if not content and not final_assistant:
                return (
                    f"messages.{i}: all messages must have non-empty content except for the optional final "
                    "assistant message"
                ), scan
            texts.append(content)
            scan.add((i, role, content), len(content), None)
        elif isinstance(content, list):
            if not content and not final_assistant:
                return (
                    f"messages.{i}: all messages must have non-empty content except for the optional final "
                    "assistant message"
                ), scan
            for j, block in enumerate(content):
                kind = block.get("type") if isinstance(block, dict) else None
                if not isinstance(kind, str) or kind not in _BLOCK_TYPES:  # (a list is not hashable)
                    return (
                        f"messages.{i}.content.{j}.type: Input tag '{kind}' found using 'type' does not match "
                        f"any of the expected tags: {', '.join(sorted(_BLOCK_TYPES))}"
                    ), scan
                assert isinstance(block, dict)
                ends_with_result = kind == "tool_result"
                if kind == "text":
                    if not isinstance(block.get("text"), str) or not block["text"]:
                        return "messages: text content blocks must be non-empty", scan
                    texts.append(block["text"])
                elif kind == "tool_use":
                    if role != "assistant":
                        return (
                            f"messages.{i}.content.{j}: tool_use blocks are only allowed in assistant messages",
                            scan,
                        )
                    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                        return f"messages.{i}.content.{j}.tool_use: id and name are required", scan
                    if not isinstance(block.get("input"), dict):
                        return (
                            f"messages.{i}.content.{j}.tool_use.input: Input should be a valid dictionary",
                            scan,
                        )
                    use_ids[block["id"]] = None
                elif kind == "tool_result":
                    tool_use_id = block.get("tool_use_id")
                    if role != "user" or not isinstance(tool_use_id, str) or tool_use_id not in open_ids:
                        return (
                            f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{tool_use_id}. Each `tool_result` block must have a corresponding `tool_use` block "
                            "in the previous message."
                        ), scan
                    results[tool_use_id] = _result_text(block.get("content"))
                scan.add((i, role, block), _block_chars(block), block.get("cache_control"))
        else:
            return f"messages.{i}.content: Input should be a valid list", scan
        missing = sorted(u for u in open_ids if u not in results) if role == "user" else []
        if missing:
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message."
            ), scan
        if results:  # the reply follows the last call's result, whatever order the client sent them in
            scan.tool_result_text = results[[u for u in open_ids if u in results][-1]]
        open_ids = use_ids
        scan.last_role = role
        if role == "user":
            scan.last_text = " ".join(texts)
            scan.ends_with_tool_result = ends_with_result
    return None, scan


def _system_message_problem(messages: list[Any], i: int) -> str | None:
    content = messages[i].get("content")
    if isinstance(content, list):
        if not content or any(not isinstance(b, dict) or b.get("type") != "text" for b in content):
            return f"messages.{i}.content: system messages may only contain text blocks"
    elif not isinstance(content, str) or not content:
        return f"messages.{i}.content: system messages must have non-empty text content"
    before = messages[i - 1].get("role") if i > 0 and isinstance(messages[i - 1], dict) else None
    if before != "user":
        return f"messages.{i}: a system message must follow a user message"
    after = messages[i + 1].get("role") if i + 1 < len(messages) and isinstance(messages[i + 1], dict) else None
    if after not in (None, "assistant"):
        return f"messages.{i}: a system message must be the last message or be followed by an assistant message"
    return None

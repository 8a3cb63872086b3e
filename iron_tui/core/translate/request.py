"""OpenAI Chat Completions request → Anthropic Messages request (reference/translation.md, "Request").

Choices beyond the reference table (each one a known way Anthropic rejects a naive translation):
- Anthropic requires alternating turns starting with `user`: consecutive same-role messages are merged,
  `tool` messages join the following/preceding user content in ONE user turn with the tool_result blocks
  first, and a conversation that starts with an assistant turn gets a "." user turn in front (warning).
- Empty and whitespace-only text parts are dropped (Anthropic rejects them) and messages left with
  nothing are skipped; trailing whitespace of a final assistant (prefill) text is stripped (Anthropic rejects it).
- `response_format: json_schema` → `output_config.format` (Anthropic structured outputs; models without
  it answer 400 upstream). `json_object` has no schema to enforce, so a system instruction asks for a
  single JSON object and a warning is recorded. `text` is dropped.
- Parameters that cannot be honoured (`n>1`, legacy `functions`/`function_call`, `web_search_options`)
  and audio input parts raise TranslationError; `logprobs`, `top_logprobs`, `logit_bias`, `audio`,
  `modalities` are accepted and ignored like Anthropic's own OpenAI layer does (params.py).
- `reasoning_effort` / `thinking` and the assistant turns' `thinking_blocks`: thinking.py.
- `temperature` with `top_p`: only temperature is sent (current Claude models reject both; warning).
  `send_sampling_params=False` drops all sampling parameters (API version 2026-10-21 rejects them).
- Harmless OpenAI-only parameters (`seed`, penalties, `store`, `metadata`, `service_tier`,
  `prompt_cache_key`, `prediction`, …) and unknown keys are not sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iron_tui.core.bounded_json import nesting_exceeds, parse_object
from iron_tui.core.translate import params
from iron_tui.core.translate.content import content_blocks, with_cache_control
from iron_tui.core.translate.errors import TranslationError
from iron_tui.core.translate.params import JSON_OBJECT_INSTRUCTION
from iron_tui.core.translate.thinking import constrain_sampling, history_thinking_blocks, thinking_config

__all__ = ["JSON_OBJECT_INSTRUCTION", "TranslatedRequest", "openai_to_anthropic_request"]

PLACEHOLDER_USER_TEXT = "."


@dataclass
class TranslatedRequest:
    body: dict[str, Any]  # Anthropic Messages request body
    include_usage: bool  # the client's stream_options.include_usage
    warnings: list[str] = field(default_factory=list)  # lossy but accepted changes, for the request log


class _Turn:
    """One Anthropic message under construction; tool_result blocks are kept apart so they come first."""

    __slots__ = ("blocks", "results", "role")

    def __init__(self, role: str) -> None:
        self.role = role
        self.results: list[dict[str, Any]] = []
        self.blocks: list[dict[str, Any]] = []



def _tool_use_blocks(tool_calls: object, param: str, warnings: list[str]) -> list[dict[str, Any]]:
    if not isinstance(tool_calls, list):
        raise TranslationError("'tool_calls' must be a list", param, "invalid_type")
    blocks: list[dict[str, Any]] = []
    for j, call in enumerate(tool_calls):
        call_param = f"{param}[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(function, dict):
            raise TranslationError("tool call needs a 'function' object", call_param, "invalid_type")
        call_id, name = call.get("id"), function.get("name")
        if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
            raise TranslationError(
                "tool call needs an 'id' and a 'function.name'", call_param, "invalid_value"
            )
        arguments = function.get("arguments")
        # parse_object: None for invalid JSON, a non-object, or nesting past MAX_NESTING (never a
        # RecursionError for arguments nested 10^5 deep).
        tool_input = (
            arguments if isinstance(arguments, dict) and not nesting_exceeds(arguments) else parse_object(arguments)
        )
        if tool_input is None:
            # Anthropic needs an object; the model's own malformed output must not make the next call fail.
            warnings.append(
                f"{call_param}: arguments of tool call {call_id!r} are not a JSON object; sent as {{}}"
            )
            tool_input = {}
        blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": tool_input})
    return blocks


def _tool_result(message: dict[str, Any], param: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise TranslationError(
            "tool messages need a 'tool_call_id'", f"{param}.tool_call_id", "missing_required_parameter"
        )
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    content = message.get("content")
    if isinstance(content, str):
        if content.strip():
            result["content"] = content
    else:
        blocks = content_blocks(content, f"{param}.content", allow_media=True)
        if blocks:
            result["content"] = blocks
    return with_cache_control(result, message)


def _convert_messages(
    messages: list[Any], warnings: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system text blocks, Anthropic messages) for the OpenAI `messages` list."""
    system: list[dict[str, Any]] = []
    turns: list[_Turn] = []

    def turn_for(role: str) -> _Turn:
        if turns and turns[-1].role == role:
            return turns[-1]  # Anthropic requires alternation: same-role neighbours become one turn
        turn = _Turn(role)
        turns.append(turn)
        return turn

    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise TranslationError("each message must be an object", param, "invalid_type")
        role = message.get("role")
        content = message.get("content")
        if role == "system" or role == "developer":
            blocks = content_blocks(content, f"{param}.content", allow_media=False)
            if blocks:
                with_cache_control(blocks[-1], message)
                system.extend(blocks)
        elif role == "user":
            blocks = content_blocks(content, f"{param}.content", allow_media=True)
            if blocks:
                with_cache_control(blocks[-1], message)
                turn_for("user").blocks.extend(blocks)
        elif role == "assistant":
            # Thinking blocks first: Anthropic wants an assistant turn to open with its thinking.
            blocks = history_thinking_blocks(message, param)
            blocks += content_blocks(content, f"{param}.content", allow_media=False)
            tool_calls = message.get("tool_calls")
            if tool_calls:
                blocks.extend(_tool_use_blocks(tool_calls, f"{param}.tool_calls", warnings))
            if blocks and blocks[-1]["type"] not in ("thinking", "redacted_thinking"):
                with_cache_control(blocks[-1], message)
                turn_for("assistant").blocks.extend(blocks)
        elif role == "tool":
            turn_for("user").results.append(_tool_result(message, param))
        else:
            raise TranslationError(
                f"message role '{role}' is not supported", f"{param}.role", "invalid_value"
            )

    if turns and turns[-1].role == "assistant":
        # A final assistant turn is a prefill, which Anthropic rejects if it ends in whitespace.
        last = turns[-1].blocks
        if last[-1]["type"] == "text":
            stripped = last[-1]["text"].rstrip()
            if stripped:
                last[-1]["text"] = stripped
            else:
                last.pop()
                if not last:
                    turns.pop()
    if not turns:
        raise TranslationError(
            "'messages' must contain at least one non-empty user, assistant or tool message",
            "messages",
            "invalid_value",
        )
    out = [{"role": t.role, "content": t.results + t.blocks} for t in turns]
    if out[0]["role"] == "assistant":
        warnings.append(
            "conversation starts with an assistant message; a '.' user turn was inserted before it"
        )
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": PLACEHOLDER_USER_TEXT}]})
    return system, out


def _system_value(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if any("cache_control" in b for b in blocks):
        return blocks  # cache breakpoints only exist on blocks
    return "\n\n".join(b["text"] for b in blocks)


def _tools(tools: object) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise TranslationError("'tools' must be a list", "tools", "invalid_type")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise TranslationError(
                f"tool type '{kind}' is not supported; only 'function'", param, "unsupported_value"
            )
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(name, str) or not name:
            raise TranslationError(
                "tool needs a 'function' with a 'name'", f"{param}.function", "invalid_value"
            )
        parameters = function.get("parameters")
        if parameters is not None and (not isinstance(parameters, dict) or nesting_exceeds(parameters)):
            raise TranslationError(
                "'parameters' must be an object (nested at most 128 levels)", f"{param}.function.parameters",
                "invalid_type",
            )
        if not parameters:
            schema: dict[str, Any] = {"type": "object", "properties": {}}
        elif "type" not in parameters:
            schema = {"type": "object", **parameters}
        else:
            schema = parameters
        converted: dict[str, Any] = {"name": name, "input_schema": schema}
        description = function.get("description")
        if isinstance(description, str) and description:
            converted["description"] = description
        out.append(with_cache_control(converted, tool))
    return out


def _tool_choice(choice: object, parallel: object) -> dict[str, Any] | None:
    result: dict[str, Any]
    if choice is None:
        if parallel is not False:
            return None
        result = {"type": "auto"}
    elif choice == "auto":
        result = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}  # Anthropic's "none" has no parallel flag
    elif isinstance(choice, dict) and choice.get("type", "function") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise TranslationError("tool_choice needs 'function.name'", "tool_choice", "invalid_value")
        result = {"type": "tool", "name": name}
    else:
        raise TranslationError("unsupported 'tool_choice' value", "tool_choice", "unsupported_value")
    if parallel is False:
        result["disable_parallel_tool_use"] = True
    return result


def openai_to_anthropic_request(
    body: dict[str, Any], *, default_max_tokens: int = 4096, send_sampling_params: bool = True
) -> TranslatedRequest:
    """Translate an OpenAI chat-completions body into an Anthropic Messages body.

    `send_sampling_params=False` drops temperature/top_p/top_k (with a warning): Anthropic API version
    2026-10-21 rejects them at any value, and some newer models reject them under 2023-06-01 too.

    Raises TranslationError (→ HTTP 400 in OpenAI's error shape) for anything that cannot be honoured.
    The input is never mutated; nested values that pass through unchanged (tool schemas, cache_control)
    are shared, not copied.
    """
    if not isinstance(body, dict):
        raise TranslationError("the request body must be a JSON object", None, "invalid_type")
    model = body.get("model")
    if model is None:
        raise TranslationError("you must provide a 'model' parameter", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise TranslationError("'model' must be a non-empty string", "model", "invalid_type")
    messages = body.get("messages")
    if messages is None:
        raise TranslationError(
            "you must provide a 'messages' parameter", "messages", "missing_required_parameter"
        )
    if not isinstance(messages, list) or not messages:
        raise TranslationError("'messages' must be a non-empty list", "messages", "invalid_value")
    warnings: list[str] = []
    params.refuse_unsupported(body, warnings)
    system, turns = _convert_messages(messages, warnings)
    max_tokens = params.max_tokens(body, default_max_tokens)
    out: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": turns}
    params.response_format(body.get("response_format"), system, out, warnings)
    if system:
        out["system"] = _system_value(system)

    params.sampling(body, out, warnings, send=send_sampling_params)
    stop = body.get("stop")
    if stop is not None:
        sequences = params.stop_sequences(stop)
        if sequences:
            out["stop_sequences"] = sequences
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}

    tools = body.get("tools")
    if tools:
        out["tools"] = _tools(tools)
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    # tool_choice / parallel_tool_calls without tools mean nothing to Anthropic and are not sent.
    forced = out.get("tool_choice", {}).get("type") in ("any", "tool")
    client_capped = body.get("max_completion_tokens") is not None or body.get("max_tokens") is not None
    thinking, out["max_tokens"] = thinking_config(
        body, max_tokens, client_capped=client_capped, forced_tool=forced, warnings=warnings
    )
    if thinking is not None:
        out["thinking"] = thinking
        if thinking.get("type") != "disabled":
            constrain_sampling(out, warnings)

    stream = body.get("stream") is True
    if stream:
        out["stream"] = True
    options = body.get("stream_options")
    include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    return TranslatedRequest(out, include_usage, warnings)

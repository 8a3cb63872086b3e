"""What the real OpenAI API answers with an error: its error bodies, and the requests it refuses (chat
messages out of order or of an unknown role, tool results without their call, parameters a model does not
take) — checked in the one pass that also counts the characters the reply bills from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Simulated invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
    403: (
        "You are not allowed to access this resource.",
        "invalid_request_error",
        "unsupported_country_region_territory",
    ),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    413: ("Request too large.", "invalid_request_error", None),
    429: ("Rate limit reached for requests. Please try again in 1s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_IMAGE_CHARS = 340  # ≈ 85 tokens, OpenAI's low-detail image cost


def error_body(
    status: int, message: str | None, type_: str | None, code: str | None, param: str | None
) -> bytes:
    d_msg, d_type, d_code = ERRORS.get(
        status, ("Simulated error.", "invalid_request_error" if status < 500 else "server_error", None)
    )
    err = {"message": message or d_msg, "type": type_ or d_type, "param": param, "code": code or d_code}
    return json.dumps({"error": err}).encode()


def message_content(content: Any) -> tuple[str, int]:
    """(text, chars) of an OpenAI message content: a string or a list of parts."""
    if isinstance(content, str):
        return content, len(content)
    if not isinstance(content, list):
        return "", 0
    texts: list[str] = []
    chars = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
            chars += len(part["text"])
        elif kind in ("image_url", "input_image"):
            chars += _IMAGE_CHARS
        else:
            chars += len(json.dumps(part))
    return " ".join(texts), chars


@dataclass(slots=True)
class ChatScan:
    chars: int = 0
    last_chars: int = 0
    last_role: str = ""
    last_text: str = ""
    error: tuple[str, str, str | None] | None = None  # message, param, code


def scan_chat(messages: list[Any]) -> ChatScan:
    """One pass over the messages: character count, the last turn, and OpenAI's structural checks."""
    scan = ChatScan()
    open_ids: set[str] = set()
    order: dict[str, int] = {}  # the last assistant turn's tool call ids, in call order
    answered: tuple[int, str] = (-1, "")  # (rank in `order`, text) of the latest-called result so far
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            scan.error = (
                f"Invalid type for 'messages[{i}]': expected an object.",
                f"messages[{i}]",
                "invalid_type",
            )
            return scan
        role = m.get("role")
        if not isinstance(role, str) or role not in _ROLES:  # (a list is not hashable)
            scan.error = (
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', "
                "'tool', and 'developer'.",
                f"messages[{i}].role",
                "invalid_value",
            )
            return scan
        if open_ids and role != "tool":
            scan.error = (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: "
                f"{', '.join(sorted(open_ids))}",
                f"messages.[{i}].role",
                None,
            )
            return scan
        text, chars = message_content(m.get("content"))
        if role == "assistant" and isinstance(m.get("tool_calls"), list):
            order, answered = {}, (-1, "")
            for tc in m["tool_calls"]:
                fn = tc.get("function") if isinstance(tc, dict) else None
                if isinstance(fn, dict):
                    chars += len(str(fn.get("name", ""))) + len(str(fn.get("arguments", "")))
                if isinstance(tc, dict) and isinstance(tc.get("id"), str):
                    open_ids.add(tc["id"])
                    order[tc["id"]] = len(order)
        elif role == "tool":
            call_id = m.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in open_ids:
                scan.error = (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    "with 'tool_calls'.",
                    f"messages.[{i}].role",
                    None,
                )
                return scan
            open_ids.discard(call_id)
            # The reply follows the last call's result, whatever order the client sent them in.
            answered = max(answered, (order.get(call_id, -1), text), key=lambda a: a[0])
            text = answered[1]
        scan.chars += chars
        if role in ("system", "developer") and scan.last_role:
            continue  # a late system message (Claude Code's reminders) does not change whose turn it is
        scan.last_chars = chars
        scan.last_role = role
        scan.last_text = text
    return scan


def _is_reasoning(model: str) -> bool:
    m = model.lower()
    return m.startswith(("o1", "o3", "o4", "gpt-5")) and "-chat" not in m


def chat_params_problem(model: str, body: dict[str, Any]) -> tuple[str, str, str | None] | None:
    """OpenAI's 400s for parameters a model refuses (the ones a translator can get wrong)."""
    if _is_reasoning(model):
        if body.get("max_tokens") is not None:
            return ("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                    "'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter")
        for name in ("temperature", "top_p"):
            if body.get(name) not in (None, 1):
                return (f"Unsupported value: '{name}' does not support {body[name]} with this model. Only the "
                        "default (1) value is supported.", name, "unsupported_value")
        if body.get("stop") is not None:
            return ("Unsupported parameter: 'stop' is not supported with this model.", "stop",
                    "unsupported_parameter")
    elif body.get("reasoning_effort") is not None:
        return ("Unrecognized request argument supplied: reasoning_effort", "reasoning_effort", None)
    stop = body.get("stop")
    if isinstance(stop, list) and len(stop) > 4:
        return (f"Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array "
                f"with length {len(stop)} instead.", "stop", "array_above_max_length")
    for i, m in enumerate(body["messages"]):
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list) and m.get("role") != "user" and any(
            isinstance(p, dict) and p.get("type") in ("image_url", "input_audio", "file") for p in content
        ):
            return (f"Invalid 'messages[{i}]'. Image URLs are only allowed for messages with role 'user', "
                    f"but this message with role '{m.get('role')}' contains an image URL.",
                    f"messages[{i}]", "invalid_value")
    return None

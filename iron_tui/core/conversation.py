"""A call as a readable transcript, for every dialect: who said what, tool calls and results as blocks,
thinking kept apart (front ends fold it), images and files as placeholders, streamed answers assembled
from the recorded stream.

    t = parse_body(text, hint="openai.chat")      # a request or response body, JSON or a recorded SSE stream
    view = call_view(record)                       # what the agent sent/got and, if translated, what went upstream
    lines = transcript_lines(t)                    # plain text lines (what the diff compares)

Dialects are recognised from the body itself (with `hint` to break ties), so a body of any pair reads
right: OpenAI Chat Completions, OpenAI Responses, Anthropic Messages. Parsing never raises: a body that
is not what it claims comes back with a note saying so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from iron_tui.core.transcript import TRUNCATED_MARK, Transcript, transcript_lines, with_notes
from iron_tui.core.transcript_bodies import detect, parse_object
from iron_tui.core.transcript_streams import parse_stream

__all__ = ["CallView", "Transcript", "call_view", "parse_body", "transcript_lines"]


# --- entry points --------------------------------------------------------------------------------


def parse_body(text: str | None, hint: str | None = None) -> Transcript | None:
    """A request or response body (JSON, or a recorded SSE stream) as a transcript; None for no body."""
    if text is None or not text.strip():
        return None
    notes: list[str] = []
    cut = text.find(TRUNCATED_MARK)
    if cut >= 0:
        notes.append("the recorded body was cut at the preview limit (body_preview_bytes); the rest is not shown")
        text = text[:cut]
    stripped = text.lstrip()
    if stripped.startswith(("event:", "data:", ":")):
        try:
            return with_notes(parse_stream(text, hint), notes)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            return Transcript("unknown", "response", streamed=True, notes=(*notes, f"unreadable stream ({exc})"))
    try:
        obj = json.loads(text)
    except ValueError:
        return Transcript("unknown", "request", notes=(*notes, "not JSON: see the raw body"))
    if not isinstance(obj, dict):
        return Transcript("unknown", "request", notes=(*notes, "not a JSON object: see the raw body"))
    try:
        return with_notes(parse_object(obj, hint), notes)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # a shape nothing here expects
        return Transcript(detect(obj, hint), "request", notes=(*notes, f"unreadable body ({exc})"))


# --- a whole call ---------------------------------------------------------------------------------


# RequestRecord.upstream_api (the provider dialect that served the call) → the dialect of its bodies.
_PROVIDER_DIALECT = {"openai": "openai.chat", "openai-responses": "openai.responses", "anthropic": "anthropic.messages"}


@dataclass(frozen=True)
class CallView:
    """The four sides of a call. For a native call, upstream_* are None (the agent's bodies went as is)."""

    request: Transcript | None
    response: Transcript | None  # what the agent received
    upstream_request: Transcript | None = None
    upstream_response: Transcript | None = None
    notes: tuple[str, ...] = field(default=())


def call_view(record: Any) -> CallView:
    """From a RequestRecord (bodies recorded by the proxy; keys already redacted)."""
    api = getattr(record, "api", None)
    translated = bool(getattr(record, "translated", False))
    req = parse_body(getattr(record, "request_body", None), api)
    if not translated:
        return CallView(req, parse_body(getattr(record, "upstream_response", None), api))
    up_dialect = _PROVIDER_DIALECT.get(getattr(record, "upstream_api", None) or "")
    up_req = parse_body(getattr(record, "translated_request", None), up_dialect)
    if up_dialect is None and up_req is not None:
        up_dialect = up_req.dialect
    return CallView(req, parse_body(getattr(record, "translated_response", None), api), up_req,
                    parse_body(getattr(record, "upstream_response", None), up_dialect))

"""W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/): parse and format."""

from __future__ import annotations

import re
from dataclasses import dataclass

# version "-" trace-id "-" parent-id "-" trace-flags; a future version may append "-" fields.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(frozen=True, slots=True)
class SpanContext:
    """The parent a span continues: its trace, its span and whether it was sampled."""

    trace_id: bytes  # 16 bytes
    span_id: bytes  # 8 bytes
    sampled: bool


def parse_traceparent(value: str | None) -> SpanContext | None:
    """The remote parent named by a `traceparent` header, or None when it is absent or invalid
    (an invalid header starts a new trace, as the W3C spec says, rather than failing the call)."""
    if not value or len(value) > 512:
        return None
    m = _TRACEPARENT.fullmatch(value.strip())
    if m is None:
        return None
    version, trace_id, span_id, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return SpanContext(bytes.fromhex(trace_id), bytes.fromhex(span_id), bool(int(flags, 16) & 1))


def format_traceparent(trace_id: bytes, span_id: bytes, sampled: bool = True) -> str:
    return f"00-{trace_id.hex()}-{span_id.hex()}-{'01' if sampled else '00'}"

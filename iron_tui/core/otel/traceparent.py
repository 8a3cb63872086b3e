"""W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/): parse and format."""

from __future__ import annotations

from dataclasses import dataclass

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_HEX = frozenset("0123456789abcdef-")


@dataclass(frozen=True, slots=True)
class SpanContext:
    """The parent a span continues: its trace, its span and whether it was sampled."""

    trace_id: bytes  # 16 bytes
    span_id: bytes  # 8 bytes
    sampled: bool


def parse_traceparent(value: str | None) -> SpanContext | None:
    """The remote parent named by a `traceparent` header, or None when it is absent or invalid
    (an invalid header starts a new trace, as the W3C spec says, rather than failing the call).

    `version-traceid-parentid-flags`: lower-case hex, 2-32-16-2 digits; a version after 00 may append
    `-` and more fields, version ff is invalid, and so are all-zero ids."""
    if not value or len(value) > 512:
        return None
    v = value.strip()
    head = v[:55]
    if (len(head) != 55 or head[2] != "-" or head[35] != "-" or head[52] != "-" or head.count("-") != 3
            or not _HEX.issuperset(head)):
        return None
    if head[:2] == "ff" or (len(v) > 55 and (head[:2] == "00" or v[55] != "-")):
        return None
    trace_id = bytes.fromhex(head[3:35])
    span_id = bytes.fromhex(head[36:52])
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return SpanContext(trace_id, span_id, bool(int(head[53:55], 16) & 1))


def format_traceparent(trace_id: bytes, span_id: bytes, sampled: bool = True) -> str:
    return f"00-{trace_id.hex()}-{span_id.hex()}-{'01' if sampled else '00'}"

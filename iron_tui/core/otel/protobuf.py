"""The Protocol Buffers wire format, written by hand for the few OTLP messages iron-tui sends.

Why not the official `opentelemetry-proto` messages: with them the exporter process spent ~10 µs
of CPU per span (records rebuilt, messages built and serialized), and on a small machine that CPU
is taken from the proxy and its clients. Here the parts that never change (resource, scope,
attribute keys, field tags, the lengths of short values) are encoded once as bytes and a span is a
`b"".join` of them and its few varying values: ~2.8 µs per span, a third of it reading the response
facts. The tests decode this output with the official messages and compare every field.

Field numbers are those of opentelemetry/proto/{common,resource,trace}/v1/*.proto (OTLP 1.x).
Strings are UTF-8 (a lone surrogate becomes "?": a collector rejects invalid UTF-8); ints are
int64 (a value outside it is clamped, rather than failing the whole batch as the official
messages would).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

AttrValue = str | int | float | bool | tuple[str, ...]

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64 = 1 << 64
_ONE_BYTE = [bytes((i,)) for i in range(128)]
DOUBLE = struct.Struct("<d")
_FIXED32 = struct.Struct("<I")

# Tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
ANY_STRING = b"\x0a"  # AnyValue.string_value = 1
ANY_BOOL = b"\x10"  # AnyValue.bool_value = 2
ANY_INT = b"\x18"  # AnyValue.int_value = 3
ANY_DOUBLE = b"\x21"  # AnyValue.double_value = 4
ANY_ARRAY = b"\x2a"  # AnyValue.array_value = 5
KV_KEY = b"\x0a"  # KeyValue.key = 1
KV_VALUE = b"\x12"  # KeyValue.value = 2
SPAN_TRACE_ID = b"\x0a\x10"  # Span.trace_id = 1, always 16 bytes
SPAN_SPAN_ID = b"\x12\x08"  # Span.span_id = 2, always 8 bytes
SPAN_PARENT_ID = b"\x22\x08"  # Span.parent_span_id = 4
SPAN_NAME = b"\x2a"  # Span.name = 5
SPAN_KIND_CLIENT = b"\x30\x03"  # Span.kind = 6: SPAN_KIND_CLIENT
SPAN_TIMES = struct.Struct("<BQBQ")  # Span.start_time_unix_nano = 7, end_time_unix_nano = 8 (fixed64)
SPAN_START_TAG, SPAN_END_TAG = 0x39, 0x41
SPAN_ATTRIBUTE = b"\x4a"  # Span.attributes = 9
SPAN_STATUS = b"\x7a"  # Span.status = 15
SPAN_FLAGS = b"\x85\x01"  # Span.flags = 16 (fixed32)
STATUS_MESSAGE = b"\x12"  # Status.message = 2
STATUS_CODE_ERROR = b"\x18\x02"  # Status.code = 3: STATUS_CODE_ERROR
RESOURCE_ATTRIBUTE = b"\x0a"  # Resource.attributes = 1
SCOPE_NAME, SCOPE_VERSION = b"\x0a", b"\x12"  # InstrumentationScope.name = 1, version = 2
SCOPE_SPANS_SCOPE, SCOPE_SPANS_SPAN = b"\x0a", b"\x12"  # ScopeSpans.scope = 1, spans = 2
RESOURCE_SPANS_RESOURCE, RESOURCE_SPANS_SCOPE_SPANS = b"\x0a", b"\x12"  # ResourceSpans.resource = 1, scope_spans = 2
REQUEST_RESOURCE_SPANS = b"\x0a"  # ExportTraceServiceRequest.resource_spans = 1


def varint(value: int) -> bytes:
    """A non-negative int as a base-128 varint."""
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def int64(value: int) -> bytes:
    """An int64 field's varint: clamped to int64, negatives as their 64-bit two's complement."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    value = min(max(value, _INT64_MIN), _INT64_MAX)
    return varint(value + _UINT64 if value < 0 else value)


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + varint(len(payload)) + payload


def fixed32(tag: bytes, value: int) -> bytes:
    return tag + _FIXED32.pack(value)


def any_value(value: AttrValue) -> bytes:
    """An AnyValue message (bool before int: a bool is an int)."""
    if isinstance(value, bool):
        return ANY_BOOL + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return ANY_INT + int64(value)
    if isinstance(value, float):
        return ANY_DOUBLE + DOUBLE.pack(value)
    if isinstance(value, tuple):  # ArrayValue.values = 1, each an AnyValue string
        return field(ANY_ARRAY, b"".join(field(b"\x0a", field(ANY_STRING, utf8(v))) for v in value))
    return field(ANY_STRING, utf8(value))


def key_value(key: str, value: AttrValue) -> bytes:
    """A KeyValue message."""
    return field(KV_KEY, utf8(key)) + field(KV_VALUE, any_value(value))


def attributes(tag: bytes, items: Iterable[tuple[str, AttrValue]]) -> bytes:
    """Repeated KeyValue fields under `tag` (None values are left out, as the OTel API does)."""
    return b"".join(field(tag, key_value(k, v)) for k, v in items if v is not None)


class SpanAttribute:
    """One attribute key of a span, its bytes made once; `text`/`integer`/`double` give the whole
    `Span.attributes` field for a value. Used several times per span, so the common cases (a
    short string, a small int) are one table look-up and one concatenation (~0.1 µs, against ~0.4 µs
    for building the fields); the tables are public for the span loop, which reads them inline."""

    __slots__ = ("_int_head", "_key", "double_head", "small_ints", "text_heads")

    def __init__(self, key: str) -> None:
        k = self._key = field(KV_KEY, utf8(key))
        # A double's KeyValue has a fixed length: all but the 8 value bytes are made here.
        self.double_head = SPAN_ATTRIBUTE + varint(len(k) + 11) + k + KV_VALUE + b"\x09" + ANY_DOUBLE
        # Everything before a string value of n bytes, for every n whose lengths fit one-byte varints.
        self.text_heads = [SPAN_ATTRIBUTE + varint(len(k) + 4 + n) + k + KV_VALUE + _ONE_BYTE[n + 2] + ANY_STRING
                           + _ONE_BYTE[n] for n in range(124 - len(k))] if len(k) < 124 else []
        # Everything before an int's varint of n bytes (1-10), and whole fields for 0-127.
        self._int_head = [b""] + [SPAN_ATTRIBUTE + varint(len(k) + 3 + n) + k + KV_VALUE + _ONE_BYTE[n + 1] + ANY_INT
                                  for n in range(1, 11)]
        self.small_ints = [self._int_head[1] + _ONE_BYTE[v] for v in range(128)]

    def text(self, value: str) -> bytes:
        b = value.encode("utf-8", "replace")  # (utf8()'s body: this runs several times per span)
        if len(b) < len(self.text_heads):
            return self.text_heads[len(b)] + b
        return field(SPAN_ATTRIBUTE, self._key + field(KV_VALUE, field(ANY_STRING, b)))

    def integer(self, value: int) -> bytes:
        if 0 <= value < 0x80:
            return self.small_ints[value]
        v = int64(value)
        return self._int_head[len(v)] + v

    def double(self, value: float) -> bytes:
        return self.double_head + DOUBLE.pack(value)

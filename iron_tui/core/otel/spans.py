"""Finished calls → an OTLP `ExportTraceServiceRequest`, encoded by hand (`protobuf.py`).

One CLIENT span per call with the GenAI semantic-convention attributes (`gen_ai.*`, `error.type`)
and iron-tui's (`iron.*`: cost, budget, request id), continuing the caller's `traceparent`; plus
one child span per upstream attempt when the call was retried or fell back (`RequestRecord.attempts`,
filled by the retry logic of issue 16).

Runs in the exporter process (`worker.py`), never on the request path: ids, sampling and the response facts
(model, id, finish reasons, read from the stored response preview: `response_facts.py`) are all worked
out here. It is written for speed all the same (its CPU comes from the same machine): spans are
encoded straight from the rows that crossed the pipe (`wire.py`), with no record or message objects;
the attributes that repeat (operation, provider, models, API, status, finish reasons, limit) are
encoded once per distinct combination, and only the per-call values are encoded per span: ~2.8 µs
a span, ~1 µs of it reading the response facts (~4.2 µs before the loop was flattened, ~10 µs with
the official messages).
"""

from __future__ import annotations

import random
import struct
from typing import Any

from iron_tui import __version__
from iron_tui.core.events import MICROS_PER_USD
from iron_tui.core.metrics import error_type, operation_name, provider_name
from iron_tui.core.otel.config import OtlpConfig
from iron_tui.core.otel.content import content_attributes
from iron_tui.core.otel.protobuf import (
    DOUBLE,
    REQUEST_RESOURCE_SPANS,
    RESOURCE_ATTRIBUTE,
    RESOURCE_SPANS_RESOURCE,
    RESOURCE_SPANS_SCOPE_SPANS,
    SCOPE_NAME,
    SCOPE_SPANS_SCOPE,
    SCOPE_SPANS_SPAN,
    SCOPE_VERSION,
    SPAN_ATTRIBUTE,
    SPAN_END_TAG,
    SPAN_FLAGS,
    SPAN_KIND_CLIENT,
    SPAN_NAME,
    SPAN_PARENT_ID,
    SPAN_SPAN_ID,
    SPAN_START_TAG,
    SPAN_STATUS,
    SPAN_TIMES,
    SPAN_TRACE_ID,
    STATUS_CODE_ERROR,
    STATUS_MESSAGE,
    AttrValue,
    SpanAttribute,
    attributes,
    field,
    fixed32,
    utf8,
    varint,
)
from iron_tui.core.otel.response_facts import response_facts
from iron_tui.core.otel.traceparent import parse_traceparent
from iron_tui.core.otel.wire import QueuedCall, Row, call_rows, record_from_row

# Span flags: the W3C trace flags (sampled) plus whether the parent's remoteness is known / true.
_LOCAL_PARENT = fixed32(SPAN_FLAGS, 0x101)
_REMOTE_PARENT = fixed32(SPAN_FLAGS, 0x301)
_STATIC_CACHE_SIZE = 4096
_SPAN_HEADS = 4096
_ZERO16 = bytes(16)
_ZERO8 = bytes(8)
_MAX_NANOS = (1 << 64) - 1

_OPERATION = SpanAttribute("gen_ai.operation.name")
_PROVIDER = SpanAttribute("gen_ai.provider.name")
_REQUEST_MODEL = SpanAttribute("gen_ai.request.model")
_RESPONSE_ID = SpanAttribute("gen_ai.response.id")
_INPUT_TOKENS = SpanAttribute("gen_ai.usage.input_tokens")
_OUTPUT_TOKENS = SpanAttribute("gen_ai.usage.output_tokens")
_CACHE_READ = SpanAttribute("gen_ai.usage.cache_read.input_tokens")
_CACHE_WRITE = SpanAttribute("gen_ai.usage.cache_creation.input_tokens")
_ERROR_TYPE = SpanAttribute("error.type")
_HTTP_STATUS = SpanAttribute("http.response.status_code")
_REQUEST_ID = SpanAttribute("iron.request_id")
_TTFC = SpanAttribute("iron.time_to_first_chunk_ms")
_COST = SpanAttribute("iron.cost_usd")
_SPENT = SpanAttribute("iron.budget.spent_usd")
_CAPPED = SpanAttribute("iron.budget.capped_max_tokens")
_ATTEMPT = SpanAttribute("iron.attempt")
# The time to first chunk, cost and budget spent, with their attribute heads: one pack per span.
_THREE_DOUBLES = struct.Struct(f"<{len(_TTFC.double_head)}sd{len(_COST.double_head)}sd{len(_SPENT.double_head)}sd")
_CONTENT = {key: SpanAttribute(key) for key in
            ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages")}


def _times(start: int, end: int) -> bytes:
    """Span start and end (fixed64 nanoseconds), clamped so a clock oddity cannot fail the batch."""
    if not 0 <= start <= end <= _MAX_NANOS:
        start = min(max(start, 0), _MAX_NANOS)
        end = min(max(end, start), _MAX_NANOS)
    return SPAN_TIMES.pack(SPAN_START_TAG, start, SPAN_END_TAG, end)


def _error_status(message: str) -> bytes:
    return field(SPAN_STATUS, field(STATUS_MESSAGE, utf8(message[:1000])) + STATUS_CODE_ERROR)


class SpanEncoder:
    def __init__(self, cfg: OtlpConfig, instance_id: str, rng: random.Random | None = None) -> None:
        self._cfg = cfg
        self._rng = rng or random.Random()
        attrs = {**cfg.resource, "service.name": cfg.service_name, "service.version": __version__,
                 "service.instance.id": instance_id, "telemetry.sdk.name": "iron-tui",
                 "telemetry.sdk.language": "python", "telemetry.sdk.version": __version__}
        self._resource = field(RESOURCE_SPANS_RESOURCE, attributes(RESOURCE_ATTRIBUTE, attrs.items()))
        self._scope = field(SCOPE_SPANS_SCOPE, field(SCOPE_NAME, b"iron_tui") + field(SCOPE_VERSION, utf8(__version__)))
        # Per distinct combination: (its attributes as Span fields, the span's name and kind fields, operation).
        self._static: dict[tuple[object, ...], tuple[bytes, bytes, str]] = {}
        # ScopeSpans.spans tag and length, per span length (spans of a batch have a few lengths).
        self._span_heads: dict[int, bytes] = {}
        # The sampler's decision without calling it in the common cases.
        self._follow_parent = cfg.sampler.name.startswith("parentbased_")
        self._keep_roots = cfg.sampler.name in ("always_on", "parentbased_always_on")

    def encode(self, calls: list[QueuedCall]) -> tuple[bytes, int]:
        """`encode_rows` for records (tests, and anything in process)."""
        return self.encode_rows(call_rows(calls, self._cfg.capture_content))

    def encode_rows(self, rows: list[Row]) -> tuple[bytes, int]:
        """(the serialized request, how many spans it holds); sampled-out calls hold none."""
        spans: list[bytes] = []
        count = 0
        # Per span, this loop is the whole cost of tracing (the request path only queued the
        # record), and at full load its CPU is taken from the proxy: it is one flat loop over
        # locals (no call per span or per attribute in the common case), and what can be made once
        # per batch or per combination of values is.
        ids = self._id_block(len(rows))
        static, span_heads, follow_parent, keep_roots = self._static, self._span_heads, self._follow_parent, \
            self._keep_roots
        sampler, content = self._cfg.sampler, self._cfg.capture_content
        pack_times, facts, join = SPAN_TIMES.pack, response_facts, b"".join
        rid_heads, rid_text = _REQUEST_ID.text_heads, _REQUEST_ID.text
        resp_heads, resp_text = _RESPONSE_ID.text_heads, _RESPONSE_ID.text
        in_small, in_int = _INPUT_TOKENS.small_ints, _INPUT_TOKENS.integer
        out_small, out_int = _OUTPUT_TOKENS.small_ints, _OUTPUT_TOKENS.integer
        ttfc, cost_usd, spent_usd, double = _TTFC.double_head, _COST.double_head, _SPENT.double_head, DOUBLE.pack
        three = _THREE_DOUBLES.pack
        at = -28
        for row in rows:
            (rid, started_at, api, model, provider, upstream_api, stream, translated, agent_id, state, status,
             latency_ms, ttft_ms, input_tokens, output_tokens, cache_read, cache_write, cost, priced, estimated,
             error, error_code, traceparent, capped, client_model, upstream_response, _request_body, attempts,
             spent, limit) = row
            at += 28
            parent = parse_traceparent(traceparent) if traceparent else None
            if parent is None:
                if not keep_roots and not sampler.sampled(ids[at + 2:at + 18], None):
                    continue
                head = ids[at:at + 28]  # trace id and span id, as Span fields
                trace_id = head[2:18] if attempts else b""
            else:
                if follow_parent:
                    if not parent.sampled:
                        continue
                elif not keep_roots and not sampler.sampled(parent.trace_id, parent):
                    continue
                trace_id = parent.trace_id
                head = SPAN_TRACE_ID + trace_id + ids[at + 18:at + 28] + SPAN_PARENT_ID + parent.span_id
            response_model, response_id, reasons = facts(upstream_response, status, upstream_api, api, provider,
                                                         stream)
            key = (provider, model, response_model, reasons, api, stream, translated, agent_id, status, state,
                   error_code, priced, estimated, limit, client_model)
            found = static.get(key) or self._static_attributes(key, row, response_model, reasons)
            start = int(started_at * 1e9)
            end = start + int((latency_ms or 0.0) * 1e6)
            if not 0 <= start <= end <= _MAX_NANOS:  # a clock oddity must not fail the batch: clamped
                start = min(max(start, 0), _MAX_NANOS)
                end = min(max(end, start), _MAX_NANOS)
            parts = [head, found[1], pack_times(SPAN_START_TAG, start, SPAN_END_TAG, end), found[0]]
            if response_id:
                b = response_id.encode("utf-8", "replace")
                parts.append(resp_heads[len(b)] + b if len(b) < len(resp_heads) else resp_text(response_id))
            if input_tokens or output_tokens or state == "ok":
                parts.append(in_small[input_tokens] if 0 <= input_tokens < 128 else in_int(input_tokens))
                parts.append(out_small[output_tokens] if 0 <= output_tokens < 128 else out_int(output_tokens))
            if cache_read:
                parts.append(_CACHE_READ.integer(cache_read))
            if cache_write:
                parts.append(_CACHE_WRITE.integer(cache_write))
            b = rid.encode("utf-8", "replace")
            parts.append(rid_heads[len(b)] + b if len(b) < len(rid_heads) else rid_text(rid))
            if ttft_ms is not None and cost is not None:  # the usual case: one pack for all three
                parts.append(three(ttfc, ttft_ms, cost_usd, cost / MICROS_PER_USD, spent_usd, spent / MICROS_PER_USD))
            else:
                if ttft_ms is not None:
                    parts.append(ttfc + double(ttft_ms))
                if cost is not None:
                    parts.append(cost_usd + double(cost / MICROS_PER_USD))
                parts.append(spent_usd + double(spent / MICROS_PER_USD))
            if capped is not None:
                parts.append(_CAPPED.integer(capped))
            if content:
                for name, text in content_attributes(record_from_row(row)):
                    parts.append((_CONTENT.get(name) or SpanAttribute(name)).text(text))
            if state != "ok":
                parts.append(_error_status(error or "failed"))
            parts.append(_LOCAL_PARENT if parent is None else _REMOTE_PARENT)
            body = join(parts)
            spans.append(span_heads.get(len(body)) or self._span_head(len(body)))
            spans.append(body)
            count += 1
            for number, attempt in enumerate(attempts, 1):
                self._attempt(spans, trace_id, head[20:28], found[2], number, attempt)
                count += 1
        if not spans:
            return b"", 0
        # One join for the whole request: its nested lengths are known before the spans are copied.
        scope_spans_len = len(self._scope) + sum(map(len, spans))
        scope_spans_head = RESOURCE_SPANS_SCOPE_SPANS + varint(scope_spans_len)
        resource_spans_len = len(self._resource) + len(scope_spans_head) + scope_spans_len
        return join([REQUEST_RESOURCE_SPANS, varint(resource_spans_len), self._resource, scope_spans_head,
                     self._scope, *spans]), count

    def _id_block(self, n: int) -> bytes:
        """`n` new (trace id, span id) pairs as the Span fields they become, 28 bytes each, made in a
        few C calls per batch rather than a few Python calls per span; no id is all zeros (invalid)."""
        while True:
            raw = memoryview(self._rng.randbytes(24 * n))
            block = bytearray(28 * n)
            block[0::28], block[1::28] = SPAN_TRACE_ID[:1] * n, SPAN_TRACE_ID[1:] * n
            block[18::28], block[19::28] = SPAN_SPAN_ID[:1] * n, SPAN_SPAN_ID[1:] * n
            for j in range(16):
                block[2 + j::28] = raw[j * n:(j + 1) * n]
            for j in range(8):
                block[20 + j::28] = raw[(16 + j) * n:(17 + j) * n]
            # An all-zero id shows as its tag and zeros (a false match elsewhere only costs a redraw).
            if SPAN_TRACE_ID + _ZERO16 not in block and SPAN_SPAN_ID + _ZERO8 not in block:
                return bytes(block)

    def _span_head(self, length: int) -> bytes:
        head = SCOPE_SPANS_SPAN + varint(length)
        if len(self._span_heads) < _SPAN_HEADS:  # spans with content have many lengths: a bound
            self._span_heads[length] = head
        return head

    def _ids(self) -> tuple[bytes, bytes]:
        """A new (trace id, span id); all-zero ids are invalid."""
        while True:
            raw = self._rng.getrandbits(192).to_bytes(24, "big")
            if raw[:16] != _ZERO16 and raw[16:] != _ZERO8:
                return raw[:16], raw[16:]

    def _static_attributes(self, key: tuple[object, ...], row: Row, model: str | None,
                           reasons: tuple[str, ...]) -> tuple[bytes, bytes, str]:
        """The attributes that repeat from call to call, encoded once, the span's name and operation."""
        rec = record_from_row(row)
        op = operation_name(rec.api)
        attrs: list[tuple[str, AttrValue]] = [
            ("gen_ai.operation.name", op),
            ("gen_ai.provider.name", provider_name(rec.provider)),
            ("gen_ai.request.model", rec.model),
        ]
        if model:
            attrs.append(("gen_ai.response.model", model))
        if reasons:
            attrs.append(("gen_ai.response.finish_reasons", reasons))
        err = error_type(rec)
        if err is not None:
            attrs.append(("error.type", err))
        if rec.status is not None:
            attrs.append(("http.response.status_code", rec.status))
        attrs += [("iron.api", rec.api), ("iron.stream", rec.stream)]
        if rec.translated:
            attrs.append(("iron.translated", True))
        if rec.agent_id:
            attrs.append(("iron.agent_id", rec.agent_id))
        if rec.client_model:
            attrs.append(("iron.client_model", rec.client_model))  # an alias or NAME/model the client sent
        if not rec.priced:
            attrs.append(("iron.unpriced", True))
        if rec.cost_estimated:
            attrs.append(("iron.cost_estimated", True))
        limit = row[-1]
        if limit is not None:
            attrs.append(("iron.budget.limit_usd", limit / MICROS_PER_USD))
        if len(self._static) >= _STATIC_CACHE_SIZE:  # many distinct models or agents: start over
            self._static.clear()
        found = self._static[key] = (attributes(SPAN_ATTRIBUTE, attrs),
                                     field(SPAN_NAME, utf8(f"{op} {rec.model}")) + SPAN_KIND_CLIENT, op)
        return found

    def _attempt(self, spans: list[bytes], trace_id: bytes, call_span_id: bytes, op: str, number: int,
                 attempt: tuple[Any, ...]) -> None:
        started_at, duration_ms, provider, model, status, err_type, error, _waited_ms = attempt
        start = int(started_at * 1e9)
        parts = [SPAN_TRACE_ID + trace_id + SPAN_SPAN_ID + self._ids()[1] + SPAN_PARENT_ID + call_span_id,
                 field(SPAN_NAME, utf8(f"{op} {model}")), SPAN_KIND_CLIENT,
                 _times(start, start + int(duration_ms * 1e6)),
                 _OPERATION.text(op), _PROVIDER.text(provider_name(provider)), _REQUEST_MODEL.text(model),
                 _ATTEMPT.integer(number)]
        if status is not None:
            parts.append(_HTTP_STATUS.integer(status))
        if err_type is not None:
            parts.append(_ERROR_TYPE.text(err_type))
            parts.append(_error_status(error or err_type))
        parts.append(_LOCAL_PARENT)
        body = b"".join(parts)
        spans.append(SCOPE_SPANS_SPAN + varint(len(body)) + body)

"""Finished calls → an OTLP `ExportTraceServiceRequest`, with the official `opentelemetry-proto` messages.

One CLIENT span per call with the GenAI semantic-convention attributes (`gen_ai.*`, `error.type`)
and iron-tui's (`iron.*`: cost, budget, request id), continuing the caller's `traceparent`; plus
one child span per upstream attempt when the call was retried or fell back (`RequestRecord.attempts`,
filled by the retry logic of issue 16).

Runs in the exporter process (`worker.py`), never on the request path: ids, sampling and the response facts
(model, id, finish reasons, read from the stored response preview) are all worked out here. It is
written for speed all the same (its CPU comes from the same machine): the attributes that repeat
(operation, provider, models, API, status, finish reasons, limit) are serialized once per distinct
combination and merged into each span as bytes, and only the per-call values become new messages.
"""

from __future__ import annotations

import random
import re
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from iron_tui import __version__
from iron_tui.core.events import MICROS_PER_USD, Attempt, RequestRecord
from iron_tui.core.metrics import error_type, operation_name, provider_name
from iron_tui.core.otel.config import OtlpConfig
from iron_tui.core.otel.content import content_attributes
from iron_tui.core.otel.traceparent import parse_traceparent
from iron_tui.core.otel.wire import QueuedCall

AttrValue = str | int | float | bool | tuple[str, ...]

SPAN_KIND_CLIENT = Span.SPAN_KIND_CLIENT
# Span flags: the W3C trace flags (sampled) plus whether the parent's remoteness is known / true.
_SAMPLED = 0x01
_LOCAL_PARENT = 0x101
_REMOTE_PARENT = 0x301
_STATIC_CACHE_SIZE = 4096
_ZERO16 = bytes(16)
_ZERO8 = bytes(8)


class SpanEncoder:
    def __init__(self, cfg: OtlpConfig, instance_id: str, rng: random.Random | None = None) -> None:
        self._cfg = cfg
        self._rng = rng or random.Random()
        attrs = {**cfg.resource, "service.name": cfg.service_name, "service.version": __version__,
                 "service.instance.id": instance_id, "telemetry.sdk.name": "iron-tui",
                 "telemetry.sdk.language": "python", "telemetry.sdk.version": __version__}
        self._resource = Resource(attributes=[KeyValue(key=k, value=_any(v)) for k, v in attrs.items()])
        self._scope = InstrumentationScope(name="iron_tui", version=__version__)
        self._static: dict[tuple[Any, ...], tuple[bytes, str]] = {}
        # The sampler's decision without calling it in the common cases.
        self._follow_parent = cfg.sampler.name.startswith("parentbased_")
        self._keep_roots = cfg.sampler.name in ("always_on", "parentbased_always_on")

    def encode(self, calls: list[QueuedCall]) -> tuple[bytes, int]:
        """(the serialized request, how many spans it holds); sampled-out calls hold none."""
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.CopyFrom(self._resource)
        ss = rs.scope_spans.add()
        ss.scope.CopyFrom(self._scope)
        for rec, spent, limit in calls:
            self._call(ss.spans, rec, spent, limit)
        return (req.SerializeToString() if ss.spans else b""), len(ss.spans)

    def _ids(self) -> tuple[bytes, bytes]:
        """A new (trace id, span id); all-zero ids are invalid."""
        while True:
            raw = self._rng.getrandbits(192).to_bytes(24, "big")
            if raw[:16] != _ZERO16 and raw[16:] != _ZERO8:
                return raw[:16], raw[16:]

    def _call(self, spans: Any, rec: RequestRecord, spent: int, limit: int | None) -> None:
        # Per span, this is the whole cost of tracing (the request path only queued the record), and
        # at full load it is taken from the proxy: keep it flat, no helpers for the varying values.
        parent = parse_traceparent(rec.traceparent) if rec.traceparent else None
        trace_id, span_id = self._ids()
        if parent is not None:
            trace_id = parent.trace_id
        if parent is not None and self._follow_parent:
            if not parent.sampled:
                return
        elif not self._keep_roots and not self._cfg.sampler.sampled(trace_id, parent):
            return
        model, response_id, reasons = response_facts(rec)
        block, name = self._static_attributes(rec, model, reasons, limit)
        start = int(rec.started_at * 1e9)
        s = spans.add(trace_id=trace_id, span_id=span_id, name=name, kind=SPAN_KIND_CLIENT,
                      start_time_unix_nano=start, end_time_unix_nano=start + int((rec.latency_ms or 0.0) * 1e6),
                      flags=_LOCAL_PARENT if parent is None else _REMOTE_PARENT)
        if parent is not None:
            s.parent_span_id = parent.span_id
        s.MergeFromString(block)
        add = s.attributes.add
        if response_id:
            kv = add(key="gen_ai.response.id")
            kv.value.string_value = response_id
        if rec.input_tokens or rec.output_tokens or rec.state == "ok":
            add(key="gen_ai.usage.input_tokens").value.int_value = rec.input_tokens
            add(key="gen_ai.usage.output_tokens").value.int_value = rec.output_tokens
        if rec.cache_read_tokens:
            add(key="gen_ai.usage.cache_read.input_tokens").value.int_value = rec.cache_read_tokens
        if rec.cache_write_tokens:
            add(key="gen_ai.usage.cache_creation.input_tokens").value.int_value = rec.cache_write_tokens
        add(key="iron.request_id").value.string_value = rec.id
        if rec.ttft_ms is not None:
            add(key="iron.time_to_first_chunk_ms").value.double_value = rec.ttft_ms
        if rec.cost_micros is not None:
            add(key="iron.cost_usd").value.double_value = rec.cost_micros / MICROS_PER_USD
        add(key="iron.budget.spent_usd").value.double_value = spent / MICROS_PER_USD
        if rec.capped_max_tokens is not None:
            add(key="iron.budget.capped_max_tokens").value.int_value = rec.capped_max_tokens
        if self._cfg.capture_content:
            for key, text in content_attributes(rec):
                add(key=key).value.string_value = text
        if rec.state != "ok":
            s.status.code = Status.STATUS_CODE_ERROR
            s.status.message = (rec.error or "failed")[:1000]
        if rec.attempts:
            op = operation_name(rec.api)
            for number, attempt in enumerate(rec.attempts, 1):
                self._attempt(spans, s, op, number, attempt)

    def _static_attributes(self, rec: RequestRecord, model: str | None, reasons: tuple[str, ...],
                           limit: int | None) -> tuple[bytes, str]:
        """The attributes that repeat from call to call, serialized once (as a Span holding only them),
        and the span's name."""
        key = (rec.provider, rec.model, model, reasons, rec.api, rec.stream, rec.translated, rec.agent_id,
               rec.status, rec.state, rec.error_code, rec.priced, rec.cost_estimated, limit, rec.client_model)
        found = self._static.get(key)
        if found is not None:
            return found
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
        if limit is not None:
            attrs.append(("iron.budget.limit_usd", limit / MICROS_PER_USD))
        if len(self._static) >= _STATIC_CACHE_SIZE:  # many distinct models or agents: start over
            self._static.clear()
        block = Span(attributes=[KeyValue(key=k, value=_any(v)) for k, v in attrs]).SerializeToString()
        found = self._static[key] = (block, f"{op} {rec.model}")
        return found

    def _attempt(self, spans: Any, call: Span, op: str, number: int, a: Attempt) -> None:
        start = int(a.started_at * 1e9)
        s = spans.add(trace_id=call.trace_id, span_id=self._ids()[1], parent_span_id=call.span_id,
                      flags=_LOCAL_PARENT, name=f"{op} {a.model}", kind=SPAN_KIND_CLIENT,
                      start_time_unix_nano=start, end_time_unix_nano=start + int(a.duration_ms * 1e6))
        add = s.attributes.add
        add(key="gen_ai.operation.name").value.string_value = op
        add(key="gen_ai.provider.name").value.string_value = provider_name(a.provider)
        add(key="gen_ai.request.model").value.string_value = a.model
        add(key="iron.attempt").value.int_value = number
        if a.status is not None:
            add(key="http.response.status_code").value.int_value = a.status
        if a.error_type is not None:
            add(key="error.type").value.string_value = a.error_type
            s.status.code = Status.STATUS_CODE_ERROR
            s.status.message = (a.error or a.error_type)[:1000]


def _any(value: AttrValue) -> AnyValue:
    if isinstance(value, bool):  # before int: bool is an int
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, tuple):
        return AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=v) for v in value]))
    return AnyValue(string_value=value)


# --- what the provider answered, from the stored preview (already key-redacted) -------------------

_MODEL = re.compile(r'"model"\s*:\s*"([^"\\]{1,200})"')
_ID = re.compile(r'"id"\s*:\s*"([^"\\]{1,200})"')
_FINISH = re.compile(r'_reason"\s*:\s*"([^"\\]{1,40})"')  # finish_reason, stop_reason (a literal prefix: fast)
_RESPONSES_END = re.compile(r'"type"\s*:\s*"response\.(completed|incomplete|failed)"')
_RESPONSES_STATUS = re.compile(r'"status"\s*:\s*"(completed|incomplete|failed|cancelled|in_progress)"')


def response_facts(rec: RequestRecord) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(response model, response id, finish reasons) as the provider reported them, read from the
    stored response (JSON, or the SSE stream as relayed); what the preview does not hold is None/()."""
    text = rec.upstream_response
    if not text or rec.status is None or rec.status >= 400:
        return None, None, ()
    m = _MODEL.search(text)
    i = _ID.search(text)
    upstream = rec.upstream_api or ("openai-responses" if rec.api == "openai.responses" else rec.provider)
    if upstream == "openai-responses":
        ends = _RESPONSES_END.findall(text) if rec.stream else []
        first = _RESPONSES_STATUS.search(text)
        reasons: tuple[str, ...] = (ends[-1],) if ends else ((first.group(1),) if first else ())
    else:
        reasons = tuple(_FINISH.findall(text))
        if rec.stream and reasons:
            reasons = reasons[-1:]  # a stream repeats the same choice's reason in several events
    return (m.group(1) if m else None), (i.group(1) if i else None), reasons

"""The hand-written OTLP encoder (`core/otel/protobuf.py`, `spans.py`): its bytes decoded with the
official `opentelemetry-proto` messages, every field compared, unusual values included."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import example, given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from iron_tui import __version__
from iron_tui.core.events import Attempt, RequestRecord
from iron_tui.core.otel import protobuf, response_facts
from iron_tui.core.otel.config import OtlpConfig, Sampler
from iron_tui.core.otel.spans import SpanEncoder
from iron_tui.core.otel.wire import call_rows, pack_calls, record_from_row, unpack_rows

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
INT64_MAX = (1 << 63) - 1
CFG = OtlpConfig(endpoint="http://c/v1/traces", service_name="gatewäy", resource={"team": "ünit", "empty": ""})


def plain(v: AnyValue) -> tuple[str, Any]:
    kind = v.WhichOneof("value")
    assert kind is not None
    if kind == "array_value":
        return kind, [plain(x) for x in v.array_value.values]
    return kind, getattr(v, kind)


def attrs(kvs: Any) -> list[tuple[str, tuple[str, Any]]]:
    """Attributes in order, each with the AnyValue kind it was sent as."""
    return [(kv.key, plain(kv.value)) for kv in kvs]


def fields(msg: Message) -> dict[str, Any]:
    """Every field set on the message (so an unexpected one fails the comparison)."""
    return {f.name: v for f, v in msg.ListFields()}


def decode(body: bytes) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest.FromString(body)
    # Nothing the official parser did not recognise, and its own encoding is the same bytes.
    assert req.SerializeToString() == body
    return req


def record(**changes: Any) -> RequestRecord:
    rec = RequestRecord(id="req_1", started_at=1_764_600_000.25, method="POST", path="/v1/chat/completions",
                        api="openai.chat", model="gpt-4o", provider="openai")
    rec.state, rec.status, rec.latency_ms, rec.upstream_api = "ok", 200, 12.5, "openai"
    rec.input_tokens, rec.output_tokens, rec.cost_micros = 12, 34, 56
    rec.upstream_response = '{"id":"chatcmpl-1","model":"gpt-4o-2024-08-06","choices":[{"finish_reason":"stop"}]}'
    for k, v in changes.items():
        setattr(rec, k, v)
    return rec


def test_a_call_span_decodes_to_every_field_the_official_messages_would_carry() -> None:
    rec = record(traceparent=PARENT, stream=True, translated=True, agent_id="agent-ß", priced=False,
                 cost_estimated=True, ttft_ms=0.0, cache_read_tokens=300, cache_write_tokens=2**70,
                 capped_max_tokens=-5, client_model="fast", model="modèle-日本")
    body, n = SpanEncoder(CFG, "inst-1").encode([(rec, 1_500_000, 10_000_000)])
    assert n == 1
    req = decode(body)
    [rs] = req.resource_spans
    assert set(fields(rs)) == {"resource", "scope_spans"}
    assert attrs(rs.resource.attributes) == [
        ("team", ("string_value", "ünit")), ("empty", ("string_value", "")),
        ("service.name", ("string_value", "gatewäy")), ("service.version", ("string_value", __version__)),
        ("service.instance.id", ("string_value", "inst-1")), ("telemetry.sdk.name", ("string_value", "iron-tui")),
        ("telemetry.sdk.language", ("string_value", "python")),
        ("telemetry.sdk.version", ("string_value", __version__))]
    [ss] = rs.scope_spans
    assert fields(ss.scope) == {"name": "iron_tui", "version": __version__}
    [span] = ss.spans
    got = fields(span)
    span_id = got.pop("span_id")
    assert len(span_id) == 8 and span_id != bytes(8)
    assert attrs(got.pop("attributes")) == [
        ("gen_ai.operation.name", ("string_value", "chat")),
        ("gen_ai.provider.name", ("string_value", "openai")),
        ("gen_ai.request.model", ("string_value", "modèle-日本")),
        ("gen_ai.response.model", ("string_value", "gpt-4o-2024-08-06")),
        ("gen_ai.response.finish_reasons", ("array_value", [("string_value", "stop")])),
        ("http.response.status_code", ("int_value", 200)),
        ("iron.api", ("string_value", "openai.chat")),
        ("iron.stream", ("bool_value", True)),
        ("iron.translated", ("bool_value", True)),
        ("iron.agent_id", ("string_value", "agent-ß")),
        ("iron.client_model", ("string_value", "fast")),
        ("iron.unpriced", ("bool_value", True)),
        ("iron.cost_estimated", ("bool_value", True)),
        ("iron.budget.limit_usd", ("double_value", 10.0)),
        ("gen_ai.response.id", ("string_value", "chatcmpl-1")),
        ("gen_ai.usage.input_tokens", ("int_value", 12)),
        ("gen_ai.usage.output_tokens", ("int_value", 34)),
        ("gen_ai.usage.cache_read.input_tokens", ("int_value", 300)),
        ("gen_ai.usage.cache_creation.input_tokens", ("int_value", INT64_MAX)),  # clamped, not a lost batch
        ("iron.request_id", ("string_value", "req_1")),
        ("iron.time_to_first_chunk_ms", ("double_value", 0.0)),
        ("iron.cost_usd", ("double_value", 56e-6)),
        ("iron.budget.spent_usd", ("double_value", 1.5)),
        ("iron.budget.capped_max_tokens", ("int_value", -5)),
    ]
    start = int(1_764_600_000.25 * 1e9)
    assert got == {
        "trace_id": bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
        "parent_span_id": bytes.fromhex("b7ad6b7169203331"),
        "name": "chat modèle-日本", "kind": Span.SPAN_KIND_CLIENT,
        "start_time_unix_nano": start, "end_time_unix_nano": start + 12_500_000,
        "flags": 0x301,  # sampled, parent known to be remote
    }
    assert not span.events and not span.links and not span.HasField("status")


def test_a_failed_call_with_attempts_has_error_status_and_child_spans() -> None:
    long_error = "upstream said: " + "ü" * 2000
    rec = record(state="error", status=503, error=long_error, error_code=None, input_tokens=0, output_tokens=0,
                 cost_micros=None, upstream_response='{"error":{"message":"overloaded"}}', agent_id="",
                 attempts=(Attempt(1000.0, 400.0, "openai", "gpt-4o", 503, "503", "busy \ud800 server"),
                           Attempt(1000.5, 0.0, "local", "llama-3", None, "upstream_timeout", None)))
    body, n = SpanEncoder(CFG, "inst").encode([(rec, 0, None)])
    assert n == 3
    call, first, second = decode(body).resource_spans[0].scope_spans[0].spans
    assert attrs(call.attributes) == [
        ("gen_ai.operation.name", ("string_value", "chat")),
        ("gen_ai.provider.name", ("string_value", "openai")),
        ("gen_ai.request.model", ("string_value", "gpt-4o")),
        ("error.type", ("string_value", "503")),
        ("http.response.status_code", ("int_value", 503)),
        ("iron.api", ("string_value", "openai.chat")),
        ("iron.stream", ("bool_value", False)),  # an empty agent id is left out, like a missing one
        ("iron.request_id", ("string_value", "req_1")),
        ("iron.budget.spent_usd", ("double_value", 0.0)),
    ]
    assert fields(call.status) == {"code": 2, "message": long_error[:1000]}
    assert call.flags == 0x101 and not call.parent_span_id and len(call.trace_id) == 16
    for child in (first, second):
        assert child.trace_id == call.trace_id and child.parent_span_id == call.span_id
        assert child.span_id not in (call.span_id, bytes(8)) and child.flags == 0x101
        assert child.kind == Span.SPAN_KIND_CLIENT and not child.events and not child.links
    assert first.span_id != second.span_id
    assert attrs(first.attributes) == [
        ("gen_ai.operation.name", ("string_value", "chat")), ("gen_ai.provider.name", ("string_value", "openai")),
        ("gen_ai.request.model", ("string_value", "gpt-4o")), ("iron.attempt", ("int_value", 1)),
        ("http.response.status_code", ("int_value", 503)), ("error.type", ("string_value", "503"))]
    assert fields(first.status) == {"code": 2, "message": "busy ? server"}  # a lone surrogate: valid UTF-8 sent
    assert first.name == "chat gpt-4o" and first.end_time_unix_nano - first.start_time_unix_nano == 400_000_000
    assert attrs(second.attributes)[-2:] == [("iron.attempt", ("int_value", 2)),
                                             ("error.type", ("string_value", "upstream_timeout"))]
    assert fields(second.status) == {"code": 2, "message": "upstream_timeout"}
    assert second.start_time_unix_nano == second.end_time_unix_nano == 1000_500_000_000


@pytest.mark.parametrize("value", [
    "", "ascii", "é" * 61, "é" * 62, "x" * 127, "x" * 128, "日本語" * 3000, True, False, 0, 1, 127, 128, 300,
    -1, -(2**63), 2**63 - 1, 0.0, -2.5, 1e300, float("inf"), ("stop",), (), ("a", "", "ü" * 200)])
def test_every_attribute_value_round_trips(value: protobuf.AttrValue) -> None:
    for key in ("k", "ключ" * 40):  # a short key and one whose length needs a two-byte varint
        kv = KeyValue.FromString(protobuf.key_value(key, value))
        expected = [("string_value", v) for v in value] if isinstance(value, tuple) else value
        assert kv.key == key and plain(kv.value) == (
            {bool: "bool_value", int: "int_value", float: "double_value", str: "string_value",
             tuple: "array_value"}[type(value)], expected)
        attr = protobuf.SpanAttribute(key)
        fast = (attr.text(value) if isinstance(value, str) else attr.double(value) if isinstance(value, float)
                else attr.integer(value) if isinstance(value, int) and not isinstance(value, bool) else None)
        if fast is not None:  # the per-span path gives the same bytes as the general one
            assert fast == protobuf.field(protobuf.SPAN_ATTRIBUTE, protobuf.key_value(key, value))


def test_none_attributes_are_left_out_and_huge_ints_clamped() -> None:
    resource = protobuf.attributes(protobuf.RESOURCE_ATTRIBUTE,
                                   [("a", None), ("b", 2**80), ("c", -(2**80)), ("d", None)])  # type: ignore[list-item]
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    assert attrs(Resource.FromString(resource).attributes) == [("b", ("int_value", INT64_MAX)),
                                                               ("c", ("int_value", -(2**63)))]


def test_sampled_out_calls_give_no_request_and_rows_round_trip() -> None:
    unsampled = record(traceparent=PARENT[:-2] + "00")
    assert SpanEncoder(CFG, "inst").encode([(unsampled, 0, None)]) == (b"", 0)
    off = OtlpConfig(endpoint="http://c/v1/traces", sampler=Sampler("always_off"))
    assert SpanEncoder(off, "inst").encode([(record(), 0, None)]) == (b"", 0)
    # What crosses the pipe is what the exporter reads back, field for field.
    rec = record(attempts=(Attempt(1.0, 2.0, "openai", "m", 200, None, None, 0.5),), agent_id="a", ttft_ms=3.0)
    [row] = unpack_rows(pack_calls([(rec, 7, 9)], content=True))
    assert row[-2:] == (7, 9)
    back = record_from_row(row)
    for name in ("id", "started_at", "api", "model", "provider", "state", "status", "latency_ms", "ttft_ms",
                 "input_tokens", "output_tokens", "cost_micros", "agent_id", "attempts", "upstream_response"):
        assert getattr(back, name) == getattr(rec, name), name
    with pytest.raises(ValueError):
        unpack_rows(pickle.dumps({"not": "rows"}))
    # A frame is plain values: one that names a class or function (which unpickling would call) is
    # refused, never run.
    for hostile in (pickle.dumps([rec]), pickle.dumps([(print, 1)]), b"\x80\x05cos\nsystem\n(S'true'\ntR.",
                    b"not a pickle"):
        with pytest.raises(ValueError):
            unpack_rows(hostile)


def test_a_batch_holds_every_call_in_order() -> None:
    calls = [(record(id=f"req_{i}", input_tokens=i * 1000), i, None) for i in range(600)]
    enc = SpanEncoder(CFG, "inst", rng=random.Random(1))
    body, n = enc.encode_rows(call_rows(calls, content=False))
    spans = decode(body).resource_spans[0].scope_spans[0].spans
    assert n == len(spans) == 600
    assert [dict(attrs(s.attributes))["iron.request_id"][1] for s in spans] == [f"req_{i}" for i in range(600)]
    assert [dict(attrs(s.attributes))["gen_ai.usage.input_tokens"][1] for s in spans] == [i * 1000 for i in range(600)]
    assert len({s.span_id for s in spans}) == len({s.trace_id for s in spans}) == 600


_FRAGMENTS = ['"finish_reason"', '"stop_reason"', '_reason"', ":", ": ", '"', "null", "stop", "x_reason", "\\",
              "tool_use", " ", ",", "{", "}", "data: ", "\n\n", "a" * 41]


@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=40))
@example(['"stop_reason"', ":", '"', "x_reason", '"', ":", '"', "stop", '"'])  # a key inside a value
@example(['"stop_reason"', ": ", '"', "x_reason", '"', ":", '"', "stop", '"'])
@example(['"finish_reason"', ":", '"', "stop", '"', ",", '"finish_reason"', ":", "null"])
def test_a_streams_last_finish_reason_is_the_regexs(parts: list[str]) -> None:
    """The stream's reason is searched for from the end (fast); it must be what the regex finds."""
    text = "".join(parts)
    found = response_facts._FINISH.findall(text)
    assert response_facts._last_reason(text) == (found[-1] if found else None)


def test_response_facts_of_each_shape() -> None:
    facts = response_facts.response_facts
    chat = '{"id":"c1","model":"m-1","choices":[{"finish_reason":"stop"},{"finish_reason":"length"}]}'
    assert facts(chat, 200, "openai", "openai.chat", "openai", False) == ("m-1", "c1", ("stop", "length"))
    stream = ('data: {"id":"c2","model":"m-2","choices":[{"finish_reason":null}]}\n\n'
              'data: {"id":"c2","choices":[{"finish_reason": "tool_calls"}]}\n\ndata: {"choices":[],'
              '"finish_reason":null}\n\ndata: [DONE]\n\n')
    assert facts(stream, 200, "openai", "openai.chat", "openai", True) == ("m-2", "c2", ("tool_calls",))
    messages = ('event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude-x"}}'
                '\n\nevent: message_delta\ndata: {"delta":{"stop_reason":"end_turn"}}\n\n')
    assert facts(messages, 200, "anthropic", "anthropic.messages", "anthropic", True) == (
        "claude-x", "msg_1", ("end_turn",))
    responses = 'data: {"type":"response.created","response":{"id":"resp_1","status":"in_progress"}}\n\n' \
                'data: {"type":"response.completed","response":{"model":"gpt-5"}}\n\n'
    assert facts(responses, 200, None, "openai.responses", "openai", True) == ("gpt-5", "resp_1", ("completed",))
    assert facts(chat, 500, "openai", "openai.chat", "openai", False) == (None, None, ())

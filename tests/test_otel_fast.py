"""Tracing's pure parts: OTEL_* resolution, traceparent parsing, sampling, attempt spans, agent env."""

from __future__ import annotations

import sys

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from iron_tui.config import Settings
from iron_tui.core.agent_env import ProxyWiring, child_environment
from iron_tui.core.events import Attempt, RequestRecord
from iron_tui.core.otel import resolve_otlp, start_tracing
from iron_tui.core.otel.config import OtlpConfig, Sampler
from iron_tui.core.otel.spans import SpanEncoder
from iron_tui.core.otel.traceparent import SpanContext, format_traceparent, parse_traceparent

SETTINGS = Settings(openai_key="sk-test-000000000000")


def test_endpoints_follow_the_otel_rules() -> None:
    cfg, problems = resolve_otlp(SETTINGS, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
    assert cfg is not None and cfg.endpoint == "http://collector:4318/v1/traces" and not problems
    cfg, _ = resolve_otlp(SETTINGS, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
                                     "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b/custom/path"})
    assert cfg is not None and cfg.endpoint == "https://b/custom/path"  # the signal's own URL, as is
    from_file = Settings(openai_key="sk-test-000000000000", otel_endpoint="http://file:4318")
    cfg, _ = resolve_otlp(from_file, {})
    assert cfg is not None and cfg.endpoint == "http://file:4318/v1/traces"
    cfg, _ = resolve_otlp(from_file, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"})
    assert cfg is not None and cfg.endpoint == "http://env:4318/v1/traces"  # the environment wins
    assert resolve_otlp(SETTINGS, {}) == (None, [])
    for off in ({"OTEL_SDK_DISABLED": "true"}, {"OTEL_TRACES_EXPORTER": "none"}):
        assert resolve_otlp(from_file, off) == (None, [])


def test_bad_otel_values_are_reported_not_fatal() -> None:
    cfg, problems = resolve_otlp(SETTINGS, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                                            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert cfg is None and "grpc" in problems[0] and "4318" in problems[0]
    cfg, problems = resolve_otlp(SETTINGS, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon",
        "OTEL_TRACES_SAMPLER": "sometimes", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cret,novalue",
        "OTEL_BSP_MAX_QUEUE_SIZE": "-4"})
    assert cfg is not None and cfg.timeout_s == 10.0 and cfg.sampler == Sampler() and cfg.max_queue == 2048
    assert cfg.headers == {"api-key": "s3cret"}
    assert len(problems) == 4 and not any("s3cret" in p for p in problems)
    assert "s3cret" not in repr(cfg)
    cfg, problems = resolve_otlp(SETTINGS, {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"})
    assert cfg is None and "not an http" in problems[0]


def test_traceparent_parsing() -> None:
    ctx = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert ctx == SpanContext(bytes.fromhex("0af7651916cd43dd8448eb211c80319c"), bytes.fromhex("b7ad6b7169203331"),
                              True)
    assert format_traceparent(ctx.trace_id, ctx.span_id) == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    # A future version may append fields; version 00 may not.
    assert parse_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-extra") is not None
    for bad in (None, "", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
                "00-00000000000000000000000000000000-b7ad6b7169203331-01",
                "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
                "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", "x" * 10_000):
        assert parse_traceparent(bad) is None


def test_samplers() -> None:
    low, high = bytes(8) + (1).to_bytes(8, "big"), bytes(8) + b"\xff" * 8
    ratio = Sampler("traceidratio", 0.5)
    assert ratio.sampled(low, None) and not ratio.sampled(high, None)
    parent = SpanContext(high, b"\x01" * 8, sampled=False)
    assert not Sampler().sampled(high, parent) and Sampler().sampled(high, None)
    assert Sampler("always_on").sampled(high, parent)
    assert not Sampler("parentbased_always_off").sampled(low, None)


def test_attempts_become_child_spans() -> None:
    rec = RequestRecord(id="req_1", started_at=1000.0, method="POST", path="/v1/chat/completions",
                        api="openai.chat", model="gpt-4o", provider="openai",
                        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    rec.state, rec.status, rec.latency_ms = "ok", 200, 900.0
    rec.attempts = (Attempt(1000.0, 400.0, "openai", "gpt-4o", 503, "503"),
                    Attempt(1000.5, 390.0, "local", "llama-3", 200, None))
    body, n = SpanEncoder(OtlpConfig(endpoint="http://c/v1/traces"), "inst").encode([(rec, 0, None)])
    assert n == 3
    decoded = ExportTraceServiceRequest.FromString(body)
    call, first, second = decoded.resource_spans[0].scope_spans[0].spans
    assert call.parent_span_id.hex() == "b7ad6b7169203331"
    assert first.parent_span_id == second.parent_span_id == call.span_id
    assert {first.trace_id, second.trace_id} == {call.trace_id}
    assert first.name == "chat gpt-4o" and second.name == "chat llama-3"
    assert first.status.code == 2 and second.status.code == 0
    assert (second.end_time_unix_nano - second.start_time_unix_nano) == 390_000_000
    assert {kv.key: kv.value.int_value for kv in first.attributes}["iron.attempt"] == 1


def test_without_the_extra_tracing_is_reported_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.proto.collector.trace.v1.trace_service_pb2", None)
    reports: list[tuple[str, str]] = []
    got = start_tracing(SETTINGS, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, instance_id="i",
                        report=lambda level, msg: reports.append((level, msg)))
    assert got is None and reports and "pip install 'iron-tui[otel]'" in reports[0][1]


def test_agent_environment_points_at_the_collector() -> None:
    wiring = ProxyWiring("http://127.0.0.1:9", "tok", otel_traces_endpoint="http://c:4318/v1/traces",
                         otel_service_name="iron-tui-agent")
    env = child_environment({"OTEL_RESOURCE_ATTRIBUTES": "team=core", "OTEL_SERVICE_NAME": "iron-tui"},
                            wiring, "agent_1")
    assert env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "http://c:4318/v1/traces"
    assert env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_SERVICE_NAME"] == "iron-tui-agent"
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == "team=core,iron.agent.id=agent_1"
    own = child_environment({}, wiring, "agent_1", {"OTEL_SERVICE_NAME": "my-bot"})
    assert own["OTEL_SERVICE_NAME"] == "my-bot"  # a preset's own env still wins
    untraced = child_environment({}, ProxyWiring("http://127.0.0.1:9", "tok"), "agent_1")
    assert not [k for k in untraced if k.startswith("OTEL_")]

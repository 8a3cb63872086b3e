"""Test agent instrumented with the real OpenTelemetry SDK, configured only by its environment
(the OTEL_* variables iron-tui gives it): one span of its own, and inside it an LLM call whose
`traceparent` header comes from the SDK's propagator."""

from openai import OpenAI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import inject
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

provider = TracerProvider()  # service.name and resource attributes from OTEL_SERVICE_NAME etc.
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))  # endpoint from the environment
trace.set_tracer_provider(provider)
with trace.get_tracer("otel-agent").start_as_current_span("plan the task") as span:
    headers: dict[str, str] = {}
    inject(headers)
    reply = OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                             extra_headers=headers)
    print("trace:", format(span.get_span_context().trace_id, "032x"), flush=True)
    print("reply:", reply.choices[0].message.content, flush=True)
provider.shutdown()

"""A simulated OpenTelemetry collector: OTLP/HTTP `POST /v1/traces`, decoded with the official
`opentelemetry-proto` messages (the `iron-tui[otel]` extra). For tests and the benchmark.

    python -m iron_tui.sim --port 0 --collector    # prints "collector ready: URL", counts spans

It can also misbehave like a real one: answer an error status, or accept the connection and never
answer (`hang`), so tests can show that a broken collector changes nothing for iron-tui's clients.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def any_value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


@dataclass
class ReceivedSpan:
    span: Span
    resource: dict[str, Any]
    scope: str

    @property
    def attributes(self) -> dict[str, Any]:
        return {kv.key: any_value(kv.value) for kv in self.span.attributes}


@dataclass
class CollectorSim:
    mode: Literal["ok", "fail", "hang"] = "ok"
    fail_status: int = 503
    spans: list[ReceivedSpan] = field(default_factory=list)
    posts: list[dict[str, str]] = field(default_factory=list)  # request headers of every export
    count_only: bool = False  # the benchmark: count spans, keep nothing
    span_count: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Condition()
        self._release = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes([web.post("/v1/traces", self._traces)])
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.url

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _traces(self, request: web.Request) -> web.Response:
        self.posts.append(dict(request.headers))
        if self.mode == "hang":
            await self._release.wait()
        if self.mode != "ok":
            return web.Response(status=self.fail_status, text="collector unavailable")
        body = await request.read()  # aiohttp undoes a gzip content-encoding itself
        req = ExportTraceServiceRequest.FromString(body)
        async with self._arrived:
            for rs in req.resource_spans:
                resource = {kv.key: any_value(kv.value) for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    self.span_count += len(ss.spans)
                    if not self.count_only:
                        self.spans.extend(ReceivedSpan(s, resource, ss.scope.name) for s in ss.spans)
            self._arrived.notify_all()
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    async def wait_for(self, n: int, timeout: float = 30.0) -> list[ReceivedSpan]:
        """Wait until at least `n` spans arrived (a hang guard, not a timing assertion)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: self.span_count >= n)
        return self.spans

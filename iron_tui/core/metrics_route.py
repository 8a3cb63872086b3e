"""`GET /metrics`: the per-call series (`core/metrics.py`) plus gauges read from the engine at scrape time.

Protected like the API: the engine's token as `Authorization: Bearer` or `x-api-key` (agents' own
tokens are not accepted: scraping is an operator's job). With `metrics_auth = "loopback"` a scrape
from a loopback address needs no token (a Prometheus agent on the same machine); others still do.
OpenMetrics 1.0 when the scraper asks for it (Prometheus does), else Prometheus text 0.0.4.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from aiohttp import web

from iron_tui import __version__
from iron_tui.config import is_loopback
from iron_tui.core.events import MICROS_PER_USD, AgentState, SyncState
from iron_tui.core.metrics import Exposition, write_calls
from iron_tui.core.proxy.auth import is_token
from iron_tui.core.proxy.errors import error_response

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine

OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_handler(engine: Engine) -> web.RouteDef:
    token = engine.token.encode()

    async def handle(request: web.Request) -> web.StreamResponse:
        if not _allowed(request, token, engine.settings.metrics_auth):
            return error_response(
                "openai", 401,
                "GET /metrics needs the iron-tui token as 'Authorization: Bearer <token>' (or set "
                "metrics_auth = \"loopback\" to let local scrapers in without it)",
                code="invalid_api_key",
            )
        openmetrics = "application/openmetrics-text" in request.headers.get("accept", "")
        body = render(engine, openmetrics=openmetrics)
        resp = web.Response(body=body.encode(), headers={
            "content-type": OPENMETRICS_TYPE if openmetrics else PROMETHEUS_TYPE, "cache-control": "no-store"})
        if "gzip" in request.headers.get("accept-encoding", ""):
            resp.enable_compression()
        return resp

    return web.get("/metrics", handle, allow_head=False)


def _allowed(request: web.Request, token: bytes, mode: str) -> bool:
    if mode == "loopback" and request.remote is not None and is_loopback(request.remote):
        return True
    return is_token(request.headers, token)


def render(engine: Engine, *, openmetrics: bool) -> str:
    out = Exposition(openmetrics)
    if engine.metrics is not None:
        write_calls(out, engine.metrics)
    _write_engine(out, engine)
    return out.text()


def _usd(micros: int) -> float:
    return micros / MICROS_PER_USD


def _write_engine(out: Exposition, engine: Engine) -> None:
    out.family("iron_build_info", "gauge", "iron-tui version and mode (always 1).")
    out.sample("iron_build_info", (("version", __version__), ("mode", engine.mode)), 1)
    out.family("iron_start_time_seconds", "gauge", "When this iron-tui started (Unix time).", "seconds")
    out.sample("iron_start_time_seconds", (), engine.started_at)
    out.family("iron_requests_in_flight", "gauge", "Calls being served right now.")
    out.sample("iron_requests_in_flight", (), engine.proxy.inflight)

    ledger = engine.ledger
    spent, limit = ledger.status()
    out.family("iron_budget_spent_usd", "gauge", "Spend in the current budget period, USD.")
    out.sample("iron_budget_spent_usd", (), _usd(spent))
    out.family("iron_budget_limit_usd", "gauge", "The budget limit, USD (absent when unlimited).")
    if limit is not None:
        out.sample("iron_budget_limit_usd", (), _usd(limit))
    out.family("iron_budget_reserved_usd", "gauge", "Worst-case cost reserved by calls in flight, USD.")
    out.sample("iron_budget_reserved_usd", (), _usd(ledger.reserved))

    sync = engine.analytics.status if engine.analytics is not None else None
    out.family("iron_sync_state", "gauge", "Analytics sync to the Iron Cage server: 1 for the current state.")
    current: SyncState = sync.state if sync is not None else "disabled"
    for state in get_args(SyncState):
        out.sample("iron_sync_state", (("state", state),), 1 if state == current else 0)
    out.family("iron_sync_pending", "gauge", "Analytics events waiting in the outbox.")
    out.sample("iron_sync_pending", (), sync.pending if sync is not None else 0)
    out.family("iron_sync_sent", "counter", "Analytics events the server accepted.")
    out.sample("iron_sync_sent_total", (), sync.sent if sync is not None else 0)
    out.family("iron_sync_rejected", "counter", "Analytics events the server rejected.")
    out.sample("iron_sync_rejected_total", (), sync.rejected if sync is not None else 0)

    out.family("iron_feed_clients", "gauge", "WebSocket feed clients connected.")
    out.sample("iron_feed_clients", (), engine.feed.client_count)
    out.family("iron_feed_slow_disconnects", "counter", "Feed clients disconnected for reading too slowly.")
    out.sample("iron_feed_slow_disconnects_total", (), engine.feed.disconnected_slow)
    out.family("iron_bus_dropped_events", "counter", "Events dropped by a full subscriber queue (dashboard, feed).")
    out.sample("iron_bus_dropped_events_total", (), engine.bus.dropped)

    out.family("iron_agent_state", "gauge", "The launched agent: 1 for its current state.")
    agent_state: AgentState = engine.agent.state
    for state in get_args(AgentState):
        out.sample("iron_agent_state", (("state", state),), 1 if state == agent_state else 0)

    tracing = engine.tracing
    if tracing is not None:
        stats = tracing.stats
        out.family("iron_trace_spans_exported", "counter", "Spans the OTLP collector accepted.")
        out.sample("iron_trace_spans_exported_total", (), stats.exported)
        out.family("iron_trace_spans_dropped", "counter",
                   "Spans dropped: queue_full (the collector is slower than the calls) or export_failed.")
        for reason in ("queue_full", "export_failed"):
            out.sample("iron_trace_spans_dropped_total", (("reason", reason),), stats.dropped.get(reason, 0))
        out.family("iron_trace_export_cpu_seconds", "counter",
                   "CPU time span export used: in iron-tui (handing calls over) and in the exporter process.")
        out.sample("iron_trace_export_cpu_seconds_total", (("process", "iron-tui"),), stats.cpu_seconds)
        out.sample("iron_trace_export_cpu_seconds_total", (("process", "exporter"),), stats.exporter_cpu_seconds)
        out.family("iron_trace_queue_spans", "gauge", "Spans waiting to be exported.")
        out.sample("iron_trace_queue_spans", (), tracing.queued)

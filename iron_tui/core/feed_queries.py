"""Answers to what a feed client asks (the web page's detail, filter and totals views), built from the
same core modules the TUI uses, so the page and the terminal show the same things.

    GET_REQUEST {id}            → REQUEST_DETAIL  conversation, side-by-side rows, cost, error, bodies
    QUERY {filter, limit}       → QUERY_RESULT    the calls in memory matching a filter expression
    GET_STATS {by}              → STATS           totals with p50/p95, rate series, budget forecast,
                                                  provider health

`prepare` runs on the event loop and only takes a snapshot of what it needs (a list of records); the
function it returns does the work and runs in a worker thread (`asyncio.to_thread`), so a filter that
searches 1,000 bodies never holds up a proxied call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from iron_tui.core.conversation import call_view
from iron_tui.core.explain import cost_breakdown, explain_error
from iron_tui.core.filter_expr import Filter
from iron_tui.core.filter_syntax import FilterError
from iron_tui.core.stats import BUCKET_S, GROUPINGS, TotalsAccumulator, alert_level, forecast
from iron_tui.core.textdiff import side_by_side
from iron_tui.core.transcript import Transcript, transcript_lines

QUERY_TYPES = frozenset({"GET_REQUEST", "QUERY", "GET_STATS"})
MAX_RESULTS = 500
MAX_DIFF_ROWS = 2000
SERIES_BUCKETS = 60


def prepare(engine: Any, msg: dict[str, Any]) -> Callable[[], dict[str, Any]] | None:
    """The work for one client message (None: not a query, ignored)."""
    kind = msg.get("type")
    if kind == "GET_REQUEST":
        rid = msg.get("id")
        rec = engine.history.get(rid) if isinstance(rid, str) else None
        return lambda: request_detail(engine, rid, rec)
    if kind == "QUERY":
        records = engine.history.recent()
        text, asked = msg.get("filter"), msg.get("limit")
        limit: int = asked if isinstance(asked, int) and 0 < asked <= MAX_RESULTS else 200
        return lambda: query(records, text if isinstance(text, str) else "", limit)
    if kind == "GET_STATS":
        records = engine.history.recent()
        spent, limit = engine.ledger.status()
        by: str = msg["by"] if msg.get("by") in GROUPINGS else "model"
        now = engine.clock.now()
        providers = engine.health.snapshot()  # on the loop: the health record is not thread-safe
        return lambda: stats(records, by, spent, limit, now, providers)
    return None


def in_usd(obj: Any) -> Any:
    """The feed speaks US dollars: every `…_micros` key becomes `…_usd` (micros / 1,000,000)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if "_micros" in k and (v is None or isinstance(v, int | float)):
                out[k.replace("_micros", "_usd")] = None if v is None else v / 1_000_000
            elif k == "micros" and (v is None or isinstance(v, int | float)):
                out["usd"] = None if v is None else v / 1_000_000
            else:
                out[k] = in_usd(v)
        return out
    if isinstance(obj, list | tuple):
        return [in_usd(v) for v in obj]
    return obj


def _transcript(t: Transcript | None) -> dict[str, Any] | None:
    return None if t is None else asdict(t)


def request_detail(engine: Any, rid: Any, rec: Any) -> dict[str, Any]:
    if rec is None:
        return {"type": "REQUEST_DETAIL", "id": rid if isinstance(rid, str) else None, "found": False}
    summary = rec.summary()
    view = call_view(rec)
    rows: list[dict[str, Any]] = []
    if view.upstream_request is not None:
        left = transcript_lines(view.request) + transcript_lines(view.response)
        right = transcript_lines(view.upstream_request) + transcript_lines(view.upstream_response)
        rows = [{"tag": r.tag, "left": r.left, "right": r.right} for r in side_by_side(left, right)[:MAX_DIFF_ROWS]]
    stop = view.response.stop_reason if view.response is not None else None
    cost = cost_breakdown(summary, rec, engine.pricer, stop_reason=stop)
    error = explain_error(summary, rec)
    return {
        "type": "REQUEST_DETAIL",
        "id": rid,
        "found": True,
        "request": summary,
        "conversation": {
            "request": _transcript(view.request), "response": _transcript(view.response),
            "upstream_request": _transcript(view.upstream_request),
            "upstream_response": _transcript(view.upstream_response),
        },
        "side_by_side": rows,
        "cost": in_usd(asdict(cost)),
        "error": None if error is None else asdict(error),
        "bodies": {"request": rec.request_body, "upstream_request": rec.translated_request,
                   "upstream_response": rec.upstream_response, "response": rec.translated_response
                   if rec.translated else rec.upstream_response},
    }


def _bodies(rec: Any) -> Callable[[], str]:
    return lambda: "\n".join(b for b in (rec.request_body, rec.translated_request, rec.upstream_response,
                                         rec.translated_response) if b)


def query(records: list[Any], text: str, limit: int) -> dict[str, Any]:
    """`records` newest first (History.recent())."""
    try:
        flt = Filter.parse(text)
    except FilterError as exc:
        return {"type": "QUERY_RESULT", "filter": text, "error": {"message": exc.message, "position": exc.position},
                "matched": 0, "total": len(records), "requests": []}
    hits: list[dict[str, Any]] = []
    matched = 0
    for rec in records:
        summary = rec.summary()
        if flt.matches(summary, _bodies(rec) if flt.uses_text else None):
            matched += 1
            if len(hits) < limit:
                hits.append(summary)
    return {"type": "QUERY_RESULT", "filter": flt.text, "error": None, "matched": matched, "total": len(records),
            "requests": hits}


def stats(records: list[Any], by: str, spent: int, limit: int | None, now: float,
          providers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Totals per `by`, the rate and latency series, the budget forecast, and the providers' health now
    (PROVIDER_HEALTH only says when a state changes; this keeps error rates and latencies fresh)."""
    acc = TotalsAccumulator()
    for rec in reversed(records):  # oldest first
        if rec.state == "pending":
            continue
        acc.add(rec.summary(), rec.started_at + (rec.latency_ms or 0.0) / 1000.0)
    groups: list[dict[str, Any]] = []
    for g in acc.groups(by):  # type: ignore[arg-type]
        row = asdict(g)
        row["share_of_budget"] = g.share(limit)
        groups.append(in_usd(row))
    f = forecast(spent, limit, acc.spend_points(), now)
    return {
        "type": "STATS",
        "by": by,
        "calls": acc.calls,
        "errors": acc.errors,
        "window": len(records),
        "groups": groups,
        "series": {"bucket_s": BUCKET_S,
                   "requests": acc.rate_series(now, SERIES_BUCKETS),
                   "latency_p50_ms": acc.latency_series(now, SERIES_BUCKETS)},
        "forecast": in_usd(asdict(f)),
        "providers": providers or [],
    }


def alert_state(spent: int, limit: int | None) -> dict[str, Any] | None:
    """The snapshot's `alert`: the budget alert level in force (COST_ALERT's shape), or None below 80 %."""
    level = alert_level(spent, limit)
    if level == "ok" or limit is None:
        return None
    pct = round(100.0 * spent / limit, 1) if limit else 100.0
    return {"severity": level, "budget_spent": spent / 1_000_000, "budget_limit": limit / 1_000_000,
            "percentage": pct}

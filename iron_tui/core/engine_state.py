"""What a late subscriber is shown: the engine's whole current state (feed SNAPSHOT, dashboard start)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iron_tui import __version__
from iron_tui.core import feed_queries
from iron_tui.core.clock import iso_utc
from iron_tui.core.events import SyncStatus, sync_wire, usd

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine


def snapshot(engine: Engine) -> dict[str, Any]:
    spent, limit = engine.ledger.status()
    sync = engine.analytics.status if engine.analytics is not None else SyncStatus(engine.clock.now(), "disabled")
    agent = engine.agent
    return {
        "mode": engine.mode,
        "version": __version__,
        "proxy_url": engine.openai_base_url,
        "feed_url": engine.feed_url,
        "started_at": iso_utc(engine.started_at),
        "budget": {
            "spent_usd": usd(spent),
            "limit_usd": usd(limit),
            "reserved_usd": usd(engine.ledger.reserved),
            "period": engine.settings.budget_period,
            "unpriced_calls": engine.ledger.unpriced_calls,
        },
        # The budget alert in force, so a client that joins late shows it (null: below 80 %).
        "alert": feed_queries.alert_state(spent, limit),
        "sync": sync_wire(sync),
        "agent": {"agent_id": agent.agent_id, "state": agent.state, "pid": agent.pid,
                  "exit_code": agent.exit_code, "reason": agent.reason},
        "totals": totals(engine),
        "providers": engine.health.snapshot(),
        "requests": [r.summary() for r in engine.history.recent(50)],
    }


def totals(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Cost and tokens per model and per provider since the session (or period) began."""

    def row(t: Any) -> dict[str, Any]:
        return {
            "calls": t.calls,
            "input_tokens": t.input_tokens,
            "output_tokens": t.output_tokens,
            "cache_read_tokens": t.cache_read_tokens,
            "cache_write_tokens": t.cache_write_tokens,
            "cost_usd": usd(t.cost_micros),
            "unpriced_calls": t.unpriced_calls,
        }

    ledger = engine.ledger
    return {
        "by_model": [{"provider": t.provider, "model": t.model, **row(t)} for t in ledger.totals_by_model().values()],
        "by_provider": [{"provider": t.provider, **row(t)} for t in ledger.totals_by_provider().values()],
    }

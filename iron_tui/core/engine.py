"""The engine: one async context manager that owns everything the front ends look at.

    async with Engine(settings) as engine:
        ...  # proxy and feed serve on engine.port; subscribe to engine.bus for live events

Front ends (TUI, headless, LlmRouter) only start it and subscribe; none of them reach inside.
Starting, wiring and stopping its parts in order is in engine_lifecycle.py; the snapshot in engine_state.py.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import aiohttp

from iron_tui.config import MAX_BUDGET_USD, Settings
from iron_tui.core import engine_lifecycle, engine_state
from iron_tui.core.agent import AgentPreset, AgentSupervisor
from iron_tui.core.analytics import AnalyticsSync
from iron_tui.core.budget import BudgetLedger, LedgerStorageError
from iron_tui.core.bus import EventBus
from iron_tui.core.call_events import interrupted_event, record_event
from iron_tui.core.clock import Clock, IdSource, RandomIds, SystemClock
from iron_tui.core.control import ControlClient, Lease
from iron_tui.core.engine_lifecycle import EngineError
from iron_tui.core.events import (
    MICROS_PER_USD,
    Notice,
    RequestFinished,
    RequestRecord,
)
from iron_tui.core.feed import Feed
from iron_tui.core.health import ProviderHealth
from iron_tui.core.history import History
from iron_tui.core.keys import KeyRing
from iron_tui.core.lease import LeaseHolder
from iron_tui.core.ledger_store import LedgerStore
from iron_tui.core.metrics import Metrics
from iron_tui.core.model_limits import LimitOverride, ModelLimits
from iron_tui.core.otel import Tracing
from iron_tui.core.price_table import PriceOverride
from iron_tui.core.pricing import Pricer
from iron_tui.core.providers import BUILTIN, ProviderTable
from iron_tui.core.proxy.connections import ConnectionLimits, GuardedRunner
from iron_tui.core.proxy.guard import RequestGuard
from iron_tui.core.proxy.handlers import Proxy
from iron_tui.core.recovery import RecoveredCall
from iron_tui.core.redact import registered_secrets
from iron_tui.core.responses_store import FILE_NAME as RESPONSES_FILE
from iron_tui.core.responses_store import ResponsesStore
from iron_tui.core.safe_text import clean_name, clean_text
from iron_tui.core.upstream import UpstreamClient

STATE_FILENAME = "state.sqlite3"  # the shared budget ledger and crash journal (ledger_store.py)


class Engine:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        ids: IdSource | None = None,
        data_dir: Path | None = None,
        feed_heartbeat_s: float = 30.0,
        persist: bool = True,
    ) -> None:
        settings.check_runnable()
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.ids: IdSource = ids or RandomIds()
        self.bus = EventBus()
        self.data_dir = data_dir or settings.data_dir
        self._persist = persist and self.data_dir is not None
        self._feed_heartbeat_s = feed_heartbeat_s
        token = settings.token.get_secret_value() if settings.token is not None else None
        self.token: str = token or "iron-" + secrets.token_urlsafe(24)
        # Agents iron-tui launches get their own local token: in server mode self.token is the IC
        # token, which could fetch the real provider key from the control server.
        self.agent_token: str = "iron-agent-" + secrets.token_urlsafe(24)
        self.models_cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}  # GET /v1/models, per provider
        self.mode = settings.mode
        self.session_id = secrets.token_hex(6)
        self.started_at = self.clock.now()
        self.port: int = 0
        self.host = settings.host
        self.leases: LeaseHolder | None = None  # server mode's budget lease
        self.session: aiohttp.ClientSession  # control server and /v1/models
        self.upstream: UpstreamClient  # provider calls: the per-request hot path
        self.control: ControlClient | None = None
        self.analytics: AnalyticsSync | None = None
        # Which provider serves a model (presets, [providers], [models] aliases, [fallbacks]): resolved
        # once here; keys for providers beyond OpenAI/Anthropic are read from their variables at start.
        self.providers = ProviderTable.from_settings(
            settings, {"openai": settings.openai_base_url, "anthropic": settings.anthropic_base_url})
        self.health = ProviderHealth(clock=self.clock, publish=self.bus.publish,
                                     cooldown_s=settings.retries.cooldown)
        self.pricer = Pricer(
            {
                name: PriceOverride(p.input_per_mtok, p.output_per_mtok, p.cache_read_per_mtok,
                                    p.cache_write_per_mtok, p.web_search_per_1k)
                for name, p in settings.prices.items()
            },
            strict=settings.strict_pricing,
            price_ids={n: (None if spec.local else spec.price_provider)
                       for n, spec in self.providers.specs.items() if n not in BUILTIN},
        )
        self.limits = ModelLimits({
            name: LimitOverride(p.max_output_tokens, p.context_window) for name, p in settings.prices.items()
            if p.max_output_tokens is not None or p.context_window is not None})
        limit = None if settings.budget is None else round(settings.budget * MICROS_PER_USD)
        try:
            self.ledger = BudgetLedger(
                limit_micros=limit, publish=self.bus.publish, clock=self.clock, period=settings.budget_period,
                store=self._ledger_store(), fit=settings.budget_fit, wants=self.bus.wants,
            )
        except LedgerStorageError as exc:
            raise EngineError(str(exc)) from None
        # The on-disk history (None when not persisting); core/history_query.py reads the same file.
        self.history_path = self._db_path("history.sqlite3")
        self.history = History(settings.history_size, self.history_path, self.session_id,
                               body_budget=settings.history_body_bytes)
        self.responses = ResponsesStore(self._db_path(RESPONSES_FILE))  # previous_response_id state
        self.agent = AgentSupervisor(
            publish=self.bus.publish,
            clock=self.clock,
            presets=_presets(settings),
            grace_seconds=settings.agent_grace_seconds,
            secrets=self._provider_secrets,
        )
        # Telemetry (DESIGN.md §8): /metrics series fed per call, OTLP traces when configured.
        self.metrics: Metrics | None = Metrics(settings.metrics_max_models) if settings.metrics else None
        self.tracing: Tracing | None = None
        self.keys: KeyRing
        self.proxy: Proxy
        self.feed: Feed
        self.guard: RequestGuard
        self.connection_limits: ConnectionLimits
        self._runner: GuardedRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = asyncio.Event()
        self._closing = False
        self.shutting_down = False  # read by the proxy: streams cut now are shutdowns, not disconnects

    @property
    def lease(self) -> Lease | None:
        return None if self.leases is None else self.leases.lease

    @property
    def lease_error(self) -> str | None:
        """Server mode without a lease yet: why (calls are answered 503 until there is one)."""
        return None if self.leases is None else self.leases.error

    def _malformed_http(self, text: str) -> None:
        self.bus.publish(Notice(self.clock.now(), "warning", text))

    def _provider_secrets(self) -> list[str]:
        """Every provider key in use: configured, or fetched from the control server so far."""
        fetched = [s.decode("utf-8", "replace") for s in registered_secrets()]
        return [*self.settings.provider_keys().values(), *fetched]

    def _ledger_store(self) -> LedgerStore | None:
        """The shared ledger and crash journal, when there is something to share or to recover after a
        crash: a calendar-period budget, or analytics events (server configured)."""
        db = self._db_path(STATE_FILENAME)
        s = self.settings
        if db is None or (s.budget_period == "session" and not (s.server_url and s.token is not None)):
            return None
        return LedgerStore(db)

    def _db_path(self, name: str) -> Path | None:
        if not self._persist or self.data_dir is None:
            return None
        return Path(self.data_dir) / name

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def is_running(self) -> bool:
        """Serving, and not asked to stop yet."""
        return self._runner is not None and not self._closing

    @property
    def base_url(self) -> str:
        """Where clients send calls, without /v1 (the Anthropic SDK's base URL)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def feed_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws"

    async def start(self) -> None:
        await engine_lifecycle.start(self)

    def _record_interrupted(self, call: RecoveredCall) -> None:
        if self.analytics is not None and self.control is not None:
            self.analytics.record(interrupted_event(call, self.control.ic_token, call.row.event_id or self.ids.event_id(),
                                                    int(self.clock.now() * 1000)))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        if self._closing:
            await self._stopped.wait()
            return
        self._closing = True
        try:
            await engine_lifecycle.shut_down(self)
        finally:
            self._stopped.set()

    # --- what the proxy calls ----------------------------------------------------------------

    def request_finished(self, rec: RequestRecord) -> None:
        # The one door to the history, the bus (log lines, dashboard, feed) and the outbox: whatever
        # path set the error (an upstream's text, an exception), it leaves here redacted and escaped.
        if rec.error is not None:
            rec.error = clean_text(rec.error)
        if rec.error_code is not None:
            rec.error_code = clean_name(rec.error_code)
        if rec.warnings:
            rec.warnings = [clean_text(w) for w in rec.warnings]
        if self.metrics is not None:
            self.metrics.observe(rec)
        if self.tracing is not None:
            self.tracing.record(rec, *self.ledger.status())
        summary = rec.summary()
        self.history.finished(rec, summary)
        self.bus.publish(RequestFinished(self.clock.now(), summary))
        if self.analytics is not None and self.control is not None:
            self.analytics.record(record_event(rec, self.control.ic_token, rec.event_id or self.ids.event_id(),
                                               int(self.clock.now() * 1000)))
            if self.leases is not None:
                self.leases.finished(rec)
        # After its event is stored: the journaled call's cost and journal row commit together.
        self.ledger.finish(rec.id)

    async def list_models(self, path: str, shape: str = "openai") -> dict[str, Any]:
        """Models the configured keys can reach (from the providers when reachable, cached)."""
        from iron_tui.core.models import list_models

        return await list_models(self, path, shape)

    # --- what the front ends call ------------------------------------------------------------

    def set_budget(self, usd_limit: float | None) -> None:
        if usd_limit is not None and not 0 <= usd_limit <= MAX_BUDGET_USD:  # also False for NaN
            raise ValueError(f"the budget must be a number of USD from 0 to {MAX_BUDGET_USD} (or None for no limit)")
        self.ledger.set_limit(None if usd_limit is None else round(usd_limit * MICROS_PER_USD))

    def snapshot(self) -> dict[str, Any]:
        """The current state, for a late subscriber (feed SNAPSHOT, TUI start)."""
        return engine_state.snapshot(self)

    def totals(self) -> dict[str, list[dict[str, Any]]]:
        """Cost and tokens per model and per provider since the session (or period) began."""
        return engine_state.totals(self)


def _presets(settings: Settings) -> list[AgentPreset]:
    out = [
        AgentPreset(name=p.name, command=p.command, cwd=p.cwd, env=dict(p.env),
                    restart_on_crash=p.restart_on_crash, max_restarts=p.max_restarts)
        for p in settings.agents
    ]
    if settings.agent and not any(p.name == "agent" for p in out):
        out.insert(0, AgentPreset(name="agent", command=settings.agent))
    return out


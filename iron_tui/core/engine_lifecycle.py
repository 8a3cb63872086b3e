"""Starting and stopping the engine's parts in order: the HTTP clients, control server and analytics,
keys, proxy, guard, feed and server, tracing, the agent's wiring, the lease and the background tasks
(housekeeping, price preload, crash recovery); and shutting all of it down again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from iron_tui.core import feed_queries
from iron_tui.core.agent_env import ProxyWiring
from iron_tui.core.analytics import AnalyticsSync, Outbox
from iron_tui.core.control import ControlClient
from iron_tui.core.events import Notice, SyncStatus
from iron_tui.core.feed import Feed
from iron_tui.core.keys import KeyRing
from iron_tui.core.lease import LeaseHolder
from iron_tui.core.otel import start_tracing
from iron_tui.core.proxy.guard import RequestGuard, token_weakness
from iron_tui.core.proxy.handlers import Proxy
from iron_tui.core.proxy.server import ServeError, serve
from iron_tui.core.recovery import recovery_loop
from iron_tui.core.upstream import UpstreamClient

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine


class EngineError(Exception):
    """The engine could not start (port in use, bad settings); the message is for the user."""


async def start(engine: Engine) -> None:
    """Open the HTTP clients, then everything else; on any failure close what was opened."""
    s = engine.settings
    engine.session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=512, limit_per_host=256, keepalive_timeout=30,
                                       ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=None, connect=s.connect_timeout, sock_read=s.upstream_timeout),
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
    )
    engine.upstream = UpstreamClient(limit=512, limit_per_host=256, connect_timeout=s.connect_timeout,
                                     read_timeout=s.upstream_timeout, keepalive_timeout=30)
    try:
        await _start_services(engine)
    except BaseException:
        await shut_down(engine)
        raise


async def _start_services(engine: Engine) -> None:
    s = engine.settings
    ic_token = s.token.get_secret_value() if s.token is not None else None
    if s.server_url and ic_token:
        engine.control = ControlClient(
            s.server_url, ic_token, session=engine.session, clock=engine.clock,
            cache_ttl_seconds=s.cache_ttl_seconds,
        )
        outbox_path = engine._db_path("outbox.sqlite3")
        if outbox_path is None:
            outbox_path = Path(_tempdir()) / "outbox.sqlite3"
        engine.analytics = AnalyticsSync(
            Outbox(outbox_path), engine.control, publish=engine.bus.publish, clock=engine.clock,
            interval_s=s.sync_interval, flush_timeout_s=s.flush_timeout,
        )
    base_urls = {"openai": s.openai_base_url, "anthropic": s.anthropic_base_url}
    engine.keys = KeyRing(s.provider_keys(), base_urls, engine.control if engine.mode == "server" else None,
                          specs=engine.providers.specs, env=os.environ)
    engine.proxy = Proxy(engine)
    # Host/Origin checks, JSON 404/405, wrong-token slow-down (core/proxy/guard.py).
    engine.guard = RequestGuard(engine.proxy.pipeline.auth, allow_remote=s.allow_remote,
                                allowed_hosts=s.allowed_hosts, allowed_origins=s.allowed_origins)
    engine.feed = Feed(engine.bus, token=engine.token, snapshot=engine.snapshot, clock=engine.clock,
                       heartbeat_s=engine._feed_heartbeat_s, guard=engine.guard,
                       query=lambda msg: feed_queries.prepare(engine, msg))
    try:
        engine._runner, engine.connection_limits = await serve(engine)
    except ServeError as exc:
        raise EngineError(str(exc)) from None
    engine.port = engine._runner.addresses[0][1]
    engine.guard.bind(s.host, engine.port)
    weak = token_weakness(s.token.get_secret_value()) if s.token is not None else None
    if weak is not None:
        engine.bus.publish(Notice(engine.clock.now(), "warning",
                                  f"the client token (--token / IC_TOKEN) is easy to guess: {weak}. Use 24 or "
                                  "more random characters, or leave --token unset for a random one"))
    engine.tracing = start_tracing(s, os.environ, instance_id=engine.session_id, report=_threadsafe_notice(engine))
    engine.agent.set_wiring(ProxyWiring(
        base_url=engine.base_url, token=engine.agent_token,
        otel_traces_endpoint=engine.tracing.config.endpoint if engine.tracing is not None else None,
        otel_service_name=(engine.tracing.config.service_name if engine.tracing is not None else s.otel_service_name)
        + "-agent",
    ))
    await engine.feed.start()
    if engine.analytics is not None:
        await engine.analytics.start()
    else:
        engine.bus.publish(SyncStatus(engine.clock.now(), "disabled"))
    if engine.control is not None and engine.mode == "server" and s.budget is None:
        engine.leases = LeaseHolder(engine.control, engine.ledger, clock=engine.clock, publish=engine.bus.publish,
                                    spawn=engine._spawn)
        await engine.leases.acquire()
    engine._spawn(_housekeeping(engine))
    # genai-prices builds its tables lazily (~0.5 s); do it off the loop so the first call doesn't pay.
    preload = engine._spawn(asyncio.to_thread(engine.pricer.preload))
    if engine.ledger.store is not None:
        engine._spawn(recovery_loop(engine, preload, engine._record_interrupted))


async def _housekeeping(engine: Engine) -> None:
    ticks = 0
    while True:
        await asyncio.sleep(1.0)
        engine.ledger.tick()  # so an idle dashboard still sees a period reset at midnight
        ticks += 1
        store = engine.ledger.store
        if store is not None and ticks % 10 == 0:
            with contextlib.suppress(sqlite3.Error):  # the WAL's fsync, off the loop
                await asyncio.to_thread(store.checkpoint)
        try:
            # In a thread: a batch insert can take tens of ms and must not stall proxied calls.
            await asyncio.to_thread(engine.history.write, engine.history.take_pending())
        except Exception as exc:  # a full disk must not kill the engine
            engine.bus.publish(Notice(engine.clock.now(), "warning", f"history not saved: {exc}"))


def _threadsafe_notice(engine: Engine) -> Any:
    """A `report(level, message)` callable for other threads (the trace exporter): a Notice on the bus."""
    loop = asyncio.get_running_loop()

    def report(level: str, message: str) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody to tell
            loop.call_soon_threadsafe(engine.bus.publish, Notice(engine.clock.now(), level, message))  # type: ignore[arg-type]

    return report


async def shut_down(engine: Engine) -> None:
    """Stop everything in order (agent, feed, in-flight calls, traces, tasks, sync, lease, stores, clients)."""
    engine.shutting_down = True
    with contextlib.suppress(Exception):
        await engine.agent.close()
    if hasattr(engine, "feed"):
        with contextlib.suppress(Exception):
            await engine.feed.close()
    if engine._runner is not None and hasattr(engine, "proxy"):
        await engine.proxy.drain(engine._runner)
    if engine._runner is not None:
        # Stops accepting, lets in-flight calls finish (bounded by shutdown_timeout).
        with contextlib.suppress(Exception):
            await engine._runner.cleanup()
        engine._runner = None
    if engine.tracing is not None:
        # After the runner: every call has finished and is queued. Bounded: a dead collector
        # costs at most this long at shutdown.
        with contextlib.suppress(Exception):
            await asyncio.to_thread(engine.tracing.close, 3.0)
    for t in list(engine._tasks):
        t.cancel()
    for t in list(engine._tasks):
        with contextlib.suppress(BaseException):
            await t
    if engine.analytics is not None:
        with contextlib.suppress(Exception):
            await engine.analytics.stop()
    if engine.leases is not None:
        await engine.leases.give_back()
    if engine.analytics is not None:
        with contextlib.suppress(Exception):
            engine.analytics.close()
    with contextlib.suppress(Exception):
        engine.history.close()
    with contextlib.suppress(Exception):
        engine.responses.close()
    with contextlib.suppress(Exception):
        engine.ledger.close()
    if hasattr(engine, "session"):
        await engine.session.close()
    if hasattr(engine, "upstream"):
        await engine.upstream.close()


def _tempdir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="iron-tui-")

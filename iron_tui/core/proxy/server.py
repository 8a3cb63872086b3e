"""The engine's one HTTP server: the aiohttp app with the proxy routes, the feed and /metrics, behind
the guarded runner (Host/Origin checks, header/body/idle/send timeouts, the connection cap, malformed
HTTP answered in JSON), listening on the configured loopback address."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from iron_tui.core.metrics_route import metrics_handler
from iron_tui.core.proxy.connections import ConnectionLimits, GuardedRunner

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine


# The engine, for handlers that reach it through the app (typed, as aiohttp recommends).
ENGINE_KEY: web.AppKey[Engine] = web.AppKey("engine", object)  # type: ignore[arg-type]


class ServeError(Exception):
    """The server could not listen (the message is for the user)."""


async def serve(engine: Engine) -> tuple[GuardedRunner, ConnectionLimits]:
    s = engine.settings
    app = web.Application(client_max_size=s.max_body_bytes)
    app[ENGINE_KEY] = engine
    app.add_routes(engine.proxy.routes())
    engine.guard.route_directly(engine.proxy.llm_handlers())
    app.add_routes([web.get("/ws", engine.feed.handle), web.get("/dashboard", engine.feed.handle_dashboard)])
    if s.metrics:
        app.add_routes([metrics_handler(engine)])
    # handler_cancellation: a client that disconnects cancels its handler, which closes the upstream
    # response and so cancels the upstream request too.
    limits = ConnectionLimits(
        header_timeout=s.header_timeout, body_timeout=s.body_timeout, idle_timeout=s.idle_timeout,
        send_timeout=s.send_timeout, max_connections=s.max_connections)
    runner = GuardedRunner(app, limits=limits, guard=engine.guard, on_malformed=engine._malformed_http,
                           access_log=None, shutdown_timeout=1.5, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, s.host, s.port, backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ServeError(f"cannot listen on {s.host}:{s.port}: {exc.strerror or exc}"
                         + (" (port in use? try --port 0)" if exc.errno in (98, 48) else "")) from None
    return runner, limits

"""`iron-tui` (without --no-ui): the engine and the dashboard in one process, on one event loop.

Decision: the engine runs in-process on the app's asyncio loop. The app starts it from a worker
when it mounts and stops it when it unmounts (run_tui stops it again, idempotently, in case the app
died early). One loop serves proxy and UI: no thread hand-offs, bus events reach the dashboard
without locks, and the proxy's hot path stays cheap because the dashboard only drains the bus in
batches (at most ~10 times a second) and never blocks a publisher. A thread for the engine would
add cross-thread marshalling for every event and buy nothing, since both sides are I/O-bound asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys

from iron_tui.config import ConfigError, Settings
from iron_tui.core.engine import Engine
from iron_tui.tui.app import IronApp, create_app

EXIT_STARTUP = 2


def run_tui(settings: Settings, agent_argv: list[str] | None) -> int:
    """Run the dashboard until the user quits; the process exit code."""
    try:
        engine = Engine(settings)
    except (ConfigError, OSError, sqlite3.Error, RuntimeError, ValueError) as exc:
        return _fail(str(exc))
    # A theme given on the command line, in the environment or the config wins; otherwise the one last
    # chosen with `t` (remembered in the data dir), else the default.
    app = create_app(engine, theme=settings.theme if "theme" in settings.model_fields_set else None)
    app.freeze_gc_when_ready = True
    # Stopped by _run once the terminal is back to normal, where a second Ctrl-C can still be heard.
    app.stop_engine_on_unmount = False
    if agent_argv:
        app.start_agent_when_ready(agent_argv)
    try:
        asyncio.run(_run(app, engine))
    except KeyboardInterrupt:
        return 130
    if app.startup_error is not None:
        return _fail(app.startup_error)
    code = app.return_code
    return 0 if code is None else code


async def _run(app: IronApp, engine: Engine) -> None:
    # SIGTERM / SIGHUP (terminal closed): leave like `q` does, so the agent and the proxy are stopped
    # rather than the agent being orphaned.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, app.exit)
    ui_done = False

    def on_interrupt() -> None:
        # Ctrl-C (the dashboard reads it as a key; outside it, e.g. while stopping, it is SIGINT): the
        # first one leaves gracefully, one while stopping quits at once. Pending analytics are already
        # in the outbox on disk, and SQLite keeps it whole.
        if not ui_done:
            app.exit(130, return_code=130)
            return
        sys.stderr.write("iron-tui: forced exit\n")
        os._exit(130)

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        await app.run_async()
    finally:
        ui_done = True
        if engine.is_running:
            sys.stderr.write("iron-tui: stopping (Ctrl-C again quits at once; pending analytics stay in the "
                             "outbox)\n")
        await engine.stop()


def _fail(message: str) -> int:
    sys.stderr.write(f"iron-tui: error: {message}\n")
    return EXIT_STARTUP

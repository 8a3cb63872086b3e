"""The Textual dashboard application and its factory.

    app = create_app(engine, clock=FixedClock(), theme="iron")

The app runs on the same event loop as the engine (see run.py). A bus-pump worker drains the engine's
event bus in batches, at most ~10 times a second (less often above BUSY_RATE calls/s, so a busy
proxy keeps the CPU), and posts messages to the dashboard screen; it never touches a widget. Engine
start and agent commands also run in workers and report back with messages.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from iron_tui.config import mask_secret
from iron_tui.core.agent import AgentError
from iron_tui.core.bus import Subscription
from iron_tui.core.clock import Clock
from iron_tui.core.engine import Engine
from iron_tui.core.events import RequestFinished
from iron_tui.tui.messages import AgentCommandFailed, EngineFailed, EngineReady
from iron_tui.tui.pump import batch_messages
from iron_tui.tui.screens.dialogs import HelpScreen
from iron_tui.tui.screens.main import MainScreen
from iron_tui.tui.themes import DEFAULT_THEME, all_themes
from iron_tui.tui.themes import user_theme_dir as default_user_theme_dir

FLUSH_INTERVAL = 0.1  # seconds between bus batches: the dashboard repaints at most ~10 times a second
BUSY_RATE = 100.0  # calls/s above which the dashboard repaints less often, so the proxy keeps the CPU
SLOWEST_INTERVAL = 0.5
PUMP_QUEUE = 50_000  # events buffered for the dashboard before the oldest are dropped (and counted)


class IronApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "iron-tui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("t", "change_theme", "Theme"),
        Binding("y", "copy_token", "Copy token"),
    ]

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        theme: str | None = None,
        user_theme_dir: Path | None = None,
        start_engine: bool = True,
        display_url: str | None = None,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.clock: Clock = clock or engine.clock
        self.display_url = display_url
        self.flush_interval = flush_interval
        self.start_engine = start_engine
        self.engine_ready = asyncio.Event()
        self.startup_error: str | None = None
        self.pump_batches = 0
        self.dashboard = MainScreen()
        self._agent_argv: list[str] | None = None
        self._subscription: Subscription | None = None
        self._started_engine = False
        self._startup_notices: list[str] = []
        # Set by run_tui for the real process (not in tests, where frozen objects would pile up).
        self.freeze_gc_when_ready = False
        self._install_themes(theme, user_theme_dir)

    # --- themes ---------------------------------------------------------------------------------------

    def _install_themes(self, wanted: str | None, user_dir: Path | None) -> None:
        themes, problems = all_themes(user_dir)
        for t in themes:
            self.register_theme(t)
        # Reported once each, when the app is up; the file is skipped, the app runs on.
        self._startup_notices.extend(str(p) for p in problems)
        name = wanted or DEFAULT_THEME
        if name not in self.available_themes:
            self._startup_notices.append(
                f"unknown theme {name!r}, using {DEFAULT_THEME!r} "
                f"(available: {', '.join(sorted(t for t in self.available_themes if t != 'textual-ansi'))})"
            )
            name = DEFAULT_THEME
        self.theme = name

    # --- lifecycle ------------------------------------------------------------------------------------

    @property
    def pending_events(self) -> int:
        """Bus events not yet taken by the pump."""
        return 0 if self._subscription is None else len(self._subscription)

    def get_default_screen(self) -> Screen[None]:
        return self.dashboard

    def start_agent_when_ready(self, argv: list[str]) -> None:
        """Launch this agent command once the engine is up (the CLI's `iron-tui -- CMD`)."""
        self._agent_argv = list(argv)

    def on_mount(self) -> None:
        for text in self._startup_notices:
            self.notify(text, title="Theme", severity="warning", timeout=8)
        self._subscription = self.engine.bus.subscribe(maxsize=PUMP_QUEUE, name="tui")
        self._pump(self._subscription)
        if self.start_engine:
            self._start_engine()
        else:
            self.post_message(EngineReady())

    async def on_unmount(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if self._started_engine:
            await self.engine.stop()

    @work(group="engine", exit_on_error=False)
    async def _start_engine(self) -> None:
        self._started_engine = True
        try:
            await self.engine.start()
        except Exception as exc:  # EngineError (port in use), storage problems: a message, not a traceback
            self.post_message(EngineFailed(str(exc) or type(exc).__name__))
            return
        self.post_message(EngineReady())

    def on_engine_ready(self, _: EngineReady) -> None:
        self.engine_ready.set()
        if self.freeze_gc_when_ready:
            # Everything built so far (Textual, the widget tree, the engine) lives as long as the
            # process: move it out of the collector's sight, so full collections stay short and do
            # not stall proxied calls for tens of milliseconds.
            gc.collect()
            gc.freeze()
        self.dashboard.engine_started()
        if self._agent_argv:
            self.agent_command("start", self._agent_argv)

    def on_engine_failed(self, msg: EngineFailed) -> None:
        self.startup_error = msg.reason
        self.exit(2, return_code=2)

    @work(exclusive=True, group="bus-pump", exit_on_error=False)
    async def _pump(self, sub: Subscription) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            try:
                batch = await sub.get_batch(limit=PUMP_QUEUE)
            except EOFError:
                return
            for message in batch_messages(batch):
                self.dashboard.post_message(message)
            self.pump_batches += 1
            # Let the next events pile up: one repaint per interval however busy the proxy is. A repaint
            # costs the same for 10 rows or 1000, so under heavy traffic (where rows scroll by too fast
            # to read anyway) stretch the interval and leave the loop to the proxy.
            now = loop.time()
            calls = sum(1 for e in batch if isinstance(e, RequestFinished))
            rate = calls / max(now - last, self.flush_interval)
            last = now
            interval = self.flush_interval * max(1.0, rate / BUSY_RATE)
            await asyncio.sleep(min(max(self.flush_interval, SLOWEST_INTERVAL), interval))

    # --- agent commands (workers: the supervisor awaits process start and stop) -------------------

    def agent_command(self, op: str, preset: str | list[str] | None = None) -> None:
        self._agent_worker(op, preset)

    @work(group="agent", exit_on_error=False)
    async def _agent_worker(self, op: str, preset: str | list[str] | None) -> None:
        agent = self.engine.agent
        try:
            if op == "start":
                await agent.start(preset)
            elif op == "stop":
                if not agent.is_active:
                    raise AgentError("no agent is running")
                await agent.stop()
            else:
                await agent.restart()
        except AgentError as exc:
            self.dashboard.post_message(AgentCommandFailed(str(exc)))

    # --- actions ----------------------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_copy_token(self) -> None:
        self.copy_to_clipboard(self.engine.token)
        self.notify(f"token {mask_secret(self.engine.token)} copied to the clipboard", timeout=3)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        d = self.dashboard
        yield SystemCommand("Filter requests", "Show only matching requests  (/)", d.action_filter)
        yield SystemCommand("Edit budget", "Change the spend limit live; empty = unlimited  (b)", d.action_budget)
        yield SystemCommand("Pause / resume", "Freeze or resume the live requests view  (p)", d.action_pause)
        yield SystemCommand("Clear requests", "Empty the requests view  (c)", d.action_clear)
        yield SystemCommand("Start agent", "Launch the selected agent preset  (s)", lambda: d.action_agent("start"))
        yield SystemCommand("Stop agent", "Stop the running agent  (x)", lambda: d.action_agent("stop"))
        yield SystemCommand("Restart agent", "Restart the agent  (r)", lambda: d.action_agent("restart"))
        yield SystemCommand("Copy token", "Copy the proxy token to the clipboard  (y)", self.action_copy_token)
        yield SystemCommand("Help", "Keys and what the dashboard shows  (?)", self.action_help)


def create_app(
    engine: Engine,
    *,
    clock: Clock | None = None,
    theme: str | None = None,
    user_theme_dir: Path | None = None,
    start_engine: bool = True,
    display_url: str | None = None,
) -> IronApp:
    """Build the dashboard for `engine`.

    clock: drives uptime and "ago" times (defaults to the engine's clock). theme: a theme name
    (unknown → a notification and the default). user_theme_dir: where user theme files are (defaults
    to `<config dir>/themes`). start_engine: the app starts the engine on mount and stops it on exit;
    pass False for an engine the caller runs. display_url: shown instead of the real proxy URL.
    """
    return IronApp(
        engine,
        clock=clock,
        theme=theme,
        user_theme_dir=user_theme_dir if user_theme_dir is not None else default_user_theme_dir(),
        start_engine=start_engine,
        display_url=display_url,
    )

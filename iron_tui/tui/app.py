"""The Textual dashboard application and its factory.

    app = create_app(engine, clock=FixedClock(), theme="iron")

The app runs on the same event loop as the engine (see run.py). A bus-pump worker drains the engine's
event bus in batches, at most ~10 times a second (less often above BUSY_RATE calls/s, so a busy
proxy keeps the CPU), and posts messages to the dashboard screen; it never touches a widget. Engine
start, agent commands, exports and replays also run in workers and report back with messages.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen

from iron_tui.config import mask_secret
from iron_tui.core.agent import AgentError, AgentPreset
from iron_tui.core.bus import Subscription
from iron_tui.core.clock import Clock
from iron_tui.core.engine import Engine
from iron_tui.core.events import RequestFinished
from iron_tui.core.export import ExportError, replayable_body, write_har, write_jsonl
from iron_tui.core.history_query import HistoryReader
from iron_tui.core.known_agents import KnownAgent, available_agents
from iron_tui.core.replay import ReplayError, ReplayResult, budget_check, replay
from iron_tui.core.units import count
from iron_tui.tui import prefs
from iron_tui.tui.messages import AgentCommandFailed, EngineFailed, EngineReady, WorkDone
from iron_tui.tui.pump import batch_messages
from iron_tui.tui.screens.dialogs import ConfirmDialog, ExportDialog, HelpScreen, TextDialog
from iron_tui.tui.screens.main import MainScreen
from iron_tui.tui.screens.replay import check_text
from iron_tui.tui.themes import DEFAULT_THEME, all_themes
from iron_tui.tui.themes import user_theme_dir as default_user_theme_dir

FLUSH_INTERVAL = 0.1  # seconds between bus batches: the dashboard repaints at most ~10 times a second
BUSY_RATE = 100.0  # calls/s above which the dashboard repaints less often, so the proxy keeps the CPU
SLOWEST_INTERVAL = 0.5
PUMP_QUEUE = 50_000  # events buffered for the dashboard before the oldest are dropped (and counted)
Call = tuple[dict[str, Any], Any]
QUIT_TITLE = "Quit iron-tui?"


class IronApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "iron-tui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit_asking", "Quit"),
        # Ctrl-C leaves without asking; a second one while stopping quits at once (tui/run.py).
        Binding("ctrl+c", "interrupt", show=False, priority=True),
        Binding("t", "next_theme", "Theme", show=False),
        Binding("y", "show_token", "Token", show=False),
        Binding("w", "web_page", "Web page", show=False),
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
        prefs_path: Path | None = None,
        known_agents: Sequence[KnownAgent] | None = None,
    ) -> None:
        super().__init__()
        self.engine = engine
        # Claude Code, Codex CLI...: those on PATH now (the agent panel offers them next to the presets)
        self.known_agents = list(available_agents() if known_agents is None else known_agents)
        self.clock: Clock = clock or engine.clock
        self.display_url = display_url
        self.flush_interval = flush_interval
        self.start_engine = start_engine
        self.engine_ready = asyncio.Event()
        self.startup_error: str | None = None
        self.pump_batches = 0
        self.prefs_path = prefs_path
        self.history_reader = HistoryReader(engine.history_path)
        self.dashboard = MainScreen()
        self._agent_argv: list[str] | None = None
        self._subscription: Subscription | None = None
        self._started_engine = False
        self.stop_engine_on_unmount = True  # run_tui stops it itself, after the terminal is restored
        self._startup_notices: list[str] = []
        self.cycle_themes: list[str] = []
        # Set by run_tui for the real process (not in tests, where frozen objects would pile up).
        self.freeze_gc_when_ready = False
        self._install_themes(theme, user_theme_dir)

    # --- themes ---------------------------------------------------------------------------------------

    def _install_themes(self, wanted: str | None, user_dir: Path | None) -> None:
        themes, problems = all_themes(user_dir)
        for t in themes:
            self.register_theme(t)
        # `t` cycles iron-tui's own themes (shipped and the user's), not Textual's twenty built-ins.
        self.cycle_themes = sorted(t.name for t in themes)
        # Reported once each, when the app is up; the file is skipped, the app runs on.
        self._startup_notices.extend(str(p) for p in problems)
        remembered = prefs.load(self.prefs_path).get("theme")
        name = wanted or (remembered if isinstance(remembered, str) else None) or DEFAULT_THEME
        if name not in self.available_themes:
            if wanted is not None:  # a remembered theme that is gone falls back silently
                self._startup_notices.append(
                    f"unknown theme {name!r}, using {DEFAULT_THEME!r} "
                    f"(available: {', '.join(sorted(t for t in self.available_themes if t != 'textual-ansi'))})"
                )
            name = DEFAULT_THEME
        self.theme = name

    def action_next_theme(self) -> None:
        names = self.cycle_themes or [DEFAULT_THEME]
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        saved = prefs.save(self.prefs_path, theme=self.theme)
        self.notify(f"theme {self.theme}" + (" (remembered)" if saved else ""), timeout=2)

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
        self.history_reader.close()
        if self._started_engine and self.stop_engine_on_unmount:
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

    def agent_command(self, op: str, preset: AgentPreset | str | list[str] | None = None) -> None:
        self._agent_worker(op, preset)

    @work(group="agent", exit_on_error=False)
    async def _agent_worker(self, op: str, preset: AgentPreset | str | list[str] | None) -> None:
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

    # --- export and replay (workers; results come back as WorkDone) --------------------------------

    def export_calls(self, calls: list[Call] | Callable[[], list[Call]], scope: str, stem: str) -> None:
        """Ask where to, then write JSONL or HAR. `calls` may be a function (run in a worker thread)."""

        def go(choice: tuple[str, Path] | None) -> None:
            if choice is not None:
                self._export(calls, choice[0], choice[1])

        self.push_screen(ExportDialog(scope, stem), go)

    @work(group="export", exit_on_error=False)
    async def _export(self, calls: list[Call] | Callable[[], list[Call]], fmt: str, path: Path) -> None:
        try:
            got = await asyncio.to_thread(calls) if callable(calls) else calls
            if fmt == "har":
                n = await asyncio.to_thread(write_har, path, got, self.engine.base_url)
            else:
                n = await asyncio.to_thread(write_jsonl, path, got)
        except OSError as exc:
            self.post_message(WorkDone("export", error=f"cannot write {path}: {exc.strerror or exc}"))
            return
        self.post_message(WorkDone("export", result=(n, path)))

    def confirm_replay(self, summary: dict[str, Any], record: Any, body: str | None) -> None:
        """Replay as recorded (body None) after a confirmation that shows the budget check."""
        try:
            text = body if body is not None else replayable_body(record)
            check = budget_check(self.engine, text, summary)
        except (ExportError, ReplayError) as exc:
            self.notify(str(exc), title="Replay", severity="warning")
            return
        lead = Content.from_markup("Send [b]$id[/] again through the proxy as agent \"replay\"?\n",
                                   id=summary["id"]) + check_text(check)

        def go(yes: bool | None) -> None:
            if yes:
                self.start_replay(summary, text)

        self.push_screen(ConfirmDialog("Replay", lead, yes="send"), go)

    def start_replay(self, summary: dict[str, Any], body: str) -> None:
        self.notify(f"replaying {summary['id']}…", timeout=2)
        self._replay(summary, body)

    @work(group="replay", exit_on_error=False)
    async def _replay(self, summary: dict[str, Any], body: str) -> None:
        try:
            result = await replay(self.engine, body, summary)
        except ReplayError as exc:
            self.post_message(WorkDone("replay", error=str(exc)))
            return
        self.post_message(WorkDone("replay", result=result))

    @on(WorkDone)
    def _work_done(self, msg: WorkDone) -> None:
        if msg.error is not None:
            self.notify(msg.error, title=msg.job.capitalize(), severity="error")
        elif msg.job == "export":
            n, path = msg.result
            self.notify(f"{count(n, 'call')} written to {path.resolve()}", title="Export", timeout=8)
        elif msg.job == "replay":
            r: ReplayResult = msg.result
            if r.error is not None:
                self.notify(r.error, title="Replay", severity="error")
                return
            self.notify(f"replayed as {r.request_id}: status {r.status}", title="Replay",
                        severity="information" if r.status < 400 else "warning")
            if r.request_id is not None:
                while not isinstance(self.screen, MainScreen) and len(self.screen_stack) > 1:
                    self.pop_screen()
                self.dashboard.open_detail(r.request_id)

    # --- actions ----------------------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_interrupt(self) -> None:
        self.exit(130, return_code=130)

    def action_quit_asking(self) -> None:
        agent = self.engine.agent
        parts = ["This stops the proxy"]
        if agent.is_active:
            parts.append(f"and the agent (pid {agent.pid})")
        inflight = getattr(getattr(self.engine, "proxy", None), "inflight", 0)
        if inflight:
            parts.append(f"with {count(inflight, 'call')} in flight")

        def go(yes: bool | None) -> None:
            if yes:
                self.exit(0, return_code=0)

        self.push_screen(ConfirmDialog(QUIT_TITLE, " ".join(parts) + ". (q again also quits)", yes="quit",
                                       q_confirms=True), go)

    def action_show_token(self) -> None:
        token = self.engine.token
        lead = Content.from_markup("The token clients send (Authorization: Bearer … or x-api-key). "
                                   "Shown as [b]$m[/] in the header.", m=mask_secret(token) or "")
        self.push_screen(TextDialog("Proxy token", f"{token}\n\nexport IRON_TOKEN={token}", lead=lead,
                                    copy_text=token))

    def web_page_url(self) -> str:
        base = self.display_url.removesuffix("/v1") if self.display_url else self.engine.base_url
        return f"{base}/dashboard#token={self.engine.token}"

    def action_web_page(self) -> None:
        lead = Content("The same dashboard in a browser: open this address. The token after # stays in the "
                       "browser (it is never sent to the server) and is taken out of the address bar.")
        self.push_screen(TextDialog("Web dashboard", self.web_page_url(), lead=lead))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        d = self.dashboard
        yield SystemCommand("Filter requests", "Filter the list as you type  (/)", d.action_filter)
        yield SystemCommand("Follow newest", "Follow the newest call on / off  (f)", d.action_follow)
        yield SystemCommand("Sort", "Sort by the next column  (o; O reverses)", d.action_sort)
        yield SystemCommand("Totals", "Per model, provider and agent; graphs; budget forecast  (T)", d.action_totals)
        yield SystemCommand("History", "Browse and filter the on-disk history  (H)", d.action_history)
        yield SystemCommand("Export", "Export the session or the filter's result as JSONL or HAR  (E)",
                            d.action_export)
        yield SystemCommand("Edit budget", "Change the spend limit live; empty = unlimited  (b)", d.action_budget)
        yield SystemCommand("Pause / resume", "Freeze or resume the live list  (p)", d.action_pause)
        yield SystemCommand("Clear requests", "Empty the list and its totals; u undoes  (c)", d.action_clear)
        yield SystemCommand("Start agent", "Launch the selected agent preset  (s)", lambda: d.action_agent("start"))
        yield SystemCommand("Stop agent", "Stop the running agent  (x)", lambda: d.action_agent("stop"))
        yield SystemCommand("Restart agent", "Restart the agent  (r)", lambda: d.action_agent("restart"))
        yield SystemCommand("Show token", "The proxy token, to copy  (y)", self.action_show_token)
        yield SystemCommand("Web dashboard", "The web page's address with the token  (w)", self.action_web_page)
        yield SystemCommand("Next theme", "Switch to the next iron-tui theme  (t)", self.action_next_theme)
        yield SystemCommand("Help", "Keys and what the dashboard shows  (?)", self.action_help)


def create_app(
    engine: Engine,
    *,
    clock: Clock | None = None,
    theme: str | None = None,
    user_theme_dir: Path | None = None,
    start_engine: bool = True,
    display_url: str | None = None,
    prefs_path: Path | None = None,
    known_agents: Sequence[KnownAgent] | None = None,
) -> IronApp:
    """Build the dashboard for `engine`.

    clock: drives uptime and "ago" times (defaults to the engine's clock). theme: a theme name
    (unknown → a notification and the default; None → the one last chosen with `t`, else the
    default). user_theme_dir: where user theme files are (defaults to `<config dir>/themes`).
    start_engine: the app starts the engine on mount and stops it on exit; pass False for an engine
    the caller runs. display_url: shown instead of the real proxy URL. prefs_path: where the chosen
    theme is remembered (defaults to `tui-prefs.json` in the engine's data dir). known_agents: the
    known agents the agent panel offers (defaults to those whose program is on PATH).
    """
    if prefs_path is None and engine.data_dir is not None:
        prefs_path = Path(engine.data_dir) / prefs.FILE_NAME
    return IronApp(
        engine,
        clock=clock,
        theme=theme,
        user_theme_dir=user_theme_dir if user_theme_dir is not None else default_user_theme_dir(),
        start_engine=start_engine,
        display_url=display_url,
        prefs_path=prefs_path,
        known_agents=known_agents,
    )

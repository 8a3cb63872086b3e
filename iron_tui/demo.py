"""`iron-tui demo`: the whole product with no keys and no network.

Starts, on loopback ports, the simulated OpenAI and Anthropic upstreams (`ProviderSim`) and a simulated
Iron Cage control server (`ControlSim`), then the real engine configured against them, and launches the
bundled demo agent (`python -m iron_tui.demo_agent`) as the engine's agent. The agent uses the
official SDKs through the proxy: OpenAI chat and streaming, Claude through the OpenAI SDK (translated),
native Anthropic messages, a tool call, an upstream error, and enough spend to trip the budget warning.

The engine runs in *direct* mode (it holds keys for both simulated providers, which the control server
cannot provide: it hands out one key per agent) while the control server still receives every analytics
event, because a server URL and token are configured too.

    iron-tui demo            the dashboard, paced so it can be watched
    iron-tui demo --no-ui    the same story as log lines; ends with a summary, in a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from iron_tui.config import ConfigError, Settings

DEMO_BUDGET_USD = 0.02  # small on purpose: the demo agent's calls cross the 80 % warning
OPENAI_SIM_KEY = "sk-sim-openai"
ANTHROPIC_SIM_KEY = "sk-ant-sim-anthropic"
EXIT_CONFIG = 2

# Pacing at --speed 1 in UI mode, so the dashboard can be watched (none in --no-ui unless --speed).
LATENCY_MS = 350.0
CHUNK_DELAY_MS = 35.0
STEP_PAUSE_S = 1.5


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one clear line and exit 2, as the main command does
        self.exit(EXIT_CONFIG, f"iron-tui demo: error: {message} (see iron-tui demo --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="iron-tui demo",
        description="Run iron-tui against simulated OpenAI and Anthropic providers and a simulated Iron Cage "
        "control server, with a demo agent: no keys, no network.",
    )
    p.add_argument("--no-ui", action="store_true", help="log lines instead of the dashboard; exits at the end")
    p.add_argument("--port", type=_port, default=0, help="proxy and feed port (default: a free port)")
    p.add_argument("--data-dir", type=Path, help="keep state here (default: a temporary directory)")
    p.add_argument("--speed", type=_speed, default=None,
                   help="pacing multiplier: 2 is twice as fast (default 1 with the dashboard, unpaced with --no-ui)")
    p.add_argument("--theme", help="dashboard theme")
    return p


def _port(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port must be a whole number, got {v!r}") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be between 0 and 65535, got {n}")
    return n


def _speed(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed must be a number, got {v!r}") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"--speed must be greater than 0, got {v!r}")
    return x


@dataclass(frozen=True)
class Pacing:
    latency_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    step_pause_s: float = 0.0

    @classmethod
    def at(cls, speed: float | None) -> Pacing:
        if speed is None:
            return cls()
        return cls(LATENCY_MS / speed, CHUNK_DELAY_MS / speed, STEP_PAUSE_S / speed)


# A model the simulated OpenAI answers "overloaded", and the local model it falls back to.
OVERLOADED_MODEL = "gpt-4.1"
LOCAL_MODEL = "qwen2.5-coder"


@dataclass(frozen=True)
class DemoWorld:
    """The simulated outside world the engine talks to."""

    sim: Any  # ProviderSim
    control: Any  # ControlSim
    ic_token: str
    local: Any = None  # ProviderSim as a local OpenAI-compatible server (an Ollama stand-in)

    def settings(self, *, port: int, data_dir: Path, theme: str | None = None) -> Settings:
        values: dict[str, Any] = {
            "port": port,
            "openai_key": OPENAI_SIM_KEY,
            "anthropic_key": ANTHROPIC_SIM_KEY,
            "openai_base_url": self.sim.url,
            "anthropic_base_url": self.sim.url,
            "server_url": self.control.url,
            "token": self.ic_token,
            "budget": DEMO_BUDGET_USD,
            "data_dir": data_dir,
            "sync_interval": 1.0,  # so the dashboard shows events reaching the server as they happen
            "flush_timeout": 5.0,
            # A local model server (an Ollama stand-in: no key, $0) and a fallback to it.
            "providers": {"local": {"base_url": self.local.url + "/v1"}} if self.local is not None else {},
            "fallbacks": {OVERLOADED_MODEL: [f"local/{LOCAL_MODEL}"]} if self.local is not None else {},
            "retries": {"attempts": 2, "backoff": 0.05},
        }
        if theme:
            values["theme"] = theme
        return Settings(**values)

    @property
    def events_synced(self) -> int:
        return len(self.control.events)


@contextlib.asynccontextmanager
async def demo_world(pacing: Pacing) -> AsyncIterator[DemoWorld]:
    from iron_tui.sim import ProviderSim, SimSettings
    from iron_tui.sim.control_server import ControlSim

    sim = ProviderSim(SimSettings(openai_keys={OPENAI_SIM_KEY}, anthropic_keys={ANTHROPIC_SIM_KEY},
                                  latency_ms=pacing.latency_ms, chunk_delay_ms=pacing.chunk_delay_ms,
                                  overloaded_models=frozenset({OVERLOADED_MODEL})))
    await sim.start()
    local = ProviderSim(SimSettings(open_access=True, served_models=(LOCAL_MODEL,), latency_ms=pacing.latency_ms,
                                    chunk_delay_ms=pacing.chunk_delay_ms))
    await local.start()
    control = ControlSim()
    try:
        await control.start()
        ic_token = "ic_demo_" + secrets.token_urlsafe(12)
        # One agent, with a provider key as a real control server would hold; in direct mode the
        # engine only uses the server for analytics.
        control.add_agent(ic_token, agent_id="agent_demo", provider="openai", provider_key=OPENAI_SIM_KEY,
                          base_url=sim.url)
        yield DemoWorld(sim, control, ic_token, local)
    finally:
        await control.stop()
        await local.stop()
        await sim.stop()


def agent_argv(pacing: Pacing) -> list[str]:
    return [sys.executable, "-m", "iron_tui.demo_agent", "--budget", f"{DEMO_BUDGET_USD:g}",
            "--pause", f"{pacing.step_pause_s:g}"]


@contextlib.contextmanager
def _data_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="iron-tui-demo-") as tmp:
        yield Path(tmp)


# --- --no-ui -----------------------------------------------------------------------------------------


async def run_demo_headless(
    *, port: int = 0, data_dir: Path, speed: float | None = None, out: TextIO | None = None
) -> int:
    from iron_tui.core.engine import Engine
    from iron_tui.core.events import CostAlert
    from iron_tui.headless import run_headless

    out = out or sys.stdout
    pacing = Pacing.at(speed)
    async with demo_world(pacing) as world:
        settings = world.settings(port=port, data_dir=data_dir)
        engine = Engine(settings)
        alerts = engine.bus.subscribe(maxsize=100_000, name="demo-summary")
        _say(out, f"simulated OpenAI + Anthropic at {world.sim.url}, simulated Iron Cage control server at "
                  f"{world.control.url}")
        _say(out, f"budget ${DEMO_BUDGET_USD:.2f}, state in {data_dir}; launching the demo agent")
        # run_headless starts the engine, launches the agent, returns its exit code once it ended, and
        # stops the engine, whose final analytics flush delivers the remaining events.
        # The demo's token is a simulated control server's: shown with the web page's address.
        code = await run_headless(settings, agent_argv(pacing), out=out, engine=engine, show_token=True)
        seen = [e for e in alerts.drain() if isinstance(e, CostAlert)]
        alerts.close()
        for line in summary_lines(engine, world, seen):
            _say(out, line)
    return code


def _say(out: TextIO, text: str) -> None:
    out.write(f"iron-tui demo: {text}\n")
    out.flush()


def summary_lines(engine: Any, world: DemoWorld, alerts: list[Any]) -> list[str]:
    from iron_tui.core.budget_state import ALERT_THRESHOLDS

    records = engine.history.recent()
    by_provider: Counter[str] = Counter(r.provider for r in records)
    failed: Counter[str] = Counter(r.provider for r in records if r.state != "ok")
    translated = sum(1 for r in records if r.translated)
    streamed = sum(1 for r in records if r.stream)
    fell_back = sum(1 for r in records if r.attempts and r.state == "ok" and r.client_model is not None)
    parts = []
    for provider, n in sorted(by_provider.items()):
        extra = f" ({failed[provider]} failed or refused)" if failed[provider] else ""
        parts.append(f"{provider} {n}{extra}")
    spent, limit = engine.ledger.status()
    lines = [
        f"summary: {len(records)} calls: {', '.join(parts) or 'none'}; {translated} translated "
        f"(OpenAI SDK → Claude), {streamed} streamed, {fell_back} served by a fallback",
        f"summary: spend ${spent / 1e6:.4f} of ${(limit or 0) / 1e6:.2f} budget "
        f"({(100 * spent / limit) if limit else 0:.0f}%)",
        "summary: budget alerts: " + (", ".join(
            f"{a.severity} (the {dict(ALERT_THRESHOLDS).get(a.severity, '?')}% threshold, crossed at {a.percentage:.0f}%)"
            for a in alerts) or "none"),
    ]
    sync = engine.analytics.status if engine.analytics is not None else None
    pending = f", {sync.pending} pending" if sync is not None and sync.pending else ""
    lines.append(f"summary: {world.events_synced} analytics events synced to the control server{pending}")
    return lines


# --- the dashboard -------------------------------------------------------------------------------------


class _BackgroundWorld:
    """The simulated world on its own thread and event loop, so the dashboard owns the main thread."""

    def __init__(self, pacing: Pacing) -> None:
        self._pacing = pacing
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="iron-tui-demo-sims", daemon=True)
        self._cm: contextlib.AbstractAsyncContextManager[DemoWorld] | None = None

    def __enter__(self) -> DemoWorld:
        self._thread.start()
        self._cm = demo_world(self._pacing)
        return asyncio.run_coroutine_threadsafe(self._cm.__aenter__(), self._loop).result(timeout=30)

    def __exit__(self, *exc: object) -> None:
        if self._cm is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._cm.__aexit__(None, None, None), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


def run_demo_ui(*, port: int = 0, data_dir: Path, speed: float | None = None, theme: str | None = None) -> int:
    try:
        from iron_tui.tui.run import run_tui
    except ImportError as exc:
        sys.stderr.write(f"iron-tui demo: the dashboard is not available ({exc}); try: iron-tui demo --no-ui\n")
        return 1
    pacing = Pacing.at(1.0 if speed is None else speed)
    with _BackgroundWorld(pacing) as world:
        settings = world.settings(port=port, data_dir=data_dir, theme=theme)
        return run_tui(settings, agent_argv(pacing))


# --- entry point ------------------------------------------------------------------------------------


def demo_main(argv: list[str]) -> int:
    from iron_tui.core.engine_lifecycle import EngineError

    ns = build_parser().parse_args(argv)
    try:
        with _data_dir(ns.data_dir) as data_dir:
            if ns.no_ui:
                return asyncio.run(run_demo_headless(port=ns.port, data_dir=data_dir, speed=ns.speed))
            return run_demo_ui(port=ns.port, data_dir=data_dir, speed=ns.speed, theme=ns.theme)
    except (EngineError, ConfigError) as exc:
        sys.stderr.write(f"iron-tui demo: error: {exc}\n")
        return EXIT_CONFIG
    except OSError as exc:  # e.g. an unwritable --data-dir
        sys.stderr.write(f"iron-tui demo: error: {exc.strerror or exc}: {exc.filename or ''}\n")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130

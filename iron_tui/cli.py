"""Command line: `iron-tui [options] [-- CMD ARGS…]`, `iron-tui demo`, `iron-tui config init|show|path`."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any

from iron_tui import __version__
from iron_tui.config import ConfigError, Settings
from iron_tui.config_loading import load_settings_with_sources

EXIT_CONFIG = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one clear line, exit 2, no usage dump
        self.exit(EXIT_CONFIG, f"iron-tui: error: {message} (see iron-tui --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="iron-tui",
        description="A local LLM gateway for AI agents, with a live terminal dashboard.",
        epilog="Commands: 'iron-tui demo' (no keys, no network), 'iron-tui config init|show|path'. "
        "Launch an agent: iron-tui [options] -- CMD ARGS…",
    )
    p.add_argument("--version", action="version", version=f"iron-tui {__version__}")
    p.add_argument("--no-ui", action="store_true", help="run headless: one log line per request")
    add_engine_options(p)
    return p


def add_engine_options(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--host", help="bind address (default 127.0.0.1; non-loopback needs --allow-remote)")
    a("--port", type=_int("--port"), help="proxy and feed port (default 8478; 0 picks a free port)")
    a("--allow-remote", action="store_true", default=None,
      help="allow a non-loopback --host (and any Host header, unless --allowed-hosts names them)")
    a("--allowed-hosts", help="comma-separated Host names served besides the loopback address ('*': any)")
    a("--openai-key", help="OpenAI provider key (env OPENAI_API_KEY)")
    a("--anthropic-key", help="Anthropic provider key (env ANTHROPIC_API_KEY)")
    a("--provider-key", help="a provider key; sk-ant- keys are Anthropic, others OpenAI")
    a("--token", help="token clients must present; in server mode the IC token (env IC_TOKEN)")
    a("--server-url", help="Iron Cage control server (env IC_SERVER)")
    a("--budget", type=_float("--budget"), help="spend limit in USD (default unlimited)")
    a("--budget-period", help="session, day, week or month")
    a("--budget-fit", action=argparse.BooleanOptionalAction, default=None,
      help="lower a call's output cap to what the budget has left (default); --no-budget-fit refuses it (402)")
    a("--strict-pricing", action="store_true", default=None, help="refuse models with no known price")
    a("--openai-base-url", help="OpenAI upstream base URL")
    a("--anthropic-base-url", help="Anthropic upstream base URL")
    a("--agent", help="agent command line for the dashboard's Start button")
    a("--config", type=Path, help="config file (env IRON_CONFIG)")
    a("--data-dir", type=Path, help="directory for SQLite state (env IRON_DATA_DIR)")
    a("--theme", help="dashboard theme (env IRON_THEME)")
    a("--log-format", help="headless log lines: text or json")
    a("--max-body-bytes", type=_int("--max-body-bytes"), help="largest request body accepted")
    a("--flush-timeout", type=_float("--flush-timeout"), help="seconds the final analytics flush may take")


def _int(opt: str) -> Any:
    def conv(v: str) -> int:
        try:
            return int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{opt} must be a whole number, got {v!r}") from None

    return conv


def _float(opt: str) -> Any:
    def conv(v: str) -> float:
        try:
            return float(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{opt} must be a number, got {v!r}") from None

    return conv


_ENGINE_KEYS = (
    "host", "port", "allow_remote", "openai_key", "anthropic_key", "provider_key", "token", "server_url",
    "budget", "budget_period", "budget_fit", "strict_pricing", "openai_base_url", "anthropic_base_url", "agent", "data_dir",
    "theme", "log_format", "max_body_bytes", "flush_timeout", "allowed_hosts",
)


def settings_and_sources(ns: argparse.Namespace) -> tuple[Settings, dict[str, str]]:
    """The settings and where each came from; a `--config` file that does not exist is an error."""
    cli = {k: getattr(ns, k, None) for k in _ENGINE_KEYS}
    config = getattr(ns, "config", None)
    settings, _, sources = load_settings_with_sources(cli, config_path=config, config_required=config is not None)
    return settings, sources


def _unexpected_arguments(extra: list[str]) -> str:
    """The error for arguments argparse did not take: usually an agent command without `--` before it."""
    if extra[0].startswith("-"):
        return f"unrecognized arguments: {' '.join(extra)} (see iron-tui --help)"
    # Only the stray words are echoed: the options before them may hold keys.
    return (f"unexpected argument {extra[0]!r}: to launch an agent, put '--' before its command "
            f"(iron-tui [options] -- {shlex.join(extra)}); to set the dashboard's agent, quote it "
            f"(--agent {shlex.quote(shlex.join(extra))})")


def check_port_allowed(settings: Settings, sources: dict[str, str]) -> None:
    """A port below 1024 needs privileges: say so (and where the port came from) before starting."""
    if not 0 < settings.port < 1024:
        return
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((settings.host, settings.port))
        except PermissionError:
            where = sources.get("port", "--port")
            origin = "" if where.startswith("--") else f" from {where}"
            raise ConfigError(
                f"invalid --port{origin}: {settings.port}: ports below 1024 need administrator privileges; "
                "use a port from 1024 up (the default is 8478) or 0 for any free port") from None
        except OSError:
            return  # in use or unavailable: the engine reports it when it binds


def _fail(message: str) -> int:
    sys.stderr.write(f"iron-tui: error: {message}\n")
    return EXIT_CONFIG


def run() -> int:
    """The `iron-tui` command (and `python -m iron_tui`): `main()` in a process of its own, with the
    collector tuned for it. Tests call `main()` in their own process, whose collector stays as it is."""
    from iron_tui.core.loop import tune_gc

    tune_gc()
    return main()


def main(argv: list[str] | None = None) -> int:
    from iron_tui.core import log_redaction

    log_redaction.install()  # log records and tracebacks on stderr: keys redacted, terminal-safe
    argv = list(sys.argv[1:] if argv is None else argv)
    agent_argv: list[str] | None = None
    if "--" in argv:
        i = argv.index("--")
        argv, agent_argv = argv[:i], argv[i + 1 :]
        if not agent_argv:
            return _fail("'--' must be followed by the agent command to run")
    if argv and argv[0] == "config":
        from iron_tui.config_cli import config_main

        return config_main(argv[1:])
    if argv and argv[0] == "demo":
        from iron_tui.demo import demo_main

        return demo_main(argv[1:])
    ns, extra = build_parser().parse_known_args(argv)
    if extra:
        return _fail(_unexpected_arguments(extra))
    try:
        settings, sources = settings_and_sources(ns)
        settings.check_runnable()
        check_port_allowed(settings, sources)
    except ConfigError as exc:
        return _fail(str(exc))
    if ns.no_ui:
        return _run_headless(settings, agent_argv)
    from iron_tui.tui.run import run_tui

    return run_tui(settings, agent_argv)


def _run_headless(settings: Settings, agent_argv: list[str] | None) -> int:
    from iron_tui.core.engine_lifecycle import EngineError
    from iron_tui.core.loop import new_event_loop
    from iron_tui.headless import run_headless

    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(run_headless(settings, agent_argv))
    except (EngineError, ConfigError) as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        return 0  # whoever read our output went away (e.g. `| head`); nothing to report to
    except (OSError, sqlite3.Error) as exc:  # e.g. a data dir that cannot be created or opened
        return _fail(f"cannot use data dir {settings.data_dir}: {exc}")
    except KeyboardInterrupt:
        return 130

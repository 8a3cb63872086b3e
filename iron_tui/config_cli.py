"""`iron-tui config init | show | path`: write, inspect and locate the configuration.

- `init [--force] [--path P]` writes a commented TOML file with every option (defaults, plus any option
  flags given to `init`), a `# description` above each key. Secrets are never written: they appear as
  commented-out placeholders pointing at their environment variables. The directory is created only
  when the file is written; an existing file is kept unless `--force`.
- `show [options]` prints the effective configuration (defaults < file < environment < flags) as TOML,
  secrets masked, with a comment naming the source of every value that is not a default.
- `path` prints the config file path and the data directory.

Bad configuration exits with status 2 and one line, like the main command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

import tomli_w
from pydantic import ValidationError

from iron_tui.config import SECRET_FIELDS, ConfigError, Settings, mask_secret
from iron_tui.config_docs import default_value, settings_docs
from iron_tui.config_loading import (
    CONFIG_ENV,
    default_config_path,
    default_data_dir,
    describe_validation_error,
    load_settings_with_sources,
)

EXIT_CONFIG = 2
_TABLE_FIELDS = ("agents", "prices")  # TOML tables must follow every plain key
# Commented-out examples for options that are unset by default.
_EXAMPLES: dict[str, str] = {
    "openai_key": '"sk-..."',
    "anthropic_key": '"sk-ant-..."',
    "provider_key": '"sk-..."',
    "token": '"ic_..."',
    "server_url": '"https://iron-cage.example.com"',
    "budget": "5.0",
    "agent": '"python my_agent.py"',
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        self.exit(EXIT_CONFIG, f"iron-tui config: error: {message} (see iron-tui config --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from iron_tui.cli import add_engine_options

    p = _Parser(prog="iron-tui config", description="Write, inspect and locate iron-tui's configuration.")
    sub = p.add_subparsers(dest="command", metavar="{init,show,path}", parser_class=_Parser)
    init = sub.add_parser("init", help="write a commented config file (secrets are never written)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument("--path", type=Path, help="where to write (default: --config, $IRON_CONFIG or the "
                                                 "platform config dir)")
    add_engine_options(init)
    show = sub.add_parser("show", help="print the effective configuration, secrets masked")
    add_engine_options(show)
    path = sub.add_parser("path", help="print the config file path and the data directory")
    add_engine_options(path)
    return p


def config_main(argv: list[str], *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command is None:
        parser.print_usage(err)
        err.write("iron-tui config: error: choose a command: init, show or path\n")
        return EXIT_CONFIG
    try:
        if ns.command == "init":
            return _init(ns, out, err)
        if ns.command == "show":
            return _show(ns, out)
        return _path(ns, out, err)
    except ConfigError as exc:
        err.write(f"iron-tui: error: {exc}\n")
        return EXIT_CONFIG


def _cli_values(ns: argparse.Namespace) -> dict[str, Any]:
    from iron_tui.cli import _ENGINE_KEYS

    return {k: v for k in _ENGINE_KEYS if (v := getattr(ns, k, None)) is not None}


def config_file_path(ns: argparse.Namespace, env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    given = getattr(ns, "path", None) or getattr(ns, "config", None)
    if given is not None:
        return Path(given)
    return Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else default_config_path()


# --- init --------------------------------------------------------------------------------------------


def _init(ns: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    path = config_file_path(ns).expanduser()
    if path.exists() and not ns.force:
        err.write(f"iron-tui: error: {path} already exists; pass --force to overwrite it "
                  "(iron-tui config show prints what it configures)\n")
        return EXIT_CONFIG
    cli = _cli_values(ns)
    try:
        settings = Settings(**cli)
    except ValidationError as exc:
        sources = {k: "--" + k.replace("_", "-") for k in cli}
        raise ConfigError(describe_validation_error(exc, cli, sources)) from None
    text = render_commented_config(settings, set(cli))
    try:
        write_private(path, text)
    except OSError as exc:
        err.write(f"iron-tui: error: cannot write {path}: {exc.strerror or exc}\n")
        return EXIT_CONFIG
    out.write(f"wrote {path}\n")
    skipped = sorted(k for k in cli if k in SECRET_FIELDS)
    if skipped:
        flags = ", ".join("--" + k.replace("_", "-") for k in skipped)
        out.write(f"not written (secrets stay out of the file): {flags}\n")
    out.write("provider keys go in the environment: OPENAI_API_KEY, ANTHROPIC_API_KEY (or IC_TOKEN with "
              "IC_SERVER for server mode); check with: iron-tui config show\n")
    return 0


def write_private(path: Path, text: str) -> None:
    """Write atomically with mode 0600 (the file may later hold a key), creating the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def toml_value(key: str, value: Any) -> str:
    """`key = value` rendered by tomli-w (so quoting and escaping are TOML-exact)."""
    return tomli_w.dumps({key: _plain(value)}).strip()


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump(exclude_none=True))
    return value


def render_commented_config(settings: Settings, explicit: set[str] | None = None) -> str:
    """The `config init` file: every option with its description; loads back to `settings`
    (secrets excepted: those are never written)."""
    explicit = explicit or set()
    lines = [
        "# iron-tui configuration, written by `iron-tui config init`.",
        "# Precedence: command line > environment variables > this file > built-in defaults.",
        "# Every option is described in docs/configuration.md; `iron-tui config show` prints the",
        "# effective configuration and where each value came from.",
        "",
    ]
    docs = {d.key: d for d in settings_docs()}
    for key, doc in docs.items():
        if key in _TABLE_FIELDS:
            continue
        value = getattr(settings, key)
        lines.append(f"# {doc.description}")
        also = [x for x in (doc.flag and f"flag {doc.flag}", doc.env and f"env {doc.env}") if x]
        if key in SECRET_FIELDS:
            where = f"the environment variable {doc.env}" if doc.env else f"the {doc.flag} flag"
            lines.append(f"# Secret: not written by config init; prefer {where}.")
            lines.append(f"# {key} = {_EXAMPLES.get(key, '...')}")
        elif value is None:
            if also:
                lines.append(f"# Also: {', '.join(also)}.")
            example = _EXAMPLES.get(key)
            if key == "data_dir":
                example = toml_value(key, default_data_dir()).split(" = ", 1)[1]
            lines.append(f"# {key} = {example or '...'}")
        else:
            if also:
                lines.append(f"# Also: {', '.join(also)}.")
            lines.append(toml_value(key, value))
        lines.append("")
    lines += _tables(settings, commented=True)
    return "\n".join(lines).rstrip("\n") + "\n"


def _tables(settings: Settings, *, commented: bool, sources: dict[str, str] | None = None) -> list[str]:
    lines: list[str] = []
    docs = {d.key: d for d in settings_docs()}
    for key in _TABLE_FIELDS:
        value = getattr(settings, key)
        if value:
            if sources is not None and key in sources:
                lines.append(f"# from {sources[key]}")
            elif commented:
                lines.append(f"# {docs[key].description}")
            lines.append(tomli_w.dumps({key: _plain(value)}).strip())
            lines.append("")
        elif commented:
            lines.append(f"# {docs[key].description} Example:")
            lines += [f"# {line}" if line else "#" for line in _TABLE_EXAMPLES[key]]
            lines.append("")
    return lines


_TABLE_EXAMPLES = {
    "agents": [
        "[[agents]]",
        'name = "research"',
        'command = "python agent.py --topic llm-gateways"',
        'cwd = "~/agents"',
        "restart_on_crash = true",
        "max_restarts = 3",
        "[agents.env]",
        'LOG_LEVEL = "debug"',
    ],
    "prices": [
        '[prices."my-finetuned-gpt"]',
        "input_per_mtok = 0.30",
        "output_per_mtok = 1.20",
    ],
}


# --- show ---------------------------------------------------------------------------------------------


def _show(ns: argparse.Namespace, out: TextIO) -> int:
    settings, path, sources = load_settings_with_sources(_cli_values(ns), config_path=ns.config)
    out.write(render_effective_config(settings, path, sources))
    return 0


def render_effective_config(settings: Settings, path: Path, sources: dict[str, str]) -> str:
    state = "found" if path.is_file() else "not found"
    providers = ", ".join(sorted(settings.provider_keys())) or "none"
    lines = [
        f"# iron-tui effective configuration (config file {path}: {state})",
        "# Precedence: command line > environment > config file > defaults. Secrets are masked.",
        f"# mode: {settings.mode} (provider keys: {providers})",
        "",
    ]
    for key in Settings.model_fields:
        if key in _TABLE_FIELDS:
            continue
        value = getattr(settings, key)
        source = sources.get(key)
        if key == "data_dir" and source is None:
            source = "platform default"
        note = f"  # from {source}" if source and value != default_value(Settings.model_fields[key]) else ""
        if key == "data_dir" and source == "platform default":
            note = "  # platform default"
        if value is None:
            doc = {d.key: d for d in settings_docs()}[key]
            lines.append(f"# {key}: {doc.default}")
            continue
        if key in SECRET_FIELDS:
            value = mask_secret(value.get_secret_value())
            note = f"  # masked; from {source}" if source else "  # masked"
        lines.append(toml_value(key, value) + note)
    lines.append("")
    lines += _tables(settings, commented=False, sources=sources)
    return "\n".join(lines).rstrip("\n") + "\n"


# --- path ---------------------------------------------------------------------------------------------


def _path(ns: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    path = config_file_path(ns)
    out.write(f"config file: {path}\n")
    out.flush()
    settings, _, _ = load_settings_with_sources(_cli_values(ns), config_path=path)
    out.write(f"data dir: {settings.data_dir}\n")
    if not path.is_file():
        err.write("note: the config file does not exist yet; `iron-tui config init` writes one\n")
    return 0


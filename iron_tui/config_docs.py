"""The configuration reference, generated from the `Settings` model (so it cannot drift).

    python -m iron_tui.config_docs            print docs/configuration.md
    python -m iron_tui.config_docs --write    rewrite docs/configuration.md in the source tree

Field facts (TOML key, CLI flag, environment variable, type, default, description) come from the
pydantic model, the CLI parser and `ENV_VARS`; `iron-tui config init` uses the same facts for its
comments.
"""

from __future__ import annotations

import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from iron_tui.config import (
    SECRET_FIELDS,
    AgentPresetConfig,
    PriceConfig,
    ProviderConfig,
    RetryConfig,
    Settings,
)
from iron_tui.config_loading import CONFIG_ENV, ENV_VARS
from iron_tui.core.otel.config import ENVIRONMENT as OTEL_ENVIRONMENT

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

# What an unset (None) default means, where "unset" alone would not tell the reader.
_UNSET_MEANS = {
    "token": "random per run",
    "budget": "unlimited",
    "data_dir": "platform data dir",
    "server_url": "none (no analytics sync)",
    "otel_endpoint": "none (no tracing)",
}


@dataclass(frozen=True)
class FieldDoc:
    key: str
    flag: str | None
    env: str | None
    type: str
    default: str
    description: str
    secret: bool


def cli_flags() -> dict[str, str]:
    """Settings field → its command-line flag, read from the real parser."""
    from iron_tui.cli import build_parser

    flags: dict[str, str] = {}
    for action in build_parser()._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.dest in Settings.model_fields:
            flags[action.dest] = longs[0]
    return flags


def url_fields() -> frozenset[str]:
    """Fields checked by the URL validator (shown as type "URL")."""
    found: set[str] = set()
    for dec in Settings.__pydantic_decorators__.field_validators.values():
        if dec.cls_var_name == "_url":
            found.update(dec.info.fields)
    return frozenset(found)


def type_name(annotation: Any, *, url: bool = False) -> str:
    if url:
        return "URL"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        inner = args[0] if args else Any
        if inner is AgentPresetConfig:
            return "list of agent tables"
        return f"list of {type_name(inner)}s"
    if origin is dict:
        if len(args) == 2 and args[1] is PriceConfig:
            return "table of model prices"
        if len(args) == 2 and args[1] is ProviderConfig:
            return "table of providers"
        return "table"
    if annotation is RetryConfig:
        return "table"
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path",
              SecretStr: "string (secret)"}
    return simple.get(annotation, getattr(annotation, "__name__", str(annotation)))


def default_value(field: FieldInfo) -> Any:
    return field.get_default(call_default_factory=True)


def default_text(name: str, field: FieldInfo) -> str:
    value = default_value(field)
    if value is None:
        return _UNSET_MEANS.get(name, "unset")
    if value == [] or value == {}:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"`{value}`"


def model_fields_docs(model: type[BaseModel]) -> list[FieldDoc]:
    flags = cli_flags() if model is Settings else {}
    envs = ENV_VARS if model is Settings else {}
    urls = url_fields() if model is Settings else frozenset()
    return [
        FieldDoc(
            key=name,
            flag=flags.get(name),
            env=envs.get(name),
            type=type_name(field.annotation, url=name in urls),
            default=default_text(name, field),
            description=field.description or "",
            secret=model is Settings and name in SECRET_FIELDS,
        )
        for name, field in model.model_fields.items()
    ]


def settings_docs() -> list[FieldDoc]:
    return model_fields_docs(Settings)


# --- the Markdown page -----------------------------------------------------------------------------

_HEADER = f"""\
# Configuration reference

<!-- Generated from the Settings model by `python -m iron_tui.config_docs --write`; do not edit by hand.
     tests/test_docs.py fails when this file and the code disagree. -->

Every option can be set in the TOML config file (the key), most on the command line (the flag) and
some by environment variable. Precedence: **command line > environment > config file > default**.

- Config file: `--config PATH`, else `${CONFIG_ENV}`, else the platform config directory:
  `~/.config/iron-tui/config.toml` on Linux, `~/Library/Application Support/iron-tui/config.toml` on
  macOS. `iron-tui config path` prints it; `iron-tui config init` writes a commented one;
  `iron-tui config show` prints the effective configuration and where each value came from.
- Data directory (SQLite: analytics outbox, request history, budget ledger): `data_dir`, default the
  platform data directory (`~/.local/share/iron-tui` on Linux).
- Secrets (provider keys, the token) are best given by environment variable; `config init` never writes
  them and `config show` masks them.
- A bad value stops iron-tui with exit status 2 and one line naming the option, where it came from, the
  value and what is allowed.
"""


def _cell(text: str | None) -> str:
    return "–" if not text else text.replace("|", "\\|")


def _code(text: str | None) -> str:
    return f"`{text}`" if text else "–"


def render_config_reference() -> str:
    out = [_HEADER, "## Options\n", "| key | flag | env | type | default | description |",
           "|---|---|---|---|---|---|"]
    for d in settings_docs():
        desc = d.description + (" Secret: never written by `config init`, masked by `config show`."
                                if d.secret else "")
        out.append(f"| `{d.key}` | {_code(d.flag)} | {_code(d.env)} | {_cell(d.type)} | {_cell(d.default)} | "
                   f"{_cell(desc)} |")
    out += [
        "",
        "## Agent presets: `[[agents]]`\n",
        "Agents the dashboard can launch, one `[[agents]]` table each (config file only).\n",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    out += [f"| `{d.key}` | {_cell(d.type)} | {_cell(d.default)} | "
            f"{_cell(d.description)} |" for d in _required_marked(AgentPresetConfig)]
    out += [
        "",
        "```toml",
        "[[agents]]",
        'name = "research"',
        'command = "python agent.py --topic llm-gateways"',
        'cwd = "~/agents"',
        "restart_on_crash = true",
        "",
        "[agents.env]",
        'LOG_LEVEL = "debug"',
        "```",
        "",
        '## Price overrides: `[prices."MODEL"]`\n',
        "Prices normally come from the `genai-prices` package. A table here overrides (or adds) one model's "
        "price, in USD per million tokens (config file only). An override keeps the model's genai-prices "
        "price per web search unless it sets `web_search_per_1k`.\n",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    out += [f"| `{d.key}` | {_cell(d.type)} | {_cell(d.default)} | "
            f"{_cell(d.description)} |" for d in _required_marked(PriceConfig)]
    out += [
        "",
        "```toml",
        '[prices."my-finetuned-gpt"]',
        "input_per_mtok = 0.30",
        "output_per_mtok = 1.20",
        "```",
        "",
        "## Tracing: the standard OpenTelemetry variables\n",
        "Tracing also reads the variables every OpenTelemetry SDK reads; they win over the config file. "
        "A bad value is reported and its default used. See [telemetry.md](telemetry.md).\n",
        "| variable | meaning |",
        "|---|---|",
    ]
    out += [f"| `{name}` | {_cell(meaning)} |" for name, meaning in OTEL_ENVIRONMENT]
    out.append("")
    out += _providers_section()
    return "\n".join(out)


def _providers_section() -> list[str]:
    from iron_tui.core.providers import PRESETS

    out = [
        "## Providers: `[providers.NAME]`, `[models]`, `[fallbacks]`, `[retries]`\n",
        "`NAME/model` always routes to provider NAME. OpenAI and Anthropic are built in; these presets need "
        "only their key variable (or, for local servers, a running server): "
        + ", ".join(f"`{n}` ({p.base_url}" + (f", `{p.key_env}`" if p.key_required else ", no key") + ")"
                    for n, p in PRESETS.items())
        + ". A `[providers.NAME]` table adds a provider or overrides a preset (config file, or "
        "`LlmRouter(providers=...)`).\n",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    out += [f"| `{d.key}` | {_cell(d.type)} | {_cell(d.default)} | {_cell(d.description)} |"
            for d in _required_marked(ProviderConfig)]
    out += ["", "`[retries]`:\n", "| key | type | default | description |", "|---|---|---|---|"]
    out += [f"| `{d.key}` | {_cell(d.type)} | {_cell(d.default)} | {_cell(d.description)} |"
            for d in _required_marked(RetryConfig)]
    out += [
        "",
        "```toml",
        "[providers.local]                      # any name: local/MODEL routes here",
        'api = "openai"                         # openai | openai-responses | anthropic',
        'base_url = "http://127.0.0.1:8080/v1"  # as its SDK clients take it',
        'models = ["llama-*"]                   # also route these names here without the prefix',
        "",
        "[providers.groq]                       # a preset: only what differs",
        'headers = { "X-Team" = "agents" }',
        "",
        "[models]                               # aliases: exact names first, then patterns",
        '"fast" = "groq/llama-3.3-70b-versatile"',
        '"claude-haiku-*" = "ollama/qwen2.5-coder"',
        "",
        "[fallbacks]                            # after a model's retries are used up",
        '"gpt-4o" = ["claude-sonnet-4-5", "ollama/qwen2.5-coder"]',
        "",
        "[retries]",
        "attempts = 3",
        "```",
        "",
    ]
    return out


def _required_marked(model: type[BaseModel]) -> list[FieldDoc]:
    docs = model_fields_docs(model)
    return [
        FieldDoc(d.key, d.flag, d.env, d.type,
                 "required" if model.model_fields[d.key].is_required() else d.default, d.description, d.secret)
        for d in docs
    ]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render_config_reference()
    if args == ["--write"]:
        DOC_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {DOC_PATH}")
        return 0
    if args:
        sys.stderr.write("usage: python -m iron_tui.config_docs [--write]\n")
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

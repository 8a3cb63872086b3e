"""Loading the settings: defaults < TOML file < environment < CLI flags, where each value came from,
and one clear line per bad value (`Settings` itself lives in config.py).

Nothing here touches the filesystem at import time; platform directories are resolved lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from iron_tui.config import SECRET_FIELDS, AgentPresetConfig, ConfigError, PriceConfig, Settings

ENV_VARS: dict[str, str] = {
    "host": "IRON_HOST",
    "port": "IRON_PORT",
    "openai_key": "OPENAI_API_KEY",
    "anthropic_key": "ANTHROPIC_API_KEY",
    "token": "IC_TOKEN",
    "server_url": "IC_SERVER",
    "budget": "IRON_BUDGET",
    "openai_base_url": "IRON_OPENAI_BASE_URL",
    "anthropic_base_url": "IRON_ANTHROPIC_BASE_URL",
    "agent": "IRON_AGENT",
    "data_dir": "IRON_DATA_DIR",
    "theme": "IRON_THEME",
    "allowed_hosts": "IRON_ALLOWED_HOSTS",
    "allowed_origins": "IRON_ALLOWED_ORIGINS",
}
CONFIG_ENV = "IRON_CONFIG"


def default_config_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("iron-tui", appauthor=False)) / "config.toml"


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("iron-tui", appauthor=False))


def read_config_file(path: Path, *, required: bool = False) -> dict[str, Any]:
    """The file's settings; a missing file is no settings, unless `required` (named with --config)."""
    import tomllib

    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} (from --config) does not exist: fix the path, or create "
                              "it with 'iron-tui config init --config PATH'") from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # tomllib reads UTF-8 only; this is not a TOMLDecodeError
        raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                          f"offset {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None


def load_settings(
    cli: dict[str, Any] | None = None,
    *,
    env: dict[str, str] | None = None,
    config_path: Path | None = None,
    config_required: bool = False,
) -> tuple[Settings, Path]:
    """Merge the sources; return the settings and the config file path that was consulted."""
    settings, path, _ = load_settings_with_sources(cli, env=env, config_path=config_path,
                                                   config_required=config_required)
    return settings, path


def load_settings_with_sources(
    cli: dict[str, Any] | None = None,
    *,
    env: dict[str, str] | None = None,
    config_path: Path | None = None,
    config_required: bool = False,
) -> tuple[Settings, Path, dict[str, str]]:
    """As `load_settings`, plus where each explicitly set value came from (field name → source:
    "config file PATH", "environment variable NAME" or "--flag"); `iron-tui config show` prints them.
    `config_required`: `config_path` was named explicitly (--config), so it must exist."""
    import os

    env = dict(os.environ) if env is None else env
    cli = {k: v for k, v in (cli or {}).items() if v is not None}
    path = config_path or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else default_config_path())
    merged: dict[str, Any] = dict(read_config_file(path, required=config_required and config_path is not None))
    sources: dict[str, str] = {k: f"config file {path}" for k in merged}
    for field_name, var in ENV_VARS.items():
        value = env.get(var)
        if value:
            merged[field_name] = value
            sources[field_name] = f"environment variable {var}"
    for k, v in cli.items():
        merged[k] = v
        sources[k] = "--" + k.replace("_", "-")
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, merged, sources)) from None
    if settings.data_dir is None:
        settings.data_dir = default_data_dir()
    return settings, path, sources


def describe_validation_error(exc: ValidationError, values: dict[str, Any], sources: dict[str, str]) -> str:
    """One clear line per problem: the option, where it came from, the value, and what is allowed."""
    # A union field (e.g. an agent's command: string or list) reports one error per member, tagged
    # with the member's type in `loc`; merge them into one problem per real location.
    problems: dict[tuple[str, ...], list[Any]] = {}
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        while loc and (loc[-1] in _TYPE_TAGS or "[" in loc[-1]):
            loc = loc[:-1]
        problems.setdefault(loc, []).append(err)
    lines = []
    for loc, errs in problems.items():
        key = loc[0] if loc else ""
        where = sources.get(key, "")
        if not key:
            lines.append(f"invalid configuration: {_reason(errs[0], key)}")
            continue
        from_file = where.startswith("config file")
        name = _loc_name(loc) if from_file or len(loc) > 1 else "--" + key.replace("_", "-")
        origin = f" from {where}" if where and not where.startswith("--") else ""
        reasons = list(dict.fromkeys(_reason(e, loc[-1]) for e in errs))
        err = errs[0]
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown option {name}{origin}: {reasons[0]}")
            continue
        if err["type"] == "missing":
            lines.append(f"invalid {_loc_name(loc[:-1])}{origin}: {reasons[0]}")
            continue
        shown = values.get(key) if len(loc) == 1 else err.get("input")
        if key in SECRET_FIELDS:
            shown = "<secret>"
        if len(reasons) > 1 and all(r.startswith("expected ") for r in reasons):
            reasons = [reasons[0], *(r.removeprefix("expected ") for r in reasons[1:])]
        fix = _FIXES.get(key) if len(loc) == 1 else None
        lines.append(f"invalid {name}{origin}: {shown!r}: {' or '.join(reasons)}" + (f" ({fix})" if fix else ""))
    return "; ".join(lines)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})
_REASONS = {
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "path_type": "expected a path (a string)",
    "finite_number": "must be a finite number",
}
# What to do instead, for options where the allowed range alone does not say it.
_FIXES = {
    "budget": "a USD amount such as 5; leave it unset for no limit",
    "port": "0 picks a free port",
}


def _loc_name(loc: tuple[str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _num(v: Any) -> str:
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e16 else f"{v:g}"
    return str(v)


def _reason(err: Any, field: str) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind in _REASONS:
        return _REASONS[kind]
    if kind == "literal_error":
        return f"allowed values: {ctx.get('expected')}"
    if kind == "greater_than_equal":
        return f"must be at least {_num(ctx.get('ge'))}"
    if kind == "greater_than":
        return f"must be greater than {_num(ctx.get('gt'))}"
    if kind == "less_than_equal":
        return f"must be at most {_num(ctx.get('le'))}"
    if kind == "missing":
        return f"missing required key {field!r}"
    if kind == "extra_forbidden":
        import difflib

        options = list(Settings.model_fields) + list(AgentPresetConfig.model_fields) + list(
            PriceConfig.model_fields)
        close = difflib.get_close_matches(field, options, n=1)
        return "not an iron-tui setting" + (f" (did you mean {close[0]!r}?)" if close else "")
    return str(err["msg"]).removeprefix("Value error, ")


"""Configuration: one pydantic model, filled from defaults < TOML file < environment < CLI flags.

Nothing here touches the filesystem at import time; platform directories are resolved lazily.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

Mode = Literal["direct", "server"]


# Upper bounds for numbers: far beyond any real use, low enough that nothing downstream overflows
# (microdollars in SQLite's 64-bit integers, seconds in the event loop's timers).
MAX_BUDGET_USD = 1_000_000_000
MAX_SECONDS = 86_400  # a day
MAX_PRICE_PER_MTOK = 1_000_000


class AgentPresetConfig(BaseModel):
    """An agent the dashboard can launch (`[[agents]]` in the config file)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(description="Name shown in the agent selector.")
    command: str | list[str] = Field(description="Command line (string) or argv list.")
    cwd: str | None = Field(default=None, description="Working directory for the agent.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    restart_on_crash: bool = Field(default=False, description="Restart the agent when it exits non-zero.")
    max_restarts: int = Field(default=3, ge=0, le=1000, description="Restart limit for restart_on_crash.")


class PriceConfig(BaseModel):
    """A price override or addition, in USD per million tokens (`[prices."model-name"]`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    input_per_mtok: float = Field(ge=0, le=MAX_PRICE_PER_MTOK, description="USD per million input tokens.")
    output_per_mtok: float = Field(ge=0, le=MAX_PRICE_PER_MTOK, description="USD per million output tokens.")
    cache_read_per_mtok: float | None = Field(default=None, ge=0, le=MAX_PRICE_PER_MTOK,
                                              description="USD per million cache-read tokens.")
    cache_write_per_mtok: float | None = Field(default=None, ge=0, le=MAX_PRICE_PER_MTOK,
                                               description="USD per million cache-write tokens.")
    max_output_tokens: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                          description="The model's maximum output tokens (bounds budget reservations).")
    context_window: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                       description="The model's context window in tokens.")


class ProviderConfig(BaseModel):
    """A provider iron-tui can route to (`[providers.NAME]`; `NAME/model` always reaches it). Keys never
    live in the file: `key_env` names the environment variable that holds the key."""

    model_config = ConfigDict(extra="forbid")

    api: Literal["openai", "openai-responses", "anthropic"] = Field(
        default="openai",
        description="What it speaks: openai (Chat Completions), openai-responses, or anthropic (Messages).")
    base_url: str | None = Field(
        default=None,
        description="Base URL as the provider documents it for SDK clients (OpenAI APIs: with /v1); "
                    "unset for a built-in preset keeps the preset's.")
    key_env: str | None = Field(
        default=None, description="Environment variable holding its key; unset: no key (local servers).")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers sent with every call.")
    models: list[str] = Field(
        default_factory=list,
        description="Model name patterns (fnmatch, e.g. 'llama-*') routed here without the NAME/ prefix.")
    price_provider: str | None = Field(
        default=None,
        description="The genai-prices provider whose prices apply (e.g. groq); unset: free on a loopback "
                    "base URL, else looked up by model name.")

    @field_validator("base_url")
    @classmethod
    def _base(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip().rstrip("/")
        if not (v.startswith("http://") or v.startswith("https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @field_validator("key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.fullmatch(v):
            raise ValueError("must be the NAME of an environment variable (letters, digits, _), not a key")
        return v

    @field_validator("headers")
    @classmethod
    def _no_secret_headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if name.lower() in ("authorization", "x-api-key", "api-key", "proxy-authorization"):
                raise ValueError(f"header {name!r} would hold a key; keys come from key_env, never the file")
        return v


class RetryConfig(BaseModel):
    """Retries of failures before the first byte (`[retries]`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    attempts: int = Field(default=3, ge=1, le=10,
                          description="Tries per model (1 = no retry) before its fallbacks.")
    max_wait: float = Field(default=20.0, ge=0, le=600,
                            description="Seconds a call may spend waiting between tries, in all.")
    backoff: float = Field(default=0.5, ge=0, le=60,
                           description="First back-off in seconds; doubles each try, with full jitter.")
    cooldown: float = Field(default=30.0, ge=0, le=3600,
                            description="Seconds a provider that keeps failing is skipped before a probe.")


class Settings(BaseModel):
    """Every option of iron-tui. Field names are the TOML keys; CLI flags use dashes."""

    # allow_inf_nan=False: `inf`, `nan` and `1e400` are refused with a clear message (an infinite
    # budget once crashed converting to microdollars).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    host: str = Field(default="127.0.0.1", description="Bind address for the proxy and feed.")
    port: int = Field(default=8478, ge=0, le=65535, description="Proxy and feed port; 0 picks a free port.")
    allow_remote: bool = Field(
        default=False, description="Allow binding a non-loopback address; then any Host header is served "
        "unless allowed_hosts names them.")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Host names (name or name:port) served besides the bound loopback "
        "address's; '*' serves any. Comma-separated in the environment.")
    allowed_origins: list[str] = Field(
        default_factory=list, description="Browser origins (e.g. http://localhost:3000) that may open /ws and "
        "/dashboard besides the server's own; '*' allows any.")
    openai_key: SecretStr | None = Field(default=None, description="OpenAI provider key (direct mode).")
    anthropic_key: SecretStr | None = Field(default=None, description="Anthropic provider key (direct mode).")
    provider_key: SecretStr | None = Field(
        default=None, description="A key whose provider is detected from its prefix (sk-ant- is Anthropic)."
    )
    token: SecretStr | None = Field(
        default=None, description="Token clients must present; in server mode, the Iron Cage IC token."
    )
    server_url: str | None = Field(default=None, description="Iron Cage control server URL.")
    budget: float | None = Field(default=None, ge=0, le=MAX_BUDGET_USD,
                                 description="Spend limit in USD; unset means unlimited.")
    budget_period: Literal["session", "day", "week", "month"] = Field(
        default="session", description="When the budget resets: session, day, week or month (local time)."
    )
    strict_pricing: bool = Field(default=False, description="Refuse calls to models with no known price.")
    openai_base_url: str = Field(default="https://api.openai.com", description="OpenAI upstream base URL.")
    anthropic_base_url: str = Field(default="https://api.anthropic.com", description="Anthropic upstream base URL.")
    agent: str | None = Field(default=None, description="Agent command line the dashboard's Start button runs.")
    agents: list[AgentPresetConfig] = Field(default_factory=list, description="Agent presets.")
    data_dir: Path | None = Field(default=None, description="Directory for SQLite state (outbox, history, ledger).")
    theme: str = Field(default="iron", description="Dashboard theme name.")
    log_format: Literal["text", "json"] = Field(default="text", description="Headless log line format.")
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1 << 30,
                                description="Largest request body accepted.")
    upstream_timeout: float = Field(default=300.0, gt=0, le=MAX_SECONDS,
                                    description="Seconds to wait for an upstream response.")
    connect_timeout: float = Field(default=10.0, gt=0, le=MAX_SECONDS,
                                   description="Seconds to wait for an upstream connection.")
    budget_fit: bool = Field(
        default=True, description="Lower a call's output cap to what the budget has left instead of refusing it.")
    budget_min_output_tokens: int = Field(
        default=1024, ge=1, le=1_000_000,
        description="Smallest output cap fitting to the budget sends; below it the call is refused (402).")
    cache_ttl_seconds: float = Field(default=300.0, ge=0, le=MAX_SECONDS,
                                     description="Server mode: provider-key cache lifetime.")
    sync_interval: float = Field(default=5.0, gt=0, le=MAX_SECONDS, description="Seconds between analytics syncs.")
    flush_timeout: float = Field(default=5.0, ge=0, le=MAX_SECONDS,
                                 description="Seconds the final analytics flush may take.")
    history_size: int = Field(default=1000, ge=10, le=1_000_000, description="Requests kept in memory with full detail.")
    body_preview_bytes: int = Field(default=65536, ge=256, le=16 << 20,
                                    description="Stored size of each request/response body.")
    agent_grace_seconds: float = Field(default=5.0, ge=0, le=MAX_SECONDS,
                                       description="Seconds between SIGTERM and SIGKILL.")
    history_body_bytes: int = Field(
        default=32 << 20, ge=0, le=1 << 40, description="Bytes of request/response bodies the in-memory "
        "history keeps; older requests keep their summary and a marker.")
    header_timeout: float = Field(default=10.0, gt=0, le=MAX_SECONDS,
                                  description="Seconds a client may take to send a request's headers.")
    body_timeout: float = Field(default=30.0, gt=0, le=MAX_SECONDS,
                                description="Seconds a client may take to send a request's body.")
    idle_timeout: float = Field(default=30.0, gt=0, le=MAX_SECONDS,
                                description="Seconds an idle keep-alive client connection stays open.")
    send_timeout: float = Field(default=30.0, gt=0, le=MAX_SECONDS,
                                description="Seconds a client may leave a response unread before it is cut.")
    max_connections: int = Field(default=512, ge=1, le=1_000_000,
                                 description="Open client connections; more are answered 503.")
    prices: dict[str, PriceConfig] = Field(default_factory=dict, description="Model price overrides.")
    metrics: bool = Field(default=True, description="Serve GET /metrics (Prometheus / OpenMetrics text).")
    metrics_auth: Literal["token", "loopback"] = Field(
        default="token",
        description="Who may scrape /metrics: token (the API token, like every call) or loopback (scrapers on "
        "this machine need no token; others still do).",
    )
    metrics_max_models: int = Field(
        default=50, ge=1, description="Models with their own /metrics label; the rest are counted as \"other\"."
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector for traces (spans go to URL/v1/traces); the OTEL_EXPORTER_OTLP_ENDPOINT "
        "and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT variables win. Needs pip install 'iron-tui[otel]'.",
    )
    otel_service_name: str = Field(
        default="iron-tui", min_length=1, description="service.name of iron-tui's spans (OTEL_SERVICE_NAME wins)."
    )
    otel_capture_content: bool = Field(
        default=False, description="Put prompts and completions (key-redacted) on spans. Off: token counts only."
    )
    providers: dict[str, ProviderConfig] = Field(
        default_factory=dict, description="Providers beyond OpenAI and Anthropic, or preset overrides.")
    models: dict[str, str] = Field(
        default_factory=dict,
        description="Aliases: a model name (or fnmatch pattern) a client sends → PROVIDER/model.")
    fallbacks: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Models tried in order when a model keeps failing before its first byte.")
    retries: RetryConfig = Field(default_factory=RetryConfig, description="Retries before the first byte.")

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_list(cls, v: Any) -> Any:
        # The environment and the command line give one string: "a.example,b.example:8478".
        return [p.strip() for p in v.split(",") if p.strip()] if isinstance(v, str) else v

    @field_validator("openai_base_url", "anthropic_base_url", "server_url", "otel_endpoint")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip().rstrip("/")
        if not (v.startswith("http://") or v.startswith("https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @model_validator(mode="after")
    def _loopback(self) -> Settings:
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is not a loopback address; pass --allow-remote to expose the proxy"
            )
        return self

    # --- derived -------------------------------------------------------------------------------

    def provider_keys(self) -> dict[str, str]:
        keys: dict[str, str] = {}
        if self.provider_key is not None:
            k = self.provider_key.get_secret_value()
            keys[provider_for_key(k)] = k
        if self.openai_key is not None:
            keys["openai"] = self.openai_key.get_secret_value()
        if self.anthropic_key is not None:
            keys["anthropic"] = self.anthropic_key.get_secret_value()
        return {p: k for p, k in keys.items() if k}

    @property
    def mode(self) -> Mode:
        if self.provider_keys():
            return "direct"
        if self.server_url and self.token is not None:
            return "server"
        return "direct"  # only configured providers (e.g. a local Ollama)

    def check_runnable(self) -> None:
        """Raise ConfigError when the engine cannot run with these settings."""
        if self.provider_keys():
            return
        if self.server_url and self.token is not None:
            return
        if self.providers or self.models:
            return  # [providers] / [models] in the config: e.g. only a local model server
        raise ConfigError(
            "no provider key: set --openai-key/OPENAI_API_KEY or --anthropic-key/ANTHROPIC_API_KEY "
            "(direct mode), or --server-url with --token/IC_TOKEN (server mode), or configure a provider "
            "such as a local Ollama ([providers.ollama] in the config file)"
        )


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ConfigError(Exception):
    """Bad configuration, reported as one line and exit status 2."""


def provider_for_key(key: str) -> str:
    return "anthropic" if key.startswith("sk-ant-") else "openai"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mask_secret(value: str | None) -> str | None:
    """Show enough of a key to recognise it, never enough to use it."""
    if value is None:
        return None
    if len(value) <= 12:
        return "****"
    return f"{value[:6]}…{value[-4:]}"


def settings_from(**values: Any) -> Settings:
    """Build settings from keyword values, dropping Nones so defaults apply."""
    return Settings(**{k: v for k, v in values.items() if v is not None})


# --- loading: defaults < TOML file < environment < CLI ----------------------------------------------

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


SECRET_FIELDS = frozenset({"openai_key", "anthropic_key", "provider_key", "token"})

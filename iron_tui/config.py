"""Configuration: one pydantic model, filled from defaults < TOML file < environment < CLI flags
(the loading, the environment variables and the error messages are in config_loading.py).

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
    field_validator,
    model_validator,
)

Mode = Literal["direct", "server"]


# Upper bounds for numbers: far beyond any real use, low enough that nothing downstream overflows
# (microdollars in SQLite's 64-bit integers, seconds in the event loop's timers).
MAX_BUDGET_USD = 1_000_000_000
MAX_SECONDS = 86_400  # a day
MAX_PRICE_PER_MTOK = 1_000_000
MAX_PRICE_PER_1K_SEARCHES = 1_000_000


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
    """A price override or addition, in USD per million tokens and per 1,000 web searches
    (`[prices."model-name"]`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    input_per_mtok: float = Field(ge=0, le=MAX_PRICE_PER_MTOK, description="USD per million input tokens.")
    output_per_mtok: float = Field(ge=0, le=MAX_PRICE_PER_MTOK, description="USD per million output tokens.")
    cache_read_per_mtok: float | None = Field(default=None, ge=0, le=MAX_PRICE_PER_MTOK,
                                              description="USD per million cache-read tokens.")
    cache_write_per_mtok: float | None = Field(default=None, ge=0, le=MAX_PRICE_PER_MTOK,
                                               description="USD per million cache-write tokens.")
    web_search_per_1k: float | None = Field(
        default=None, ge=0, le=MAX_PRICE_PER_1K_SEARCHES,
        description="USD per 1,000 server-side web searches; unset keeps the model's genai-prices price "
                    "(none for a model it does not list), 0 makes them free.")
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


SECRET_FIELDS = frozenset({"openai_key", "anthropic_key", "provider_key", "token"})

"""Providers as configuration, and which one serves a model name.

A provider is a name, the dialects it speaks, a base URL, where its key comes from, and optionally model
name patterns. OpenAI and Anthropic are built in; the presets below need only their key variable (or a
running local server); `[providers.NAME]` in the config adds any other or overrides a preset.

How a model name the client sent is resolved (`ProviderTable.resolve`), first match wins:
1. a path prefix (`/openai/…`, `/anthropic/…`) forces the provider;
2. `[models]` aliases: an exact name, then fnmatch patterns in file order (`"claude-haiku-*" =
   "ollama/qwen2.5-coder"`); the target is resolved by the rules below (one level, no loops);
3. `NAME/model` with NAME a known provider: that provider, `model` as it names it
   (`openrouter/anthropic/claude-sonnet-4.5` → openrouter, `anthropic/claude-sonnet-4.5`);
4. a configured provider's `models` patterns, in file order;
5. built-in families: `claude*` → Anthropic; OpenAI's own (`gpt*`, `o1*`/`o3*`/`o4*`, `chatgpt*`, …);
6. otherwise a 400 that lists what is configured — never a silent guess.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from iron_tui.config import is_loopback
from iron_tui.core.proxy.routing import provider_for_model

if TYPE_CHECKING:
    from iron_tui.config import Settings

OPENAI_APIS: tuple[str, ...] = ("openai", "openai-responses")


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    apis: tuple[str, ...]  # dialects it speaks, preferred first
    base_url: str  # as its SDK clients take it (OpenAI APIs: with the version segment, e.g. /v1)
    key_env: str | None = None  # where its key comes from; None: no key
    key_required: bool = True  # False for local servers: a key is sent only when the variable is set
    headers: Mapping[str, str] = field(default_factory=dict)
    models: tuple[str, ...] = ()  # fnmatch patterns, lower-case
    price_provider: str | None = None  # genai-prices provider id
    local: bool = False  # free unless `[prices]` says otherwise
    display: str = ""
    # The Chat Completions output-cap field it reads: OpenAI's reasoning models refuse `max_tokens`, and
    # most compatible servers (Ollama, Mistral, DeepSeek, older vLLM) read only `max_tokens`.
    cap_field: str = "max_tokens"

    @property
    def label(self) -> str:
        return self.display or self.name

    def url(self, path: str, query: str = "") -> str:
        """The upstream URL of `path` (an API path such as /v1/chat/completions)."""
        return upstream_url(self.base_url, path, query, self.apis[0])


def _preset(name: str, base_url: str, key_env: str | None, price: str | None, display: str,
            *, local: bool = False, key_required: bool = True, headers: Mapping[str, str] | None = None
            ) -> ProviderSpec:
    return ProviderSpec(name, ("openai",), base_url, key_env, key_required and not local,
                        dict(headers or {}), (), price, local, display)


# OpenAI-compatible endpoints as each provider documents them for the OpenAI SDK (checked 2026-11).
PRESETS: dict[str, ProviderSpec] = {p.name: p for p in (
    _preset("ollama", "http://127.0.0.1:11434/v1", "OLLAMA_API_KEY", None, "Ollama", local=True),
    _preset("lmstudio", "http://127.0.0.1:1234/v1", "LMSTUDIO_API_KEY", None, "LM Studio", local=True),
    _preset("vllm", "http://127.0.0.1:8000/v1", "VLLM_API_KEY", None, "vLLM", local=True),
    _preset("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "openrouter", "OpenRouter",
            headers={"X-Title": "iron-tui"}),
    _preset("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "groq", "Groq"),
    _preset("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "deepseek", "DeepSeek"),
    _preset("gemini", "https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY", "google",
            "Gemini"),
    _preset("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", "mistral", "Mistral"),
    _preset("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY", "together", "Together AI"),
    _preset("xai", "https://api.x.ai/v1", "XAI_API_KEY", "x-ai", "xAI"),
)}
BUILTIN = ("openai", "anthropic")
_ROUTE_CACHE = 4096


@dataclass(frozen=True, slots=True)
class Route:
    provider: str
    model: str  # the name to send upstream
    via: str | None = None  # the alias the client's name matched, if any


class UnknownModel(Exception):
    """No provider serves this name; the message lists what is configured."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderTable:
    def __init__(self, specs: dict[str, ProviderSpec], aliases: Mapping[str, str],
                 fallbacks: Mapping[str, list[str]], configured: tuple[str, ...]) -> None:
        self.specs = specs
        self._exact = {k.lower(): v for k, v in aliases.items() if not _is_pattern(k)}
        self._patterns = [(k.lower(), v) for k, v in aliases.items() if _is_pattern(k)]
        self._fallbacks = {k.lower(): list(v) for k, v in fallbacks.items()}
        self.configured = configured  # providers the user set up (keys or [providers]), for messages
        self._pattern_order = [n for n in specs if specs[n].models]
        self._cache: dict[tuple[str, str | None], Route] = {}

    @classmethod
    def from_settings(cls, settings: Settings, builtin_urls: Mapping[str, str]) -> ProviderTable:
        specs: dict[str, ProviderSpec] = {
            "openai": ProviderSpec("openai", OPENAI_APIS, builtin_urls["openai"], None, True, {}, (), "openai",
                                   False, "OpenAI", cap_field="max_completion_tokens"),
            "anthropic": ProviderSpec("anthropic", ("anthropic",), builtin_urls["anthropic"], None, True, {}, (),
                                      "anthropic", False, "Anthropic"),
        }
        specs.update(PRESETS)
        for name, pc in settings.providers.items():
            base = PRESETS.get(name.lower()) or specs.get(name.lower())
            base_url = pc.base_url or (base.base_url if base is not None else None)
            if base_url is None:
                from iron_tui.config import ConfigError

                raise ConfigError(f"invalid providers.{name} from the config file: 'base_url' is required "
                                  "(only the built-in presets have one)")
            # A server on this machine is free unless the config names whose prices apply.
            local = _is_local(base_url) and pc.price_provider is None
            apis = OPENAI_APIS if pc.api == "openai-responses" else (pc.api,)
            key_env = pc.key_env if pc.key_env is not None else (base.key_env if base is not None else None)
            specs[name.lower()] = ProviderSpec(
                name.lower(), apis, base_url, key_env,
                key_required=key_env is not None and not local,
                headers={**(base.headers if base is not None else {}), **pc.headers},
                models=tuple(m.lower() for m in pc.models),
                price_provider=pc.price_provider or (base.price_provider if base is not None else None),
                local=local, display=base.display if base is not None else name)
        configured = tuple(dict.fromkeys([*settings.provider_keys(), *(n.lower() for n in settings.providers)]))
        return cls(specs, settings.models, settings.fallbacks, configured)

    # --- resolution ------------------------------------------------------------------------------

    def resolve(self, model: str, forced: str | None = None) -> Route:
        # Names repeat call after call and routes are immutable: resolved once (bounded cache).
        key = (model, forced)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        route = self._resolve(model, forced)
        if len(self._cache) >= _ROUTE_CACHE:
            self._cache.clear()
        self._cache[key] = route
        return route

    def _resolve(self, model: str, forced: str | None) -> Route:
        if forced is not None:
            return Route(forced, model)
        low = model.lower()
        target = self._exact.get(low)
        if target is None:
            target = next((t for p, t in self._patterns if fnmatch.fnmatchcase(low, p)), None)
        if target is not None:
            route = self._direct(target)
            if route is None:
                raise UnknownModel(f"the alias {model!r} → {target!r} names no known provider: write the "
                                   f"target as PROVIDER/model ({self._known()})")
            return Route(route.provider, route.model, via=model)
        route = self._direct(model)
        if route is None:
            raise UnknownModel(self._unknown(model))
        return route

    def _direct(self, model: str) -> Route | None:
        head, sep, rest = model.partition("/")
        if sep and rest and head.lower() in self.specs:
            return Route(head.lower(), rest)
        low = model.lower()
        for name in self._pattern_order:
            if any(fnmatch.fnmatchcase(low, p) for p in self.specs[name].models):
                return Route(name, model)
        builtin = provider_for_model(model)
        return Route(builtin, model) if builtin is not None else None

    def fallbacks(self, model: str, route: Route) -> list[str]:
        """The fallback list for the client's name, else for the resolved PROVIDER/model or model."""
        if not self._fallbacks:
            return []
        for key in (model, f"{route.provider}/{route.model}", route.model):
            found = self._fallbacks.get(key.lower())
            if found:
                return found
        return []

    def _known(self) -> str:
        names = [*self.configured, *(n for n in PRESETS if n not in self.configured)]
        return "providers: " + ", ".join(names)

    def _unknown(self, model: str) -> str:
        aliases = sorted({*self._exact, *(p for p, _ in self._patterns)})
        has = f"; aliases: {', '.join(aliases[:20])}" if aliases else ""
        return (f"no provider serves model {model!r}: use a claude* or gpt*/o1*/o3*/o4* name, PROVIDER/model "
                f"({self._known()}){has}, or add it to [models] in the config file")


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


def _is_local(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    return is_loopback(host)


@functools.lru_cache(maxsize=512)  # the same few per run: no URL parsing per call
def upstream_url(base: str, path: str, query: str, api: str) -> str:
    """`base` + `path` (+ `?query`) the way each API's SDKs join them.

    OpenAI APIs: an SDK base URL carries its version segment (`…/v1`, `…/v1beta/openai`), so the path's
    own `/v1` is dropped — except for a bare host (`https://api.openai.com`, the long-standing form of
    `--openai-base-url`), which gets it. Anthropic: the base never has `/v1` (a trailing one is dropped).
    A query string in the base URL is kept and the client's is appended.
    """
    base, _, base_query = base.partition("?")
    base = base.rstrip("/")
    if path.startswith("/v1/"):
        if api == "anthropic":
            base = base.removesuffix("/v1")
        elif urlsplit(base).path not in ("", "/"):
            path = path[3:]
    q = "&".join(p for p in (base_query, query) if p)
    return base + path + ("?" + q if q else "")

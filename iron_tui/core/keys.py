"""Provider keys: configured locally (direct mode) or fetched from the control server (server mode).

A key is only ever handed to the upstream client for its own provider; it never appears in a log line,
an event, a stored row or an error body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from iron_tui.core.proxy.routing import KEY_HINTS, PROVIDER_NAMES
from iron_tui.core.redact import register_secret

if TYPE_CHECKING:
    from iron_tui.core.control import ControlClient
    from iron_tui.core.providers import ProviderSpec


class KeyUnavailable(Exception):
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    provider: str
    key: str = field(repr=False)
    base_url: str


class KeyRing:
    def __init__(
        self,
        direct: dict[str, str],
        base_urls: dict[str, str],
        control: ControlClient | None = None,
        *,
        specs: Mapping[str, ProviderSpec] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._direct = dict(direct)
        self._base_urls = dict(base_urls)
        self._control = control
        self._resolved = {
            p: ResolvedKey(p, k, self._base_urls[p]) for p, k in self._direct.items() if k
        }
        for key in self._direct.values():
            register_secret(key)
        # Providers beyond OpenAI/Anthropic: their key comes from the variable their spec names (read
        # once, here); a local server without one gets no key at all.
        self._missing: dict[str, str] = {}
        for name, spec in (specs or {}).items():
            if name in self._base_urls:
                continue
            key = (env or {}).get(spec.key_env, "") if spec.key_env else ""
            if key:
                register_secret(key)
                self._resolved[name] = ResolvedKey(name, key, spec.base_url)
            elif not spec.key_required:
                self._resolved[name] = ResolvedKey(name, "", spec.base_url)
            else:
                self._missing[name] = (f"no {spec.label} key configured: this request needs one (set the "
                                       f"{spec.key_env} environment variable)")

    @property
    def mode(self) -> str:
        return "direct" if self._direct else "server"

    def configured(self) -> list[str]:
        """Built-in providers with a key (configured, or already handed out by the control server)."""
        if self._direct:
            return sorted(self._direct)
        if self._control is not None:
            known = self._control.cached_providers()
            return sorted(known)
        return []

    def others(self) -> list[str]:
        """Configured providers beyond OpenAI/Anthropic that have their key (or need none)."""
        return [p for p in self._resolved if p not in self._base_urls]

    def base_url(self, provider: str) -> str:
        return self._base_urls[provider]

    def cached(self, provider: str) -> ResolvedKey | None:
        """The key when it is at hand (configured, or fetched and still valid): no await needed."""
        return self._resolved.get(provider)

    async def get(self, provider: str) -> ResolvedKey:
        hit = self.cached(provider)
        if hit is not None:
            return hit
        if provider in self._missing:
            raise KeyUnavailable(400, self._missing[provider], "missing_provider_key")
        if self._control is None or provider not in self._base_urls:
            name = PROVIDER_NAMES.get(provider, provider)
            raise KeyUnavailable(
                400,
                f"no {name} key configured: this request needs one (set {KEY_HINTS.get(provider, 'a key')})",
                "missing_provider_key",
            )
        return await self._from_server(provider)

    async def _from_server(self, provider: str) -> ResolvedKey:
        from iron_tui.core.control import ControlError

        assert self._control is not None
        try:
            pk = await self._control.provider_key(provider)
        except ControlError as exc:
            if exc.code == "PROVIDER_MISMATCH":
                raise KeyUnavailable(400, exc.message, "missing_provider_key") from None
            status = 503 if exc.status is None or exc.status >= 500 else 502
            raise KeyUnavailable(
                status,
                f"Iron Cage server could not provide a {PROVIDER_NAMES.get(provider, provider)} key: "
                f"{exc.message}" + (f" ({exc.code})" if exc.code else ""),
                "provider_key_unavailable",
            ) from None
        if pk.provider != provider:
            raise KeyUnavailable(
                400,
                f"the Iron Cage server assigned this agent a {PROVIDER_NAMES.get(pk.provider, pk.provider)} "
                f"key; it cannot call {PROVIDER_NAMES.get(provider, provider)} models",
                "missing_provider_key",
            )
        register_secret(pk.key)
        # The server's base_url applies only to the provider it handed the key out for.
        return ResolvedKey(provider, pk.key, (pk.base_url or self._base_urls[provider]).rstrip("/"))

    def invalidate(self, provider: str) -> bool:
        """The provider rejected the key (401): drop a server-issued key so the next call refetches."""
        if self._control is None or provider in self._direct:
            return False
        self._control.invalidate(provider)
        return True

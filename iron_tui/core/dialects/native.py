"""Native pairs: the client's dialect is the provider's. The body goes upstream as the client sent it,
except for what the proxy must add (the model a `NAME/` prefix or an alias resolved to, and for Chat
Completions streams the usage chunk so every stream is priced, stripped again on the way back)."""

from __future__ import annotations

from typing import Any

from iron_tui.core.dialects.base import ClientApi, ProviderApi, RequestContext, StreamTranslator, Translated
from iron_tui.core.dialects.client_apis import NATIVE_PATHS, NATIVE_PROVIDER_API


class NativePair:
    """`request` returns the very same dict when nothing had to change, so the pipeline can send the
    client's bytes untouched; responses and streams are relayed as bytes (never through this object)."""

    def __init__(self, client: ClientApi) -> None:
        self.client: ClientApi = client
        self.provider: ProviderApi = NATIVE_PROVIDER_API[client]  # type: ignore[assignment]
        self._path = NATIVE_PATHS[client]

    def request(self, body: dict[str, Any], ctx: RequestContext) -> Translated:
        if body.get("model") != ctx.model:
            body = {**body, "model": ctx.model}
        if ctx.stream and self.client in ("openai.chat", "openai.completions"):
            opts = body.get("stream_options")
            if not (isinstance(opts, dict) and opts.get("include_usage") is True):
                # Always ask for usage so streams are priced; the usage chunk is stripped on the way back.
                body = {**body, "stream_options": {**(opts if isinstance(opts, dict) else {}),
                                                   "include_usage": True}}
                return Translated(body, self._path, include_usage=False)
        return Translated(body, self._path)

    def response(self, body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return body

    def stream(self, ctx: RequestContext) -> StreamTranslator:
        raise TypeError("native streams are relayed as bytes")

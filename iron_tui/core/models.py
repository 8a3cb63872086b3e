"""`GET /v1/models`: the models the configured keys can reach, merged across providers.

Each provider's own list is fetched with its key (so it is exactly what that key can reach) and cached
for a minute; a provider that cannot be reached is left out rather than failing the whole list.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from iron_tui.core.keys import KeyUnavailable
from iron_tui.core.proxy.headers import upstream_headers

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine

_TTL = 60.0


async def _fetch(engine: Engine, provider: str) -> list[dict[str, Any]]:
    # Cached on the engine itself: a module-level cache keyed by id(engine) could hand a new engine
    # (reusing a freed id) another engine's list.
    cache = engine.models_cache
    hit = cache.get(provider)
    if hit is not None and time.monotonic() - hit[0] < _TTL:
        return hit[1]
    try:
        rk = await engine.keys.get(provider)
    except KeyUnavailable:
        return []
    base = rk.base_url[:-3] if rk.base_url.endswith("/v1") else rk.base_url
    try:
        async with engine.session.get(
            base + "/v1/models", headers=upstream_headers({}, provider, rk.key),
            timeout=aiohttp.ClientTimeout(total=10),
        ) as resp:
            if resp.status != 200:
                return []
            data = await resp.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return []
    items = [m for m in data.get("data", []) if isinstance(m, dict) and isinstance(m.get("id"), str)]
    cache[provider] = (time.monotonic(), items)
    return items


async def list_models(engine: Engine, path: str) -> dict[str, Any]:
    if path.startswith("/anthropic"):
        providers = ["anthropic"]
    elif path.startswith("/openai"):
        providers = ["openai"]
    else:
        providers = ["openai", "anthropic"]
    if engine.mode == "direct":
        providers = [p for p in providers if p in engine.keys.configured()]
    results = await asyncio.gather(*(_fetch(engine, p) for p in providers))
    if path.startswith("/anthropic"):
        items = results[0] if results else []
        return {"data": items, "has_more": False, "first_id": items[0]["id"] if items else None,
                "last_id": items[-1]["id"] if items else None}
    data: list[dict[str, Any]] = []
    for provider, items in zip(providers, results, strict=True):
        for m in items:
            if provider == "openai":
                data.append(m)
            else:
                created = 0
                data.append({"id": m["id"], "object": "model", "created": created, "owned_by": "anthropic"})
    return {"object": "list", "data": data}

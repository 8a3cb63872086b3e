"""`GET /v1/models`: the models the configured keys can reach, merged across providers.

Each provider's own list is fetched with its key (so it is exactly what that key can reach) and cached
for a minute; a provider that cannot be reached is left out rather than failing the whole list.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp

from iron_tui.core.keys import KeyUnavailable
from iron_tui.core.providers import BUILTIN, upstream_url
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
    spec = engine.providers.specs.get(provider)
    api = spec.apis[0] if spec is not None else provider
    headers = upstream_headers({}, api, rk.key)
    if spec is not None:
        headers.update(spec.headers)
    try:
        async with engine.session.get(
            upstream_url(rk.base_url, "/v1/models", "", api), headers=headers,
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


async def list_models(engine: Engine, path: str, shape: str = "openai") -> dict[str, Any]:
    """Every model the configured providers reach, in the caller's shape (`shape`: "openai" or
    "anthropic"; the Anthropic SDK's `models.list()` expects Anthropic's paginated list)."""
    if path.startswith("/anthropic"):
        providers = ["anthropic"]
    elif path.startswith("/openai"):
        providers = ["openai"]
    else:
        providers = ["openai", "anthropic"]
    if engine.mode == "direct":
        providers = [p for p in providers if p in engine.keys.configured()]
    if not path.startswith(("/anthropic", "/openai")):
        # Configured providers (and presets whose key is set), their models named PROVIDER/model so a
        # client can send the name it was given.
        providers += [p for p in engine.keys.others() if p in engine.providers.configured
                      or engine.providers.specs[p].key_required]
    results = await asyncio.gather(*(_fetch(engine, p) for p in providers))
    pairs = [(p, m if p in BUILTIN else {**m, "id": f"{p}/{m['id']}"})
             for p, items in zip(providers, results, strict=True) for m in items]
    if shape == "anthropic":
        data = [_anthropic_entry(p, m) for p, m in pairs]
        return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}
    return {"object": "list", "data": [_openai_entry(p, m) for p, m in pairs]}


def _openai_entry(provider: str, m: dict[str, Any]) -> dict[str, Any]:
    if m.get("type") != "model":  # already OpenAI's shape (OpenAI and OpenAI-compatible servers)
        return m
    created = m.get("created_at")
    return {"id": m["id"], "object": "model", "created": _epoch(created), "owned_by": provider}


def _anthropic_entry(provider: str, m: dict[str, Any]) -> dict[str, Any]:
    if m.get("type") == "model":  # already Anthropic's shape
        return m
    created = m.get("created")
    iso = (datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
           if isinstance(created, int) and not isinstance(created, bool) and 0 <= created < 1 << 35
           else "1970-01-01T00:00:00Z")
    return {"type": "model", "id": m["id"], "display_name": m["id"], "created_at": iso}


def _epoch(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0

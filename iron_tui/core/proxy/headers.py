"""Which headers cross the proxy, in each direction."""

from __future__ import annotations

from collections.abc import Mapping

# Client → upstream: only these, never the client's own auth headers.
FORWARD_REQUEST = (
    "anthropic-version",
    "anthropic-beta",
    "openai-organization",
    "openai-project",
    "idempotency-key",
    "openai-beta",
)
ANTHROPIC_VERSION = "2023-06-01"

# Upstream → client: request ids, rate limits and retry hints.
_RETURN_EXACT = frozenset(
    {
        "x-request-id",
        "request-id",
        "retry-after",
        "retry-after-ms",
        "openai-processing-ms",
        "openai-organization",
        "openai-version",
        "anthropic-organization-id",
    }
)
_RETURN_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")


def upstream_headers(client: Mapping[str, str], provider: str, key: str) -> dict[str, str]:
    out = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    for name in FORWARD_REQUEST:
        v = client.get(name)
        if v is not None:
            out[name] = v
    if provider == "anthropic":
        if key:
            out["x-api-key"] = key
        out.setdefault("anthropic-version", ANTHROPIC_VERSION)
    elif key:  # (a local server may need none)
        out["authorization"] = "Bearer " + key
    return out


def returned_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    """The headers to return, from upstream headers whose names are already lower-case."""
    out = {name: value for name, value in upstream.items()
           if name in _RETURN_EXACT or name.startswith(_RETURN_PREFIXES)}
    # Anthropic names it `request-id`; the SDKs read `x-request-id` (OpenAI's name) for `_request_id`.
    if "request-id" in out and "x-request-id" not in out:
        out["x-request-id"] = out["request-id"]
    return out

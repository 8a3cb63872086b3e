"""Truncated, key-redacted previews of bodies for history and the detail view."""

from __future__ import annotations

import re

# Provider keys and bearer tokens that might appear inside bodies (e.g. a user pasting one in a prompt).
_KEYLIKE = re.compile(rb"(sk-(?:ant-)?[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]{12,}")


# Exact secrets in use (provider keys, including ones fetched from the control server): whatever their
# shape, they never reach history, the feed or a log. Registered by the key ring.
_SECRETS: set[bytes] = set()


def register_secret(secret: str) -> None:
    if len(secret) >= 8:
        _SECRETS.add(secret.encode())


def redact_bytes(data: bytes) -> bytes:
    for secret in _SECRETS:
        if secret in data:
            data = data.replace(secret, b"[redacted]")
    return _KEYLIKE.sub(rb"\1...[redacted]", data)


def redact_text(text: str) -> str:
    return redact_bytes(text.encode("utf-8", "surrogateescape")).decode("utf-8", "replace")


def preview(data: bytes, limit: int, *, total: int | None = None) -> str:
    """At most `limit` bytes of `data` as text, keys redacted, with a marker when cut."""
    size = len(data) if total is None else total
    # Redact a little past the cut so a key straddling it is still recognised, then cut.
    text = redact_bytes(data[: limit + 128])[:limit].decode("utf-8", "replace")
    if size > limit:
        text += f"\n… [truncated: {size - limit} more bytes]"
    return text

"""Truncated, key-redacted previews of bodies for history and the detail view."""

from __future__ import annotations

import re

# Provider keys and bearer tokens that might appear inside bodies (e.g. a user pasting one in a prompt).
_KEYLIKE = re.compile(rb"(sk-(?:ant-)?[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]{12,}")
# Every `_KEYLIKE` match starts with this, so a body without it cannot hold a key-like string.
_KEY_PREFIX = b"sk-"
_REPLACEMENT = b"[redacted]"  # holds no "s", "k" or "-": replacing a secret never forms a new _KEY_PREFIX


# Exact secrets in use (provider keys, including ones fetched from the control server): whatever their
# shape, they never reach history, the feed or a log. Registered by the key ring.
_SECRETS: set[bytes] = set()
# The registered secrets that do not contain `_KEY_PREFIX`, in `_SECRETS`' iteration order: the only
# ones that can be present in a body lacking the prefix (provider keys all contain it).
_UNPREFIXED: tuple[bytes, ...] = ()


_ALL: tuple[bytes, ...] = ()  # `_SECRETS` as a tuple, kept in step (read on every call)


def register_secret(secret: str) -> None:
    global _UNPREFIXED, _ALL
    if len(secret) >= 8:
        _SECRETS.add(secret.encode())
        _UNPREFIXED = tuple(s for s in _SECRETS if _KEY_PREFIX not in s)
        _ALL = tuple(_SECRETS)


def unprefixed_secrets() -> bool:
    """Whether a registered secret lacks the "sk-" prefix (then text without "sk-" may still hold one)."""
    return bool(_UNPREFIXED)


def registered_secrets() -> tuple[bytes, ...]:
    """The exact secrets registered so far (for the client-path scrubber, `core/proxy/scrub.py`)."""
    return _ALL


def redact_bytes(data: bytes) -> bytes:
    if type(data) is not bytes:
        data = bytes(data)  # a bytearray or memoryview: search and return real bytes
    # Fast path (most bodies): no "sk-" anywhere means no key-like match and no prefixed secret, so
    # only the unprefixed secrets need looking for. Replacing them cannot create an "sk-" either.
    # (`find`, not `in`: bytes.__contains__ first tries its operand as an int, which costs more.)
    if data.find(_KEY_PREFIX) < 0:
        for secret in _UNPREFIXED:
            if data.find(secret) >= 0:
                data = data.replace(secret, _REPLACEMENT)
        return data
    for secret in _SECRETS:
        if data.find(secret) >= 0:
            data = data.replace(secret, _REPLACEMENT)
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

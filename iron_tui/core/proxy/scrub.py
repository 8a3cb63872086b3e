"""Provider keys never reach a client: every byte the proxy sends goes through here.

`scrub(data)` replaces each registered secret (the configured and server-issued provider keys) in a whole
body. `StreamScrubber` does the same for a stream whose chunks may split a key anywhere: it holds back
only the tail of a chunk that could be the start of a secret — a complete SSE event ends in a blank
line, which no key starts with, so whole events are never delayed.

Cost on the stream path: one `find` per secret per chunk, plus a look at the last (key length − 1) bytes
for the secret's first byte; measured in bench/ (docs/benchmarks.md).
"""

from __future__ import annotations

from iron_tui.core.redact import registered_secrets

_REPLACEMENT = b"[redacted]"


def scrub(data: bytes) -> bytes:
    """`data` with every registered secret replaced."""
    for secret in registered_secrets():
        if data.find(secret) >= 0:
            data = data.replace(secret, _REPLACEMENT)
    return data


def scrub_headers(headers: dict[str, str]) -> dict[str, str]:
    secrets = registered_secrets()
    if not secrets:
        return headers
    # One search over all the values (headers rarely hold one): the per-header pass only when needed.
    joined = "\n".join(headers.values()).encode("utf-8", "surrogateescape")
    if not any(joined.find(s) >= 0 for s in secrets):
        return headers
    out = {}
    for name, value in headers.items():
        raw = value.encode("utf-8", "surrogateescape")
        if any(raw.find(s) >= 0 for s in secrets):
            value = scrub(raw).decode("utf-8", "replace")
        out[name] = value
    return out


class StreamScrubber:
    __slots__ = ("_carry", "_secrets")

    def __init__(self) -> None:
        self._secrets = registered_secrets()
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        """The bytes that can be sent now (possibly fewer than given: see `flush`)."""
        secrets = self._secrets
        if not secrets:
            return chunk
        data = self._carry + chunk if self._carry else chunk
        for secret in secrets:
            if data.find(secret) >= 0:
                data = data.replace(secret, _REPLACEMENT)
        hold = 0
        for secret in secrets:
            hold = max(hold, _partial_tail(data, secret))
        if hold:
            self._carry = data[-hold:]
            return data[:-hold]
        self._carry = b""
        return data

    def flush(self) -> bytes:
        """What was held back, at the end of the stream (it cannot complete a secret any more)."""
        tail, self._carry = self._carry, b""
        return tail


def _partial_tail(data: bytes, secret: bytes) -> int:
    """Length of the longest suffix of `data` that is a proper prefix of `secret` (0 if none)."""
    first = secret[:1]
    i = data.find(first, max(0, len(data) - len(secret) + 1))
    while i >= 0:
        if secret.startswith(data[i:]):
            return len(data) - i
        i = data.find(first, i + 1)
    return 0

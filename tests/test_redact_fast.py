"""Key redaction: the fast path (no "sk-" in the body) must redact exactly what the full regex pass does."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iron_tui.core import redact
from iron_tui.core.redact import preview, redact_bytes, redact_text, register_secret

# Registered once for the whole module: one shaped like a provider key, two that are not.
PREFIXED = "sk-live-registered-0123456789"
UNPREFIXED = "ic-lease-secret-9f8e7d6c5b4a"
SHORT_UNPREFIXED = "pw=hunter2!"
for _s in (PREFIXED, UNPREFIXED, SHORT_UNPREFIXED):
    register_secret(_s)


def reference(data: bytes) -> bytes:
    """The redaction before the fast path: every secret, then the key-shape regex, on every body."""
    for secret in redact._SECRETS:
        if secret in data:
            data = data.replace(secret, b"[redacted]")
    return redact._KEYLIKE.sub(rb"\1...[redacted]", data)


KEY_SHAPES = [
    "sk-" + "A" * 48,  # classic OpenAI
    "sk-proj-" + "aB3_-" * 30,  # project key
    "sk-svcacct-" + "x9" * 40,  # service account
    "sk-None-" + "Q" * 40,
    "sk-ant-api03-" + "Zy_-0" * 20 + "AA",  # Anthropic
    "sk-ant-admin01-" + "k" * 60,
    "sk-abcd" + "e" * 12,  # the shortest shape caught: 4 + 12 characters after "sk-"
]


def test_every_key_shape_is_still_redacted_in_bodies_previews_and_text() -> None:
    for key in KEY_SHAPES:
        body = ('{"messages":[{"role":"user","content":"my key is ' + key + ' ok"}]}').encode()
        out = redact_bytes(body)
        assert key.encode() not in out and b"...[redacted]" in out, key
        assert out == reference(body)
        assert key not in preview(body, 65536) and key not in redact_text(body.decode())
        assert preview(body, 65536) == reference(body).decode()


def test_too_short_to_be_a_key_is_left_alone() -> None:
    body = b'{"content":"sk-abcd' + b"e" * 11 + b'"}'
    assert redact_bytes(body) == body == reference(body)


def test_registered_secrets_are_redacted_with_or_without_sk_in_the_body() -> None:
    for secret in (PREFIXED, UNPREFIXED, SHORT_UNPREFIXED):
        for extra in ("", " and sk-x"):  # without and with an "sk-" elsewhere (both paths)
            body = f'{{"content":"use {secret} here{extra}"}}'.encode()
            out = redact_bytes(body)
            assert secret.encode() not in out, (secret, extra)
            assert out == reference(body)
    assert redact_text(f"upstream said: bad key {UNPREFIXED}") == "upstream said: bad key [redacted]"


def test_a_key_straddling_the_preview_cut_is_still_redacted() -> None:
    key = "sk-ant-api03-" + "Z" * 80
    body = b"x" * 300 + key.encode()
    text = preview(body, 310)
    assert "Z" * 10 not in text and text.endswith(f"[truncated: {len(body) - 310} more bytes]")


def test_non_bytes_buffers_are_redacted_and_returned_as_bytes() -> None:
    body = ("key " + KEY_SHAPES[0] + " and " + UNPREFIXED).encode()
    for buf in (bytearray(body), memoryview(body)):
        out = redact_bytes(buf)  # type: ignore[arg-type]
        assert type(out) is bytes and out == reference(body)
    clean = bytearray(b"no secrets here")
    assert redact_bytes(clean) == b"no secrets here"  # type: ignore[arg-type]


PIECES = [b"sk-", b"sk-ant-", b"s", b"k", b"-", b"_", b"a", b"Z", b"0", b"9", b" ", b'"', b"\xc3\xa9", b"\xff",
          b"aaaaaaaaaaaa", b"[redacted]", PREFIXED.encode(), UNPREFIXED.encode(), SHORT_UNPREFIXED.encode(),
          UNPREFIXED.encode()[:10], b"pw=", b"hunter2!"]


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join))
def test_redaction_equals_the_full_pass_for_any_body(body: bytes) -> None:
    assert redact_bytes(body) == reference(body)
    assert redact_text(body.decode("utf-8", "surrogateescape")) == reference(body).decode("utf-8", "replace")

"""The stream scrubber: however a stream is cut into chunks, no registered secret gets through, and the
client gets exactly the stream with each secret replaced (nothing held back at the end)."""

from __future__ import annotations

from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from iron_tui.core.proxy.scrub import StreamScrubber

SECRETS = ("sk-proj-scrubtest0123456789abcdef", "zz-unprefixed-secret-4242")


def _scrubber() -> StreamScrubber:
    """A scrubber for these secrets only (not registered: the process's other scrubbers never see them)."""
    with mock.patch("iron_tui.core.proxy.scrub.registered_secrets", return_value=tuple(s.encode() for s in SECRETS)):
        return StreamScrubber()


# Stream text made of SSE framing, the secrets and their pieces (so cuts land inside them).
_PIECES = st.sampled_from([b"data: ", b"\n\n", b"{\"x\":\"", b"\"}", b"sk-", b"zz-", b"s", b"z", b"-", b"]",
                           *(s.encode() for s in SECRETS), *(s.encode()[:n] for s in SECRETS for n in (3, 10, 20))])


@settings(max_examples=300)
@given(st.lists(_PIECES, max_size=40), st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
def test_any_chunking_gives_the_scrubbed_stream(pieces: list[bytes], cuts: list[int]) -> None:
    whole = b"".join(pieces)
    points = sorted({c % (len(whole) + 1) for c in cuts})
    chunks = [whole[a:b] for a, b in zip([0, *points], [*points, len(whole)], strict=True)]
    scrubber = _scrubber()
    sent = b""
    for chunk in chunks:
        sent += scrubber.feed(chunk)
        for secret in SECRETS:
            assert secret.encode() not in sent  # never, not even for a moment
    sent += scrubber.flush()
    expected = whole
    for secret in SECRETS:
        expected = expected.replace(secret.encode(), b"[redacted]")
    assert sent == expected


def test_a_chunk_ending_an_event_is_sent_whole_at_once() -> None:
    scrubber = _scrubber()
    event = b'data: {"choices":[{"delta":{"content":"hi s"}}]}\n\n'
    assert scrubber.feed(event) == event  # ends in "\n": cannot end with the start of a secret
    assert scrubber.feed(b"data: sk-proj-scr") == b"data: "  # may be a secret's start: held
    assert scrubber.feed(b"ubtest0123456789abcdef\n\n") == b"[redacted]\n\n"

"""The native stream relay: what passes through untouched, and what iron-tui's own usage request strips."""

from __future__ import annotations

from iron_tui.core.events import RequestRecord
from iron_tui.core.proxy.handlers import _StreamState
from iron_tui.core.proxy.sse import SSEParser


def _state(client_usage: bool, provider: str = "openai") -> _StreamState:
    rec = RequestRecord(id="r", started_at=0.0, method="POST", path="/v1/chat/completions", api="openai.chat",
                        model="gpt-4o-mini", provider=provider, stream=True, translated=False,  # type: ignore[arg-type]
                        agent_id=None)
    return _StreamState(rec, client_usage, client_usage, 0)


CONTENT = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi there"}}],"usage":null}\n\n'
# Spacing as some OpenAI-compatible servers send it.
USAGE = b'data: {"id":"c", "choices": [], "usage" : {"prompt_tokens": 3, "completion_tokens": 2}}\n\n'
BOTH = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"!"}}],"usage":{"prompt_tokens":3}}\n\n'
DONE = b"data: [DONE]\n\n"


def test_the_usage_chunk_iron_tui_asked_for_is_stripped_and_still_counted() -> None:
    st, parser = _state(client_usage=False), SSEParser()
    stream = CONTENT + BOTH + USAGE + DONE
    out = b""
    for i in range(0, len(stream), 7):  # events split anywhere
        piece = stream[i:i + 7]
        events = parser.feed(piece)
        out += st.passthrough(piece, events)
        st.account(events)
    assert out == CONTENT + BOTH + DONE  # a chunk with choices is the client's, even with usage
    assert st.openai_usage == {"prompt_tokens": 3, "completion_tokens": 2}
    assert st.text_chars == len("Hi there!") and st.finished


def test_a_client_that_asked_for_usage_gets_the_bytes_untouched() -> None:
    st, parser = _state(client_usage=True), SSEParser()
    piece = CONTENT + USAGE[:20]
    assert st.passthrough(piece, parser.feed(piece)) == piece

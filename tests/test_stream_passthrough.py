"""The native stream relay: what passes through untouched, and what iron-tui's own usage request strips."""

from __future__ import annotations

from iron_tui.core.dialects.provider_apis import ChatAccount
from iron_tui.core.proxy.sse import SSEParser
from iron_tui.core.proxy.stream_relay import _without_usage_chunk

CONTENT = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi there"}}],"usage":null}\n\n'
# Spacing as some OpenAI-compatible servers send it.
USAGE = b'data: {"id":"c", "choices": [], "usage" : {"prompt_tokens": 3, "completion_tokens": 2}}\n\n'
BOTH = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"!"}}],"usage":{"prompt_tokens":3}}\n\n'
DONE = b"data: [DONE]\n\n"


def test_the_usage_chunk_iron_tui_asked_for_is_stripped_and_still_counted() -> None:
    account, parser = ChatAccount(), SSEParser()
    stream = CONTENT + BOTH + USAGE + DONE
    out = b""
    for i in range(0, len(stream), 7):  # events split anywhere
        events = parser.feed(stream[i:i + 7])
        out += _without_usage_chunk(events)
        account.raw(events)
    assert out == CONTENT + BOTH + DONE  # a chunk with choices is the client's, even with usage
    usage = account.usage()
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (3, 2)
    assert account.text_chars == len("Hi there!") and account.finished

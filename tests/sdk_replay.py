"""Read translated bytes with the official SDKs' own parsers, so tests assert what a client sees.

`anthropic_final_message` hands Anthropic SSE bytes to `anthropic.Anthropic().messages.stream()` over an
in-memory transport (the SDK parses and accumulates exactly as it would from the network);
`openai_stream_snapshot` feeds chat chunks to the openai SDK's ChatCompletionStreamState.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
from anthropic.types import Message
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk


def anthropic_client(body: bytes, content_type: str, status: int = 200) -> anthropic.Anthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=body, headers={"content-type": content_type})

    transport = httpx2.MockTransport(handler)
    return anthropic.Anthropic(api_key="unused", base_url="http://replay.invalid", max_retries=0,
                               http_client=httpx2.Client(transport=transport))


def anthropic_final_message(frames: list[bytes]) -> Message:
    client = anthropic_client(b"".join(frames), "text/event-stream")
    with client.messages.stream(model="m", max_tokens=1, messages=[{"role": "user", "content": "x"}]) as s:
        return s.get_final_message()


def openai_stream_snapshot(chunks: list[dict[str, Any]]) -> ChatCompletion:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for raw in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(raw))
    return state.current_completion_snapshot

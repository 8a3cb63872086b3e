"""Translation of real recorded provider traffic (tests/cassettes/*/SOURCES.md names every file's origin).

- every recorded Anthropic response and stream → valid OpenAI chat shapes (Claude behind /v1/chat/completions),
  agreeing with what the anthropic SDK itself reads from the same bytes;
- every recorded OpenAI (or OpenAI-compatible) chat response and stream → a valid Anthropic message / event
  sequence (a non-Claude model behind /v1/messages), agreeing with what the openai SDK reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from iron_tui.core.dialects.base import DONE_EVENT, RequestContext, UpstreamFormatError
from iron_tui.core.dialects.messages_chat import PAIR
from iron_tui.core.proxy.sse import SSEParser
from iron_tui.core.translate import (
    AnthropicStreamTranslator,
    anthropic_error_to_openai,
    anthropic_to_openai_response,
)
from tests.sdk_replay import anthropic_final_message, openai_stream_snapshot

ROOT = Path(__file__).parent / "cassettes"
ANTHROPIC = sorted(p for p in (ROOT / "anthropic").iterdir() if p.suffix in (".json", ".sse"))
OPENAI_CHAT = sorted(p for p in (ROOT / "openai_chat").iterdir() if p.suffix in (".json", ".sse"))
CTX = RequestContext(model="gpt-4o", client_model="gpt-4o", stream=True, created=1_700_000_000,
                     new_id=lambda prefix: f"{prefix}_replay")


def events(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The recorded stream's events, parsed by the proxy's own SSE parser (in uneven pieces)."""
    raw = path.read_bytes()
    parser = SSEParser()
    parsed = []
    for i in range(0, len(raw), 97):
        parsed += parser.feed(raw[i:i + 97])
    parsed += parser.flush()
    return [(DONE_EVENT, {}) if data.strip() == "[DONE]" else (name, orjson.loads(data))
            for name, data, _ in parsed if data.strip()]


def test_the_cassettes_are_all_named_in_sources() -> None:
    for folder in ("anthropic", "openai_chat"):
        sources = (ROOT / folder / "SOURCES.md").read_text()
        files = [p for p in (ROOT / folder).iterdir() if p.name != "SOURCES.md"]
        assert len(files) > 10
        assert all(f"`{p.name}`" in sources for p in files)


@pytest.mark.parametrize("path", ANTHROPIC, ids=lambda p: p.name)
def test_recorded_anthropic_traffic_translates_to_valid_openai_shapes(path: Path) -> None:
    if path.suffix == ".json":
        body = json.loads(path.read_text())
        if body.get("type") == "error":
            status = int(path.stem.rsplit("__", 1)[1])
            err = anthropic_error_to_openai(status, body)["error"]
            assert err["message"] == body["error"]["message"] and err["type"]
            return
        out = ChatCompletion.model_validate(anthropic_to_openai_response(body, created=1))
        message = out.choices[0].message
        texts = [b["text"] for b in body["content"] if b["type"] == "text"]
        assert (message.content or "") == "".join(texts)
        tools = [b for b in body["content"] if b["type"] == "tool_use"]
        assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []] == [
            (b["name"], b["input"]) for b in tools]
        return
    translator = AnthropicStreamTranslator(created=1, include_usage=True)
    chunks = [c for name, data in events(path) for c in translator.feed(name, data)]
    assert translator.done and translator.error is None
    for c in chunks:
        ChatCompletionChunk.model_validate(c)
    streamed = openai_stream_snapshot(chunks)
    # What the anthropic SDK reads from the very same bytes, translated whole, must say the same thing.
    final = anthropic_final_message([path.read_bytes()]).model_dump(mode="json", warnings=False)
    whole = anthropic_to_openai_response(final, created=1)
    assert streamed.choices[0].message.content == whole["choices"][0]["message"]["content"]
    assert streamed.choices[0].finish_reason == whole["choices"][0]["finish_reason"]
    got = [(c.function.name, json.loads(c.function.arguments)) for c in streamed.choices[0].message.tool_calls or []]
    want = [(c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in whole["choices"][0]["message"].get("tool_calls", [])]
    assert got == want
    assert chunks[-1]["usage"] == whole["usage"]


@pytest.mark.parametrize("path", OPENAI_CHAT, ids=lambda p: p.name)
def test_recorded_openai_chat_traffic_translates_to_valid_anthropic_shapes(path: Path) -> None:
    if path.suffix == ".json":
        body = json.loads(path.read_text())
        if "error" in body:
            with pytest.raises(UpstreamFormatError):  # an error body never becomes a made-up message
                PAIR.response(body, CTX)
            return
        out = Message.model_validate(PAIR.response(body, CTX))
        message = body["choices"][0]["message"]
        assert "".join(b.text for b in out.content if b.type == "text") == (message.get("content") or
                                                                             message.get("refusal") or "")
        assert [b.name for b in out.content if b.type == "tool_use"] == [
            c["function"]["name"] for c in message.get("tool_calls") or []]
        return
    recorded = events(path)
    stream = PAIR.stream(CTX)
    frames = [f for name, data in recorded for f in stream.feed(name, data)]
    if not stream.done:
        frames += stream.finish()
    if any("error" in data for _, data in recorded):
        # A recorded mid-stream error: no invented end (the pipeline sends the error in Anthropic's shape).
        assert not stream.done and b"message_stop" not in b"".join(frames)
        return
    assert stream.done
    got = anthropic_final_message(frames)  # the anthropic SDK's own parser and accumulator
    want = openai_stream_snapshot([d for _, d in recorded if "choices" in d]).choices[0].message
    assert "".join(b.text for b in got.content if b.type == "text") == (want.content or "")
    assert [(b.name, b.input) for b in got.content if b.type == "tool_use"] == [
        (c.function.name, json.loads(c.function.arguments or "{}")) for c in want.tool_calls or []]

"""Recorded OpenAI Responses traffic (tests/cassettes/openai_responses/, sources in SOURCES.md) against
what iron-tui emits for Responses clients and how it reads native Responses streams."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from iron_tui.core.dialects import responses_anthropic, responses_chat
from iron_tui.core.dialects.provider_apis import stream_account, usage_of
from iron_tui.core.proxy.sse import SSEParser
from tests.responses_support import frames, sdk_response, translate

CASSETTES = Path(__file__).parent / "cassettes" / "openai_responses"
STREAMS = sorted(CASSETTES.glob("*.sse"))
WHOLE = sorted(p for p in CASSETTES.glob("*.json") if not p.name.endswith(".request.json"))
REQUESTS = sorted(CASSETTES.glob("*.request.json"))
# The function-call exchanges (the web search ones are read by tests/test_openai_web_search.py: no pair
# translates OpenAI's hosted web search).
FUNCTION_STREAMS = [p for p in STREAMS if "web_search" not in p.name]
FUNCTION_REQUESTS = [p for p in REQUESTS if "web_search" not in p.name]
# Fields real OpenAI events carry that iron-tui leaves out on purpose.
_OPENAI_ONLY = {"obfuscation"}  # stream-length padding, meaningless once translated


def recorded(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    # Read as the SDK's client reads them: these were recorded before the SDK's newest required fields.
    return frames([block + b"\n\n" for block in raw.strip().split(b"\n\n")], strict=False)


def test_cassettes_are_there() -> None:
    assert len(STREAMS) == 3 and len(WHOLE) == 5 and len(REQUESTS) == 8
    assert len(FUNCTION_STREAMS) == 2 and len(FUNCTION_REQUESTS) == 4


def _ours() -> dict[str, dict[str, Any]]:
    """One event of each type the Anthropic pair emits for a text + tool-call answer."""
    _, ctx = translate(responses_anthropic.PAIR, {"model": "claude-sonnet-4-6", "input": "x", "stream": True,
                                                   "tools": [{"type": "function", "name": "get_capital"}]})
    st = responses_anthropic.PAIR.stream(ctx)
    msg = {"id": "msg_1", "usage": {"input_tokens": 3, "output_tokens": 1}}
    out: list[bytes] = []
    for ev in [{"type": "message_start", "message": msg},
               {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
               {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Paris"}},
               {"type": "content_block_stop", "index": 0},
               {"type": "content_block_start", "index": 1,
                "content_block": {"type": "tool_use", "id": "t1", "name": "get_capital", "input": {}}},
               {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
               {"type": "content_block_stop", "index": 1},
               {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 4}},
               {"type": "message_stop"}]:
        out.extend(st.feed(ev["type"], ev))
    by_type: dict[str, dict[str, Any]] = {}
    for e in frames(out):
        by_type.setdefault(e["type"] + ":" + _item_kind(e), e)
    return by_type


def _item_kind(event: dict[str, Any]) -> str:
    item = event.get("item")
    return item["type"] if isinstance(item, dict) else ""


@pytest.mark.parametrize("path", FUNCTION_STREAMS, ids=lambda p: p.name)
def test_our_events_have_the_recorded_shapes(path: Path) -> None:
    ours = _ours()
    for event in recorded(path):
        mine = ours[event["type"] + ":" + _item_kind(event)]
        assert set(mine) == set(event) - _OPENAI_ONLY, event["type"]
        for key in ("item", "part"):
            if isinstance(event.get(key), dict):
                assert set(mine[key]) >= set(event[key]), (event["type"], key)
        if event["type"] == "response.completed":
            missing = set(event["response"]) - set(mine["response"])
            # OpenAI-only sampling echoes and retention settings iron-tui has nothing to say about.
            assert missing <= {"frequency_penalty", "presence_penalty", "prompt_cache_retention"}, missing
            assert set(mine["response"]["usage"]) == set(event["response"]["usage"])


@pytest.mark.parametrize("path", WHOLE, ids=lambda p: p.name)
def test_recorded_whole_responses_read_as_the_sdk_reads_them(path: Path) -> None:
    body = json.loads(path.read_text())
    resp = sdk_response(body, strict=False)
    usage = usage_of("openai-responses", body)
    assert usage is not None and resp.usage is not None
    assert usage.total_input_tokens == resp.usage.input_tokens and usage.output_tokens == resp.usage.output_tokens


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.name)
def test_native_stream_accounting_reads_the_recorded_usage(path: Path) -> None:
    raw = path.read_bytes()
    account = stream_account("openai-responses")
    parser = SSEParser()
    for i in range(0, len(raw), 97):  # in arbitrary network-sized pieces
        account.raw(parser.feed(raw[i:i + 97]))
    account.raw(parser.flush())
    final = next(e for e in reversed(recorded(path)) if e["type"] == "response.completed")["response"]["usage"]
    usage = account.usage()
    assert account.finished and usage is not None
    assert usage.total_input_tokens == final["input_tokens"] and usage.output_tokens == final["output_tokens"]


@pytest.mark.parametrize("path", FUNCTION_REQUESTS, ids=lambda p: p.name)
def test_recorded_client_requests_translate(path: Path) -> None:
    body = orjson.loads(path.read_bytes())
    tr, _ = translate(responses_anthropic.PAIR, {**body, "model": "claude-sonnet-4-6"})
    blocks = [b["type"] for m in tr.body["messages"] for b in m["content"]]
    calls = [i for i in body["input"] if i.get("type") == "function_call"]
    assert blocks.count("tool_use") == len(calls) == blocks.count("tool_result")
    assert [t["name"] for t in tr.body["tools"]] == ["get_capital"]
    tc, _ = translate(responses_chat.PAIR, body, model="llama3")
    roles = [m["role"] for m in tc.body["messages"]]
    assert roles.count("tool") == len(calls) and roles[0] == "user"

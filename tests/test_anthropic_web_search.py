"""Anthropic's server-side web searches are billed per search whether or not the stream finished:
iron-tui counts each `web_search_tool_result` as it streams (recorded traffic in tests/cassettes/anthropic/,
see SOURCES.md), the final `usage.server_tool_use.web_search_requests` wins when larger, and a stream cut
before its end is charged, and journaled, for the searches it ran."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anthropic
import pytest

from iron_tui.core.budget import BudgetLedger, CallInfo
from iron_tui.core.clock import FixedClock
from iron_tui.core.dialects.provider_apis import StreamAccount, stream_account
from iron_tui.core.ledger_store import LedgerStore
from iron_tui.core.pricing import TokenUsage
from iron_tui.core.proxy.sse import SSEParser
from iron_tui.core.proxy.stream_relay import _checkpoint
from iron_tui.core.recovery import recover_dead
from iron_tui.sim.anthropic_search import search_blocks, search_events
from tests.conftest import EngineFactory
from tests.helpers.search_charges import PRICER, searches_charged, tokens_only

CASSETTES = Path(__file__).parent / "cassettes" / "anthropic"
STREAM = CASSETTES / "test_anthropic_model_web_search_tool_stream__0.sse"
PER_SEARCH = 10_000  # µ$: genai-prices' Claude web_searches_kcount = 10 ($10 per 1,000)
RESULT = b'"content_block":{"type":"web_search_tool_result"'
SEARCH: Any = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}]


def _tokens_only(model: str, usage: TokenUsage) -> int:
    return tokens_only("anthropic", model, usage)


def _account(raw: bytes, parsed: bool = False) -> StreamAccount:
    """The account of `raw` fed in network-sized pieces, as a native relay (raw events) or a translated
    one (parsed objects) feeds it."""
    account = stream_account("anthropic")
    parser = SSEParser()
    for i in range(0, len(raw) + 97, 97):
        events = parser.feed(raw[i:i + 97]) if i < len(raw) else parser.flush()
        if parsed:
            for ev, data, _raw in events:
                account.obj(ev, json.loads(data))
        else:
            account.raw(events)
    return account


def _cut_after(raw: bytes, marker: bytes, nth: int) -> bytes:
    """`raw` up to and including the `nth` event (1-based) holding `marker`."""
    blocks = raw.split(b"\n\n")
    hits = [i for i, b in enumerate(blocks) if marker in b]
    return b"\n\n".join(blocks[:hits[nth - 1] + 1]) + b"\n\n"


@pytest.mark.parametrize("parsed", [False, True], ids=["native", "translated"])
def test_a_recorded_stream_is_charged_once_per_search(parsed: bool) -> None:
    raw = STREAM.read_bytes()
    assert raw.count(RESULT) == 2 and b'"web_search_requests":2' in raw
    account = _account(raw, parsed)
    usage = account.usage()
    assert account.finished and usage is not None and account.web_searches == 2
    assert usage.web_search_requests == 2  # counted as they streamed and in the usage: once
    assert usage.total_input_tokens == 22397 and usage.output_tokens == 637  # message_delta's counts
    model = "claude-sonnet-4-20250514"
    assert PRICER.cost("anthropic", model, usage) == _tokens_only(model, usage) + 2 * PER_SEARCH


@pytest.mark.parametrize(("marker", "nth", "searches"), [
    (b'"type":"server_tool_use"', 1, 0),  # the first search asked for, no result yet
    (RESULT, 1, 1),
    (b'"type":"server_tool_use"', 2, 1),
    (RESULT, 2, 2),  # both results in, cut before message_delta
])
@pytest.mark.parametrize("parsed", [False, True], ids=["native", "translated"])
def test_a_cut_recorded_stream_counts_the_searches_whose_results_arrived(
        marker: bytes, nth: int, searches: int, parsed: bool) -> None:
    account = _account(_cut_after(STREAM.read_bytes(), marker, nth), parsed)
    usage = account.usage()  # message_start's usage, which counts no searches
    assert not account.finished and usage is not None
    assert account.web_searches == searches and usage.web_search_requests == searches


def test_an_error_result_is_not_counted_and_the_final_usage_wins() -> None:
    # Anthropic bills no search that errors (max_uses_exceeded, unavailable…): a result without results.
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 10, "output_tokens": 1}}}
    error = {"type": "content_block_start", "index": 1, "content_block": {
        "type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
        "content": {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}}}
    frames = [("message_start", start), ("content_block_start", error)]
    raw = b"".join(f"event: {ev}\ndata: {json.dumps(obj)}\n\n".encode() for ev, obj in frames)
    account = _account(raw)
    assert account.web_searches == 0
    # A final count above what streamed (a search this account did not see) is the one charged.
    account.obj("message_delta", {"type": "message_delta", "usage": {"output_tokens": 5,
                                                                     "server_tool_use": {"web_search_requests": 3}}})
    usage = account.usage()
    assert usage is not None and usage.web_search_requests == 3


def test_the_journal_checkpoint_holds_the_searches_and_recovery_charges_them(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    model = "claude-sonnet-4-6"
    ledger = BudgetLedger(limit_micros=10_000_000, publish=lambda e: None, clock=FixedClock(time.time()),
                          period="day", store=LedgerStore(db))
    res = ledger.reserve("c1", 500_000, model=model, provider="anthropic",
                         call=CallInfo("anthropic", "event-c1", input_tokens=1_000))
    assert res.journaled
    account = _account(_cut_after(STREAM.read_bytes(), RESULT, 2))
    _checkpoint(SimpleNamespace(ledger=ledger), res, account)  # type: ignore[arg-type]  # what the relay calls
    ledger.flush()
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT web_searches FROM calls WHERE id = 'c1'").fetchall() == [(2,)]
    ledger.close()  # never settled: as when the process is killed mid-stream
    (call,) = recover_dead(LedgerStore(db), PRICER).calls
    assert call.usage.web_search_requests == 2
    assert call.charge_micros == _tokens_only(model, call.usage) + 2 * PER_SEARCH


def test_the_sims_search_blocks_have_the_recorded_shapes() -> None:
    def starts(raw: bytes) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for line in raw.decode().splitlines():
            if line.startswith("data: ") and '"content_block_start"' in line:
                block = json.loads(line[6:])["content_block"]
                out.setdefault(block["type"], block)
        return out

    blocks = search_blocks({"tools": SEARCH}, "weather in Paris", 1, lambda: 7)
    ours, recorded = starts(b"".join(search_events(blocks, 1))), starts(STREAM.read_bytes())
    for kind in ("server_tool_use", "web_search_tool_result"):
        assert set(ours[kind]) == set(recorded[kind]), kind
    result, recorded_result = ours["web_search_tool_result"]["content"][0], recorded["web_search_tool_result"]["content"][0]
    assert set(result) == set(recorded_result)
    whole = json.loads((CASSETTES / "test_anthropic_web_search_tool__0.json").read_text())
    assert set(blocks[0]) == set(next(b for b in whole["content"] if b["type"] == "server_tool_use"))


# --- end to end: the anthropic SDK → iron-tui → the simulated Messages API ----------------------------

def _client(engine: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0)


async def _settled(engine: Any) -> None:
    for _ in range(500):  # a hang guard, not a timing
        if engine.proxy.inflight == 0 and engine.ledger.reserved == 0:
            return
        await asyncio.sleep(0.02)


async def test_searches_are_charged_once_whole_and_streamed(make_engine: EngineFactory) -> None:
    # Three searches asked for, max_uses 2: the third gets an error result, which is not billed.
    engine = await make_engine(budget=5.0)
    client = _client(engine)
    prompt = [{"role": "user", "content": "[[sim:searches=3]] What is the weather in Paris?"}]
    whole = await client.messages.create(model="claude-sonnet-4-6", max_tokens=300, tools=SEARCH, messages=prompt)
    assert [b.type for b in whole.content].count("web_search_tool_result") == 3
    assert whole.usage.server_tool_use is not None and whole.usage.server_tool_use.web_search_requests == 2
    rec = engine.history.recent(1)[0]
    assert rec.state == "ok" and not rec.cost_estimated and searches_charged(rec, PER_SEARCH) == 2
    async with client.messages.stream(model="claude-sonnet-4-6", max_tokens=300, tools=SEARCH,
                                      messages=prompt) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == [b.type for b in whole.content]
    assert final.usage.server_tool_use is not None and final.usage.server_tool_use.web_search_requests == 2
    streamed = engine.history.recent(1)[0]
    assert streamed.stream and streamed.state == "ok" and not streamed.cost_estimated
    assert searches_charged(streamed, PER_SEARCH) == 2 and streamed.cost_micros == rec.cost_micros
    await _settled(engine)
    assert engine.ledger.status()[0] == rec.cost_micros + streamed.cost_micros


async def test_a_stream_the_client_closes_after_the_searches_is_charged_for_them(
        make_engine: EngineFactory) -> None:
    # The sim stalls after the searches and a few words: no message_delta ever comes.
    engine = await make_engine(budget=5.0)
    seen: list[str] = []
    async with _client(engine).messages.stream(
            model="claude-sonnet-4-6", max_tokens=300, tools=SEARCH,
            messages=[{"role": "user", "content": "[[sim:searches=2]] [[sim:stall]] Weather in Oslo?"}]) as stream:
        async for event in stream:
            if event.type == "content_block_start":
                seen.append(event.content_block.type)
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                break  # the agent cancels mid-answer
    assert seen == ["server_tool_use", "web_search_tool_result"] * 2 + ["text"]
    await _settled(engine)
    rec = engine.history.recent(1)[0]
    assert rec.state == "error" and rec.error_code == "client_disconnected" and rec.cost_estimated
    assert searches_charged(rec, PER_SEARCH) == 2
    assert engine.ledger.status()[0] == rec.cost_micros and engine.ledger.reserved == 0

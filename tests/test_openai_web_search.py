"""OpenAI's server-side web searches are billed per call but absent from `usage`: iron-tui counts the
`web_search_call` items (recorded traffic in tests/cassettes/openai_responses/, see SOURCES.md), prices
them at genai-prices' per-search price and books them in the budget, end to end through the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from iron_tui.core.dialects.provider_apis import stream_account, usage_of
from iron_tui.core.pricing import TokenUsage
from iron_tui.core.proxy.admission import WEB_SEARCH_ALLOWANCE, web_searches
from iron_tui.core.proxy.sse import SSEParser
from iron_tui.sim.openai_responses import ResponsesState, build_response, response_events
from tests.conftest import EngineFactory
from tests.helpers.search_charges import PRICER, searches_charged, tokens_only

CASSETTES = Path(__file__).parent / "cassettes" / "openai_responses"
WHOLE = sorted(p for p in CASSETTES.glob("*web_search*.json") if not p.name.endswith(".request.json"))
STREAM = CASSETTES / "test_openai_responses_model_web_search_tool_stream__0.sse"
PER_SEARCH = 10_000  # µ$: genai-prices' gpt-5 web_searches_kcount = 10 ($10 per 1,000)


def _tokens_only(model: str, usage: TokenUsage) -> int:
    return tokens_only("openai", model, usage)


def _events(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]


def _account(raw: bytes) -> Any:
    account = stream_account("openai-responses")
    parser = SSEParser()
    for i in range(0, len(raw), 97):  # in arbitrary network-sized pieces
        account.raw(parser.feed(raw[i:i + 97]))
    account.raw(parser.flush())
    return account


def test_cassettes_are_there() -> None:
    assert len(WHOLE) == 3 and STREAM.is_file()


@pytest.mark.parametrize("path", WHOLE, ids=lambda p: p.name)
def test_recorded_answers_are_charged_for_their_searches(path: Path) -> None:
    body = json.loads(path.read_text())
    request = json.loads(path.with_name(path.name.replace(".json", ".request.json")).read_text())
    usage = usage_of("openai-responses", body)
    assert usage is not None
    assert usage.total_input_tokens == body["usage"]["input_tokens"]
    assert usage.output_tokens == body["usage"]["output_tokens"]
    # One search in the answer; a search replayed in the request's input (the second turns) is not billed.
    assert usage.web_search_requests == 1
    assert PRICER.cost("openai", body["model"], usage) == _tokens_only(body["model"], usage) + PER_SEARCH
    replayed = [i for i in request["input"] if i.get("type") == "web_search_call"]
    assert len(replayed) == (0 if path.name.endswith("tool__0.json") else 1)


def test_recorded_stream_is_charged_once_per_search() -> None:
    raw = STREAM.read_bytes()
    final = next(e for e in reversed(_events(raw)) if e["type"] == "response.completed")["response"]
    # The search shows in four places (completed event, item done, the final output): charged once.
    account = _account(raw)
    usage = account.usage()
    assert account.finished and usage is not None
    assert usage.total_input_tokens == final["usage"]["input_tokens"]
    assert usage.web_search_requests == 1
    model = final["model"]
    assert PRICER.cost("openai", model, usage) == _tokens_only(model, usage) + PER_SEARCH


@pytest.mark.parametrize(("cut_after", "searches"), [
    ("response.web_search_call.searching", 0),  # still searching when the stream was cut
    ("response.web_search_call.completed", 1),
    ("response.output_text.delta", 1),  # cut while answering: no response.completed, no usage
])
def test_a_cut_recorded_stream_still_counts_the_searches_it_ran(cut_after: str, searches: int) -> None:
    blocks = STREAM.read_bytes().split(b"\n\n")
    end = next(i for i, b in enumerate(blocks) if f'"type":"{cut_after}"'.encode() in b)
    account = _account(b"\n\n".join(blocks[:end + 1]) + b"\n\n")
    assert not account.finished and account.usage() is None
    assert account.web_searches == searches


def test_the_sims_search_events_have_the_recorded_shapes() -> None:
    request = json.loads(STREAM.with_name(STREAM.name.replace(".sse", ".request.json")).read_text())
    final = build_response({**request, "stream": True}, ResponsesState(), "resp_1", 1, 5, "weather", None, True)
    ours = {kind + ":" + str(ev.get("item", {}).get("type")): ev for kind, ev in response_events(final)}
    recorded = [e for e in _events(STREAM.read_bytes()) if "web_search" in json.dumps(e)
                and e["type"] not in ("response.created", "response.in_progress", "response.completed")]
    assert len(recorded) == 5
    for event in recorded:
        mine = ours[event["type"] + ":" + str(event.get("item", {}).get("type"))]
        assert set(mine) == set(event) - {"type", "sequence_number"}, event["type"]
        if "item" in event:
            assert set(mine["item"]) == set(event["item"]), event["type"]
            if "action" in event["item"]:
                assert set(mine["item"]["action"]) == set(event["item"]["action"])
                assert set(mine["item"]["action"]["sources"][0]) <= {"type", "url", "name"}
    searches = [i for i in final["output"] if i["type"] == "web_search_call"]
    recorded_item = json.loads((CASSETTES / "test_openai_responses_model_web_search_tool__0.json").read_text())
    assert len(searches) == 1
    assert set(searches[0]) == set(next(i for i in recorded_item["output"] if i["type"] == "web_search_call"))


def test_admission_books_an_allowance_for_a_responses_web_search_tool() -> None:
    for kind in ("web_search", "web_search_preview"):
        assert web_searches({"tools": [{"type": kind, "search_context_size": "medium"}]}) == WEB_SEARCH_ALLOWANCE
    # `max_tool_calls` bounds every built-in tool call of a Responses answer.
    assert web_searches({"tools": [{"type": "web_search"}], "max_tool_calls": 3}) == 3
    assert web_searches({"tools": [{"type": "function", "name": "f"}], "max_tool_calls": 3}) == 0
    worst = PRICER.worst_case("openai", "gpt-5", 1000, 500, web_searches=WEB_SEARCH_ALLOWANCE)
    assert worst == PRICER.worst_case("openai", "gpt-5", 1000, 500) + WEB_SEARCH_ALLOWANCE * PER_SEARCH  # type: ignore[operator]


def test_a_model_without_a_per_search_price_is_charged_for_its_tokens() -> None:
    usage = TokenUsage(input_tokens=1000, output_tokens=100, web_search_requests=2)
    assert PRICER.cost("openai", "gpt-5-search-api", usage) == _tokens_only("gpt-5-search-api", usage) > 0
    assert PRICER.worst_case("openai", "gpt-5-search-api", 1000, 100, web_searches=10) == PRICER.worst_case(
        "openai", "gpt-5-search-api", 1000, 100)


# --- end to end: the openai SDK → iron-tui → the simulated Responses API ------------------------------

SEARCH = [{"type": "web_search"}]


def _client(engine: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)


async def test_searches_are_charged_and_spent(make_engine: EngineFactory) -> None:
    engine = await make_engine(budget=5.0)
    raw = await _client(engine).responses.with_raw_response.create(
        model="gpt-5", input="[[sim:searches=2]] What is the weather in Paris?", tools=SEARCH)  # type: ignore[list-item]
    r = raw.parse()
    assert [i.type for i in r.output] == ["web_search_call", "web_search_call", "message"]
    rec = engine.history.recent(1)[0]
    assert rec.state == "ok" and not rec.cost_estimated and searches_charged(rec, PER_SEARCH) == 2
    assert float(raw.headers["x-iron-cost-usd"]) == pytest.approx(rec.cost_micros / 1e6)
    assert engine.ledger.status()[0] == rec.cost_micros
    # The search allowance was booked before the call went upstream.
    assert rec.reserved_micros >= WEB_SEARCH_ALLOWANCE * PER_SEARCH


async def test_an_answer_without_usage_is_still_charged_for_its_search(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    await _client(engine).responses.create(model="gpt-5", input="[[sim:no_usage]] Weather?", tools=SEARCH)  # type: ignore[list-item]
    rec = engine.history.recent(1)[0]
    assert rec.state == "ok" and rec.cost_estimated and searches_charged(rec, PER_SEARCH) == 1


async def test_a_streamed_search_is_charged(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    async with _client(engine).responses.stream(model="gpt-5", input="Weather in Oslo?", tools=SEARCH) as stream:  # type: ignore[arg-type]
        kinds = [event.type async for event in stream]
    assert kinds.count("response.web_search_call.completed") == 1
    rec = engine.history.recent(1)[0]
    assert rec.state == "ok" and rec.stream and searches_charged(rec, PER_SEARCH) == 1


async def test_a_stream_cut_after_a_search_is_charged_for_it(make_engine: EngineFactory) -> None:
    # The sim's mid-stream error comes once the first of the two searches is done, before the second.
    engine = await make_engine()
    stream = await _client(engine).responses.create(
        model="gpt-5", input="[[sim:searches=2]] [[sim:midstream_error]] Weather?", tools=SEARCH,  # type: ignore[list-item]
        stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[-1] == "error" and "response.completed" not in kinds
    assert kinds.count("response.web_search_call.completed") == 1 and kinds.count("response.output_item.done") == 1
    rec = engine.history.recent(1)[0]
    assert rec.state == "error" and rec.cost_estimated and searches_charged(rec, PER_SEARCH) == 1


async def test_the_budget_books_the_searches(make_engine: EngineFactory) -> None:
    # Ten searches ($0.10) may not fit a $0.05 budget whatever the output cap; two do.
    engine = await make_engine(budget=0.05)
    client = _client(engine)
    with pytest.raises(openai.APIStatusError) as info:
        await client.responses.create(model="gpt-5", input="Weather?", tools=SEARCH, max_output_tokens=500)  # type: ignore[list-item]
    assert info.value.status_code == 402
    await client.responses.create(model="gpt-5", input="Weather?", tools=SEARCH, max_output_tokens=500,  # type: ignore[list-item]
                                  max_tool_calls=2)
    rec = engine.history.recent(1)[0]
    assert rec.state == "ok" and searches_charged(rec, PER_SEARCH) == 1
    assert engine.ledger.status()[0] == rec.cost_micros and engine.ledger.reserved == 0


async def test_a_configured_token_price_keeps_the_per_search_price(make_engine: EngineFactory) -> None:
    # [prices."gpt-5"] with token prices only: the searches still cost gpt-5's $10 per 1,000;
    # web_search_per_1k sets the price for another model.
    engine = await make_engine(prices={"gpt-5": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                                       "o3": {"input_per_mtok": 1.0, "output_per_mtok": 2.0, "web_search_per_1k": 30}})
    client = _client(engine)
    for model, per_search in (("gpt-5", PER_SEARCH), ("o3", 30_000)):
        await client.responses.create(model=model, input="[[sim:searches=2]] Weather?", tools=SEARCH)  # type: ignore[list-item]
        rec = engine.history.recent(1)[0]
        assert rec.state == "ok" and rec.model == model
        tokens = rec.input_tokens * 1 + rec.output_tokens * 2  # µ$: the configured $1 / $2 per Mtok
        assert rec.cost_micros == tokens + 2 * per_search, model

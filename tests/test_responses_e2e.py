"""The Responses API on Claude models end to end: the official `openai` SDK → iron-tui → the simulated
Anthropic API (which checks thinking signatures and tool pairing like the real one)."""

from __future__ import annotations

import aiohttp
import openai
import pytest
from pydantic import BaseModel

from iron_tui.core.engine import Engine
from iron_tui.sim import ProviderSim

CLAUDE = "claude-sonnet-4-6"
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}}


def client(engine: Engine) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)


async def test_create_on_claude(engine: Engine, sim: ProviderSim) -> None:
    raw = await client(engine).responses.with_raw_response.create(
        model=CLAUDE, instructions="Be brief.", input="Hello Claude", max_output_tokens=200)
    r = raw.parse()
    assert r.object == "response" and r.status == "completed" and r.id.startswith("resp_")
    assert r.output_text.startswith("Simulated reply to: Hello Claude")
    assert r.usage is not None and r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert float(raw.headers["x-iron-cost-usd"]) > 0
    sent = sim.requests[-1]
    assert sent.path == "/v1/messages" and sent.body is not None
    assert sent.body["system"] == [{"type": "text", "text": "Be brief."}] and sent.body["max_tokens"] == 200
    rec = engine.history.recent(1)[0]
    assert rec.translated and rec.api == "openai.responses" and rec.provider == "anthropic"
    assert rec.cost_micros and rec.output_tokens == r.usage.output_tokens


async def test_stream_on_claude(engine: Engine) -> None:
    async with client(engine).responses.stream(model=CLAUDE, input="Stream to me") as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert final.output_text.startswith("Simulated reply to: Stream to me")
    rec = engine.history.recent(1)[0]
    assert rec.state == "ok" and rec.stream and rec.cost_micros and rec.output_tokens > 0


async def test_function_tool_round_trip(engine: Engine, sim: ProviderSim) -> None:
    c = client(engine)
    first = await c.responses.create(model=CLAUDE, input="Weather in Paris?", tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    history = [{"role": "user", "content": "Weather in Paris?"}, *[i.model_dump(exclude_none=True) for i in first.output],
               {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 21 C"}]
    second = await c.responses.create(model=CLAUDE, input=history, tools=[WEATHER], store=False)
    assert second.output_text.startswith("Simulated reply to tool result: Sunny, 21 C")
    assert sim.requests[-1].body["messages"][-1]["content"][0]["type"] == "tool_result"


async def test_structured_output_with_parse(engine: Engine, sim: ProviderSim) -> None:
    class City(BaseModel):
        name: str
        population: int

    r = await client(engine).responses.parse(model=CLAUDE, input="Describe Paris", text_format=City)
    assert isinstance(r.output_parsed, City) and r.output_parsed.population == 1
    sent = sim.requests[-1].body
    assert sent["output_config"]["format"]["type"] == "json_schema"
    assert set(sent["output_config"]["format"]["schema"]["properties"]) == {"name", "population"}


async def test_reasoning_round_trip_keeps_signed_thinking(engine: Engine, sim: ProviderSim) -> None:
    c = client(engine)
    reasoning = {"effort": "low", "summary": "auto"}
    first = await c.responses.create(model=CLAUDE, input="Weather in Oslo?", tools=[WEATHER], reasoning=reasoning,
                                     include=["reasoning.encrypted_content"])
    kinds = [item.type for item in first.output]
    assert kinds[0] == "reasoning" and "function_call" in kinds
    assert first.output[0].summary and first.output[0].summary[0].text.startswith("Simulated thinking")
    assert sim.requests[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    call = next(item for item in first.output if item.type == "function_call")
    history = [{"role": "user", "content": "Weather in Oslo?"}, *[i.model_dump(exclude_none=True) for i in first.output],
               {"type": "function_call_output", "call_id": call.call_id, "output": "Snow"}]
    # The sim verifies the thinking block's signature and that it leads the tool-use turn, as Anthropic does.
    second = await c.responses.create(model=CLAUDE, input=history, tools=[WEATHER], reasoning=reasoning)
    assert second.status == "completed" and "Snow" in second.output_text
    sent = sim.requests[-1].body
    assert sent["thinking"]["type"] == "enabled"
    assert sent["messages"][1]["content"][0]["type"] == "thinking"


async def test_previous_response_id(engine: Engine, sim: ProviderSim) -> None:
    c = client(engine)
    first = await c.responses.create(model=CLAUDE, input="My name is Ada.")
    second = await c.responses.create(model=CLAUDE, input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    sent = sim.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"][0]["text"] == "My name is Ada."
    async with c.responses.stream(model=CLAUDE, input="And again?", previous_response_id=second.id) as stream:
        third = await stream.get_final_response()
    assert len(sim.requests[-1].body["messages"]) == 5
    fourth = await c.responses.create(model=CLAUDE, input="Last one", previous_response_id=third.id)
    assert fourth.status == "completed" and len(sim.requests[-1].body["messages"]) == 7


async def test_previous_response_id_errors_in_openai_shape(engine: Engine, sim: ProviderSim) -> None:
    c = client(engine)
    kept_out = await c.responses.create(model=CLAUDE, input="secret", store=False)
    for rid in ("resp_unknown", kept_out.id):
        with pytest.raises(openai.BadRequestError) as err:
            await c.responses.create(model=CLAUDE, input="x", previous_response_id=rid)
        assert err.value.code == "previous_response_not_found" and err.value.param == "previous_response_id"
        assert f"Previous response with id '{rid}' not found." in err.value.message
    assert engine.history.recent(1)[0].status == 400


async def test_what_claude_cannot_serve_is_a_400(engine: Engine, sim: ProviderSim) -> None:
    before = len(sim.requests)
    with pytest.raises(openai.BadRequestError) as err:
        await client(engine).responses.create(model=CLAUDE, input="x", tools=[{"type": "file_search",
                                                                              "vector_store_ids": ["vs_1"]}])
    assert err.value.param == "tools[0].type" and "file_search" in err.value.message
    assert len(sim.requests) == before  # nothing went upstream


async def test_websocket_attempt_gets_426(engine: Engine) -> None:
    headers = {"Authorization": f"Bearer {engine.token}", "Connection": "Upgrade", "Upgrade": "websocket",
               "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    async with aiohttp.ClientSession() as s, s.get(engine.openai_base_url + "/responses", headers=headers) as r:
        assert r.status == 426
        assert (await r.json())["error"]["code"] == "websocket_not_supported"


async def test_conversation_moves_from_claude_to_gpt_by_previous_response_id(engine: Engine, sim: ProviderSim) -> None:
    c = client(engine)
    first = await c.responses.create(model=CLAUDE, input="Weather in Rome?", tools=[WEATHER],
                                     reasoning={"effort": "low"})
    call = next(item for item in first.output if item.type == "function_call")
    second = await c.responses.create(model=CLAUDE, previous_response_id=first.id, tools=[WEATHER],
                                      input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Hot"}])
    third = await c.responses.create(model="gpt-5", previous_response_id=second.id, input="Thanks. And tomorrow?")
    assert third.status == "completed"
    sent = sim.requests[-1]
    assert sent.path == "/v1/responses" and sent.body is not None
    assert "previous_response_id" not in sent.body  # OpenAI has never seen that id
    items = sent.body["input"]
    assert [i.get("type", "message") for i in items] == [
        "message", "function_call", "function_call_output", "message", "message"]
    assert all("id" not in i for i in items)  # Claude's reasoning and iron-tui's item ids stay behind
    # An id iron-tui does not keep goes to OpenAI as it is.
    fourth = await c.responses.create(model="gpt-5", previous_response_id=third.id, input="Bye")
    assert fourth.status == "completed" and sim.requests[-1].body["previous_response_id"] == third.id


async def test_mid_stream_error_ends_the_stream_with_an_error_event(engine: Engine) -> None:
    async with client(engine).responses.stream(model=CLAUDE, input="Go [[sim:midstream_error]]") as stream:
        events = [event async for event in stream]
        with pytest.raises(RuntimeError):  # the SDK: no response.completed, no final response
            await stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.output_text.delta" in kinds and kinds[-1] == "error"
    # The error frame iron-tui adds continues the event count, as every Responses event must.
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "response.completed" not in kinds
    rec = engine.history.recent(1)[0]
    assert rec.state == "error" and rec.output_tokens > 0  # what was relayed is charged

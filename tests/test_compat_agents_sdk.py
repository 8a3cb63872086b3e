"""The OpenAI Agents SDK (PyPI `openai-agents`) through iron-tui: on a Claude model (Responses →
Anthropic) and on a GPT model natively — tool loops, streaming, structured output, reasoning."""

from __future__ import annotations

import openai
import pytest
from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai.types.shared import Reasoning
from pydantic import BaseModel

from iron_tui.core.engine import Engine
from iron_tui.sim import ProviderSim

set_tracing_disabled(True)  # the SDK would otherwise post traces to OpenAI


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


class Verdict(BaseModel):
    answer: str
    score: int


def model(engine: Engine, name: str) -> OpenAIResponsesModel:
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    return OpenAIResponsesModel(model=name, openai_client=client)


@pytest.mark.parametrize("name", ["claude-sonnet-4-6", "gpt-5"])
async def test_tool_loop(engine: Engine, sim: ProviderSim, name: str) -> None:
    agent = Agent(name="weather", instructions="Be brief.", tools=[get_weather], model=model(engine, name))
    result = await Runner.run(agent, "Weather in Paris?")
    assert result.final_output.startswith("Simulated reply to tool result: Sunny in sim-city")
    path = "/v1/messages" if name.startswith("claude") else "/v1/responses"
    assert [r.path for r in sim.requests] == [path, path]
    recs = engine.history.recent(2)
    assert all(r.state == "ok" and r.cost_micros for r in recs)
    assert all(r.translated == name.startswith("claude") for r in recs)


async def test_streamed_structured_output_on_claude(engine: Engine) -> None:
    agent = Agent(name="judge", instructions="Judge.", output_type=Verdict, model=model(engine, "claude-sonnet-4-6"))
    run = Runner.run_streamed(agent, "Score this")
    kinds = {event.type async for event in run.stream_events()}
    assert "raw_response_event" in kinds
    assert run.final_output == Verdict(answer="sim-answer", score=1)


async def test_reasoning_kept_across_the_tool_loop_on_claude(engine: Engine, sim: ProviderSim) -> None:
    agent = Agent(name="thinker", tools=[get_weather], model=model(engine, "claude-sonnet-4-6"),
                  model_settings=ModelSettings(reasoning=Reasoning(effort="low", summary="auto")))
    result = await Runner.run(agent, "Weather in Oslo?")
    assert "Sunny in sim-city" in result.final_output
    second = sim.requests[-1].body
    assert second is not None and second["thinking"]["type"] == "enabled"
    # The SDK sent our reasoning item back: its signed thinking block leads the tool-use turn.
    assert second["messages"][1]["content"][0]["type"] == "thinking"

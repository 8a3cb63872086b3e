"""What the simulator does for Claude Code's traffic (found by running the real CLI through iron-tui):
`[[sim:call=…]]` makes the model use a named tool with the arguments a model would send, deferred
tools are out of the model's reach, hidden (`display: "omitted"`) thinking round-trips like the real
API's, and after parallel calls the reply follows the last call's result whatever order the client
sent the results in (Claude Code sends them as they finish)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from iron_tui.sim import ProviderSim

_READ = {"type": "object", "properties": {"file_path": {"type": "string"}, "limit": {"type": "integer"}},
         "required": ["file_path"]}
_AGENT = {"type": "object", "properties": {"description": {"type": "string"}, "prompt": {"type": "string"},
                                           "model": {"type": "string", "enum": ["sonnet", "haiku"]}},
          "required": ["description", "prompt"]}
TOOLS: list[Any] = [{"name": "Agent", "description": "Delegate", "input_schema": _AGENT},
                    {"name": "Read", "description": "Reads a file", "input_schema": _READ}]
CHAT_TOOLS: list[Any] = [{"type": "function", "function": {"name": t["name"], "parameters": t["input_schema"]}}
                         for t in TOOLS]
TWO_READS = "read both [[sim:call=Read(/p/a.txt)]] [[sim:call=Read(/p/b.txt)]]"




async def test_call_directive_uses_the_named_tool_on_both_sims(
    an: anthropic.AsyncAnthropic, oa: openai.AsyncOpenAI
) -> None:
    msg = await an.messages.create(model="claude-sonnet-4-6", max_tokens=500, tools=TOOLS,
                                   messages=[{"role": "user", "content": TWO_READS}])
    uses = [(b.name, b.input) for b in msg.content if b.type == "tool_use"]
    # Only the required argument, like a model asked to read a file (no made-up `limit`).
    assert uses == [("Read", {"file_path": "/p/a.txt"}), ("Read", {"file_path": "/p/b.txt"})]
    chat = await oa.chat.completions.create(model="gpt-5", tools=CHAT_TOOLS,
                                            messages=[{"role": "user", "content": TWO_READS}])
    calls = chat.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == uses  # type: ignore[union-attr]

    given = json.dumps({"description": "d", "prompt": "p", "model": "haiku"})
    agent = await an.messages.create(model="claude-sonnet-4-6", max_tokens=500, tools=TOOLS, messages=[
        {"role": "user", "content": f"delegate [[sim:call=Agent({given})]]"}])
    assert [b.input for b in agent.content if b.type == "tool_use"] == [json.loads(given)]
    # A tool the request does not offer cannot be called: the model answers instead.
    text = await an.messages.create(model="claude-sonnet-4-6", max_tokens=500, tools=TOOLS, messages=[
        {"role": "user", "content": "run it [[sim:call=Bash(ls)]]"}])
    assert text.stop_reason == "end_turn" and text.content[0].type == "text"


async def test_deferred_tools_are_neither_called_nor_counted(an: anthropic.AsyncAnthropic) -> None:
    placeholder = {"name": "DeferredToolPlaceholder", "description": "never call this tool",
                   "input_schema": {"type": "object", "properties": {}}, "defer_loading": True}
    messages: Any = [{"role": "user", "content": "go"}]
    with_it = await an.messages.create(model="claude-sonnet-4-6", max_tokens=500, tools=[placeholder, *TOOLS],
                                       messages=messages)
    without = await an.messages.create(model="claude-sonnet-4-6", max_tokens=500, tools=TOOLS, messages=messages)
    assert [b.name for b in with_it.content if b.type == "tool_use"] == ["Agent"]
    assert with_it.usage.input_tokens == without.usage.input_tokens


async def test_omitted_thinking_comes_back_empty_and_signed(an: anthropic.AsyncAnthropic, sim: ProviderSim) -> None:
    thinking: Any = {"type": "adaptive", "display": "omitted"}
    ask: Any = [{"role": "user", "content": "read [[sim:call=Read(/p/a.txt)]]"}]
    async with an.messages.stream(model="claude-sonnet-4-6", max_tokens=4000, thinking=thinking, tools=TOOLS,
                                  messages=ask) as stream:
        kinds = [e.delta.type async for e in stream if e.type == "content_block_delta"]
        first = await stream.get_final_message()
    assert "thinking_delta" not in kinds and "signature_delta" in kinds
    block = first.content[0]
    assert block.type == "thinking" and block.thinking == "" and block.signature
    shown = await an.messages.create(model="claude-sonnet-4-6", max_tokens=4000, tools=TOOLS, messages=ask,
                                     thinking={"type": "adaptive", "display": "summarized"})  # type: ignore[typeddict-item]
    assert shown.content[0].thinking  # type: ignore[union-attr]
    assert first.usage.output_tokens == shown.usage.output_tokens  # hidden thinking is billed all the same
    call = next(b for b in first.content if b.type == "tool_use")
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "hello"}]}
    history = [b.model_dump(exclude_none=True) for b in first.content]
    ok = await an.messages.create(model="claude-sonnet-4-6", max_tokens=4000, thinking=thinking, tools=TOOLS,
                                  messages=[*ask, {"role": "assistant", "content": history}, result])
    assert ok.content[-1].type == "text"
    for forged in ({**history[0], "signature": history[0]["signature"][:-6] + "AAAAA="},
                   {**history[0], "thinking": "made up"}):
        with pytest.raises(anthropic.BadRequestError):
            await an.messages.create(model="claude-sonnet-4-6", max_tokens=4000, thinking=thinking, tools=TOOLS,
                                     messages=[*ask, {"role": "assistant", "content": [forged, *history[1:]]}, result])
    with pytest.raises(anthropic.BadRequestError):
        await an.messages.create(model="claude-sonnet-4-6", max_tokens=4000, messages=ask,
                                 thinking={"type": "adaptive", "display": "verbose"})  # type: ignore[typeddict-item]


async def test_reply_follows_the_last_calls_result(an: anthropic.AsyncAnthropic, oa: openai.AsyncOpenAI) -> None:
    first = await an.messages.create(model="claude-sonnet-4-6", max_tokens=500, tools=TOOLS,
                                     messages=[{"role": "user", "content": TWO_READS}])
    a, b = (u.id for u in first.content if u.type == "tool_use")
    results = [{"type": "tool_result", "tool_use_id": b, "content": "bee"},  # finished first
               {"type": "tool_result", "tool_use_id": a, "content": "ay"}]
    reply = await an.messages.create(model="claude-sonnet-4-6", max_tokens=500, tools=TOOLS, messages=[
        {"role": "user", "content": TWO_READS}, {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
        {"role": "user", "content": results}])  # type: ignore[typeddict-item]
    assert reply.content[0].text.startswith("Simulated reply to tool result: bee")  # type: ignore[union-attr]

    chat = await oa.chat.completions.create(model="gpt-5", tools=CHAT_TOOLS,
                                            messages=[{"role": "user", "content": TWO_READS}])
    message = chat.choices[0].message
    ids = [c.id for c in message.tool_calls or []]
    answer = await oa.chat.completions.create(model="gpt-5", tools=CHAT_TOOLS, messages=[
        {"role": "user", "content": TWO_READS}, message.model_dump(exclude_none=True),  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": ids[1], "content": "bee"},
        {"role": "tool", "tool_call_id": ids[0], "content": "ay"}])
    assert (answer.choices[0].message.content or "").startswith("Simulated reply to tool result: bee")

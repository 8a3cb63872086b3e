"""The simulator answers what real clients send and refuses what the real APIs refuse (so translation bugs
show up as the 400s users would get): Claude Code's bodies on the Anthropic sim, and the parameters OpenAI
models refuse on the OpenAI sim."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from iron_tui.sim import ProviderSim
from iron_tui.sim.anthropic_extras import signature as thinking_signature

SYSTEM = [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
          {"type": "text", "text": "Tools are listed below.", "cache_control": {"type": "ephemeral"}}]
TOOLS = [{"name": "Read", "description": "Reads a file", "input_schema": {
    "type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}}]




async def test_claude_code_body_with_beta_query_thinking_and_mid_conversation_system(
    an: anthropic.AsyncAnthropic, sim: ProviderSim
) -> None:
    msg = await an.beta.messages.create(
        model="claude-sonnet-4-6", max_tokens=16000, system=SYSTEM, tools=TOOLS,  # type: ignore[arg-type]
        thinking={"type": "enabled", "budget_tokens": 10000}, metadata={"user_id": "user_abc_session_1"},
        betas=["claude-code-20250219", "interleaved-thinking-2025-05-14", "mid-conversation-system-2026-04-07"],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                                         {"type": "text", "text": "read a.py", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "Plan mode is active."},  # type: ignore[list-item,typeddict-item]
        ])
    assert [b.type for b in msg.content] == ["thinking", "tool_use"]
    assert msg.content[0].signature == thinking_signature(msg.content[0].thinking)  # type: ignore[union-attr]
    assert sim.requests[-1].headers["anthropic-beta"].startswith("claude-code-")


@pytest.mark.parametrize("messages", [
    [{"role": "system", "content": "first"}, {"role": "user", "content": "x"}],
    [{"role": "user", "content": "x"}, {"role": "system", "content": "a"}, {"role": "system", "content": "b"}],
    [{"role": "user", "content": "x"}, {"role": "system", "content": "a"}, {"role": "user", "content": "y"}],
    [{"role": "user", "content": "x"}, {"role": "system", "content": [{"type": "image", "source": {}}]}],
])
async def test_misplaced_system_messages_are_refused(an: anthropic.AsyncAnthropic, messages: Any) -> None:
    with pytest.raises(anthropic.BadRequestError):
        await an.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=messages)


async def test_thinking_rules_are_enforced(an: anthropic.AsyncAnthropic) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 2000}
    first = await an.messages.create(model="claude-sonnet-4-6", max_tokens=4000, thinking=thinking, tools=TOOLS,
                                     messages=[{"role": "user", "content": "read a.py"}])
    call = next(b for b in first.content if b.type == "tool_use")
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "print(1)"}]}
    history = [b.model_dump(exclude_none=True) for b in first.content]
    ok = await an.messages.create(model="claude-sonnet-4-6", max_tokens=4000, thinking=thinking, tools=TOOLS,
                                  messages=[{"role": "user", "content": "read a.py"},
                                            {"role": "assistant", "content": history}, result])  # type: ignore[list-item]
    assert ok.content[0].type == "thinking"
    bad_cases: list[tuple[list[Any], dict[str, Any]]] = [
        (history[1:], {}),  # the thinking block was lost
        ([{**history[0], "thinking": "edited"}, *history[1:]], {}),  # altered: its signature no longer matches
        (history, {"extra_body": {"temperature": 0.5}}),
        (history, {"tool_choice": {"type": "any"}}),
    ]
    for content, extra in bad_cases:
        with pytest.raises(anthropic.BadRequestError):
            await an.messages.create(model="claude-sonnet-4-6", max_tokens=4000, thinking=thinking, tools=TOOLS,
                                     messages=[{"role": "user", "content": "read a.py"},
                                               {"role": "assistant", "content": content}, result], **extra)
    with pytest.raises(anthropic.BadRequestError):
        await an.messages.create(model="claude-sonnet-4-6", max_tokens=1500, thinking=thinking,
                                 messages=[{"role": "user", "content": "x"}])  # budget must be < max_tokens


async def test_count_tokens_takes_claude_code_bodies(an: anthropic.AsyncAnthropic) -> None:
    count = await an.messages.count_tokens(
        model="claude-sonnet-4-6", system=SYSTEM, tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "x"}, {"role": "system", "content": "Plan mode."}])  # type: ignore[list-item,typeddict-item]
    assert count.input_tokens > 0


@pytest.mark.parametrize(("model", "fields"), [
    ("o3-mini", {"temperature": 0.2}),
    ("gpt-5", {"max_tokens": 100}),
    ("gpt-5-mini", {"stop": ["x"]}),
    ("gpt-4o", {"reasoning_effort": "low"}),
    ("gpt-4o", {"stop": ["a", "b", "c", "d", "e"]}),
    ("gpt-4o", {"messages": [{"role": "user", "content": "x"},
                             {"role": "assistant", "content": None, "tool_calls": [
                                 {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                             {"role": "tool", "tool_call_id": "c1",
                              "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]}),
])
async def test_openai_sim_refuses_what_the_model_refuses(oa: openai.AsyncOpenAI, model: str, fields: Any) -> None:
    with pytest.raises(openai.BadRequestError):
        await oa.chat.completions.create(**{"model": model, "messages": [{"role": "user", "content": "x"}], **fields})


async def test_openai_sim_takes_what_the_messages_translation_sends(oa: openai.AsyncOpenAI) -> None:
    out = await oa.chat.completions.create(
        model="gpt-5", max_completion_tokens=500, reasoning_effort="high", user="a" * 64, parallel_tool_calls=False,
        tools=[{"type": "function", "function": {"name": "Read", "parameters": TOOLS[0]["input_schema"]}}],
        tool_choice="auto", messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "read"},
                                      {"role": "system", "content": "late"}])
    assert out.choices[0].finish_reason == "tool_calls"

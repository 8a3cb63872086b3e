"""End to end through a real engine and the simulator: the official `anthropic` SDK on a GPT model
(translated to OpenAI Chat Completions), and the official `openai` SDK on Claude with extended thinking."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import openai
import pytest

from iron_tui.core.engine import Engine
from iron_tui.sim import ProviderSim

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
READ = {"name": "Read", "description": "Read a file", "input_schema": {
    "type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}}
CLAUDE_CODE_SYSTEM = [
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "Use the tools.", "cache_control": {"type": "ephemeral"}},
]


@pytest.fixture
async def ant(engine: Engine) -> Any:
    client = anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0)
    yield client
    await client.close()


async def test_anthropic_sdk_on_gpt_non_stream_with_system_prompts_and_images(
    ant: anthropic.AsyncAnthropic, sim: ProviderSim, engine: Engine
) -> None:
    msg = await ant.messages.create(
        model="gpt-4o-mini", max_tokens=200, system=CLAUDE_CODE_SYSTEM,
        messages=[
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "text", "text": "what is in the picture?"}]},
            {"role": "system", "content": "Answer in one line."},  # Claude Code's mid-conversation system
        ],
        metadata={"user_id": "user_" + "f" * 64 + "_account__session_x"},
    )
    assert msg.type == "message" and msg.role == "assistant" and msg.model == "gpt-4o-mini"
    assert msg.id.startswith("msg_") and msg.stop_reason == "end_turn"
    assert msg.content[0].type == "text" and msg.content[0].text
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    sent = sim.requests[-1]
    assert sent.provider == "openai" and sent.path == "/v1/chat/completions"
    assert sent.body is not None
    roles = [m["role"] for m in sent.body["messages"]]
    assert roles == ["system", "user", "system"]
    assert sent.body["messages"][1]["content"][0]["type"] == "image_url"
    assert "cache_control" not in str(sent.body)
    rec = engine.history.recent()[-1] if hasattr(engine.history, "recent") else None
    assert rec is None or rec.translated


async def test_anthropic_sdk_on_gpt_stream_tool_round_trip(ant: anthropic.AsyncAnthropic, sim: ProviderSim) -> None:
    async with ant.messages.stream(model="gpt-4o", max_tokens=300, system=CLAUDE_CODE_SYSTEM, tools=[READ],
                                   messages=[{"role": "user", "content": "read README.md"}]) as s:
        texts = [t async for t in s.text_stream]
        first = await s.get_final_message()
    assert first.stop_reason == "tool_use" and not "".join(texts)
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "Read" and isinstance(call.input, dict) and "file_path" in call.input
    assert sim.requests[-1].body["stream_options"] == {"include_usage": True}  # type: ignore[index]
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0

    async with ant.messages.stream(
        model="gpt-4o", max_tokens=300, system=CLAUDE_CODE_SYSTEM, tools=[READ],
        messages=[
            {"role": "user", "content": "read README.md"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                          "content": [{"type": "text", "text": "# iron-tui"}]}]},
        ]) as s:
        second = await s.get_final_message()
    assert second.stop_reason == "end_turn"
    assert "iron-tui" in "".join(b.text for b in second.content if b.type == "text")
    sent = sim.requests[-1].body
    assert sent is not None and [m["role"] for m in sent["messages"]][-2:] == ["assistant", "tool"]
    assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": "# iron-tui"}


async def test_anthropic_sdk_on_gpt_errors_come_in_anthropic_shape(ant: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as rl:
        await ant.messages.create(model="gpt-4o", max_tokens=50,
                                  messages=[{"role": "user", "content": "hi [[sim:error=429]]"}])
    assert rl.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        await ant.messages.create(model="gpt-4o", max_tokens=50, messages=[{"role": "user", "content": "hi"}],
                                  tools=[{"type": "web_search_20250305", "name": "web_search"}])  # type: ignore[list-item]
    assert "server tool" in str(bad.value) and bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(anthropic.APIStatusError):
        async with ant.messages.stream(model="gpt-4o", max_tokens=50,
                                       messages=[{"role": "user", "content": "hi [[sim:midstream_error]]"}]) as s:
            async for _ in s:
                pass


async def test_count_tokens_for_a_gpt_model_is_an_estimate_marked_so(ant: anthropic.AsyncAnthropic) -> None:
    raw = await ant.messages.with_raw_response.count_tokens(
        model="gpt-4o", system=CLAUDE_CODE_SYSTEM, tools=[READ],
        messages=[{"role": "user", "content": "how many tokens is this?"}])
    assert raw.headers["x-iron-token-count"] == "estimate"
    assert 20 < (await raw.parse()).input_tokens < 200


async def test_openai_sdk_on_claude_with_thinking_tool_loop(engine: Engine, sim: ProviderSim) -> None:
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    tools: Any = [{"type": "function", "function": {"name": "calc", "parameters": {
        "type": "object", "properties": {"expr": {"type": "string"}}}}}]
    messages: list[Any] = [{"role": "user", "content": "what is 27*453?"}]
    try:
        first = await client.chat.completions.create(model="claude-sonnet-4-6", messages=messages, tools=tools,
                                                     reasoning_effort="low", logprobs=True)
        sent = sim.requests[-1].body
        assert sent is not None and sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
        message = first.choices[0].message
        extra = message.model_extra or {}
        assert first.choices[0].finish_reason == "tool_calls" and extra["reasoning_content"]
        assert extra["thinking_blocks"][0]["signature"]
        messages += [message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "12231"}]  # type: ignore[index]
        stream = await client.chat.completions.create(model="claude-sonnet-4-6", messages=messages, tools=tools,
                                                      reasoning_effort="low", stream=True)
        chunks = [c async for c in stream]
        sent = sim.requests[-1].body
        assert sent is not None
        assert sent["messages"][1]["content"][0] == extra["thinking_blocks"][0]  # signed block sent back first
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                            for c in chunks if c.choices)
        assert "12231" in text and reasoning
    finally:
        await client.close()


async def test_aliased_model_gets_the_cap_the_client_sized_for_the_model_it_named(
    make_engine: Any, sim: ProviderSim
) -> None:
    # Claude Code asks 128,000 output tokens for its haiku tier; gpt-4o-mini stops at 16,384.
    engine = await make_engine(models={"claude-haiku-*": "gpt-4o-mini"})
    client = anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0)
    try:
        async with client.messages.stream(model="claude-haiku-5-5", max_tokens=128_000,
                                          messages=[{"role": "user", "content": "hi"}]) as stream:
            msg = await stream.get_final_message()
        assert msg.stop_reason == "end_turn"
        body = sim.requests[-1].body
        assert body is not None and body["model"] == "gpt-4o-mini" and body["max_completion_tokens"] == 16_384
        rec = engine.history.recent()[-1]
        assert rec.client_model == "claude-haiku-5-5" and rec.status == 200
        assert any("lowered to 16384" in w for w in rec.warnings), rec.warnings
        # Naming the model itself, the same cap is the caller's mistake.
        with pytest.raises(anthropic.BadRequestError, match="maximum output"):
            async with client.messages.stream(model="gpt-4o-mini", max_tokens=128_000,
                                              messages=[{"role": "user", "content": "hi"}]) as refused:
                await refused.get_final_message()
    finally:
        await client.close()

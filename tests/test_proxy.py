"""The gateway core through the official SDKs: real proxy port, real simulator port."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import anthropic
import openai
import pytest

from iron_tui.core.engine import Engine
from iron_tui.sim import ProviderSim
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY, EngineFactory


def oai(engine: Engine, token: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=token or engine.token, max_retries=0)


def ant(engine: Engine, token: str | None = None) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=token or engine.token, max_retries=0)


async def test_openai_chat_non_stream(engine: Engine, sim: ProviderSim) -> None:
    client = oai(engine)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello there"}]
    )
    resp = raw.parse()
    assert resp.choices[0].message.content
    assert resp.usage is not None and resp.usage.prompt_tokens > 0
    assert raw.headers["x-iron-request-id"].startswith("req_")
    assert float(raw.headers["x-iron-cost-usd"]) > 0
    assert raw.headers.get("x-request-id"), "upstream request id is returned"
    # The upstream saw the provider key, never the client's token.
    got = sim.requests[-1]
    assert got.headers.get("authorization") == f"Bearer {OPENAI_KEY}" or got.headers.get(
        "Authorization") == f"Bearer {OPENAI_KEY}"
    assert engine.token not in json.dumps(got.headers)


async def test_openai_chat_stream_without_usage_hides_usage_chunk(engine: Engine, sim: ProviderSim) -> None:
    client = oai(engine)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Stream please"}], stream=True
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert all(c.choices for c in chunks), "the client did not ask for usage, so no usage-only chunk"
    # The proxy still asked upstream for usage, and priced the stream.
    sent = sim.requests[-1].body
    assert sent is not None and sent["stream_options"]["include_usage"] is True
    rec = engine.history.recent(1)[0]
    assert rec.output_tokens > 0 and rec.cost_micros and rec.cost_micros > 0
    assert rec.ttft_ms is not None and rec.state == "ok"


async def test_openai_chat_stream_with_usage(engine: Engine) -> None:
    stream = await oai(engine).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Stream please"}], stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert engine.ledger.spent > 0


async def test_anthropic_messages_non_stream_and_stream(engine: Engine, sim: ProviderSim) -> None:
    client = ant(engine)
    msg = await client.messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "Hi"}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    assert msg.content[0].type == "text"
    got = sim.requests[-1]
    hdrs = {k.lower(): v for k, v in got.headers.items()}
    assert hdrs["x-api-key"] == ANTHROPIC_KEY
    assert hdrs["anthropic-beta"] == "prompt-caching-2024-07-31"
    async with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text and final.usage.output_tokens > 0
    rec = engine.history.recent(1)[0]
    assert rec.stream and rec.provider == "anthropic" and rec.output_tokens == final.usage.output_tokens
    assert rec.cost_micros and rec.cost_micros > 0


async def test_models_and_embeddings(engine: Engine) -> None:
    client = oai(engine)
    models = [m.id async for m in client.models.list()]
    assert "gpt-4o-mini" in models
    assert any(m.startswith("claude") for m in models)
    emb = await client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert len(emb.data[0].embedding) > 0
    rec = engine.history.recent(1)[0]
    assert rec.api == "openai.embeddings" and rec.input_tokens > 0


async def test_completions_and_responses_passthrough(engine: Engine) -> None:
    client = oai(engine)
    c = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert c.choices[0].text
    r = await client.responses.create(model="gpt-4o-mini", input="Say hi")
    assert r.usage is not None and r.usage.output_tokens > 0
    assert engine.history.recent(1)[0].cost_micros


async def test_wrong_token_is_sdk_authentication_error(engine: Engine) -> None:
    with pytest.raises(openai.AuthenticationError) as e:
        await oai(engine, token="nope").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert "token" in str(e.value)
    with pytest.raises(anthropic.AuthenticationError) as ea:
        await ant(engine, token="nope").messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert ea.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


async def test_missing_provider_key_names_it(make_engine: EngineFactory, sim: ProviderSim) -> None:
    engine = await make_engine(anthropic_key=None)
    before = len(sim.requests)
    with pytest.raises(anthropic.BadRequestError) as e:
        await ant(engine).messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert "Anthropic key" in str(e.value) and "ANTHROPIC_API_KEY" in str(e.value)
    assert len(sim.requests) == before, "never a call with the wrong key"


async def test_unknown_model_with_two_keys_is_400_naming_it(engine: Engine) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        await oai(engine).chat.completions.create(model="llama-3", messages=[{"role": "user", "content": "x"}])
    assert "llama-3" in str(e.value)


async def test_an_unknown_model_is_a_400_listing_providers_even_with_one_key(make_engine: EngineFactory) -> None:
    engine = await make_engine(anthropic_key=None)
    with pytest.raises(openai.BadRequestError) as err:
        await oai(engine).chat.completions.create(model="my-finetune", messages=[{"role": "user", "content": "x"}])
    msg = err.value.body["message"]  # type: ignore[index]
    assert "my-finetune" in msg and "openai" in msg and "ollama" in msg, "never a silent guess"
    assert err.value.code == "model_not_found"
    # Naming the provider reaches it.
    r = await oai(engine).chat.completions.create(model="openai/my-finetune",
                                                  messages=[{"role": "user", "content": "x"}])
    assert r.choices[0].message.content
    rec = engine.history.recent(1)[0]
    assert rec.provider == "openai" and rec.model == "my-finetune" and rec.client_model == "openai/my-finetune"
    assert not rec.priced and rec.cost_micros is None


async def test_path_prefix_forces_provider(engine: Engine, sim: ProviderSim) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{engine.base_url}/openai/v1/chat/completions",
                         json={"model": "some-model", "messages": [{"role": "user", "content": "x"}]},
                         headers={"authorization": f"Bearer {engine.token}"})
        assert r.status == 200
        assert sim.requests[-1].path == "/v1/chat/completions"
        r = await s.post(f"{engine.base_url}/anthropic/v1/messages",
                         json={"model": "x", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
                         headers={"x-api-key": engine.token, "anthropic-version": "2023-06-01"})
        assert r.status == 200
        assert sim.requests[-1].provider == "anthropic"


async def test_malformed_json_and_body_cap(make_engine: EngineFactory) -> None:
    engine = await make_engine(max_body_bytes=2048)
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{engine.openai_base_url}/chat/completions", data=b'{"model": "gpt-4o",,}',
                         headers={"authorization": f"Bearer {engine.token}", "content-type": "application/json"})
        assert r.status == 400
        body = await r.json()
        assert "line 1 column 20" in body["error"]["message"]
        r = await s.post(f"{engine.base_url}/v1/messages", data=b"x" * 5000,
                         headers={"x-api-key": engine.token, "content-type": "application/json"})
        assert r.status == 413
        body = await r.json()
        assert body["type"] == "error" and body["error"]["type"] == "request_too_large"


async def test_upstream_errors_preserved(engine: Engine, sim: ProviderSim) -> None:
    with pytest.raises(openai.RateLimitError) as e:
        await oai(engine).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "[[sim:error=429]]"}])
    assert e.value.response.headers.get("retry-after") == "1"
    with pytest.raises(anthropic.InternalServerError):
        await ant(engine).messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "[[sim:error=500]]"}])
    failed = [r for r in engine.history.recent(2)]
    assert all(r.state == "error" for r in failed)
    assert engine.ledger.reserved == 0


async def test_upstream_unreachable_is_502_and_timeout_504(make_engine: EngineFactory) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    engine = await make_engine(openai_base_url=f"http://127.0.0.1:{dead}")
    with pytest.raises(openai.APIStatusError) as e:
        await oai(engine).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 502 and "unreachable" in str(e.value)
    engine2 = await make_engine(upstream_timeout=0.3)
    with pytest.raises(openai.APIStatusError) as e2:
        await oai(engine2).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "[[sim:hang]]"}])
    assert e2.value.status_code == 504
    assert engine.ledger.reserved == 0 and engine2.ledger.reserved == 0


async def test_client_disconnect_mid_stream_cancels_upstream(engine: Engine, sim: ProviderSim) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.post(
            f"{engine.openai_base_url}/chat/completions",
            json={"model": "gpt-4o-mini", "stream": True,
                  "messages": [{"role": "user", "content": "[[sim:words=400]] [[sim:slow_stream=20]] go"}]},
            headers={"authorization": f"Bearer {engine.token}"},
        )
        assert r.status == 200
        await r.content.readuntil(b"\n\n")
        r.close()
    cancelled = await sim.wait_cancelled(timeout=5)
    assert cancelled.cancelled
    for _ in range(100):
        if engine.history.recent(1)[0].state != "pending":
            break
        await asyncio.sleep(0.02)
    rec = engine.history.recent(1)[0]
    assert rec.state == "error" and rec.error_code == "client_disconnected"
    assert engine.ledger.reserved == 0
    assert rec.cost_micros is not None and rec.cost_micros > 0, "charged for what was generated"


async def test_health_and_root(engine: Engine) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.get(engine.base_url + "/health")
        assert (await r.json())["status"] == "ok"
        r = await s.get(engine.base_url + "/")
        assert await r.text() == "LlmRouter OK"


async def test_concurrent_requests_all_recorded(engine: Engine) -> None:
    client = oai(engine)

    async def one(i: int) -> str | None:
        r = await client.chat.completions.create(model="gpt-4o-mini",
                                                 messages=[{"role": "user", "content": f"n{i}"}])
        return r.choices[0].message.content

    results = await asyncio.gather(*(one(i) for i in range(40)))
    assert all(results)
    assert len([r for r in engine.history.recent() if r.state == "ok"]) == 40
    assert engine.ledger.reserved == 0

"""`GET /v1/models` and `/v1/models/{id}` as the official SDKs call them: each in its own shape."""

from __future__ import annotations

import anthropic
import openai
import pytest

from iron_tui.core.engine import Engine


async def test_the_anthropic_sdk_lists_and_retrieves_models_in_anthropics_shape(engine: Engine) -> None:
    client = anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0)
    page = await client.models.list()
    ids = [m.id for m in page.data]
    assert any(i.startswith("claude") for i in ids) and any(i.startswith("gpt") for i in ids)
    assert all(m.type == "model" and m.display_name for m in page.data)
    claude = next(i for i in ids if i.startswith("claude"))
    got = await client.models.retrieve(claude)
    assert got.id == claude and got.type == "model"
    gpt = await client.models.retrieve(next(i for i in ids if i.startswith("gpt")))
    assert gpt.display_name == gpt.id
    with pytest.raises(anthropic.NotFoundError) as err:
        await client.models.retrieve("no-such-model")
    assert err.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


async def test_the_openai_sdk_retrieves_any_configured_model(engine: Engine) -> None:
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    ids = [m.id async for m in client.models.list()]
    claude = next(i for i in ids if i.startswith("claude"))
    got = await client.models.retrieve(claude)
    assert got.id == claude and got.owned_by == "anthropic" and got.object == "model"
    with pytest.raises(openai.NotFoundError) as err:
        await client.models.retrieve("no-such-model")
    assert err.value.code == "model_not_found"


async def test_model_routes_need_the_token(engine: Engine) -> None:
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await client.models.retrieve("gpt-4o")

"""Headers the old client sent, and failures of iron-tui's own code, still get answers in the API's shape."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from iron_tui.core.engine import Engine
from iron_tui.sim import ProviderSim

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


async def test_a_forwarded_header_outside_latin_1_reaches_the_provider(engine: Engine, sim: ProviderSim) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.post(engine.openai_base_url + "/chat/completions", json=CHAT,
                         headers={"authorization": f"Bearer {engine.token}", "idempotency-key": "заказ-1"})
        assert r.status == 200 and r.content_type == "application/json"
    assert engine.history.recent(1)[0].state == "ok"


async def test_a_bug_in_the_proxy_is_a_json_500_with_an_honest_record(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("something iron-tui did not expect")

    monkeypatch.setattr(engine.upstream, "post", broken)
    async with aiohttp.ClientSession() as s:
        r = await s.post(engine.openai_base_url + "/chat/completions", json=CHAT,
                         headers={"authorization": f"Bearer {engine.token}"})
        assert r.status == 500
        body = await r.json()
    assert "something iron-tui did not expect" in body["error"]["message"]
    assert body["error"]["code"] == "internal_error"
    rec = engine.history.recent(1)[0]
    assert (rec.state, rec.status, rec.error_code) == ("error", 500, "internal_error")
    assert engine.ledger.reserved == 0  # the reservation was released

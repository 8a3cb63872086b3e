"""Memory bounded by bytes: the in-memory history keeps bodies up to a byte budget; older requests keep
their summary and a marker where the bodies were."""

from __future__ import annotations

import asyncio

import aiohttp

from iron_tui.core.events import RequestRecord
from iron_tui.core.history import History, body_bytes
from tests.conftest import EngineFactory

KB150 = "x" * 150_000


def _record(i: int) -> RequestRecord:
    rec = RequestRecord(id=f"req_{i:06d}", started_at=float(i), method="POST", path="/v1/chat/completions",
                        api="openai.chat", model="claude-sonnet-4-5", provider="anthropic", translated=True)
    rec.request_body = rec.translated_request = KB150[:65536] + str(i)  # what preview() keeps of 150 KB
    rec.upstream_response = rec.translated_response = '{"ok": true}'
    return rec


def test_three_thousand_big_prompts_stay_within_the_budget() -> None:
    budget = 8 << 20
    history = History(size=1000, body_budget=budget)
    for i in range(3000):
        rec = _record(i)
        history.add(rec)
        history.finished(rec, rec.summary())
        assert history.body_bytes <= budget
    kept = [r for r in history.recent() if r.request_body and r.request_body.startswith("x")]
    # The accounting is what the records really hold; the rest hold one shared marker string.
    assert sum(body_bytes(r) for r in kept) == history.body_bytes <= budget
    assert 50 < len(kept) < 70  # ~8 MiB / (2 x 64 KiB)
    newest, oldest = history.recent()[0], history.recent()[-1]
    assert newest.request_body is not None and newest.request_body.endswith("2999")
    assert oldest.request_body is not None and "history_body_bytes" in oldest.request_body
    assert oldest.summary()["model"] == "claude-sonnet-4-5"  # the summary stays whole
    assert len(history) == 1000


def test_a_budget_of_zero_keeps_no_bodies() -> None:
    history = History(size=10, body_budget=0)
    rec = _record(1)
    history.add(rec)
    history.finished(rec, rec.summary())
    assert history.body_bytes == 0 and "not kept in memory" in (rec.request_body or "")


async def test_real_translated_calls_are_held_by_bytes(make_engine: EngineFactory) -> None:
    # Each of these records holds ~0.5 MB of previews: four bodies of 64 K characters, two bytes each
    # (the preview's "…" marker makes the string non-ASCII).
    engine = await make_engine(history_body_bytes=3 << 20)
    body = {"model": "claude-sonnet-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": KB150}]}
    async with aiohttp.ClientSession() as s:
        async def call() -> None:
            async with s.post(engine.openai_base_url + "/chat/completions", json=body,
                              headers={"authorization": f"Bearer {engine.token}"}) as r:
                assert r.status == 200, await r.text()
                await r.read()

        for _ in range(5):
            await asyncio.gather(*(call() for _ in range(6)))
    records = engine.history.recent()
    assert len(records) == 30
    assert engine.history.body_bytes <= 3 << 20
    with_bodies = [r for r in records if r.translated_request and r.translated_request.startswith("{")]
    assert 2 <= len(with_bodies) < 30 and records[0] in with_bodies  # the newest keep theirs
    assert all("history_body_bytes" in (r.request_body or "") for r in records if r not in with_bodies)


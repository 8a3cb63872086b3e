"""Copy as curl (run by a real shell and curl), JSONL and HAR export, replay and edit-and-replay through
the engine's own proxy (budgeted, recorded and priced like any call)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import openai
import pytest

from iron_tui.core.engine import Engine
from iron_tui.core.export import ExportError, curl_command, har_document, jsonl_lines, write_har, write_jsonl
from iron_tui.core.replay import REPLAY_AGENT, ReplayError, budget_check, replay
from iron_tui.sim import ProviderSim
from tests.conftest import EngineFactory


async def one_call(engine: Engine, **kw: Any) -> tuple[dict[str, Any], Any]:
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    try:
        raw = await client.chat.completions.with_raw_response.create(
            **{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "tell me about owls"}], **kw})
        if kw.get("stream"):
            async for _ in raw.parse():
                pass
    finally:
        await client.close()
    rec = engine.history.get(raw.headers["x-iron-request-id"])
    assert rec is not None
    return rec.summary(), rec


async def test_copy_as_curl_runs_in_a_real_shell(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    summary, rec = await one_call(engine, max_tokens=20)
    cmd = curl_command(summary, rec, engine.base_url)
    assert engine.token not in cmd and '"Authorization: Bearer $IRON_TOKEN"'.lower() in cmd.lower()
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", cmd, env={**os.environ, "IRON_TOKEN": engine.token},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    answer = json.loads(out)
    assert answer["choices"][0]["message"]["content"].startswith("Simulated reply to: tell me about owls")
    assert len(engine.history) == 2  # the curl call went through the proxy and was recorded


async def test_copy_as_curl_for_anthropic_messages_uses_x_api_key(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    rec_summary = {"path": "/v1/messages", "stream": True}

    class Rec:
        request_body = json.dumps({"model": "claude-3-5-haiku-latest", "max_tokens": 16, "stream": True,
                                   "messages": [{"role": "user", "content": "it's \"quoted\" $HOME `x`"}]})

    cmd = curl_command(rec_summary, Rec(), engine.base_url)
    assert '"x-api-key: $IRON_TOKEN"' in cmd and "anthropic-version: 2023-06-01" in cmd and " -N " in cmd
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", cmd, env={**os.environ, "IRON_TOKEN": engine.token, "HOME": "/nowhere"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    assert b"event: message_stop" in out
    # The shell took the body literally: no expansion of $HOME or the backticks.
    assert "it's \\\"quoted\\\" $HOME `x`" in (engine.history.recent(1)[0].request_body or "")


def test_a_cut_or_missing_body_is_not_offered_as_curl() -> None:
    class Cut:
        request_body = '{"model": "gpt-4o", "messages": [\n… [truncated: 5 more bytes]'

    with pytest.raises(ExportError, match="cut at the preview limit"):
        curl_command({"path": "/v1/chat/completions"}, Cut(), "http://127.0.0.1:1")
    with pytest.raises(ExportError, match="not available"):
        curl_command({"path": "/v1/chat/completions"}, None, "http://127.0.0.1:1")


async def test_jsonl_and_har_exports(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    first = await one_call(engine)
    second = await one_call(engine, stream=True)
    past = ({**first[0], "id": "req_from_disk"}, None)  # a call whose bodies are gone: summary only
    calls = [second, past, first]

    n = write_jsonl(tmp_path / "calls.jsonl", calls)
    lines = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert n == 3 and len(lines) == 3
    assert [x["id"] for x in lines] == [first[0]["id"], "req_from_disk", second[0]["id"]]  # oldest first
    assert "owls" in lines[0]["request_body"] and "Simulated reply" in lines[0]["response_body"]
    assert "request_body" not in lines[1]
    assert lines[2]["response_body"].startswith("data: ")
    assert list(jsonl_lines([])) == []

    write_har(tmp_path / "calls.har", calls, engine.base_url)
    har = json.loads((tmp_path / "calls.har").read_text())
    assert har == har_document(calls, engine.base_url)
    log = har["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "iron-tui" and len(log["entries"]) == 3
    e = log["entries"][0]
    for key in ("startedDateTime", "time", "request", "response", "cache", "timings"):
        assert key in e
    assert e["request"]["url"] == engine.base_url + "/v1/chat/completions"
    assert e["request"]["postData"]["mimeType"] == "application/json" and "owls" in e["request"]["postData"]["text"]
    assert {"name": "authorization", "value": "Bearer $IRON_TOKEN"} in e["request"]["headers"]
    assert e["response"]["status"] == 200 and "Simulated reply" in e["response"]["content"]["text"]
    assert all(v >= 0 for v in e["timings"].values()) and e["_iron"]["id"] == first[0]["id"]
    assert log["entries"][2]["response"]["content"]["mimeType"] == "text/event-stream"
    assert "postData" not in log["entries"][1]["request"]
    assert engine.token not in (tmp_path / "calls.har").read_text()


async def test_replay_goes_through_the_proxy_as_the_replay_agent(make_engine: EngineFactory,
                                                                 sim: ProviderSim) -> None:
    engine = await make_engine(budget=1.0)
    summary, rec = await one_call(engine)
    spent = engine.ledger.spent
    assert rec.request_body is not None
    result = await replay(engine, rec.request_body, summary)
    assert result.status == 200 and result.request_id and result.request_id != summary["id"]
    assert "Simulated reply to: tell me about owls" in result.answer
    again = engine.history.get(result.request_id)
    assert again is not None and again.agent_id == REPLAY_AGENT and again.state == "ok"
    assert again.cost_micros and engine.ledger.spent == spent + again.cost_micros  # priced and charged

    edited = json.loads(rec.request_body)
    edited["messages"][0]["content"] = "tell me about ravens instead"
    result = await replay(engine, json.dumps(edited), summary)
    assert result.status == 200 and "ravens" in result.answer
    assert "ravens" in json.dumps(sim.requests[-1].body)


async def test_replay_is_held_to_the_budget(make_engine: EngineFactory) -> None:
    engine = await make_engine(budget=0.0001)
    summary, rec = await one_call(engine, max_tokens=5)
    big = json.loads(rec.request_body or "{}")
    big["max_tokens"] = 16_000  # within gpt-4o-mini's 16,384; not even a fitted minimal answer fits
    check = budget_check(engine, json.dumps(big), summary)
    assert not check.fits and check.worst_case_micros and check.available_micros is not None
    assert check.worst_case_micros > check.available_micros
    result = await replay(engine, json.dumps(big), summary)
    assert result.status == 402 and "insufficient_budget" in result.answer
    refused = engine.history.get(result.request_id or "")
    assert refused is not None and refused.agent_id == REPLAY_AGENT and refused.status == 402


@pytest.mark.parametrize(("body", "message"), [("{nope", "not valid JSON"), ("[1]", "JSON object"),
                                               ('{"messages": []}', "needs a 'model'")])
async def test_replay_refuses_a_broken_edit(make_engine: EngineFactory, body: str, message: str) -> None:
    engine = await make_engine()
    with pytest.raises(ReplayError, match=message):
        await replay(engine, body, {"path": "/v1/chat/completions"})
    assert len(engine.history) == 0  # nothing was sent

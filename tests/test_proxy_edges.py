"""Edge cases of the request path: hostile input, cut streams priced fairly, odd SSE framing."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import anthropic
import openai
import pytest
from aiohttp import web

from iron_tui.core.engine import Engine
from iron_tui.core.proxy.sse import SSEParser
from iron_tui.sim import ProviderSim
from tests.conftest import EngineFactory


def test_sse_crlf_split_between_chunks_is_one_event() -> None:
    p = SSEParser()
    assert p.feed(b"event: message_start\r") == []
    events = p.feed(b'\ndata: {"a":1}\r\n\r\n')
    assert [(e, d) for e, d, _ in events] == [("message_start", '{"a":1}')]


def test_sse_last_event_without_blank_line_is_flushed() -> None:
    p = SSEParser()
    assert p.feed(b"data: [DONE]\n") == []
    assert [(e, d) for e, d, _ in p.flush()] == [("message", "[DONE]")]
    assert p.flush() == []


async def test_deeply_nested_json_is_a_400(engine: Engine) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.post(engine.openai_base_url + "/chat/completions", data=b"[" * 100_000,
                         headers={"authorization": f"Bearer {engine.token}"})
        assert r.status == 400
        assert "nested too deeply" in (await r.json())["error"]["message"]


async def test_undecodable_token_bytes_are_a_401(engine: Engine) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", engine.port)
    body = b'{"model":"gpt-4o","messages":[]}'
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nx-api-key: \xff\xfe\r\n" % engine.port
                 + b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    head = await reader.readuntil(b"\r\n")
    writer.close()
    assert b" 401 " in head


async def test_cut_openai_stream_is_charged_for_what_was_relayed(engine: Engine) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.post(engine.openai_base_url + "/chat/completions",
                         json={"model": "gpt-4o", "stream": True, "max_tokens": 4000,
                               "messages": [{"role": "user", "content": "[[sim:words=400]] [[sim:slow_stream=5]] go"}]},
                         headers={"authorization": f"Bearer {engine.token}"})
        got = b""
        while got.count(b"\n\n") < 40:
            got += await r.content.readany()
        r.close()
    await _settled(engine)
    rec = engine.history.recent(1)[0]
    relayed_words = got.count(b'"content"')
    assert rec.error_code == "client_disconnected" and rec.cost_estimated
    assert 0 < rec.output_tokens <= 4 * relayed_words + 10, (rec.output_tokens, relayed_words)
    assert engine.ledger.reserved == 0


async def test_cut_anthropic_stream_counts_more_than_the_first_token(engine: Engine) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.post(engine.base_url + "/v1/messages",
                         json={"model": "claude-sonnet-4-6", "stream": True, "max_tokens": 2000,
                               "messages": [{"role": "user", "content": "[[sim:words=600]] [[sim:slow_stream=5]] go"}]},
                         headers={"x-api-key": engine.token, "anthropic-version": "2023-06-01"})
        got = b""
        while got.count(b"content_block_delta") < 60:
            got += await r.content.readany()
        r.close()
    await _settled(engine)
    rec = engine.history.recent(1)[0]
    assert rec.error_code == "client_disconnected" and rec.cost_estimated
    assert rec.output_tokens > 10, "message_start's output_tokens=1 is not what was generated"
    assert rec.output_tokens <= 2000


async def test_streamed_responses_api_is_recorded_ok_with_real_usage(engine: Engine) -> None:
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    stream = await client.responses.create(model="gpt-4o-mini", input="hello", stream=True)
    final = None
    async for ev in stream:
        if ev.type == "response.completed":
            final = ev.response
    assert final is not None and final.usage is not None
    rec = engine.history.recent(1)[0]
    assert rec.state == "ok" and not rec.cost_estimated
    assert rec.output_tokens == final.usage.output_tokens


async def test_streams_cut_by_shutdown_are_recorded_as_shutdown(make_engine: EngineFactory,
                                                                sim: ProviderSim) -> None:
    engine = await make_engine()
    finished: list[dict] = []
    sub = engine.bus.subscribe()
    async with aiohttp.ClientSession() as s:
        r = await s.post(engine.openai_base_url + "/chat/completions",
                         json={"model": "gpt-4o", "stream": True,
                               "messages": [{"role": "user", "content": "[[sim:words=2000]] [[sim:slow_stream=20]] go"}]},
                         headers={"authorization": f"Bearer {engine.token}"})
        await r.content.readuntil(b"\n\n")
        stopping = asyncio.create_task(engine.stop())
        body = b""
        try:
            while chunk := await r.content.readany():
                body += chunk
        except aiohttp.ClientPayloadError:
            pass  # the chunked body is cut by the shutdown; what arrived before is what matters
        await stopping
    for ev in sub.drain():
        if getattr(ev, "kind", "") == "request_finished":
            finished.append(ev.request)  # type: ignore[attr-defined]
    assert finished and finished[-1]["state"] == "error"
    assert finished[-1]["error"] == "iron-tui shut down mid-stream"
    assert b"shut down" in body, "the client is told why the stream ended"
    events = [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: {")]
    assert "error" in events[-1]


async def _settled(engine: Engine) -> None:
    for _ in range(200):
        if engine.proxy.inflight == 0 and engine.ledger.reserved == 0:
            return
        await asyncio.sleep(0.02)


async def test_configured_key_never_stored_even_if_upstream_echoes_it(make_engine: EngineFactory,
                                                                      sim: ProviderSim) -> None:
    odd_key = "org-key-1234567890abcdef"  # not shaped like sk-…: only exact matching can catch it
    sim.settings.openai_keys.add(odd_key)
    engine = await make_engine(openai_key=odd_key)
    sim.faults.push(status=400, body={"error": {"message": f"key {odd_key} is not allowed here",
                                                "type": "invalid_request_error"}})
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    try:
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    except openai.BadRequestError as exc:
        assert odd_key not in str(exc) and "[redacted]" in str(exc), "the agent never sees the real key"
    else:
        raise AssertionError("expected the upstream 400")
    rec = engine.history.recent(1)[0]
    stored = json.dumps(rec.summary()) + (rec.upstream_response or "") + (rec.error or "")
    assert rec.error and "[redacted]" in rec.error
    assert odd_key not in stored


async def test_response_without_usage_is_charged_an_estimate_not_zero(engine: Engine) -> None:
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "[[sim:no_usage]] hi"}])
    rec = engine.history.recent(1)[0]
    assert rec.state == "ok" and rec.cost_estimated
    assert rec.cost_micros and rec.cost_micros > 0 and rec.output_tokens > 0


async def _post_in_two_parts(engine: Engine, body: bytes) -> tuple[int, bytes]:
    """A client that sends its body in two parts 50 ms apart: the proxy sees the headers first."""
    reader, writer = await asyncio.open_connection("127.0.0.1", engine.port)
    writer.write(f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{engine.port}\r\nauthorization: Bearer {engine.token}\r\n"
                 f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                 + body[:10])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(body[10:])
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    data = await reader.readexactly(length)
    writer.close()
    return int(head.split()[1]), data


async def test_a_body_that_arrives_in_parts_is_read_whole_and_capped(make_engine: EngineFactory) -> None:
    engine = await make_engine(max_body_bytes=2048)
    ok = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, data = await _post_in_two_parts(engine, ok)
    assert status == 200 and json.loads(data)["object"] == "chat.completion"
    big = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 5000}]}).encode()
    status, data = await _post_in_two_parts(engine, big)
    assert status == 413 and json.loads(data)["error"]["code"] == "request_too_large"


async def test_an_upstream_error_page_that_is_not_json_reaches_the_sdk_in_its_own_shape(
        make_engine: EngineFactory) -> None:
    # A gateway in front of the provider (or a provider having a bad day) answering with an HTML page: the
    # native path relays the provider's JSON errors as they are, but this one the SDK could not read.
    async def error_page(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", error_page)
    app.router.add_post("/v1/messages", error_page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        engine = await make_engine(openai_base_url=url, anthropic_base_url=url)
        oa = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
        with pytest.raises(openai.APIStatusError) as oexc:
            await oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        assert oexc.value.status_code == 502
        assert isinstance(oexc.value.body, dict) and "502 Bad Gateway" in oexc.value.body["message"]
        an = anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as aexc:
            await an.messages.create(model="claude-haiku-4-5", max_tokens=16,
                                     messages=[{"role": "user", "content": "x"}])
        assert aexc.value.status_code == 502
        body = aexc.value.body
        assert isinstance(body, dict) and body["type"] == "error" and "502 Bad Gateway" in body["error"]["message"]
        await oa.close()
        await an.close()
        assert [(r.status, r.error_code) for r in engine.history.recent(2)] == [(502, "502"), (502, "502")]
        assert engine.ledger.reserved == 0
    finally:
        await runner.cleanup()

"""What the one pipeline guarantees on every path, against an upstream scripted byte by byte (a broken or
careless provider): no provider key in any byte the client gets, streams that always end cleanly, and
honest records."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from iron_tui.config import Settings
from iron_tui.core.clock import SequentialIds
from iron_tui.core.engine import Engine
from tests.upstream_server import RawServer

OPENAI_KEY = "sk-proj-" + "Q7x9LmN2pR4tV6wY8zA1bC3dE5fG7hJ9kL0mN2pQ4rS6"
ANTHROPIC_KEY = "sk-ant-api03-" + "Zq8Wm3Xn7Yb2Vc6Ud1Te5Sf9Rg4Qh0Pi8Oj3Nk7Ml2"
KEYS = (OPENAI_KEY.encode(), ANTHROPIC_KEY.encode())

Answer = Callable[[RawServer, bytes, asyncio.StreamWriter], Awaitable[bool]]


async def _engine(url: str, tmp_path: Path, **kw: Any) -> Engine:
    settings = Settings(port=0, openai_key=OPENAI_KEY, anthropic_key=ANTHROPIC_KEY, openai_base_url=url,
                        anthropic_base_url=url, data_dir=tmp_path / "data", token="test-token", **kw)
    engine = Engine(settings, ids=SequentialIds())
    await engine.start()
    return engine


def _chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)


def _sse_head(extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            + extra + b"\r\n")


def _json(status: int, body: Any, extra: bytes = b"") -> bytes:
    data = json.dumps(body).encode()
    return b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (
        status, len(data), extra, data)


def _events(*objs: tuple[str | None, Any]) -> list[bytes]:
    out = []
    for name, obj in objs:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        out.append((b"event: " + name.encode() + b"\n" if name else b"") + b"data: " + data + b"\n\n")
    return out


MSG_START = ("message_start", {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
    "stop_reason": None, "usage": {"input_tokens": 12, "output_tokens": 1}}})
BLOCK_START = ("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}})


def _text(t: str) -> tuple[str, Any]:
    return ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": t}})


ANTHROPIC_END = [("content_block_stop", {"type": "content_block_stop", "index": 0}),
                 ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                    "usage": {"output_tokens": 5}}),
                 ("message_stop", {"type": "message_stop"})]


def _chat_chunk(content: str) -> tuple[None, Any]:
    return (None, {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                   "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]})


def _server(*writes: bytes, end: bytes | None = b"0\r\n\r\n", hold: bool = False,
            pause: float = 0.05) -> Answer:
    """An answer that writes each piece with a pause between (so each is its own TCP segment)."""
    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        try:
            for i, piece in enumerate(writes):
                if i:
                    await asyncio.sleep(pause)
                w.write(piece)
                await w.drain()
            if end is not None:
                w.write(end)
                await w.drain()
            if hold:
                await asyncio.sleep(60)  # keep the connection open after the final event
        except (asyncio.CancelledError, ConnectionError):
            return False
        return end is not None
    return answer


async def _post(engine: Engine, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as c:
        return await c.post(engine.base_url + path, json=body,
                            headers={"authorization": "Bearer test-token", **headers})


def _no_key(data: bytes) -> None:
    for key in KEYS:
        assert key not in data


def _sequence(*answers: bytes) -> Answer:
    """One whole answer per request, in order."""
    queue = list(answers)

    async def answer(srv: RawServer, req: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(queue.pop(0))
        await w.drain()
        return True
    return answer


async def _last(engine: Engine) -> dict[str, Any]:
    for _ in range(200):
        recs = engine.history.recent(1)
        if recs and recs[0].state != "pending" and engine.proxy.inflight == 0:
            return recs[0].summary() | {"error_code": recs[0].error_code}
        await asyncio.sleep(0.01)
    raise AssertionError("no finished record")


CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
CLAUDE_VIA_OPENAI = {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


# --- keys ------------------------------------------------------------------------------------------


async def test_a_200_body_holding_the_key_reaches_the_client_without_it(tmp_path: Path) -> None:
    body = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"your key is {OPENAI_KEY}"},
                         "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}
    async with RawServer(_server(_json(200, body), end=None)) as srv:
        engine = await _engine(srv.url, tmp_path)
        try:
            r = await _post(engine, "/v1/chat/completions", CHAT)
        finally:
            await engine.stop()
    assert r.status_code == 200
    _no_key(r.content)
    assert r.json()["choices"][0]["message"]["content"] == "your key is [redacted]"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_translated_upstream_error_echoing_the_key_is_redacted(tmp_path: Path, stream: bool) -> None:
    err = {"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key: {ANTHROPIC_KEY}"}}
    answer = (_server(_sse_head(), *[_chunked(e) for e in _events(MSG_START, ("error", err))])
              if stream else _server(_json(401, err), end=None))
    async with RawServer(answer) as srv:
        engine = await _engine(srv.url, tmp_path)
        try:
            r = await _post(engine, "/v1/chat/completions", {**CLAUDE_VIA_OPENAI, "stream": stream})
            rec = await _last(engine)
        finally:
            await engine.stop()
    _no_key(r.content)
    assert b"invalid x-api-key" in r.content, "the client still learns what went wrong"
    assert rec["state"] == "error" and ANTHROPIC_KEY not in (rec["error"] or "")


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_native_mid_stream_error_events_echoing_the_key_are_redacted(tmp_path: Path, api: str) -> None:
    if api == "openai":
        events = _events(_chat_chunk("Hel"), (None, {"error": {"message": f"bad key {OPENAI_KEY}", "type": "x"}}))
        path, body = "/v1/chat/completions", {**CHAT, "stream": True}
    else:
        events = _events(MSG_START, BLOCK_START, _text("Hel"),
                         ("error", {"type": "error", "error": {"type": "api_error", "message": f"k={ANTHROPIC_KEY}"}}))
        path, body = "/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 20, "stream": True,
                                      "messages": [{"role": "user", "content": "hi"}]}
    async with RawServer(_server(_sse_head(), *[_chunked(e) for e in events])) as srv:
        engine = await _engine(srv.url, tmp_path)
        try:
            r = await _post(engine, path, body)
            rec = await _last(engine)
        finally:
            await engine.stop()
    _no_key(r.content)
    assert b"[redacted]" in r.content
    assert rec["state"] == "error"


async def test_a_key_split_across_two_stream_chunks_never_reaches_the_client(tmp_path: Path) -> None:
    whole = b"".join(_events(_chat_chunk(f"look: {OPENAI_KEY} done"), (None, b"[DONE]")))
    cut = whole.index(OPENAI_KEY.encode()) + 20
    async with RawServer(_server(_sse_head(), _chunked(whole[:cut]), _chunked(whole[cut:]))) as srv:
        engine = await _engine(srv.url, tmp_path)
        try:
            r = await _post(engine, "/v1/chat/completions", {**CHAT, "stream": True,
                                                            "stream_options": {"include_usage": True}})
        finally:
            await engine.stop()
    _no_key(r.content)
    assert r.content == whole.replace(OPENAI_KEY.encode(), b"[redacted]")


# --- streams end cleanly -----------------------------------------------------------------------------


def _sse_objects(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in data.decode().splitlines()
            if line.startswith("data: {")]


async def test_a_malformed_upstream_event_ends_the_translated_stream_with_an_error_and_is_charged(
        tmp_path: Path) -> None:
    events = [*_events(MSG_START, BLOCK_START, _text("Hello there")), b"event: content_block_delta\ndata: {oops\n\n"]
    async with RawServer(_server(_sse_head(), *[_chunked(e) for e in events])) as srv:
        engine = await _engine(srv.url, tmp_path)
        try:
            r = await _post(engine, "/v1/chat/completions", {**CLAUDE_VIA_OPENAI, "stream": True})
            rec = await _last(engine)
        finally:
            await engine.stop()
    assert r.status_code == 200 and b"HTTP/1.1" not in r.content, "no second response inside the stream"
    objs = _sse_objects(r.content)
    assert objs[1]["choices"][0]["delta"]["content"] == "Hello there"
    assert "cannot translate" in objs[-1]["error"]["message"]
    assert rec["state"] == "error" and rec["error_code"] == "upstream_format"
    assert rec["input_tokens"] == 12 and rec["cost_usd"] and rec["cost_usd"] > 0, "the relayed part is charged"


@pytest.mark.parametrize("translated", [False, True])
async def test_an_upstream_that_dies_mid_stream_ends_the_clients_stream_cleanly(
        tmp_path: Path, translated: bool) -> None:
    if translated:
        events, body = _events(MSG_START, BLOCK_START, _text("Hi")), {**CLAUDE_VIA_OPENAI, "stream": True}
    else:
        events, body = _events(_chat_chunk("Hi")), {**CHAT, "stream": True}
    # The connection closes without the chunked body's terminator.
    async with RawServer(_server(_sse_head(), *[_chunked(e) for e in events], end=None)) as srv:
        engine = await _engine(srv.url, tmp_path)
        try:
            r = await _post(engine, "/v1/chat/completions", body)  # httpx raises if the body is cut
            rec = await _last(engine)
        finally:
            await engine.stop()
    objs = _sse_objects(r.content)
    assert "stream broke" in objs[-1]["error"]["message"]
    assert rec["state"] == "error" and rec["status"] == 200 and rec["cost_usd"] > 0


async def test_a_stream_whose_upstream_holds_the_connection_after_done_ends_for_the_client_and_is_ok(
        tmp_path: Path) -> None:
    events = _events(_chat_chunk("Hi"), (None, {"id": "c1", "choices": [], "usage": {
        "prompt_tokens": 3, "completion_tokens": 1}}), (None, b"[DONE]"))
    async with RawServer(_server(_sse_head(), *[_chunked(e) for e in events], end=None, hold=True)) as srv:
        engine = await _engine(srv.url, tmp_path)
        try:
            r = await _post(engine, "/v1/chat/completions", {**CHAT, "stream": True})
            rec = await _last(engine)
        finally:
            await engine.stop()
    assert r.content.endswith(b"data: [DONE]\n\n")
    assert rec["state"] == "ok" and rec["status"] == 200 and rec["output_tokens"] == 1


async def test_shutdown_ends_every_stream_in_flight_with_an_error_event_and_a_proper_end(
        tmp_path: Path) -> None:
    from iron_tui.sim import ProviderSim, SimSettings

    sim = ProviderSim(SimSettings(openai_keys={OPENAI_KEY}, anthropic_keys={ANTHROPIC_KEY}))
    await sim.start()
    engine = await _engine(sim.url, tmp_path)
    slow = "[[sim:words=3000]] [[sim:slow_stream=20]] go"
    bodies = [{"model": m, "stream": True, "max_tokens": 4000, "messages": [{"role": "user", "content": slow}]}
              for m in ("gpt-4o", "claude-sonnet-4-5") * 4]
    got: list[bytes] = []

    async def one(c: httpx.AsyncClient, body: dict[str, Any], started: asyncio.Event) -> None:
        async with c.stream("POST", engine.base_url + "/v1/chat/completions", json=body,
                            headers={"authorization": "Bearer test-token"}) as r:
            data = b""
            async for chunk in r.aiter_bytes():  # raises RemoteProtocolError if the body is cut
                data += chunk
                started.set()
            got.append(data)

    try:
        async with httpx.AsyncClient(timeout=30) as c:
            flags = [asyncio.Event() for _ in bodies]
            tasks = [asyncio.create_task(one(c, b, f)) for b, f in zip(bodies, flags, strict=True)]
            await asyncio.wait_for(asyncio.gather(*(f.wait() for f in flags)), 30)
            await engine.stop()
            await asyncio.gather(*tasks)
    finally:
        await engine.stop()
        await sim.stop()
    assert len(got) == len(bodies)
    for data in got:
        assert "shut down" in _sse_objects(data)[-1]["error"]["message"]


# --- headers, routes and query strings --------------------------------------------------------------


async def test_the_providers_request_id_is_returned_as_x_request_id(tmp_path: Path) -> None:
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
           "usage": {"input_tokens": 3, "output_tokens": 1}}
    async with RawServer(_server(_json(200, msg, b"request-id: req_011CUpstream\r\n"), end=None)) as srv:
        engine = await _engine(srv.url, tmp_path)
        try:
            r = await _post(engine, "/v1/chat/completions", CLAUDE_VIA_OPENAI)
        finally:
            await engine.stop()
    assert r.headers["x-request-id"] == "req_011CUpstream"
    assert r.headers["x-iron-request-id"]


async def test_query_strings_are_kept_on_the_way_upstream(tmp_path: Path) -> None:
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
           "usage": {"input_tokens": 3, "output_tokens": 1}}
    async with RawServer(_sequence(_json(200, msg), _json(200, {"input_tokens": 7}))) as srv:
        engine = await _engine(srv.url, tmp_path)
        try:
            body = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
            async with httpx.AsyncClient(timeout=30) as c:
                h = {"x-api-key": "test-token", "anthropic-version": "2023-06-01"}
                await c.post(engine.base_url + "/v1/messages?beta=true", json=body, headers=h)
                r = await c.post(engine.base_url + "/v1/messages/count_tokens?beta=true", json=body, headers=h)
        finally:
            await engine.stop()
    lines = [req.split(b"\r\n", 1)[0] for req in srv.requests]
    assert lines == [b"POST /v1/messages?beta=true HTTP/1.1", b"POST /v1/messages/count_tokens?beta=true HTTP/1.1"]
    assert r.json() == {"input_tokens": 7}

"""No provider key in any sink outside the client path: log lines (text and JSON), feed messages, the
history (memory and disk), the analytics outbox, every stored file, and tracebacks. A key is planted
where each producer gets its text: the model a client names, the agent id it sends, an upstream error
that echoes the key, a notice quoting an exception, a pasted prompt."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from iron_tui.config import Settings
from iron_tui.core import log_redaction
from iron_tui.core.engine import Engine
from iron_tui.core.events import Notice
from iron_tui.headless import format_event
from iron_tui.sim import ProviderSim, SimSettings
from iron_tui.sim.control_server import ControlSim, SimAgent

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-proj-PLANTEDkey0123456789abcdefghijklmnopQRST"
ANTHROPIC = "sk-ant-sim-anthropic"
IC_TOKEN = "ic_sinks_token_0123456789abcdef"


@pytest.fixture
async def upstream() -> AsyncIterator[ProviderSim]:
    s = ProviderSim(SimSettings(openai_keys={KEY}, anthropic_keys={ANTHROPIC}))
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


async def test_a_planted_key_reaches_no_sink(upstream: ProviderSim, tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with ControlSim([SimAgent(IC_TOKEN)]) as control:
        await control.down()  # events stay in the outbox, where we can look for the key
        engine = Engine(Settings(port=0, openai_key=KEY, anthropic_key=ANTHROPIC, openai_base_url=upstream.url,
                                 anthropic_base_url=upstream.url, server_url=control.url, token=IC_TOKEN,
                                 data_dir=data, sync_interval=3600))
        sub = engine.bus.subscribe(10_000, name="test")
        feed: list[str] = []
        answers: list[bytes] = []
        async with engine:
            auth = {"authorization": f"Bearer {engine.token}"}
            async with aiohttp.ClientSession() as s:
                ws = await s.ws_connect(engine.feed_url, headers=auth)
                # 1. the model a client names; 2. the agent id it sends; 3. a pasted prompt
                for model, agent in ((f"gpt-4o-{KEY}", None), ("gpt-4o-mini", f"agent-{KEY}")):
                    headers = {**auth, **({"x-iron-agent-id": agent} if agent else {})}
                    async with s.post(engine.openai_base_url + "/chat/completions", headers=headers, json={
                            "model": model, "messages": [{"role": "user", "content": f"my key is {KEY}"}]}) as r:
                        answers.append(await r.read())
                # 4. an upstream error that echoes the key, native and translated
                for model in ("gpt-4o-mini", "claude-sonnet-4-5"):
                    upstream.faults.push(status=400, body={"error": {"message": f"bad key {KEY}", "type": "x"}})
                    async with s.post(engine.openai_base_url + "/chat/completions", headers=auth, json={
                            "model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}) as r:
                        answers.append(await r.read())
                # 5. a notice quoting an exception
                engine.bus.publish(Notice(engine.clock.now(), "error", f"history not saved: {KEY}"))
                async with asyncio.timeout(30):
                    while not any("history not saved" in m for m in feed) and len(engine.history) < 4:
                        msg = await ws.receive(timeout=30)
                        feed.append(msg.data)
                    while True:  # what is left in flight for the feed
                        try:
                            feed.append((await ws.receive(timeout=0.5)).data)
                        except TimeoutError:
                            break
                await ws.close()
            records = [repr(r) for r in engine.history.recent()]
            events = await sub.get_batch(10_000)
        assert len(records) == 4 and len(feed) > 8
    lines = [format_event(e, fmt) or "" for e in events for fmt in ("text", "json")]
    assert any("history not saved" in x for x in lines)
    for sink, texts in (("log lines", lines), ("feed", feed), ("records", records),
                        ("client answers", [a.decode() for a in answers])):
        leaked = [t for t in texts if "PLANTEDkey" in t]
        assert not leaked, f"{sink}: {leaked[:2]}"
    stored = {p.name: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert "outbox.sqlite3" in stored and "history.sqlite3" in stored
    for name, content in stored.items():
        assert b"PLANTEDkey" not in content, f"the key is stored in {name}"


def test_log_records_and_tracebacks_are_redacted() -> None:
    from iron_tui.core.redact import register_secret

    unprefixed = "gsk_unprefixedSECRET0123456789"
    register_secret(unprefixed)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(log_redaction.RedactingFormatter("%(message)s"))
    log = logging.getLogger("test.sinks")
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"upstream said: invalid key {KEY} / {unprefixed}\x1b]0;title\x07")
        except RuntimeError:
            log.exception("call failed for %s", unprefixed)
    finally:
        log.removeHandler(handler)
    text = out.getvalue()
    assert "Traceback" in text and "RuntimeError" in text
    assert "PLANTEDkey" not in text and unprefixed not in text and "\x1b" not in text


def test_an_uncaught_traceback_in_a_real_process_is_redacted(tmp_path: Path) -> None:
    code = ("from iron_tui.core import log_redaction; from iron_tui.core.redact import register_secret; "
            f"log_redaction.install(); register_secret({KEY!r}); "
            f"raise ValueError('the provider echoed ' + {KEY!r})")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ValueError: the provider echoed [redacted]" in proc.stderr
    assert "PLANTEDkey" not in proc.stderr

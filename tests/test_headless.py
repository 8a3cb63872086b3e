"""Headless runner behaviour that needs a real process: a stdout nobody reads must not stall calls."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp

from iron_tui.sim import ProviderSim
from tests.conftest import OPENAI_KEY


async def test_unread_stdout_never_stalls_the_proxy(sim: ProviderSim, tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--token", "t", "--openai-key", OPENAI_KEY,
        "--openai-base-url", sim.url, "--data-dir", str(tmp_path), "--log-format", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        ready = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert ready.startswith("iron-tui ready: ")
        base = ready.split()[2]
        # From here on nobody reads stdout: ~1,500 log lines overflow the 64 KiB pipe many times.
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        async with aiohttp.ClientSession() as s:
            async def one() -> int:
                async with s.post(base + "/chat/completions", json=body,
                                  headers={"authorization": "Bearer t"}) as r:
                    await r.read()
                    return r.status

            for _ in range(15):
                statuses = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(100))), 30)
                assert set(statuses) == {200}
        proc.send_signal(signal.SIGTERM)
        # Draining stdout now lets it finish; it must exit cleanly.
        await asyncio.wait_for(proc.stdout.read(), 30)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

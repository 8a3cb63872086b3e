"""Real iron-tui processes on one data dir: one daily budget shared by two of them, and a process killed
mid-stream whose call the next start charges (its web searches included) and reports exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import openai

from iron_tui.core.estimate import estimate_output_tokens_from_text
from iron_tui.core.pricing import Pricer
from iron_tui.core.token_usage import TokenUsage
from iron_tui.sim import ProviderSim
from iron_tui.sim.control_server import ControlSim, SimAgent
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY

IC_TOKEN = "ic-money-test"
HANG_GUARD_S = 60


@asynccontextmanager
async def iron_tui(sim: ProviderSim, data_dir: Path, *extra: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--token", IC_TOKEN,
        "--openai-key", OPENAI_KEY, "--anthropic-key", ANTHROPIC_KEY, "--openai-base-url", sim.url,
        "--anthropic-base-url", sim.url, "--data-dir", str(data_dir), "--log-format", "json", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), HANG_GUARD_S)).decode()
            assert line, "iron-tui exited before it was ready"
            if line.startswith("iron-tui ready: "):
                break
        drain = asyncio.ensure_future(proc.stdout.read())  # nobody blocks on a full pipe
        yield proc, line.split()[2]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), HANG_GUARD_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        drain.cancel()


def db_rows(data_dir: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    con = sqlite3.connect(f"file:{data_dir / 'state.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


async def test_two_processes_never_spend_past_one_daily_budget(sim: ProviderSim, tmp_path: Path) -> None:
    data = tmp_path / "data"
    budget = ("--budget", "0.05", "--budget-period", "day")
    sim.settings.latency_ms = 10
    costs: list[int] = []
    statuses: dict[str, list[int]] = {"a": [], "b": []}
    async with iron_tui(sim, data, *budget) as (_pa, url_a), iron_tui(sim, data, *budget) as (_pb, url_b), \
            aiohttp.ClientSession() as s:
        async def one(name: str, url: str, i: int) -> None:
            body = {"model": "gpt-4o", "max_tokens": 200,
                    "messages": [{"role": "user", "content": f"[[sim:words=150]] call {i}"}]}
            async with s.post(url + "/chat/completions", json=body,
                              headers={"authorization": f"Bearer {IC_TOKEN}"}) as r:
                await r.read()
                statuses[name].append(r.status)
                if r.status == 200:
                    costs.append(round(float(r.headers["x-iron-cost-usd"]) * 1_000_000))

        idle_rounds = 0
        for round_ in range(60):  # until two rounds in a row admit nothing anywhere
            await asyncio.wait_for(asyncio.gather(*(one(n, u, round_ * 10 + k) for k in range(4)
                                                    for n, u in (("a", url_a), ("b", url_b)))), HANG_GUARD_S)
            idle_rounds = 0 if 200 in statuses["a"][-4:] + statuses["b"][-4:] else idle_rounds + 1
            if idle_rounds == 2:
                break
        (spent,), = db_rows(data, "SELECT sum(spent_micros) FROM budget_periods")
    assert statuses["a"].count(200) > 3 and statuses["b"].count(200) > 3  # both processes served calls
    assert {*statuses["a"], *statuses["b"]} <= {200, 402}
    assert spent == sum(costs)  # every call charged once, to the one shared total
    assert spent <= 50_000  # together they never spent past $0.05
    assert spent > 50_000 - 2_600  # and stopped only when not even a capped answer fit
    assert db_rows(data, "SELECT count(*) FROM calls") == [(0,)]


async def test_a_call_killed_mid_stream_is_charged_and_reported_once_after_restart(
        sim: ProviderSim, tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with ControlSim([SimAgent(IC_TOKEN)]) as control:
        extra = ("--server-url", control.url, "--budget", "1", "--budget-period", "day")
        async with iron_tui(sim, data, *extra) as (proc, url), aiohttp.ClientSession() as s:
            body = {"model": "gpt-4o-mini", "stream": True,
                    "messages": [{"role": "user", "content": "[[sim:slow_stream=10]] [[sim:words=3000]] story"}]}
            async with s.post(url + "/chat/completions", json=body,
                              headers={"authorization": f"Bearer {IC_TOKEN}"}) as r:
                assert r.status == 200
                async with asyncio.timeout(HANG_GUARD_S):
                    while True:  # read until the journal holds a checkpoint of what was relayed
                        await r.content.readany()
                        rows = db_rows(data, "SELECT event_id, output_chars FROM calls")
                        if rows and rows[0][1] > 200:
                            break
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
        (event_id, relayed_chars), = db_rows(data, "SELECT event_id, output_chars FROM calls")
        assert db_rows(data, "SELECT sum(spent_micros) FROM budget_periods") == [(None,)]  # not charged yet
        assert control.events == {}
        async with iron_tui(sim, data, *extra):
            async with asyncio.timeout(HANG_GUARD_S):
                while event_id not in control.events or db_rows(data, "SELECT count(*) FROM calls") != [(0,)]:
                    await asyncio.sleep(0.05)
            (spent,), = db_rows(data, "SELECT sum(spent_micros) FROM budget_periods")
        event = control.events[event_id]
        assert event["event_type"] == "llm_request_failed" and event["error_code"] == "interrupted"
        assert [e for e in control.event_order if e == event_id] == [event_id] and control.duplicates == 0
    # Charged at least what was relayed (1 token per 2 characters checkpointed), plus the input estimate.
    relayed = Pricer().cost("openai", "gpt-4o-mini", TokenUsage(output_tokens=(relayed_chars + 1) // 2))
    assert relayed is not None and spent >= relayed


async def test_the_web_searches_of_a_stream_killed_mid_answer_are_charged_after_restart(
        sim: ProviderSim, tmp_path: Path) -> None:
    data = tmp_path / "data"
    extra = ("--budget", "5", "--budget-period", "day")
    async with iron_tui(sim, data, *extra) as (proc, url):
        client = openai.AsyncOpenAI(base_url=url, api_key=IC_TOKEN, max_retries=0)
        stream = await client.responses.create(
            model="gpt-5", input="[[sim:searches=3]] [[sim:slow_stream=10]] [[sim:words=3000]] Weather?",
            tools=[{"type": "web_search"}], stream=True)
        searched = 0
        async with asyncio.timeout(HANG_GUARD_S):
            async for event in stream:  # read until the journal holds the 3 searches and some answer text
                searched += event.type == "response.web_search_call.completed"
                rows = db_rows(data, "SELECT web_searches, output_chars FROM calls")
                if event.type == "response.output_text.delta" and rows and rows[0][0] == 3 and rows[0][1] > 200:
                    break
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await client.close()
    assert searched == 3
    (inp, out, chars, searches), = db_rows(data, "SELECT input_tokens, output_tokens, output_chars, web_searches "
                                                 "FROM calls")
    assert db_rows(data, "SELECT sum(spent_micros) FROM budget_periods") == [(None,)]  # not charged yet
    async with iron_tui(sim, data, *extra):
        async with asyncio.timeout(HANG_GUARD_S):
            while db_rows(data, "SELECT count(*) FROM calls") != [(0,)]:
                await asyncio.sleep(0.05)
        (spent,), = db_rows(data, "SELECT sum(spent_micros) FROM budget_periods")
    # The tokens relayed (1 token per 2 characters) and the 3 searches at gpt-5's $10 per 1,000.
    usage = TokenUsage(input_tokens=inp, output_tokens=max(out, estimate_output_tokens_from_text(chars)))
    tokens = Pricer().cost("openai", "gpt-5", usage)
    assert searches == 3 and tokens is not None
    assert spent == tokens + 3 * 10_000

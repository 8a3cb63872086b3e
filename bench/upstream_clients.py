"""Which HTTP client should carry upstream calls? iron-tui's own vs aiohttp vs httpx, same run.

    python bench/upstream_clients.py

The simulator runs in its own process; each client makes sequential calls (median latency) and then
32 concurrent workers for a few seconds (requests/s, and this process's CPU per call — on the proxy's
single core that is what limits throughput). The proxy uses `iron_tui.core.upstream.UpstreamClient`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from run import OPENAI_KEY, start_sim

from iron_tui.core.loop import new_event_loop
from iron_tui.core.upstream import UpstreamClient

BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}).encode()
HEADERS = {"authorization": f"Bearer {OPENAI_KEY}", "content-type": "application/json"}


async def bench_aiohttp(url: str, n: int, secs: float) -> tuple[float, float, float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
        async def call() -> None:
            async with s.post(url, data=BODY, headers=HEADERS) as r:
                await r.read()
        return await measure(call, n, secs)


async def bench_iron(url: str, n: int, secs: float) -> tuple[float, float, float]:
    c = UpstreamClient(limit=64)
    try:
        async def call() -> None:
            r = await c.post(url, BODY, HEADERS)
            try:
                await r.read()
            finally:
                r.close()
        return await measure(call, n, secs)
    finally:
        await c.close()


async def bench_httpx(url: str, n: int, secs: float) -> tuple[float, float, float]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=30) as c:
        async def call() -> None:
            r = await c.post(url, content=BODY, headers=HEADERS)
            r.read()
        return await measure(call, n, secs)


async def measure(call, n: int, secs: float) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    for _ in range(50):
        await call()
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        xs.append((time.perf_counter() - t) * 1000)
    stop = time.perf_counter() + secs
    count = 0

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await call()
            count += 1

    t0 = time.perf_counter()
    c0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(32)))
    cpu = time.process_time() - c0
    return statistics.median(xs), count / (time.perf_counter() - t0), cpu / max(count, 1) * 1e6


async def main() -> None:
    sim, base = start_sim()
    url = base + "/v1/chat/completions"
    try:
        for name, fn in (("iron-tui", bench_iron), ("aiohttp", bench_aiohttp), ("httpx", bench_httpx),
                         ("iron-tui", bench_iron)):
            p50, rps, cpu = await fn(url, 1000, 5.0)
            print(f"{name:8s} sequential p50 {p50:.3f} ms | 32 concurrent {rps:.0f} req/s, "
                  f"{cpu:.0f} µs CPU per call")
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=new_event_loop) as runner:  # uvloop, as the proxy runs
        runner.run(main())

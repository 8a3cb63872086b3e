"""Which HTTP client should carry upstream calls? aiohttp vs httpx against the simulator, same run.

    python bench/upstream_clients.py

The simulator runs in its own process; each client makes sequential calls (median latency) and then
32 concurrent workers for a few seconds (requests/s). The proxy uses the faster one (aiohttp).
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
from run import OPENAI_KEY, start_process

BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}).encode()
HEADERS = {"authorization": f"Bearer {OPENAI_KEY}", "content-type": "application/json"}


async def bench_aiohttp(url: str, n: int, secs: float) -> tuple[float, float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
        async def call() -> None:
            async with s.post(url, data=BODY, headers=HEADERS) as r:
                await r.read()
        return await measure(call, n, secs)


async def bench_httpx(url: str, n: int, secs: float) -> tuple[float, float]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=30) as c:
        async def call() -> None:
            r = await c.post(url, content=BODY, headers=HEADERS)
            r.read()
        return await measure(call, n, secs)


async def measure(call, n: int, secs: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
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
    await asyncio.gather(*(worker() for _ in range(32)))
    return statistics.median(xs), count / (time.perf_counter() - t0)


async def main() -> None:
    sim, ready = start_process([sys.executable, "-m", "iron_tui.sim", "--port", "0"], "sim ready")
    url = ready.split()[-1] + "/v1/chat/completions"
    try:
        for name, fn in (("aiohttp", bench_aiohttp), ("httpx", bench_httpx), ("aiohttp", bench_aiohttp)):
            p50, rps = await fn(url, 1000, 5.0)
            print(f"{name:8s} sequential p50 {p50:.3f} ms | 32 concurrent {rps:.0f} req/s")
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    asyncio.run(main())

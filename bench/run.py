"""Proxy overhead benchmark: the same calls, direct to the simulator and through iron-tui, in one run.

    python bench/run.py                 # full run (about a minute)
    python bench/run.py --quick         # smaller counts, for a smoke check
    python bench/run.py --feed-clients 20   # also measure throughput with 20 feed clients connected

Three processes on loopback: the provider simulator, `iron-tui --no-ui`, and this load generator.
Latency: sequential calls in rounds; we report the median of round medians and the p99 of all calls,
for direct and proxied, and the difference (added latency). Throughput: N concurrent clients for a
fixed time, requests/s direct vs proxied.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
OPENAI_KEY = "sk-sim-openai"
ANTHROPIC_KEY = "sk-ant-sim-anthropic"
TOKEN = "bench-token"


def start_process(args: list[str], ready: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                            env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(ready):
            # Keep draining stdout so the child never blocks on a full pipe.
            import threading

            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
            return proc, line.strip()
    proc.kill()
    raise SystemExit(f"process did not become ready: {args}")


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process (Linux): a load-independent cost measure on a busy machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, round(p / 100 * (len(xs) - 1))))
    return xs[k]


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in five words."}]}
CHAT_STREAM = {**CHAT, "stream": True}
CLAUDE_STREAM = {"model": "claude-sonnet-4-6", "stream": True,
                 "messages": [{"role": "user", "content": "Say hello in five words."}]}


async def one(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str],
              stream: bool) -> tuple[float, float]:
    """Returns (total ms, time-to-first-chunk ms)."""
    t0 = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as r:
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {await r.text()}")
        if stream:
            first = None
            async for _chunk in r.content.iter_any():
                if first is None:
                    first = time.perf_counter()
            t1 = time.perf_counter()
            return (t1 - t0) * 1000, ((first or t1) - t0) * 1000
        await r.read()
        t1 = time.perf_counter()
        return (t1 - t0) * 1000, (t1 - t0) * 1000


async def latency(session: aiohttp.ClientSession, url: str, payload: dict[str, Any], headers: dict[str, str],
                  rounds: int, per_round: int) -> dict[str, float]:
    body = json.dumps(payload).encode()
    stream = bool(payload.get("stream"))
    for _ in range(20):  # warm up connections and code paths
        await one(session, url, body, headers, stream)
    medians, ttfc_medians, alls = [], [], []
    for _ in range(rounds):
        xs, ts = [], []
        for _ in range(per_round):
            total, ttfc = await one(session, url, body, headers, stream)
            xs.append(total)
            ts.append(ttfc)
        medians.append(statistics.median(xs))
        ttfc_medians.append(statistics.median(ts))
        alls.extend(xs)
    return {"p50": statistics.median(medians), "p99": percentile(alls, 99),
            "ttfc_p50": statistics.median(ttfc_medians)}


async def throughput(url: str, payload: dict[str, Any], headers: dict[str, str], concurrency: int,
                     seconds: float) -> float:
    body = json.dumps(payload).encode()
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        for _ in range(concurrency):
            await one(session, url, body, headers, False)
        stop = time.perf_counter() + seconds
        count = 0

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < stop:
                await one(session, url, body, headers, False)
                count += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - t0)


FEED_CLIENTS_CODE = r"""
import asyncio, base64, os, sys
host, port, token, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

async def client():
    r, w = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    w.write((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
             f"Authorization: Bearer {token}\r\n\r\n").encode())
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    assert b" 101 " in head.split(b"\r\n")[0], head
    while await r.read(1 << 16):  # keep up, as a browser tab would; the bytes are not parsed
        pass

async def main():
    tasks = [asyncio.create_task(client()) for _ in range(n)]
    await asyncio.sleep(0.5)
    print("feed clients ready", flush=True)
    await asyncio.gather(*tasks)

asyncio.run(main())
"""


def feed_clients(url: str, n: int) -> subprocess.Popen[str]:
    """n WebSocket feed clients in their own process, reading everything sent and parsing nothing."""
    host, port = url.removeprefix("ws://").split("/")[0].rsplit(":", 1)
    proc, _ = start_process([sys.executable, "-c", FEED_CLIENTS_CODE, host, port, TOKEN, str(n)],
                            "feed clients ready")
    return proc


async def latencies(args: argparse.Namespace, results: dict[str, Any], sim_url: str, proxy_url: str,
                    direct_h: dict[str, str], proxy_h: dict[str, str], ant_direct_h: dict[str, str],
                    rounds: int, per: int) -> None:
    async with aiohttp.ClientSession() as s:
        for name, payload in (("non-stream", CHAT), ("stream", CHAT_STREAM)):
            d = await latency(s, sim_url + "/v1/chat/completions", payload, direct_h, rounds, per)
            p = await latency(s, proxy_url + "/v1/chat/completions", payload, proxy_h, rounds, per)
            results[name] = {"direct": d, "proxy": p}
        if args.minimal:
            return  # the minimal pass-through does not translate
        # Translation: OpenAI client → Claude through the proxy vs the native Anthropic stream.
        native = {"model": "claude-sonnet-4-6", "max_tokens": 4096, "stream": True,
                  "messages": CLAUDE_STREAM["messages"]}
        d = await latency(s, sim_url + "/v1/messages", native, ant_direct_h, rounds, per)
        p = await latency(s, proxy_url + "/v1/chat/completions", CLAUDE_STREAM, proxy_h, rounds, per)
        pn = await latency(s, proxy_url + "/v1/messages", native,
                           {**proxy_h, "anthropic-version": "2023-06-01"}, rounds, per)
        results["translated-stream"] = {"direct": d, "proxy": p, "proxy_native": pn}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    sim, _ = start_process([sys.executable, "-m", "iron_tui.sim", "--port", "0"], "sim ready")
    try:
        sim_url = _.split()[-1]
        cmd = [sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--token", TOKEN,
               "--openai-key", OPENAI_KEY, "--anthropic-key", ANTHROPIC_KEY,
               "--openai-base-url", sim_url, "--anthropic-base-url", sim_url, "--data-dir", args.data_dir,
               "--log-format", "json"]
        if args.minimal:
            cmd = [sys.executable, str(ROOT / "bench" / "minimal_passthrough.py"), "--upstream", sim_url]
        proxy, ready = start_process(cmd, "iron-tui ready")
        try:
            proxy_url = ready.split()[2].removesuffix("/v1")
            feed_url = ready.split()[4]
            direct_h = {"authorization": f"Bearer {OPENAI_KEY}", "content-type": "application/json"}
            proxy_h = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
            ant_direct_h = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01",
                            "content-type": "application/json"}
            results: dict[str, Any] = {}
            rounds, per = (5, 50) if args.quick else (10, 200)
            if args.only != "throughput":
                await latencies(args, results, sim_url, proxy_url, direct_h, proxy_h, ant_direct_h, rounds, per)
            if args.only == "latency":
                return results
            secs = 3.0 if args.quick else 8.0
            direct_rps = await throughput(sim_url + "/v1/chat/completions", CHAT, direct_h, 32, secs)
            cpu0 = cpu_seconds(proxy.pid)
            proxy_rps = await throughput(proxy_url + "/v1/chat/completions", CHAT, proxy_h, 32, secs)
            cpu_per_call_us = (cpu_seconds(proxy.pid) - cpu0) / (proxy_rps * secs) * 1e6
            results["throughput"] = {"direct": direct_rps, "proxy": proxy_rps,
                                     "proxy_cpu_us_per_call": cpu_per_call_us}
            if args.feed_clients:
                fc = feed_clients(feed_url, args.feed_clients)
                try:
                    cpu0 = cpu_seconds(proxy.pid)
                    rps = await throughput(proxy_url + "/v1/chat/completions", CHAT, proxy_h, 32, secs)
                    results["throughput"]["proxy_with_feed"] = rps
                    results["throughput"]["proxy_with_feed_cpu_us_per_call"] = (
                        (cpu_seconds(proxy.pid) - cpu0) / (rps * secs) * 1e6)
                    results["throughput"]["feed_clients"] = args.feed_clients
                finally:
                    fc.terminate()
                    fc.wait(10)
            return results
        finally:
            proxy.terminate()
            proxy.wait(10)
    finally:
        sim.terminate()
        sim.wait(10)


def report(r: dict[str, Any]) -> str:
    lines = [f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"{platform.system()} {platform.release()}"]
    for name in ("non-stream", "stream", "translated-stream"):
        if name not in r:
            continue
        d, p = r[name]["direct"], r[name]["proxy"]
        lines.append(
            f"{name:18s} direct p50 {d['p50']:.3f} ms p99 {d['p99']:.3f} | proxy p50 {p['p50']:.3f} ms "
            f"p99 {p['p99']:.3f} | added p50 {p['p50'] - d['p50']:.3f} ms p99 {p['p99'] - d['p99']:.3f} ms"
            f" | ttfc added {p['ttfc_p50'] - d['ttfc_p50']:.3f} ms"
        )
        if "proxy_native" in r[name]:
            pn = r[name]["proxy_native"]
            lines.append(f"{'':18s} native /v1/messages through proxy p50 {pn['p50']:.3f} ms; "
                         f"translation adds {p['p50'] - pn['p50']:.3f} ms p50, "
                         f"ttfc {p['ttfc_p50'] - pn['ttfc_p50']:.3f} ms")
    t = r.get("throughput")
    if t is None:
        return "\n".join(lines)
    lines.append(f"throughput @32   direct {t['direct']:.0f} req/s | proxy {t['proxy']:.0f} req/s "
                 f"({100 * t['proxy'] / t['direct']:.0f}% of direct); proxy CPU "
                 f"{t['proxy_cpu_us_per_call']:.0f} µs per call")
    if "proxy_with_feed" in t:
        lines.append(f"with {t['feed_clients']} feed clients: {t['proxy_with_feed']:.0f} req/s "
                     f"({100 * t['proxy_with_feed'] / t['proxy']:.0f}% of no clients); proxy CPU "
                     f"{t['proxy_with_feed_cpu_us_per_call']:.0f} µs per call")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--feed-clients", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--minimal", action="store_true",
                    help="measure bench/minimal_passthrough.py instead of iron-tui (a reference point)")
    ap.add_argument("--only", choices=["latency", "throughput"], default=None)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    if args.data_dir is None:
        import tempfile

        args.data_dir = tempfile.mkdtemp(prefix="iron-bench-")
    r = asyncio.run(main_async(args))
    print(json.dumps(r, indent=2) if args.json else report(r))


if __name__ == "__main__":
    main()

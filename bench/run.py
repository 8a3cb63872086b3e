"""Proxy overhead benchmark: the same calls, direct to the simulator and through iron-tui, in one run.

    python bench/run.py                 # full run (about a minute)
    python bench/run.py --quick         # smaller counts, for a smoke check
    python bench/run.py --feed-clients 20   # also measure throughput with 20 feed clients connected
(Every full run also measures throughput with ~130 KB agent-shaped requests, bench/agent_body.py.)
    python bench/run.py --telemetry     # also throughput with /metrics + OTLP tracing on vs off
    python bench/run.py --only telemetry    # just that comparison
    python bench/run.py --only providers    # built-in OpenAI vs a configured provider vs an alias

Three processes on loopback: the provider simulator, `iron-tui --no-ui`, and this load generator.
Latency: sequential calls in rounds; we report the median of round medians and the p99 of all calls,
for direct and proxied, and the difference (added latency). Throughput: N concurrent clients, each on
its own keep-alive connection, for a fixed time, requests/s direct vs proxied, with the CPU each
process spent per call (on 2 shared cores the process with the largest share is the bottleneck).

All three run on uvloop: the proxy and the simulator as they always do (`--sim-asyncio` runs the
simulator on asyncio's own loop instead), and this load
generator, bench/loadgen.py (~50-70 µs of CPU per call, where aiohttp's client took ~220 µs), so the
numbers are the proxy's, not the client's.
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from agent_body import agent_chat_request  # noqa: E402
from loadgen import Connection, HTTPStatusError, ProtocolError, encode_request  # noqa: E402

from iron_tui.core.loop import new_event_loop  # noqa: E402

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


def start_sim(uvloop: bool = True) -> tuple[subprocess.Popen[str], str]:
    """The provider simulator in its own process (on uvloop, like the proxy); returns it and its URL."""
    proc, ready = start_process([sys.executable, "-m", "iron_tui.sim", "--port", "0"], "sim ready",
                                env=None if uvloop else {"IRON_UVLOOP": "0"})
    return proc, ready.split()[-1]


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process (Linux): a load-independent cost measure on a busy machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot (Linux /proc/stat): how saturated the
    cores were over an interval, whoever used them (other tenants included)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, round(p / 100 * (len(xs) - 1))))
    return xs[k]


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in five words."}]}
CHAT_STREAM = {**CHAT, "stream": True}
# A real model streams event by event; without pacing the simulator sends the whole stream in one write,
# so "first chunk" would mean "whole stream". Paced 1 ms apart, the first chunk is the first event.
CHAT_STREAM_PACED = {**CHAT, "stream": True, "messages": [
    {"role": "user", "content": "Say hello in five words. [[sim:slow_stream=1]]"}]}
CLAUDE_STREAM = {"model": "claude-sonnet-4-6", "stream": True,
                 "messages": [{"role": "user", "content": "Say hello in five words."}]}


# Bounds on a whole phase: the load generator has no per-call timer (it would cost a tenth of a call).
PHASE_LIMIT_S = 300.0


async def latency(url: str, payload: dict[str, Any], headers: dict[str, str], rounds: int,
                  per_round: int) -> dict[str, float]:
    """Sequential calls on one keep-alive connection. Non-stream time-to-first-chunk is the total."""
    req = encode_request("POST", url, headers, json.dumps(payload).encode())
    stream = bool(payload.get("stream"))
    conn = Connection(req.host, req.port)
    medians, ttfc_medians, alls = [], [], []
    try:
        async with asyncio.timeout(PHASE_LIMIT_S):
            for _ in range(20):  # warm up the connection and code paths
                await conn.request(req)
            for _ in range(rounds):
                xs, ts = [], []
                for _ in range(per_round):
                    r = await conn.request(req)
                    xs.append(r.total_ms)
                    ts.append(r.ttfc_ms if stream else r.total_ms)
                medians.append(statistics.median(xs))
                ttfc_medians.append(statistics.median(ts))
                alls.extend(xs)
    finally:
        conn.close()
    return {"p50": statistics.median(medians), "p99": percentile(alls, 99),
            "ttfc_p50": statistics.median(ttfc_medians)}


async def throughput(url: str, payload: dict[str, Any], headers: dict[str, str], concurrency: int,
                     seconds: float, pids: Mapping[str, int] | None = None) -> dict[str, Any]:
    """`concurrency` workers, each on its own connection, call back to back for `seconds`.

    Returns rps, calls, seconds, the load generator's CPU µs per call, in `cpu_us_per_call` that of
    each process in `pids` (name -> pid), and how busy all the machine's cores were (%), all measured
    over the timed part only."""
    req = encode_request("POST", url, headers, json.dumps(payload).encode())
    conns = [Connection(req.host, req.port) for _ in range(concurrency)]
    count = 0

    async def worker(conn: Connection, stop: float) -> None:
        nonlocal count
        n = 0
        clock = time.perf_counter
        while clock() < stop:
            await conn.request(req)
            n += 1
        count += n

    try:
        async with asyncio.timeout(seconds + PHASE_LIMIT_S):
            await asyncio.gather(*(c.request(req) for c in conns))  # connect and warm every connection
            cpu0 = {name: cpu_seconds(pid) for name, pid in (pids or {}).items()}
            busy0, total0 = machine_ticks()
            own0 = time.process_time()
            t0 = time.perf_counter()
            async with asyncio.TaskGroup() as tg:  # one failure stops every worker
                for c in conns:
                    tg.create_task(worker(c, t0 + seconds))
            elapsed = time.perf_counter() - t0
            own = time.process_time() - own0
            cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in (pids or {}).items()}
            busy1, total1 = machine_ticks()
    finally:
        for c in conns:
            c.close()
    calls = max(count, 1)
    return {"rps": count / elapsed, "calls": count, "seconds": elapsed,
            "loadgen_cpu_us_per_call": own / calls * 1e6,
            "cpu_us_per_call": {name: v / calls * 1e6 for name, v in cpu.items()},
            "machine_busy_pct": 100 * (busy1 - busy0) / max(total1 - total0, 1)}


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
    for name, payload in (("non-stream", CHAT), ("stream", CHAT_STREAM)):
        d = await latency(sim_url + "/v1/chat/completions", payload, direct_h, rounds, per)
        p = await latency(proxy_url + "/v1/chat/completions", payload, proxy_h, rounds, per)
        results[name] = {"direct": d, "proxy": p}
    # Paced streams take ~20 ms each: fewer calls.
    paced_rounds, paced_per = max(3, rounds // 2), max(20, per // 5)
    d = await latency(sim_url + "/v1/chat/completions", CHAT_STREAM_PACED, direct_h, paced_rounds, paced_per)
    p = await latency(proxy_url + "/v1/chat/completions", CHAT_STREAM_PACED, proxy_h, paced_rounds, paced_per)
    results["stream-paced"] = {"direct": d, "proxy": p}
    if args.minimal:
        return  # the minimal pass-through does not translate
    # Translation: OpenAI client → Claude through the proxy vs the native Anthropic stream.
    native = {"model": "claude-sonnet-4-6", "max_tokens": 4096, "stream": True,
              "messages": CLAUDE_STREAM["messages"]}
    d = await latency(sim_url + "/v1/messages", native, ant_direct_h, rounds, per)
    p = await latency(proxy_url + "/v1/chat/completions", CLAUDE_STREAM, proxy_h, rounds, per)
    pn = await latency(proxy_url + "/v1/messages", native,
                       {**proxy_h, "anthropic-version": "2023-06-01"}, rounds, per)
    results["translated-stream"] = {"direct": d, "proxy": p, "proxy_native": pn}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    sim, sim_url = start_sim(uvloop=not args.sim_asyncio)
    try:
        if args.only == "telemetry":
            return {"telemetry": await telemetry(args, sim_url)}
        if args.only == "providers":
            return {"providers": await providers(args, sim_url)}
        cmd = [sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--token", TOKEN,
               "--openai-key", OPENAI_KEY, "--anthropic-key", ANTHROPIC_KEY,
               "--openai-base-url", sim_url, "--anthropic-base-url", sim_url, "--data-dir", args.data_dir,
               "--log-format", "json", *args.proxy_arg]
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
            results: dict[str, Any] = {"loops": {
                "loadgen": type(asyncio.get_running_loop()).__module__.split(".")[0],
                "sim": "asyncio" if args.sim_asyncio else "uvloop"}}
            rounds, per = (5, 50) if args.quick else (10, 200)
            if args.only != "throughput":
                await latencies(args, results, sim_url, proxy_url, direct_h, proxy_h, ant_direct_h, rounds, per)
            if args.only == "latency":
                return results
            secs = 3.0 if args.quick else 8.0
            url = "/v1/chat/completions"
            d = await throughput(sim_url + url, CHAT, direct_h, 32, secs, {"sim": sim.pid})
            p = await throughput(proxy_url + url, CHAT, proxy_h, 32, secs, {"proxy": proxy.pid, "sim": sim.pid})
            results["throughput"] = {
                "direct": d["rps"], "proxy": p["rps"], "proxy_cpu_us_per_call": p["cpu_us_per_call"]["proxy"],
                "direct_loadgen_cpu_us_per_call": d["loadgen_cpu_us_per_call"],
                "direct_sim_cpu_us_per_call": d["cpu_us_per_call"]["sim"],
                "proxy_loadgen_cpu_us_per_call": p["loadgen_cpu_us_per_call"],
                "proxy_sim_cpu_us_per_call": p["cpu_us_per_call"]["sim"],
                "direct_machine_busy_pct": d["machine_busy_pct"],
                "proxy_machine_busy_pct": p["machine_busy_pct"],
            }
            # An agent's request mid-session (~130 KB: tool calls on files, their results, tool schemas):
            # what grows with the body (parsing, the input bound, previews, scans) shows here.
            agent = agent_chat_request()
            ad = await throughput(sim_url + url, agent, direct_h, 8, secs, {"sim": sim.pid})
            ap = await throughput(proxy_url + url, agent, proxy_h, 8, secs, {"proxy": proxy.pid, "sim": sim.pid})
            results["agent_throughput"] = {"kb": len(json.dumps(agent)) // 1024, "direct": ad["rps"],
                                           "proxy": ap["rps"], "proxy_cpu_us_per_call": ap["cpu_us_per_call"]["proxy"]}
            if args.feed_clients:
                fc = feed_clients(feed_url, args.feed_clients)
                try:
                    f = await throughput(proxy_url + url, CHAT, proxy_h, 32, secs, {"proxy": proxy.pid})
                    results["throughput"]["proxy_with_feed"] = f["rps"]
                    results["throughput"]["proxy_with_feed_cpu_us_per_call"] = f["cpu_us_per_call"]["proxy"]
                    results["throughput"]["feed_clients"] = args.feed_clients
                finally:
                    fc.terminate()
                    fc.wait(10)
            if args.telemetry:
                results["telemetry"] = await telemetry(args, sim_url)
            return results
        finally:
            proxy.terminate()
            proxy.wait(10)
    finally:
        sim.terminate()
        sim.wait(10)


async def telemetry(args: argparse.Namespace, sim_url: str) -> dict[str, Any]:
    from telemetry_bench import compare

    return await compare(start_process, throughput, sim_url, TOKEN,
                         {"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY}, CHAT,
                         seconds=3.0 if args.quick else 8.0, rounds=2 if args.quick else 3)


async def providers(args: argparse.Namespace, sim_url: str) -> dict[str, Any]:
    from providers_bench import compare

    return await compare(start_process, throughput, sim_url, TOKEN,
                         {"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY}, CHAT,
                         seconds=3.0 if args.quick else 4.0, rounds=3 if args.quick else 12)


def report(r: dict[str, Any]) -> str:
    lines = [f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"{platform.system()} {platform.release()}"]
    if "loops" in r:
        lines[0] += f"; loops: load generator {r['loops']['loadgen']}, simulator {r['loops']['sim']}"
    for name in ("non-stream", "stream", "stream-paced", "translated-stream"):
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
    if "telemetry" in r:
        from telemetry_bench import report as telemetry_report

        lines += telemetry_report(r["telemetry"])
    if "providers" in r:
        from providers_bench import report as providers_report

        lines += providers_report(r["providers"])
    t = r.get("throughput")
    if t is None:
        return "\n".join(lines)
    lines.append(f"throughput @32   direct {t['direct']:.0f} req/s | proxy {t['proxy']:.0f} req/s "
                 f"({100 * t['proxy'] / t['direct']:.0f}% of direct); proxy CPU "
                 f"{t['proxy_cpu_us_per_call']:.0f} µs per call | CPU µs/call direct: "
                 f"loadgen {t['direct_loadgen_cpu_us_per_call']:.0f} sim {t['direct_sim_cpu_us_per_call']:.0f}; "
                 f"proxied: loadgen {t['proxy_loadgen_cpu_us_per_call']:.0f} "
                 f"proxy {t['proxy_cpu_us_per_call']:.0f} sim {t['proxy_sim_cpu_us_per_call']:.0f}")
    # The proxy is one process on one loop: near 100% of a core it is the bottleneck; a machine near
    # 100% busy with the proxy well below means the cores are shared out (other processes, tenants).
    lines.append(f"{'':17s}proxy busy {t['proxy'] * t['proxy_cpu_us_per_call'] / 1e4:.0f}% of a core; "
                 f"machine {t['proxy_machine_busy_pct']:.0f}% busy proxied, "
                 f"{t['direct_machine_busy_pct']:.0f}% direct (all cores)")
    if "agent_throughput" in r:
        a = r["agent_throughput"]
        lines.append(f"agent-sized @8    ({a['kb']} KB requests) direct {a['direct']:.0f} req/s | proxy {a['proxy']:.0f} "
                     f"req/s; proxy CPU {a['proxy_cpu_us_per_call']:.0f} µs per call")
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
    ap.add_argument("--only", choices=["latency", "throughput", "telemetry", "providers"], default=None)
    ap.add_argument("--telemetry", action="store_true",
                    help="also compare throughput with /metrics and OTLP tracing on vs off (two iron-tui processes)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--proxy-arg", action="append", default=[],
                    help="an extra iron-tui flag, e.g. --proxy-arg=--budget=1000 --proxy-arg=--budget-period=day")
    ap.add_argument("--sim-asyncio", action="store_true",
                    help="run the simulator on asyncio's default loop, as `python -m iron_tui.sim` does")
    args = ap.parse_args()
    if args.data_dir is None:
        import tempfile

        args.data_dir = tempfile.mkdtemp(prefix="iron-bench-")
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            r = runner.run(main_async(args))
    except (HTTPStatusError, ProtocolError, OSError, ExceptionGroup) as exc:
        raise SystemExit(f"benchmark failed: {first_error(exc)}") from None
    print(json.dumps(r, indent=2) if args.json else report(r))


def first_error(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


if __name__ == "__main__":
    main()

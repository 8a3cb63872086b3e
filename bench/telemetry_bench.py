"""`python bench/run.py --telemetry`: throughput with /metrics and tracing on vs both off, side by side.

Two iron-tui processes against the same simulator: one with `metrics = false` and no collector, one
with metrics on, scraped every second, and every call traced to a simulated OTLP collector
(`python -m iron_tui.sim --collector`, its own process). Throughput runs alternate off/on so machine
noise hits both alike; we report the median of each and the proxy's CPU per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from loadgen import Connection, encode_request

Throughput = Callable[..., Awaitable[dict[str, Any]]]
StartProcess = Callable[..., tuple[subprocess.Popen[str], str]]


async def _scrape_every_second(url: str, token: str) -> None:
    req = encode_request("GET", url + "/metrics", {"authorization": f"Bearer {token}"})
    conn = Connection(req.host, req.port)
    try:
        while True:
            await conn.request(req)
            await asyncio.sleep(1.0)
    finally:
        conn.close()


async def compare(start_process: StartProcess, throughput: Throughput, sim_url: str, token: str, keys: dict[str, str],
                  payload: dict[str, Any], *, seconds: float, rounds: int) -> dict[str, Any]:
    collector, ready = start_process([sys.executable, "-m", "iron_tui.sim", "--port", "0", "--collector"],
                                     "collector ready")
    collector_url = ready.split()[-1]
    tmp = Path(tempfile.mkdtemp(prefix="iron-bench-telemetry-"))
    (tmp / "off.toml").write_text("metrics = false\n")
    (tmp / "on.toml").write_text("metrics = true\n")  # an explicit file: the user's own is never read
    base = [sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--token", token,
            "--openai-key", keys["openai"], "--anthropic-key", keys["anthropic"], "--openai-base-url", sim_url,
            "--anthropic-base-url", sim_url, "--log-format", "json"]
    procs: list[subprocess.Popen[str]] = [collector]
    try:
        off, off_ready = start_process([*base, "--data-dir", str(tmp / "off"), "--config", str(tmp / "off.toml")],
                                       "iron-tui ready")
        procs.append(off)
        on, on_ready = start_process([*base, "--data-dir", str(tmp / "on"), "--config", str(tmp / "on.toml")],
                                     "iron-tui ready", env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector_url})
        procs.append(on)
        urls = {"off": off_ready.split()[2].removesuffix("/v1"), "on": on_ready.split()[2].removesuffix("/v1")}
        pids = {"off": off.pid, "on": on.pid}
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        scraper = asyncio.create_task(_scrape_every_second(urls["on"], token))
        try:
            for _ in range(rounds):
                for name in ("off", "on"):
                    r = await throughput(urls[name] + "/v1/chat/completions", payload, headers, 32, seconds,
                                         {"proxy": pids[name]})
                    runs[name].append(r)
        finally:
            scraper.cancel()
            with contextlib.suppress(BaseException):
                await scraper
        out: dict[str, Any] = {}
        for name, rs in runs.items():
            out[name] = {"rps": statistics.median(r["rps"] for r in rs), "rps_all": [r["rps"] for r in rs],
                         "cpu_us_per_call": statistics.median(r["cpu_us_per_call"]["proxy"] for r in rs)}
        out["ratio"] = out["on"]["rps"] / out["off"]["rps"]
        out["spans"] = await _span_counts(urls["on"], token)
        return out
    finally:
        for p in reversed(procs):
            p.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)


async def _span_counts(url: str, token: str) -> dict[str, float]:
    """What the traced instance says it exported and dropped (so "on" really traced)."""
    req = encode_request("GET", url + "/metrics", {"authorization": f"Bearer {token}"})
    conn = Connection(req.host, req.port)
    try:
        text = (await conn.request(req, keep_body=True)).body.decode()
    finally:
        conn.close()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("iron_trace_"):
            name, _, value = line.rpartition(" ")
            counts[name.removeprefix("iron_trace_")] = float(value)
    return counts


def _per_span(spans: dict[str, float], process: str) -> float:
    cpu = spans.get(f'export_cpu_seconds_total{{process="{process}"}}', 0.0)
    return 1e6 * cpu / max(spans.get("spans_exported_total", 0.0), 1.0)


def report(t: dict[str, Any]) -> list[str]:
    off, on = t["off"], t["on"]
    return [
        f"telemetry @32    off {off['rps']:.0f} req/s ({', '.join(f'{x:.0f}' for x in off['rps_all'])}), proxy CPU "
        f"{off['cpu_us_per_call']:.0f} µs/call | metrics + tracing on {on['rps']:.0f} req/s "
        f"({', '.join(f'{x:.0f}' for x in on['rps_all'])}), {on['cpu_us_per_call']:.0f} µs/call | "
        f"on = {100 * t['ratio']:.1f}% of off",
        f"{'':17s}spans: " + ", ".join(f"{k} {v:.0f}" for k, v in t["spans"].items() if k.startswith("spans_"))
        + f"; CPU per span: {_per_span(t['spans'], 'iron-tui'):.1f} µs in iron-tui (hand-over), "
        f"{_per_span(t['spans'], 'exporter'):.1f} µs in the exporter process",
    ]

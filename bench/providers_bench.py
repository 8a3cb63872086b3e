"""`python bench/run.py --only providers`: the built-in OpenAI path against a configured provider, in one run.

One iron-tui process against the simulator, with a `[providers.bench]` table pointing at the same
simulator (an OpenAI-compatible server, priced as OpenAI so both paths do the same money work) and an
alias in `[models]`. Throughput runs alternate between the three names a client may use, each round
starting one name later, so machine noise and a run's position in the round hit each alike. Beside
the medians it reports each name's CPU per call minus built-in's in the same round, averaged over the
rounds, with its standard error: a difference that medians cannot tell from noise.

- `gpt-4o-mini`        the built-in OpenAI provider
- `bench/gpt-4o-mini`  a configured provider, by its NAME/ prefix
- `fast`               an alias (`[models]`) that resolves to that provider

Issue 16's target: routing through a configured provider costs no more than the built-in path.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Throughput = Callable[..., Awaitable[dict[str, Any]]]
StartProcess = Callable[..., tuple[subprocess.Popen[str], str]]

NAMES = {"built-in": "gpt-4o-mini", "configured": "bench/gpt-4o-mini", "alias": "fast"}
PROVIDER_KEY_ENV = "IRON_BENCH_PROVIDER_KEY"


def config(sim_url: str) -> str:
    return (f'[providers.bench]\napi = "openai"\nbase_url = "{sim_url}/v1"\nkey_env = "{PROVIDER_KEY_ENV}"\n'
            'price_provider = "openai"\n\n[models]\n"fast" = "bench/gpt-4o-mini"\n')


async def compare(start_process: StartProcess, throughput: Throughput, sim_url: str, token: str, keys: dict[str, str],
                  payload: dict[str, Any], *, seconds: float, rounds: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="iron-bench-providers-"))
    (tmp / "providers.toml").write_text(config(sim_url))
    cmd = [sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--token", token,
           "--openai-key", keys["openai"], "--anthropic-key", keys["anthropic"], "--openai-base-url", sim_url,
           "--anthropic-base-url", sim_url, "--log-format", "json", "--data-dir", str(tmp / "data"),
           "--config", str(tmp / "providers.toml")]
    proc, ready = start_process(cmd, "iron-tui ready", env={PROVIDER_KEY_ENV: keys["openai"]})
    try:
        url = ready.split()[2].removesuffix("/v1") + "/v1/chat/completions"
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in NAMES}
        order = list(NAMES.items())
        for r in range(rounds):
            # Each round starts one name later, so every name runs in every position of a round as often
            # (a fixed order let whatever the position costs — the first run after the previous round's
            # last — fall on one name).
            for name, model in order[r % len(order):] + order[:r % len(order)]:
                runs[name].append(await throughput(url, {**payload, "model": model}, headers, 32, seconds,
                                                   {"proxy": proc.pid}))
        out: dict[str, Any] = {}
        base = [r["cpu_us_per_call"]["proxy"] for r in runs["built-in"]]
        for name, rs in runs.items():
            cpu = [r["cpu_us_per_call"]["proxy"] for r in rs]
            # Paired by round (each round runs every name back to back): what a round's machine state
            # adds hits both sides of a difference alike, so it is far less noisy than the medians.
            diffs = [c - b for c, b in zip(cpu, base, strict=True)]
            out[name] = {"model": NAMES[name], "rps": statistics.median(r["rps"] for r in rs),
                         "rps_all": [r["rps"] for r in rs], "cpu_us_per_call": statistics.median(cpu),
                         "cpu_diff_us": statistics.mean(diffs),
                         "cpu_diff_se": statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0}
        return out
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


def report(t: dict[str, Any]) -> list[str]:
    base = t["built-in"]
    lines = []
    for name, r in t.items():
        lines.append(f"providers @32    {name:10s} {r['model']:18s} {r['rps']:6.0f} req/s "
                     f"({', '.join(f'{x:.0f}' for x in r['rps_all'])}), proxy CPU {r['cpu_us_per_call']:.0f} µs/call"
                     f" = {100 * r['cpu_us_per_call'] / base['cpu_us_per_call']:.1f}% of built-in"
                     + ("" if r is base else f"; paired by round {r['cpu_diff_us']:+.1f} ± {r['cpu_diff_se']:.1f} µs"))
    return lines

"""`python bench/run.py --only providers`: the built-in OpenAI path against a configured provider, in one run.

One iron-tui process against the simulator, with a `[providers.bench]` table pointing at the same
simulator (an OpenAI-compatible server, priced as OpenAI so both paths do the same money work) and an
alias in `[models]`. Throughput runs alternate between the three names a client may use, each round
starting one name later, so machine noise and a run's position in the round hit each alike:

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
        for name, rs in runs.items():
            out[name] = {"model": NAMES[name], "rps": statistics.median(r["rps"] for r in rs),
                         "rps_all": [r["rps"] for r in rs],
                         "cpu_us_per_call": statistics.median(r["cpu_us_per_call"]["proxy"] for r in rs)}
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
                     f" = {100 * r['cpu_us_per_call'] / base['cpu_us_per_call']:.1f}% of built-in")
    return lines

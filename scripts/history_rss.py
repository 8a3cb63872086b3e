"""RSS of the gateway after many big translated prompts: the history's byte budget at work.

    python scripts/history_rss.py                      # 3,000 calls of 150 KB prompts, default budget
    python scripts/history_rss.py --budget 1099511627776   # as before the budget (bodies of 1,000 calls kept)

The provider simulator runs in its own process (it remembers the requests it saw); the engine runs in
this one, driven by aiohttp with 8 concurrent clients: a Claude model through the OpenAI Chat
Completions API, so every call is translated. Prints this process's RSS (VmRSS) before and after, and
the bytes the history accounts for.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from iron_tui.config import Settings  # noqa: E402
from iron_tui.core.engine import Engine  # noqa: E402
from iron_tui.core.loop import new_event_loop  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def start_sim() -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "iron_tui.sim", "--port", "0",
                                                stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    while True:
        line = (await proc.stdout.readline()).decode()
        if not line:
            raise SystemExit("the simulator did not start")
        if line.startswith("sim ready"):
            return proc, line.split()[-1]


async def main(args: argparse.Namespace) -> None:
    sim, sim_url = await start_sim()
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(port=0, anthropic_key="sk-ant-sim-anthropic", anthropic_base_url=sim_url,
                            openai_key="sk-sim-openai", openai_base_url=sim_url, token="t" * 32, data_dir=Path(data),
                            history_body_bytes=args.budget)
        async with Engine(settings) as engine:
            prompt = "lorem ipsum " * (args.prompt_kb * 1024 // 12)
            body = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": prompt}]}
            url = engine.openai_base_url + "/chat/completions"
            headers = {"authorization": "Bearer " + "t" * 32}
            async with aiohttp.ClientSession() as s:
                async def one() -> None:
                    async with s.post(url, json=body, headers=headers) as r:
                        assert r.status == 200, await r.text()
                        await r.read()

                await asyncio.gather(*(one() for _ in range(8)))  # warm up
                gc.collect()
                before = rss_mib()
                left = args.calls
                while left > 0:
                    n = min(8, left)
                    await asyncio.gather(*(one() for _ in range(n)))
                    left -= n
                gc.collect()
                after = rss_mib()
            print(f"calls={args.calls} prompt={args.prompt_kb} KB budget={args.budget} bytes "
                  f"history: {len(engine.history)} records, {engine.history.body_bytes / 2**20:.1f} MiB of bodies "
                  f"accounted; RSS {before:.0f} -> {after:.0f} MiB")
    sim.terminate()
    await sim.wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--prompt-kb", type=int, default=150)
    ap.add_argument("--budget", type=int, default=Settings().history_body_bytes)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main(ap.parse_args()))

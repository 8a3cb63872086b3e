"""The per-request CPU cost of the server guard, side by side with plain aiohttp, in one process.

    python bench/guard_cost.py            # 8 rounds of 4,000 keep-alive requests per variant

The same trivial handler is served by (a) `web.AppRunner`, as before, and (b) iron-tui's
`GuardedRunner` (header/body/idle/send timeouts, the connection cap) with the `RequestGuard`
in front of the app (Host check, 404/405 answers, wrong-token slow-down), on uvloop, driven over loopback by
the benchmark's load generator with 8 connections. Client and server share the process, so the
difference in process CPU time per request is the guard's cost. Rounds alternate the two variants and
the medians are reported (the machine is shared: single rounds are noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from aiohttp import web  # noqa: E402
from loadgen import Connection, encode_request  # noqa: E402

from iron_tui.core.loop import new_event_loop  # noqa: E402
from iron_tui.core.proxy.auth import Authenticator  # noqa: E402
from iron_tui.core.proxy.connections import ConnectionLimits, GuardedRunner  # noqa: E402
from iron_tui.core.proxy.guard import RequestGuard  # noqa: E402

TOKEN = "bench-" + "t" * 26


async def handler(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=b'{"ok":true}', content_type="application/json")


async def serve(guarded: bool) -> tuple[web.AppRunner, int]:
    if guarded:
        guard = RequestGuard(Authenticator(TOKEN, "agent-" + "a" * 26), allow_remote=False)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        runner: web.AppRunner = GuardedRunner(app, limits=ConnectionLimits(), guard=guard, access_log=None,
                                              handler_cancellation=True)
    else:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    if guarded:
        guard.bind("127.0.0.1", port)
    return runner, port


async def one_round(guarded: bool, requests: int, conns: int) -> float:
    runner, port = await serve(guarded)
    req = encode_request("POST", f"http://127.0.0.1:{port}/v1/chat/completions",
                         {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
                         b'{"model":"gpt-4o-mini","messages":[]}')
    clients = [Connection("127.0.0.1", port) for _ in range(conns)]

    async def worker(c: Connection, n: int) -> None:
        for _ in range(n):
            await c.request(req)

    try:
        await asyncio.gather(*(worker(c, 50) for c in clients))  # warm up
        t0 = time.process_time()
        await asyncio.gather(*(worker(c, requests // conns) for c in clients))
        return (time.process_time() - t0) / requests * 1e6
    finally:
        for c in clients:
            c.close()
        await runner.cleanup()


async def main(args: argparse.Namespace) -> None:
    plain: list[float] = []
    guarded: list[float] = []
    for _ in range(args.rounds):
        plain.append(await one_round(False, args.requests, args.conns))
        guarded.append(await one_round(True, args.requests, args.conns))
    p, g = statistics.median(plain), statistics.median(guarded)
    print(f"CPU µs per request (client + server, median of {args.rounds} rounds of {args.requests}): "
          f"plain aiohttp {p:.1f}, guarded {g:.1f}, guard cost {g - p:+.1f} µs ({100 * (g - p) / p:+.1f}%)")
    print("rounds plain:  " + " ".join(f"{x:.1f}" for x in plain))
    print("rounds guarded: " + " ".join(f"{x:.1f}" for x in guarded))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--conns", type=int, default=8)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main(ap.parse_args()))

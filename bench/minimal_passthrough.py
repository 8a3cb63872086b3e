"""Reference point: the thinnest possible aiohttp pass-through (no auth, no pricing, no events).

    python bench/minimal_passthrough.py --upstream http://127.0.0.1:PORT --port 0

Prints `iron-tui ready: http://127.0.0.1:PORT/v1 feed -` so bench/run.py can drive it with
`--proxy-cmd`; it shows how much of the proxy's cost is aiohttp itself.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
from aiohttp import web

from iron_tui.core.loop import new_event_loop


async def main(upstream: str, port: int) -> None:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with session.post(upstream + request.path, data=body,
                                headers={"authorization": "Bearer sk-sim-openai",
                                         "content-type": "application/json"}) as r:
            if r.headers.get("content-type", "").startswith("text/event-stream"):
                out = web.StreamResponse(status=r.status, headers={"content-type": "text/event-stream"})
                await out.prepare(request)
                async for chunk in r.content.iter_any():
                    await out.write(chunk)
                await out.write_eof()
                return out
            return web.Response(status=r.status, body=await r.read(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/{tail:.*}", relay)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    real = runner.addresses[0][1]
    print(f"iron-tui ready: http://127.0.0.1:{real}/v1 feed -", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    with asyncio.Runner(loop_factory=new_event_loop) as r:
        r.run(main(a.upstream, a.port))

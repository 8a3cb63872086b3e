"""Run the provider simulator on its own: `python -m iron_tui.sim.serve --port 0`.

Prints `sim ready: http://HOST:PORT` once the port accepts connections (the benchmark runs the sim in
its own process this way) and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from iron_tui.sim.base import SimSettings
from iron_tui.sim.providers import ProviderSim


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m iron_tui.sim.serve", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--chunk-delay-ms", type=float, default=0.0)
    p.add_argument("--words", type=int, default=12)
    p.add_argument("--openai-key", action="append", help="accepted OpenAI key (repeatable)")
    p.add_argument("--anthropic-key", action="append", help="accepted Anthropic key (repeatable)")
    return p


async def _serve(args: argparse.Namespace) -> None:
    settings = SimSettings(latency_ms=args.latency_ms, chunk_delay_ms=args.chunk_delay_ms, words=args.words)
    if args.openai_key:
        settings.openai_keys = set(args.openai_key)
    if args.anthropic_key:
        settings.anthropic_keys = set(args.anthropic_key)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with ProviderSim(settings) as sim:
        print(f"sim ready: {sim.url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the simulator binds loopback only")
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()

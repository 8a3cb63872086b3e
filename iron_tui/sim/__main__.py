"""`python -m iron_tui.sim`: run the simulated providers (and optionally the control server) standalone.

Prints `sim ready: URL` (and `control ready: URL`) once listening; used by the benchmark and handy for
pointing a real agent at iron-tui without keys. `--collector` also runs a simulated OTLP/HTTP trace
collector (`collector ready: URL`; it counts spans and keeps none), for the telemetry benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal


async def _main(args: argparse.Namespace) -> None:
    from iron_tui.sim import ProviderSim, SimSettings

    sim = ProviderSim(SimSettings(latency_ms=args.latency_ms, chunk_delay_ms=args.chunk_delay_ms))
    await sim.start(port=args.port)
    print(f"sim ready: {sim.url}", flush=True)
    collector = None
    if args.collector:
        from iron_tui.sim.collector import CollectorSim  # needs the iron-tui[otel] extra

        collector = CollectorSim(count_only=True)
        print(f"collector ready: {await collector.start()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
        if collector is not None:
            await collector.stop()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m iron_tui.sim")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--chunk-delay-ms", type=float, default=0.0)
    ap.add_argument("--collector", action="store_true", help="also run a simulated OTLP/HTTP trace collector")
    from iron_tui.core.loop import new_event_loop

    # The same loop as the proxy (uvloop unless IRON_UVLOOP=0): the benchmark shares 2 cores with it.
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_main(ap.parse_args()))


if __name__ == "__main__":
    main()

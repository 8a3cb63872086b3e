"""`iron-tui --no-ui`: the engine with log lines instead of a dashboard.

Prints `iron-tui ready: http://HOST:PORT/v1 feed ws://HOST:PORT/ws` once the port accepts connections,
one line per finished request, and stops gracefully on SIGINT/SIGTERM. With an agent command it
exits with the agent's exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import sys
import threading
from typing import Any, TextIO

import orjson

from iron_tui.config import Settings
from iron_tui.core.clock import iso_utc
from iron_tui.core.engine import Engine
from iron_tui.core.events import (
    AgentOutput,
    AgentStateChanged,
    CostAlert,
    Event,
    Notice,
    RequestFinished,
    SyncStatus,
    to_wire,
)
from iron_tui.core.safe_text import escape_controls


class _LineWriter:
    """Writes log lines from a thread: a stdout nobody reads must never stall the proxy.

    Lines beyond the queue's bound are dropped and counted (reported at the end) rather than block.
    Whatever has queued up by the time the thread gets to it goes out in one write and one flush.
    """

    def __init__(self, out: TextIO, max_pending: int = 10_000) -> None:
        self._out = out
        # SimpleQueue: a C queue without Queue's Python-level locking; its size bounds it (roughly,
        # which is all a drop-instead-of-block bound needs).
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._max_pending = max_pending
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="iron-tui-log", daemon=True)
        self._thread.start()

    def write(self, text: str) -> None:
        if self._queue.qsize() >= self._max_pending:
            self.dropped += 1
        else:
            self._queue.put(text)

    def _run(self) -> None:
        broken = False
        q = self._queue
        done = False
        while not done:
            item = q.get()
            parts: list[str] = []
            while item is not None:  # take everything already queued, up to the end marker
                parts.append(item)
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
            done = item is None
            if parts and not broken:
                try:
                    self._out.write("".join(parts))
                    self._out.flush()
                except (BrokenPipeError, OSError, ValueError):
                    broken = True  # the reader went away; keep draining so nothing blocks

    def close(self, timeout: float = 5.0) -> None:
        if self.dropped:
            self._queue.put(f"iron-tui: {self.dropped} log lines dropped (output not read fast enough)\n")
        self._queue.put(None)
        self._thread.join(timeout)


def format_request(r: dict[str, Any]) -> str:
    cost = r.get("cost_usd")
    cost_s = "unpriced" if not r.get("priced", True) else ("-" if cost is None else f"${cost:.6f}")
    if r.get("cost_estimated") and cost is not None:
        cost_s += "~"
    flags = []
    if r.get("stream"):
        flags.append("stream")
    if r.get("translated"):
        flags.append(f"{str(r.get('api', '')).split('.')[0]}→{r['provider']}")  # e.g. openai→anthropic
    if r.get("client_model"):
        flags.append(f"as={r['client_model']}")
    if r.get("agent_id"):
        flags.append(f"agent={r['agent_id']}")
    if r.get("capped_max_tokens") is not None:
        flags.append(f"capped by budget: max_tokens={r['capped_max_tokens']}")
    lat = r.get("latency_ms")
    line = (
        f"{r['started_at']} {r['id']} {r['provider']} {r['model']} {r.get('status') or '-'} "
        f"{'-' if lat is None else f'{lat:.1f}ms'} in={r['input_tokens']} out={r['output_tokens']} {cost_s}"
    )
    if flags:
        line += " [" + " ".join(flags) + "]"
    attempts = r.get("attempts")
    if attempts:
        # Each try: provider/model and its status (or "-" when unreachable/skipped), e.g.
        # "tries: openai/gpt-4o-mini 503, openai/gpt-4o-mini 503, ollama/qwen2.5-coder 200".
        line += " tries: " + ", ".join(f"{a['provider']}/{a['model']} {a['status'] or '-'}" for a in attempts)
    if r.get("error"):
        line += f" error: {r['error']}"
    return line


# How long the printer waits after each batch of events (see run_headless.printer).
_BATCH_PAUSE_S = 0.01

_LOGGED = (RequestFinished, CostAlert, AgentStateChanged, AgentOutput, SyncStatus)
_ANY_LINE = (*_LOGGED, Notice)  # every event some format prints a line for


def _json_line(message: dict[str, Any]) -> str:
    """One JSON log line: what `json.dumps(message)` gives, or the same content, compactly, via orjson.

    Lines stay ASCII like json.dumps' (non-ASCII text would otherwise be written raw, and a stdout
    with an ASCII-only encoding would refuse it); orjson's output is used when it is ASCII already.
    """
    try:
        line = orjson.dumps(message).decode()
    except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits, a lone surrogate
        return json.dumps(message)
    return line if line.isascii() else json.dumps(message)


def format_event(event: Event, fmt: str) -> str | None:
    """The log line(s) for an event, or None. Text lines are terminal-safe: whatever a field holds
    (sources clean their own text; this is the last guard), no control character reaches the terminal."""
    line = _format_event(event, fmt)
    if line is None or fmt == "json":  # JSON escapes control characters itself
        return line
    return escape_controls(line, keep_tabs=True)  # one event, one line: a newline here would forge one


def _format_event(event: Event, fmt: str) -> str | None:
    if not isinstance(event, _ANY_LINE):
        return None  # most events (request started, spend changed) print nothing: decide that first
    if fmt == "json":
        if isinstance(event, Notice):
            return _json_line({"type": "NOTICE", "timestamp": iso_utc(event.timestamp), "level": event.level,
                               "message": event.message})
        if isinstance(event, RequestFinished):
            # to_wire's first message; its AGENT_EVENT twin is left out, as below.
            return _json_line({"type": "REQUEST_FINISHED", "timestamp": iso_utc(event.timestamp),
                               "request": event.request})
        # The same lines as text mode, as feed-shaped objects: no per-call spend chatter.
        msgs = [m for m in to_wire(event) if m["type"] != "AGENT_EVENT" or isinstance(event, AgentOutput)]
        return "\n".join(_json_line(m) for m in msgs) or None
    if isinstance(event, RequestFinished):
        return format_request(event.request)
    if isinstance(event, AgentOutput):
        return f"[{event.agent_id} {event.stream}] {event.line}"
    ts = iso_utc(event.timestamp)
    if isinstance(event, CostAlert):
        return (f"{ts} budget {event.severity}: ${event.spent_micros / 1e6:.4f} of "
                f"${event.limit_micros / 1e6:.2f} spent ({event.percentage:.0f}%)")
    if isinstance(event, Notice):
        return f"{ts} {event.level}: {event.message}"
    if isinstance(event, AgentStateChanged):
        extra = ""
        if event.state == "running":
            extra = f" pid={event.pid}"
        elif event.state == "exited":
            extra = f" code={event.exit_code}"
        elif event.state == "failed":
            extra = f" reason={event.reason}"
        return f"{ts} agent {event.agent_id} {event.state}{extra}"
    if isinstance(event, SyncStatus):
        if event.state == "disabled":
            return None
        tail = f" error: {event.last_error}" if event.last_error and event.state != "ok" else ""
        dead = f" dead_letters={event.dead_letters}" if event.dead_letters else ""
        return (f"{ts} sync {event.state}: sent={event.sent} pending={event.pending} rejected={event.rejected}"
                f"{dead}{tail}")
    return None


async def run_headless(
    settings: Settings,
    agent_argv: list[str] | None = None,
    *,
    out: TextIO | None = None,
    engine: Engine | None = None,
    show_token: bool | None = None,
) -> int:
    """show_token: print the token (and the web page's address with it); default: when it was generated."""
    out = out or sys.stdout
    engine = engine or Engine(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals >= 2:
            # A second Ctrl-C means "now": pending analytics are already safe in the outbox on disk.
            sys.stderr.write("iron-tui: forced exit\n")
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    sub = engine.bus.subscribe(maxsize=100_000, name="headless", kinds=_ANY_LINE)  # only what it prints
    last_sync: tuple[Any, ...] = ()

    async def printer() -> None:
        nonlocal last_sync
        while True:
            try:
                batch = await sub.get_batch()
            except EOFError:
                return
            lines = []
            for ev in batch:
                if isinstance(ev, SyncStatus):
                    key = (ev.state, ev.rejected, ev.pending == 0)
                    if key == last_sync:
                        continue
                    last_sync = key
                line = format_event(ev, settings.log_format)
                if line:
                    lines.append(line)
            if lines:
                writer.write("\n".join(lines) + "\n")
            # Let events gather before the next batch: under load a wakeup (and a write) per event-loop
            # iteration cost more CPU than formatting the lines. A line is printed at most this late.
            await asyncio.sleep(_BATCH_PAUSE_S)

    code = 0
    writer = _LineWriter(out)
    async with engine:
        out.write(f"iron-tui ready: {engine.openai_base_url} feed {engine.feed_url}\n")
        if settings.token is None if show_token is None else show_token:
            # A generated token is the only way for a separately started agent to get in; it is a
            # local credential for this run, never a provider key.
            out.write(f"iron-tui token: {engine.token}\n")
            out.write(f"iron-tui dashboard: {engine.base_url}/dashboard#token={engine.token}\n")
        else:  # a token the user chose: not echoed; the page asks for it
            out.write(f"iron-tui dashboard: {engine.base_url}/dashboard\n")
        out.flush()
        printer_task = asyncio.create_task(printer())
        try:
            if agent_argv:
                await engine.agent.start(agent_argv)
                waiter = asyncio.create_task(engine.agent.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not waiter.done():
                    await engine.agent.stop()
                stopper.cancel()
                result = await waiter
                if engine.agent.state == "failed":
                    code = 127
                else:
                    code = result if result is not None else 1
                    if code < 0:  # killed by a signal: shell convention
                        code = 128 - code
            else:
                await stop.wait()
        except BaseException:
            printer_task.cancel()
            raise
    # After the engine stopped, so the agent's exit and the final sync are printed too.
    sub.close()
    await printer_task
    await asyncio.to_thread(writer.close)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(sig)
    return code

"""Headless log lines: same content as before the orjson/batching changes, in order, none lost."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import aiohttp

from iron_tui.config import Settings
from iron_tui.core.clock import iso_utc
from iron_tui.core.events import (
    AgentOutput,
    AgentStateChanged,
    CostAlert,
    Event,
    Notice,
    RequestFinished,
    RequestRecord,
    RequestStarted,
    SpendChanged,
    SyncStatus,
    to_wire,
)
from iron_tui.headless import _LineWriter, format_event, run_headless
from iron_tui.sim import ProviderSim
from tests.conftest import OPENAI_KEY

T = 1_767_225_601.25


def finished(**fields: Any) -> RequestFinished:
    rec = RequestRecord(id="req_000001", started_at=T, method="POST", path="/v1/chat/completions",
                        api="openai.chat", model="gpt-4o-mini", provider="openai")
    rec.state, rec.status, rec.latency_ms, rec.input_tokens, rec.output_tokens, rec.cost_micros = (
        "ok", 200, 12.3456, 31, 9, 11)
    for name, value in fields.items():
        setattr(rec, name, value)
    return RequestFinished(T + 1, rec.summary())


EVENTS: list[Event] = [
    finished(),
    finished(agent_id="agent_1", stream=True, translated=True, error="naïve ✗ error — 日本", cost_estimated=True),
    finished(input_tokens=2**70, priced=False, cost_micros=None),
    finished(error="lone \udcff surrogate"),
    CostAlert(T, "critical", 950_000, 1_000_000, agent_id="a"),
    Notice(T, "warning", "history not saved: disk full é"),
    AgentStateChanged(T, "agent_1", "running", name="demo", pid=42),
    AgentStateChanged(T, "agent_1", "exited", exit_code=3),
    AgentStateChanged(T, "agent_1", "failed", reason="no such file"),
    AgentOutput(T, "agent_1", "stdout", "step 3/10 ✓", seq=7),
    SyncStatus(T, "retrying", pending=3, sent=10, rejected=1, last_error="HTTP 503"),
    SyncStatus(T, "disabled"),
]
SILENT: list[Event] = [RequestStarted(T, finished().request), SpendChanged(T, 5, 6, None)]


def reference_json(event: Event) -> str | None:
    """The JSON log line(s) as they were: json.dumps of each feed message kept."""
    if isinstance(event, Notice):
        return json.dumps({"type": "NOTICE", "timestamp": iso_utc(event.timestamp), "level": event.level,
                           "message": event.message})
    if not isinstance(event, RequestFinished | CostAlert | AgentStateChanged | AgentOutput | SyncStatus):
        return None
    msgs = [m for m in to_wire(event) if m["type"] != "AGENT_EVENT" or isinstance(event, AgentOutput)]
    return "\n".join(json.dumps(m) for m in msgs) or None


def test_json_lines_carry_the_same_content_and_stay_ascii() -> None:
    for event in EVENTS + SILENT:
        got, want = format_event(event, "json"), reference_json(event)
        if want is None:
            assert got is None, event
            continue
        assert got is not None and got.isascii(), event
        got_lines, want_lines = got.split("\n"), want.split("\n")
        assert [json.loads(x) for x in got_lines] == [json.loads(x) for x in want_lines], event
        if not want.isascii() or "\\u" in want:  # non-ASCII text and surrogates: byte-for-byte as before
            assert got == want


def test_text_lines_are_unchanged() -> None:
    ts = iso_utc(T)
    got = [format_event(e, "text") for e in EVENTS + SILENT]
    assert got == [
        f"{iso_utc(T)} req_000001 openai gpt-4o-mini 200 12.3ms in=31 out=9 $0.000011",
        f"{iso_utc(T)} req_000001 openai gpt-4o-mini 200 12.3ms in=31 out=9 $0.000011~ "
        "[stream openai→openai agent=agent_1] error: naïve ✗ error — 日本",
        f"{iso_utc(T)} req_000001 openai gpt-4o-mini 200 12.3ms in={2**70} out=9 unpriced",
        f"{iso_utc(T)} req_000001 openai gpt-4o-mini 200 12.3ms in=31 out=9 $0.000011 error: lone \\udcff surrogate",  # escaped: no stream can encode it
        f"{ts} budget critical: $0.9500 of $1.00 spent (95%)",
        f"{ts} warning: history not saved: disk full é",
        f"{ts} agent agent_1 running pid=42",
        f"{ts} agent agent_1 exited code=3",
        f"{ts} agent agent_1 failed reason=no such file",
        "[agent_1 stdout] step 3/10 ✓",
        f"{ts} sync retrying: sent=10 pending=3 rejected=1 error: HTTP 503",
        None,
        None,
        None,
    ]


def test_line_writer_keeps_every_line_in_order(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    with path.open("w") as out:
        writer = _LineWriter(out)
        for i in range(3000):
            writer.write(f"line {i}\n")
        writer.close()
    assert path.read_text().splitlines() == [f"line {i}" for i in range(3000)]
    assert writer.dropped == 0


class _Stalled(io.StringIO):
    """An output whose first write blocks until released (a reader that stopped reading)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, s: str) -> int:
        self.release.wait(5)
        return super().write(s)


def test_line_writer_drops_and_counts_rather_than_block() -> None:
    out = _Stalled()
    writer = _LineWriter(out, max_pending=10)
    for i in range(50):  # never blocks, although nothing is written
        writer.write(f"line {i}\n")
    assert writer.dropped >= 39
    out.release.set()
    writer.close()
    text = out.getvalue()
    assert f"iron-tui: {writer.dropped} log lines dropped" in text
    kept = [line for line in text.splitlines() if line.startswith("line ")]
    assert kept == sorted(kept, key=lambda x: int(x.split()[1])) and len(kept) == 50 - writer.dropped


class _Broken(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError


def test_line_writer_survives_a_closed_pipe() -> None:
    writer = _LineWriter(_Broken())
    for i in range(100):
        writer.write(f"line {i}\n")
    writer.close(timeout=2)
    assert not writer._thread.is_alive()


async def test_headless_json_lines_for_real_calls(sim: ProviderSim, tmp_path: Path) -> None:
    out = io.StringIO()
    values: dict[str, Any] = {"port": 0, "token": "t", "openai_key": OPENAI_KEY, "openai_base_url": sim.url,
                              "data_dir": tmp_path, "log_format": "json"}
    settings = Settings(**values)
    task = asyncio.create_task(run_headless(settings, out=out))
    for _ in range(200):
        if "iron-tui ready: " in out.getvalue():
            break
        await asyncio.sleep(0.02)
    base = out.getvalue().split("iron-tui ready: ")[1].split()[0]
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "héllo"}]}
    async with aiohttp.ClientSession() as s:
        for _ in range(5):
            async with s.post(base + "/chat/completions", json=body, headers={"authorization": "Bearer t"}) as r:
                assert r.status == 200
                await r.read()
    os.kill(os.getpid(), signal.SIGTERM)  # run_headless' own handler stops it gracefully
    assert await asyncio.wait_for(task, 10) == 0
    lines = [json.loads(x) for x in out.getvalue().splitlines() if x.startswith("{")]
    finished_lines = [m for m in lines if m["type"] == "REQUEST_FINISHED"]
    assert len(finished_lines) == 5
    assert all(m["request"]["status"] == 200 and m["request"]["input_tokens"] > 0 for m in finished_lines)
    assert OPENAI_KEY not in out.getvalue()

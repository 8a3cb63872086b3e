"""Analytics events, the durable outbox and the sync loop, against the simulated control server.

The original lost events four ways (re-sent history every tick, dropped everything after 10,000,
fixed 500 ms stop flush, nothing persisted); each test here pins one of those down.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from iron_tui.core.analytics import AnalyticsSync, Outbox
from iron_tui.core.analytics_protocol import completed_event, failed_event
from iron_tui.core.clock import FixedClock
from iron_tui.core.control import ControlClient
from iron_tui.core.events import Event, SyncStatus
from iron_tui.sim.control_server import ControlSim, SimAgent

TOKEN = "ic_analytics_token"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
async def sim() -> AsyncIterator[ControlSim]:
    async with ControlSim([SimAgent(TOKEN)]) as s:
        yield s


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    ob = Outbox(tmp_path / "data" / "outbox.sqlite3")
    yield ob
    ob.close()


class Statuses(list[SyncStatus]):
    def __call__(self, event: Event) -> None:
        assert isinstance(event, SyncStatus)
        self.append(event)

    @property
    def states(self) -> list[str]:
        return [s.state for s in self]


def make_sync(outbox: Outbox, sim: ControlSim | None, session: aiohttp.ClientSession,
              publish: Callable[[Event], None] | None = None, **kw: Any) -> AnalyticsSync:
    clock = FixedClock()
    client = None if sim is None else ControlClient(sim.url, TOKEN, session=session, clock=clock, timeout_s=2)
    opts: dict[str, Any] = {"interval_s": 0.05, "backoff_base_s": 0.01, "backoff_max_s": 0.05}
    opts.update(kw)
    return AnalyticsSync(outbox, client, publish=publish if publish is not None else (lambda e: None), clock=clock, **opts)


def ev(i: int = 0, token: str = TOKEN) -> dict[str, Any]:
    return completed_event(ic_token=token, event_id=str(uuid.uuid4()), timestamp_ms=1_767_225_600_000 + i,
                           model="gpt-4o-mini", provider="openai", input_tokens=11, output_tokens=1, cost_micros=1)


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# --- event shapes --------------------------------------------------------------------------------


def test_completed_event_has_exactly_the_protocol_fields() -> None:
    e = completed_event(ic_token="t", event_id="id1", timestamp_ms=1734500000123, model="gpt-4o-mini",
                        provider="openai", input_tokens=11, output_tokens=1, cost_micros=1)
    assert e == {"ic_token": "t", "event_id": "id1", "timestamp_ms": 1734500000123,
                 "event_type": "llm_request_completed", "model": "gpt-4o-mini", "provider": "openai",
                 "input_tokens": 11, "output_tokens": 1, "cost_micros": 1}
    with_opt = completed_event(ic_token="t", event_id="id1", timestamp_ms=1, model="m", provider="anthropic",
                               input_tokens=1, output_tokens=1, cost_micros=0, agent_id="agent_3", provider_id=7)
    assert (with_opt["agent_id"], with_opt["provider_id"]) == ("agent_3", 7)


def test_failed_event_shape_and_unknown_provider() -> None:
    e = failed_event(ic_token="t", event_id="id2", timestamp_ms=5, model="gpt-4o-mini", provider="mistral",
                     error_code="429", error_message="rate limited")
    assert e == {"ic_token": "t", "event_id": "id2", "timestamp_ms": 5, "event_type": "llm_request_failed",
                 "model": "gpt-4o-mini", "provider": "unknown", "error_code": "429",
                 "error_message": "rate limited"}
    assert None not in e.values()


# --- outbox --------------------------------------------------------------------------------------


def test_outbox_survives_reopen_with_acks_and_dead_letters(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    ob = Outbox(path)
    events = [ev(i) for i in range(3)]
    for e in events:
        ob.add(e)
    rows = ob.take(10)
    assert [r[1] for r in rows] == events  # oldest first, byte-for-byte the same event (same event_id)
    ob.ack([rows[0][0]])
    ob.dead_letter(rows[1][0], 400, "400 VALIDATION_ERROR: bad provider")
    ob.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # rows carry the IC token

    ob = Outbox(path)
    assert ob.pending_count() == 1 and ob.take(10) == [(rows[2][0], events[2])]
    [dl] = ob.dead_letters()
    assert (dl.event, dl.status, dl.reason) == (events[1], 400, "400 VALIDATION_ERROR: bad provider")
    assert ob.take(10, after_id=rows[2][0]) == []
    ob.close()


def test_outbox_adds_between_checkpoints_keep_every_event(outbox: Outbox) -> None:
    # (The cost of add() is measured in bench/, not asserted here.)
    events = [ev(i) for i in range(2000)]
    for i, e in enumerate(events):
        outbox.add(e)
        if i % 500 == 499:
            outbox.checkpoint()  # what the sync loop does, off the hot path, once per tick
    assert outbox.pending_count() == 2000
    assert [e["event_id"] for _, e in outbox.take(3)] == [e["event_id"] for e in events[:3]]


# --- sync ----------------------------------------------------------------------------------------


async def test_sync_delivers_and_publishes_status(sim: ControlSim, session: aiohttp.ClientSession,
                                                  outbox: Outbox) -> None:
    statuses = Statuses()
    sync = make_sync(outbox, sim, session, statuses)
    await sync.start()
    events = [ev(i) for i in range(25)]
    for e in events:
        sync.record(e)
    assert sync.status.pending == 25
    await until(lambda: sync.status.pending == 0)
    assert [sim.events[e["event_id"]] for e in events] == events
    assert (sync.status.state, sync.status.sent, sync.status.rejected) == ("ok", 25, 0)
    assert sync.status.last_success is not None
    assert statuses[-1] == sync.status and statuses.states[0] == "ok"
    await sync.stop()
    assert outbox.pending_count() == 0


async def test_idle_ticks_never_resend(sim: ControlSim, session: aiohttp.ClientSession, outbox: Outbox) -> None:
    sync = make_sync(outbox, sim, session)
    await sync.start()
    for i in range(40):
        sync.record(ev(i))
    await until(lambda: sync.status.pending == 0)
    await asyncio.sleep(0.3)  # six more ticks
    sync.record(ev(99))
    await until(lambda: sync.status.pending == 0)
    await asyncio.sleep(0.15)
    await sync.stop()
    assert sim.requests["events"] == 41 and sim.duplicates == 0


async def test_outage_then_recovery_delivers_each_event_once(
        sim: ControlSim, session: aiohttp.ClientSession, outbox: Outbox) -> None:
    statuses = Statuses()
    sync = make_sync(outbox, sim, session, statuses)
    await sync.start()
    sync.record(ev(-1))
    await until(lambda: sync.status.pending == 0)  # a keep-alive connection exists, as in real life
    await sim.down()
    events = [ev(i) for i in range(100)]
    for e in events:
        sync.record(e)
    sync.kick()
    await until(lambda: sync.status.state == "offline")
    assert sync.status.pending == 100 and sync.status.next_attempt is not None
    assert "unreachable" in (sync.status.last_error or "")
    await asyncio.sleep(0.2)  # several back-off rounds against a closed port
    await sim.up()
    await until(lambda: sync.status.pending == 0)
    await sync.stop()
    assert sync.status.state == "ok" and sync.status.last_error is None
    assert set(sim.event_order[1:]) == {e["event_id"] for e in events}
    assert len(sim.event_order) == 101 and sim.duplicates == 0
    assert sim.requests["events"] == 101  # nothing was re-sent once acknowledged


async def test_5xx_is_retried_with_backoff(sim: ControlSim, session: aiohttp.ClientSession,
                                           outbox: Outbox) -> None:
    statuses = Statuses()
    sync = make_sync(outbox, sim, session, statuses, concurrency=1)
    for i in range(10):
        sync.record(ev(i))
    sim.fail_next(4, 500, endpoint="events")
    await sync.start()
    await until(lambda: sync.status.pending == 0)
    await sync.stop()
    assert "retrying" in statuses.states and "offline" in statuses.states  # 3+ failures in a row
    assert statuses.states[-1] == "ok"
    failing = next(s for s in statuses if s.state == "retrying")
    assert "500 DATABASE_ERROR" in (failing.last_error or "")
    assert len(sim.events) == 10 and sim.requests["events"] == 14  # 4 failed attempts, no more


async def test_4xx_rejection_is_dead_lettered(sim: ControlSim, session: aiohttp.ClientSession,
                                              outbox: Outbox) -> None:
    sync = make_sync(outbox, sim, session)
    events = [ev(i) for i in range(5)]
    sim.reject_event_ids.add(events[2]["event_id"])
    for e in events:
        sync.record(e)
    await sync.start()
    await until(lambda: sync.status.pending == 0)
    await sync.stop()
    assert (sync.status.state, sync.status.sent, sync.status.rejected) == ("ok", 4, 1)
    dead = {d.event["event_id"]: d for d in outbox.dead_letters() if d.event}
    assert dead[events[2]["event_id"]].status == 400
    assert "VALIDATION_ERROR" in dead[events[2]["event_id"]].reason
    assert len(sim.events) == 4
    await asyncio.sleep(0.15)
    assert sim.requests["events"] == 5  # the rejected event is not retried


async def test_rejected_token_keeps_the_backlog_until_it_is_accepted(
        sim: ControlSim, session: aiohttp.ClientSession, outbox: Outbox) -> None:
    # A 401 is about our credentials, not the event: nothing is dead-lettered, the sync goes offline
    # and shows why, and everything is delivered once the server accepts the token again.
    sync = make_sync(outbox, sim, session)
    events = [ev(i, token="revoked-token") for i in range(5)]
    for e in events:
        sync.record(e)
    await sync.start()
    await until(lambda: sync.status.state == "offline")
    assert sync.status.pending == 5 and sync.status.rejected == 0
    assert "Invalid IC Token" in (sync.status.last_error or "")
    assert outbox.dead_letters() == []
    sim.add_agent("revoked-token")
    sync.kick()
    await until(lambda: sync.status.pending == 0, timeout=10)
    await sync.stop()
    assert {e["event_id"] for e in events} <= set(sim.events)


async def test_sigkill_before_sync_loses_nothing(tmp_path: Path, sim: ControlSim,
                                                 session: aiohttp.ClientSession) -> None:
    db = tmp_path / "crash.sqlite3"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, str(REPO / "tests" / "helpers" / "outbox_writer.py"), str(db), TOKEN],
                             stdout=subprocess.PIPE, env=env, text=True)
    assert child.stdout is not None
    acknowledged = [child.stdout.readline().strip() for _ in range(300)]
    child.send_signal(signal.SIGKILL)  # mid-stream: it is still adding events as fast as it can
    child.wait(timeout=10)
    acknowledged += [line.strip() for line in child.stdout.read().splitlines() if line.strip()]
    assert child.returncode == -signal.SIGKILL

    outbox = Outbox(db)
    try:
        sync = make_sync(outbox, sim, session)
        assert sync.status.pending >= len(acknowledged)  # the backlog is visible before any sync
        await sync.start()
        await until(lambda: sync.status.pending == 0)
        await sync.stop()
    finally:
        outbox.close()
    assert set(acknowledged) <= set(sim.events)  # every acknowledged add survived the kill
    assert len(sim.event_order) == len(set(sim.event_order)) and sim.duplicates == 0


async def test_resend_after_crash_between_accept_and_ack_is_deduplicated(
        sim: ControlSim, session: aiohttp.ClientSession, outbox: Outbox) -> None:
    events = [ev(i) for i in range(6)]
    for e in events:
        outbox.add(e)
    # A previous run posted the first three, then died before deleting them from the outbox.
    client = ControlClient(sim.url, TOKEN, session=session, clock=FixedClock())
    for e in events[:3]:
        assert (await client.post_event(e))[0] == 202
    sync = make_sync(outbox, sim, session)
    await sync.start()
    await until(lambda: sync.status.pending == 0)
    await sync.stop()
    assert sim.duplicates == 3 and len(sim.events) == 6 and sync.status.sent == 6


async def test_ten_thousand_plus_events_all_delivered_once(
        sim: ControlSim, session: aiohttp.ClientSession, outbox: Outbox) -> None:
    n = 10_050
    posts_at_publish: list[int] = []
    sync = make_sync(outbox, sim, session, lambda _e: posts_at_publish.append(sim.requests["events"]),
                     batch_size=200)
    ids = set()
    for i in range(n):
        e = ev(i)
        ids.add(e["event_id"])
        sync.record(e)
    posts_at_publish.clear()
    t0 = time.perf_counter()
    await sync.start()
    await until(lambda: sync.status.pending == 0, timeout=60)
    elapsed = time.perf_counter() - t0
    await sync.stop()
    print(f"\nsync throughput: {n / elapsed:.0f} events/s ({n} events in {elapsed:.2f} s)")
    assert set(sim.events) == ids  # nothing dropped past 10,000
    assert sim.requests["events"] == n and sim.duplicates == 0  # each event POSTed exactly once
    steps = [b - a for a, b in itertools.pairwise(posts_at_publish)]
    assert max(steps) <= 200  # traffic between two status updates never exceeds one batch


async def test_stop_flush_is_bounded_and_leaves_events_on_disk(
        tmp_path: Path, sim: ControlSim, session: aiohttp.ClientSession) -> None:
    path = tmp_path / "o.sqlite3"
    outbox = Outbox(path)
    sync = make_sync(outbox, sim, session, interval_s=60, flush_timeout_s=0.3)
    await sync.start()
    await asyncio.sleep(0.05)
    sim.slow_ms = 600_000  # far longer than the guard below: only the 0.3 s flush timeout lets stop() end
    events = [ev(i) for i in range(20)]
    for e in events:
        sync.record(e)
    await asyncio.wait_for(sync.stop(), 60)
    outbox.close()

    outbox = Outbox(path)  # a later run: everything is still there, then delivered
    assert outbox.pending_count() == 20
    sim.slow_ms = 0
    sync = make_sync(outbox, sim, session)
    await sync.start()
    await until(lambda: sync.status.pending == 0)
    await sync.stop()
    outbox.close()
    assert {e["event_id"] for e in events} <= set(sim.events)


async def test_stop_flushes_what_is_pending(sim: ControlSim, session: aiohttp.ClientSession,
                                            outbox: Outbox) -> None:
    sync = make_sync(outbox, sim, session, interval_s=60)
    await sync.start()
    await asyncio.sleep(0.05)  # the start-up pass has run; the next tick is a minute away
    for i in range(30):
        sync.record(ev(i))
    assert len(sim.events) == 0
    await sync.stop()
    assert len(sim.events) == 30 and outbox.pending_count() == 0


async def test_no_server_means_disabled_and_nothing_stored(session: aiohttp.ClientSession,
                                                           outbox: Outbox) -> None:
    statuses = Statuses()
    sync = make_sync(outbox, None, session, statuses)
    await sync.start()
    sync.record(ev())
    assert await sync.flush(0.1) is True
    await sync.stop()
    assert sync.status.state == "disabled" and statuses.states == ["disabled"]
    assert outbox.pending_count() == 0


async def test_record_never_raises(sim: ControlSim, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    sync = make_sync(outbox, sim, session)
    outbox.close()  # the disk went away
    sync.record(ev())
    assert "outbox write failed" in (sync.status.last_error or "")


async def test_stop_with_the_server_down_does_not_wait_out_the_flush(
        sim: ControlSim, session: aiohttp.ClientSession, outbox: Outbox) -> None:
    sync = make_sync(outbox, sim, session, interval_s=60, flush_timeout_s=600)
    await sync.start()
    await sim.down()
    for i in range(5):
        sync.record(ev(i))
    # Connection refused: give up at once, keep the events (waiting out the 600 s flush fails the guard).
    await asyncio.wait_for(sync.stop(), 60)
    assert outbox.pending_count() == 5 and sync.status.state == "offline"

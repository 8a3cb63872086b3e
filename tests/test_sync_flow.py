"""A sync that keeps flowing: a failed post holds back only its batch, Retry-After is honoured, an event
the server will never take is dead-lettered visibly while the rest is delivered, each exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from iron_tui.core.analytics import AnalyticsSync, Outbox
from iron_tui.core.analytics_protocol import MAX_NAME_CHARS, completed_event, failed_event
from iron_tui.core.clock import FixedClock
from iron_tui.core.control import ControlClient, retry_after_seconds
from iron_tui.core.events import SyncStatus, to_wire
from iron_tui.sim.control_server import ControlSim, SimAgent

TOKEN = "ic-sync-flow"
HANG_GUARD_S = 60


@pytest.fixture
async def control() -> AsyncIterator[ControlSim]:
    async with ControlSim([SimAgent(TOKEN)]) as s:
        yield s


def event(i: int, **kw: Any) -> dict[str, Any]:
    return completed_event(ic_token=TOKEN, event_id=str(uuid.uuid4()), timestamp_ms=1_767_225_600_000 + i,
                           model=kw.pop("model", "gpt-4o-mini"), provider="openai", input_tokens=11,
                           output_tokens=1, cost_micros=1, **kw)


async def delivered(control: ControlSim, n: int, sync: AnalyticsSync) -> None:
    """Until the server has `n` events and the sync has acknowledged them all."""
    async with asyncio.timeout(HANG_GUARD_S):  # a hang guard, not a deadline
        while len(control.events) < n or sync.status.pending:
            await asyncio.sleep(0.02)


def sync_for(outbox: Outbox, control: ControlSim, session: aiohttp.ClientSession, clock: FixedClock,
             statuses: list[SyncStatus] | None = None, **kw: Any) -> AnalyticsSync:
    client = ControlClient(control.url, TOKEN, session=session, clock=clock, timeout_s=5)
    publish = (lambda e: statuses.append(e) if isinstance(e, SyncStatus) else None) if statuses is not None \
        else (lambda e: None)
    return AnalyticsSync(outbox, client, publish=publish, clock=clock, **kw)


async def test_five_percent_of_posts_failing_still_delivers_every_event_once(
        control: ControlSim, tmp_path: Path) -> None:
    control.fail_events(0.05, seed=13)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    async with aiohttp.ClientSession() as session:
        sync = sync_for(outbox, control, session, FixedClock())  # the production interval and back-off
        events = [event(i) for i in range(1000)]
        for e in events:
            sync.record(e)
        await sync.start()
        await delivered(control, 1000, sync)
        await sync.stop()
    assert control.random_failures > 20  # the failures really happened
    assert set(control.events) == {e["event_id"] for e in events}
    assert len(control.event_order) == 1000 and control.duplicates == 0  # each exactly once
    assert outbox.pending_count() == 0 and sync.status.state == "ok"


async def test_an_event_too_large_for_the_server_is_dead_lettered_and_the_rest_flows(
        control: ControlSim, tmp_path: Path) -> None:
    control.max_event_bytes = 1500
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    statuses: list[SyncStatus] = []
    async with aiohttp.ClientSession() as session:
        sync = sync_for(outbox, control, session, FixedClock(), statuses, interval_s=0.05)
        huge_model = event(-1, model="m" * 1_200_000)  # a 1.2 MB model name from a client: capped
        too_big = failed_event(ic_token=TOKEN, event_id="too-big", timestamp_ms=1, model="gpt-4o", provider="openai",
                               error_code="500", error_message="x" * 100_000)
        events = [event(i) for i in range(250)] + [too_big] + [event(i) for i in range(250, 500)]
        sync.record(huge_model)
        for e in events:
            sync.record(e)
        await sync.start()
        await delivered(control, 501, sync)
        await sync.stop()
    assert len(control.events[huge_model["event_id"]]["model"]) == MAX_NAME_CHARS
    assert "too-big" not in control.events and len(control.events) == 501 and control.duplicates == 0
    assert [(d.event or {}).get("event_id") for d in outbox.dead_letters()] == ["too-big"]
    assert outbox.dead_letters()[0].status == 413
    assert control.rejected_too_large == 1  # never retried
    assert sync.status.dead_letters == 1 and sync.status.pending == 0
    wire = to_wire(statuses[-1])[0]
    assert wire["type"] == "SYNC_STATUS" and wire["sync"]["dead_letters"] == 1


async def test_a_failed_batch_waits_at_least_retry_after(control: ControlSim, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    clock = FixedClock()
    async with aiohttp.ClientSession() as session:
        sync = sync_for(outbox, control, session, clock, concurrency=1, backoff_base_s=0.01, backoff_max_s=0.02)
        control.fail_next(1, 429, endpoint="events", retry_after=3)
        for i in range(5):
            sync.record(event(i))
        async with sync._lock:
            await sync._pass(limit=None)
        assert sync.status.state == "retrying"
        assert len(control.events) == 4  # the others went through at once
        # The batch's own back-off is 0.01-0.02 s; the server asked for 3 s.
        assert sync.status.next_attempt is not None and sync.status.next_attempt - clock.now() > 1
        assert all(sync._backoff(k, retry_after=3) >= 3 for k in range(1, 8))
        sync.kick()
        assert await sync.flush(HANG_GUARD_S)
    assert len(control.events) == 5


@pytest.mark.parametrize(("header", "seconds"), [(None, 0.0), ("", 0.0), ("2", 2.0), ("0.5", 0.5), ("-3", 0.0),
                                                  ("soon", 0.0), ("nan", 0.0), ("inf", 0.0),
                                                  ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after_is_read_as_seconds_or_a_date(header: str | None, seconds: float) -> None:
    assert retry_after_seconds(header) == seconds

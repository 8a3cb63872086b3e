"""Server mode's budget lease (reference/iron-cage-protocol.md): handshake for a grant that becomes the
ledger's limit (retried in the background while the server is away), report each priced call, and
return what this lease paid for when iron-tui stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aiohttp

from iron_tui.core.budget import BudgetLedger
from iron_tui.core.clock import Clock
from iron_tui.core.control import ControlClient, ControlError, Lease
from iron_tui.core.events import Event, Notice, RequestRecord, usd


class LeaseHolder:
    def __init__(self, control: ControlClient, ledger: BudgetLedger, *, clock: Clock,
                 publish: Callable[[Event], None], spawn: Callable[[Any], asyncio.Task[Any]]) -> None:
        self._control = control
        self._ledger = ledger
        self._clock = clock
        self._publish = publish
        self._spawn = spawn
        self.lease: Lease | None = None
        self.error: str | None = None  # why there is no lease yet (admission answers 503 meanwhile)
        self._spent = 0  # what this lease paid for: reported on return (not the period total)
        self._closing = False

    async def acquire(self) -> None:
        if not await self._try():
            self._spawn(self._retry())

    async def _try(self) -> bool:
        """Handshake for a budget lease with the provider the server assigned; the grant is the limit."""
        try:
            pk = await self._control.provider_key()
            self.lease = await self._control.handshake(pk.provider)
        except ControlError as exc:
            if self.error != exc.message:
                self._publish(Notice(self._clock.now(), "error", f"budget lease failed: {exc.message}"))
            self.error = exc.message
            return False
        self.error = None
        self._spent = 0
        self._ledger.set_limit(self.lease.granted_micros)
        self._publish(Notice(self._clock.now(), "info",
                             f"budget lease {self.lease.lease_id}: ${usd(self.lease.granted_micros):.2f} granted"))
        return True

    async def _retry(self) -> None:
        delay = 2.0
        while not self._closing:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
            if await self._try():
                return

    def finished(self, rec: RequestRecord) -> None:
        """A call ended: count what it cost against this lease and report a priced success."""
        if self.lease is None:
            return
        if rec.cost_micros:
            self._spent += rec.cost_micros
        if rec.state == "ok" and rec.cost_micros is not None and rec.input_tokens + rec.output_tokens > 0:
            self._spawn(self._report(self.lease, rec))

    async def _report(self, lease: Lease, rec: RequestRecord) -> None:
        with contextlib.suppress(ControlError, asyncio.TimeoutError, aiohttp.ClientError):
            await self._control.report(lease.lease_id, rec.id, rec.input_tokens + rec.output_tokens,
                                       rec.cost_micros or 0, rec.model, rec.provider)

    async def give_back(self) -> None:
        self._closing = True
        if self.lease is not None:
            with contextlib.suppress(ControlError, asyncio.TimeoutError):
                await asyncio.wait_for(self._control.return_lease(self.lease.lease_id, self._spent), 5.0)

"""The event bus: synchronous, never-blocking publish; bounded per-subscriber queues.

Subscribers live on the engine's event loop. When a subscriber's queue is full the *oldest* item is
dropped and counted, so a slow consumer costs memory bounded by its queue and never slows a request.

A subscription may take only some kinds of event (`kinds`, changeable with `listen`): the headless log
takes what it prints, the feed takes nothing while no client is connected. A publisher can ask
`wants(kind)` first and skip building an event nobody takes (a request summary per call start).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

from iron_tui.core.events import Event

Kinds = tuple[type[Event], ...] | None  # None: every kind


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int, name: str, kinds: Kinds = None) -> None:
        self._bus = bus
        self.kinds = kinds
        self._items: deque[Event] = deque()
        self._maxsize = maxsize
        self._wakeup = asyncio.Event()
        self.name = name
        self.dropped = 0
        self.closed = False
        # Called (synchronously) the first time an item is dropped; the feed uses it to disconnect.
        self.on_overflow: Callable[[Subscription], None] | None = None

    def _push(self, event: Event) -> None:
        items = self._items
        if len(items) >= self._maxsize:
            items.popleft()
            self.dropped += 1
            self._bus.dropped += 1
            if self.dropped == 1 and self.on_overflow is not None:
                self.on_overflow(self)
        items.append(event)
        self._wakeup.set()

    def __len__(self) -> int:
        return len(self._items)

    def listen(self, kinds: Kinds) -> None:
        """Take only these kinds of event from now on (None: all; (): none)."""
        self.kinds = kinds
        self._bus._retarget()

    def takes(self, kind: type[Event]) -> bool:
        return self.kinds is None or issubclass(kind, self.kinds)

    def drain(self, limit: int | None = None) -> list[Event]:
        """Take up to `limit` queued events without waiting."""
        n = len(self._items) if limit is None else min(limit, len(self._items))
        out = [self._items.popleft() for _ in range(n)]
        if not self._items:
            self._wakeup.clear()
        return out

    async def get(self) -> Event:
        while not self._items:
            if self.closed:
                raise EOFError("subscription closed")
            self._wakeup.clear()
            await self._wakeup.wait()
        item = self._items.popleft()
        if not self._items:
            self._wakeup.clear()
        return item

    async def get_batch(self, limit: int = 1000) -> list[Event]:
        """Wait for at least one event, then take everything queued (up to `limit`)."""
        while not self._items:
            if self.closed:
                raise EOFError("subscription closed")
            self._wakeup.clear()
            await self._wakeup.wait()
        return self.drain(limit)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._wakeup.set()
            self._bus._remove(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Event]:
        while True:
            try:
                yield await self.get()
            except EOFError:
                return


class EventBus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        # What publish() iterates, per event type: a tuple, made anew whenever a subscription comes, goes
        # or changes its kinds, so a change while an event is delivered does not disturb that delivery,
        # without a copy per event.
        self._targets: dict[type[Event], tuple[Subscription, ...]] = {}
        self.dropped = 0

    def subscribe(self, maxsize: int = 10_000, name: str = "", kinds: Kinds = None) -> Subscription:
        sub = Subscription(self, maxsize, name, kinds)
        self._subs.append(sub)
        self._retarget()
        return sub

    def _remove(self, sub: Subscription) -> None:
        try:
            self._subs.remove(sub)
        except ValueError:
            pass
        self._retarget()

    def _retarget(self) -> None:
        self._targets = {}

    def _targets_for(self, kind: type[Event]) -> tuple[Subscription, ...]:
        targets = self._targets.get(kind)
        if targets is None:
            targets = self._targets[kind] = tuple(s for s in self._subs if s.takes(kind))
        return targets

    def wants(self, kind: type[Event]) -> bool:
        """Whether any subscription takes events of `kind`."""
        return bool(self._targets_for(kind))

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def publish(self, event: Event) -> None:
        """Deliver to every subscription taking it. Synchronous and O(subscribers); never awaits."""
        targets = self._targets.get(type(event))
        if targets is None:
            targets = self._targets_for(type(event))
        for sub in targets:
            sub._push(event)

    def close(self) -> None:
        for sub in tuple(self._subs):
            sub.close()

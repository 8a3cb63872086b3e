"""The WebSocket feed for external dashboards (`GET /ws`) and the built-in page (`GET /dashboard`).

One bus subscription feeds every client. The fan-out task turns each bus event into wire messages
(`to_wire`), serialises each message once, and appends the string to every authenticated client's own
bounded queue; each client has its own writer task. A client whose queue overflows is closed with 1013
and counted, so a slow or stalled dashboard costs a bounded amount of memory and never slows the proxy.
Protocol and examples: docs/feed.md; message schema: feed_schema.json (shipped in the package).
The wire (encoding, the feed's own messages, close codes) is in feed_messages.py, one client's handshake,
queue and closing in feed_client.py, the /dashboard page in dashboard_page.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from iron_tui.core.bus import EventBus, Subscription
from iron_tui.core.clock import Clock, iso_utc
from iron_tui.core.dashboard_page import load_page, page_response
from iron_tui.core.events import Event, SpendChanged, to_wire
from iron_tui.core.feed_client import INVALID_TOKEN, FeedClient, authenticate, close_client, close_quietly
from iron_tui.core.feed_messages import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
    dumps,
    dumps_bytes,
    error_message,
    heartbeat_message,
    pong_message,
    snapshot_message,
    text_frame,
)
from iron_tui.core.feed_messages import load_feed_schema as load_feed_schema  # documented (docs/feed.md)

if TYPE_CHECKING:
    from iron_tui.core.proxy.guard import RequestGuard

log = logging.getLogger(__name__)

_CLIENT_MAX_MSG = 64 * 1024  # clients only ever send AUTH / PING
_FEED_SUBSCRIPTION_SIZE = 10_000


# A client's unsent bytes beyond this mean it is not reading; batching window for its writes.
_HIGH_WATER = 1 << 20
_BATCH_S = 0.1
_FANOUT_EVERY_S = 0.02


class Feed:
    def __init__(
        self,
        bus: EventBus,
        *,
        token: str,
        snapshot: Callable[[], dict[str, Any]],
        clock: Clock,
        heartbeat_s: float = 30.0,
        auth_timeout_s: float = 5.0,
        client_queue: int = 1000,
        send_timeout_s: float = 5.0,
        idle_timeout_s: float = 60.0,
        guard: RequestGuard | None = None,
        query: Callable[[dict[str, Any]], Callable[[], dict[str, Any]] | None] | None = None,
    ) -> None:
        self._bus = bus
        self._guard = guard  # wrong tokens slow down like the API's; which Host names the CSP may use
        self._token = token.encode("utf-8")
        self._snapshot = snapshot
        # Client questions (GET_REQUEST, QUERY, GET_STATS): `query(msg)` runs on the loop and returns
        # the work, which runs in a worker thread; its answer goes to that client only.
        self._query = query
        self._clock = clock
        self._heartbeat_s = heartbeat_s
        self._auth_timeout_s = auth_timeout_s
        self._client_queue = max(1, client_queue)
        self._send_timeout_s = send_timeout_s
        # aiohttp pings a quiet peer after idle/2 and drops it if no pong comes within idle/4 more.
        self._ping_s = idle_timeout_s / 2 if idle_timeout_s > 0 else None
        self._clients: set[FeedClient] = set()
        self._unauthenticated: set[web.WebSocketResponse] = set()
        self._sub: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False
        self._seen_dropped = 0
        self._page: tuple[bytes, str] | None = None
        self.disconnected_slow = 0
        self.resyncs = 0  # times every client was closed because the feed's own subscription overflowed
        self.messages_sent = 0

    @property
    def client_count(self) -> int:
        """Authenticated clients currently connected."""
        return len(self._clients)

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        # Nothing is taken from the bus while no client is connected (see _listening).
        self._sub = self._bus.subscribe(_FEED_SUBSCRIPTION_SIZE, name="feed", kinds=())
        self._tasks = [
            asyncio.create_task(self._fanout(self._sub), name="feed-fanout"),
            asyncio.create_task(self._heartbeat(), name="feed-heartbeat"),
        ]

    async def close(self) -> None:
        """Close every client with 1001 (going away) and stop the feed's tasks. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._sub is not None:
            self._sub.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in tuple(self._clients):
            self._kick(client, CLOSE_GOING_AWAY, "server shutting down")
        for ws in tuple(self._unauthenticated):
            task = asyncio.create_task(close_quietly(ws, CLOSE_GOING_AWAY, "server shutting down", self._send_timeout_s))
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)
        if self._closers:
            # Healthy clients answer the close at once; stalled ones get one send timeout, then are cut.
            _, late = await asyncio.wait(tuple(self._closers), timeout=self._send_timeout_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    # --- GET /ws -----------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            autoping=True,
            heartbeat=self._ping_s,
            # Every message would otherwise be deflated once per client; local dashboards don't need it.
            compress=False,
            max_msg_size=_CLIENT_MAX_MSG,
            timeout=self._send_timeout_s,  # how long close() waits for the peer's close reply
        )
        if not ws.can_prepare(request).ok:
            return web.json_response(
                {"error": {"message": "GET /ws expects a WebSocket upgrade", "type": "upgrade_required"}},
                status=426, headers={"Upgrade": "websocket"},
            )
        await ws.prepare(request)
        if self._closed:
            await ws.close(code=CLOSE_GOING_AWAY, message=b"server shutting down")
            return ws
        if not self._started:
            await self.start()

        self._unauthenticated.add(ws)
        try:
            reason = await authenticate(ws, request, self._token, self._auth_timeout_s)
        finally:
            self._unauthenticated.discard(ws)
        if self._closed:
            await close_quietly(ws, CLOSE_GOING_AWAY, "server shutting down", self._send_timeout_s)
            return ws
        if reason is not None:
            if self._guard is not None and reason == INVALID_TOKEN:
                await self._guard.peer_failed(request)
            await close_quietly(ws, CLOSE_UNAUTHORIZED, reason, self._send_timeout_s)
            return ws

        client = FeedClient(ws, request.transport, self._client_queue)
        try:
            # Snapshot and registration happen with no await in between, so no live message can fall
            # between the snapshot and the client's first queued event.
            state = self._snapshot()
            client.push(text_frame(dumps(snapshot_message(self._clock.now(), state))))
            client.skip = len(self._sub) if self._sub is not None else 0
        except Exception:
            log.exception("feed: building the snapshot failed")
            await close_quietly(ws, CLOSE_INTERNAL_ERROR, "snapshot unavailable", self._send_timeout_s)
            return ws
        self._clients.add(client)
        self._listening()
        client.writer = asyncio.create_task(self._write_loop(client), name="feed-writer")
        try:
            await self._read_loop(client)
        finally:
            self._clients.discard(client)
            self._listening()
            client.gone.set()
            if client.writer is not None:
                client.writer.cancel()
            if client.closer is not None:
                await asyncio.wait([client.closer])  # let the close handshake finish; never cancels it
        return ws

    async def _read_loop(self, client: FeedClient) -> None:
        async for msg in client.ws:
            if msg.type is not WSMsgType.TEXT:
                if msg.type is WSMsgType.BINARY:
                    self._reply(client, error_message(self._clock.now(), "binary messages are not accepted"))
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                self._reply(client, error_message(self._clock.now(), "invalid JSON"))
                continue
            if isinstance(data, dict) and data.get("type") == "PING":
                self._reply(client, pong_message(self._clock.now()))
            elif isinstance(data, dict) and self._query is not None:
                await self._answer(client, data)
            # AUTH after authentication and unknown types are ignored (forward compatibility).

    async def _answer(self, client: FeedClient, data: dict[str, Any]) -> None:
        """One question at a time per client (the read loop waits for the answer)."""
        assert self._query is not None
        try:
            work = self._query(data)
            if work is None:
                return  # not a question: ignored, as unknown types are
            answer = await asyncio.to_thread(work)
            answer["timestamp"] = iso_utc(self._clock.now())
            self._reply(client, answer)
        except Exception:  # a bug answering must not end the connection
            log.exception("feed: answering %s failed", data.get("type"))
            self._reply(client, error_message(self._clock.now(), f"could not answer {str(data.get('type'))[:40]}"))

    def _reply(self, client: FeedClient, message: dict[str, Any]) -> None:
        if client in self._clients and not client.push(text_frame(dumps(message))):
            self._slow(client)

    async def _write_loop(self, client: FeedClient) -> None:
        """Send everything queued as one transport write, at most every `_BATCH_S`.

        One write per batch instead of one per message matters: with 20 dashboards and ~5 messages per
        proxied call, per-message sends cost more syscalls than the call itself. Frames are plain
        unmasked text frames (compression is off), written whole, so they interleave safely with
        aiohttp's own control frames.
        """
        transport = client.transport
        try:
            while True:
                while not client.queue:
                    client.wakeup.clear()
                    await client.wakeup.wait()
                if transport is None or transport.is_closing() or client.ws.closed:
                    return  # closing: no data frames after the close frame
                data = b"".join(client.queue)
                client.queue.clear()
                self.messages_sent += client.queued
                client.queued = 0
                transport.write(data)
                if transport.get_write_buffer_size() > _HIGH_WATER:
                    # The peer is not reading: give it one send timeout to catch up, else it is slow.
                    try:
                        async with asyncio.timeout(self._send_timeout_s):
                            while transport.get_write_buffer_size() > _HIGH_WATER:
                                await asyncio.sleep(0.01)
                    except TimeoutError:
                        self._slow(client)
                        return
                if not client.urgent.is_set():
                    try:
                        async with asyncio.timeout(_BATCH_S):
                            await client.urgent.wait()
                    except TimeoutError:
                        pass
                client.urgent.clear()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The peer went away mid-send; the reader side sees the same and ends the handler. Leave the
            # fan-out now so this client is not later miscounted as slow.
            self._clients.discard(client)

    # --- fan-out -----------------------------------------------------------------------------------

    def _broadcast(self, frame: bytes) -> None:
        """O(clients) appends; never awaits."""
        for client in tuple(self._clients):
            if not client.push(frame):
                self._slow(client)

    def _slow(self, client: FeedClient) -> None:
        if client in self._clients:
            self.disconnected_slow += 1
            self._kick(client, CLOSE_TRY_AGAIN_LATER, "client too slow; reconnect")

    def _kick(self, client: FeedClient, code: int, reason: str) -> None:
        """Drop a client from the fan-out now and close its socket in the background."""
        self._clients.discard(client)
        client.queue.clear()
        client.queued = 0
        if client.writer is not None and client.writer is not asyncio.current_task():
            client.writer.cancel()  # it may be stuck waiting for the peer to drain
        if client.closer is None:
            client.closer = asyncio.create_task(close_client(client, code, reason, self._send_timeout_s), name="feed-close")
            self._closers.add(client.closer)
            client.closer.add_done_callback(self._closers.discard)

    async def _fanout(self, sub: Subscription) -> None:
        while True:
            try:
                events = await sub.get_batch(1000)
            except EOFError:
                return
            if sub.dropped != self._seen_dropped:
                self._resync(sub)
            self._publish_events(events)
            self._listening()  # clients dropped as slow or kicked leave by other doors than handle()
            if self._clients:
                # Let events gather: per-client work is per batch, so fewer, larger batches are cheaper.
                await asyncio.sleep(_FANOUT_EVERY_S)

    def _listening(self) -> None:
        """Take every event from the bus while some client is connected, none otherwise: with no client
        the feed has nothing to send, and publishers skip events nobody takes."""
        sub = self._sub
        want = None if self._clients else ()
        if sub is not None and sub.kinds != want:
            sub.listen(want)

    def _resync(self, sub: Subscription) -> None:
        # The feed itself fell behind the bus, so every client missed events: close them all with 1013
        # so they reconnect and take a fresh snapshot rather than show a silently wrong picture.
        self._seen_dropped = sub.dropped
        self.resyncs += 1
        log.warning("feed: %d bus events dropped; asking %d clients to resync", sub.dropped,
                    len(self._clients))
        for client in tuple(self._clients):
            self._kick(client, CLOSE_TRY_AGAIN_LATER, "feed fell behind; reconnect")

    def _publish_events(self, events: list[Event]) -> None:
        """Serialise a batch of bus events once and hand each client ONE chunk for the whole batch.

        Per-client work is per batch, not per message, so many dashboards stay cheap under load.
        Spend changes twice per call (reserve, settle): within a batch only the latest budget
        STATE_UPDATE is sent, in its own place.
        """
        if not self._clients:
            return  # nobody listening: don't pay for serialisation on every proxied call
        last_spend = max((i for i, e in enumerate(events) if isinstance(e, SpendChanged)), default=-1)
        per_event: list[list[bytes]] = []
        for i, event in enumerate(events):
            if isinstance(event, SpendChanged) and i != last_spend:
                per_event.append([])
                continue
            try:
                per_event.append([text_frame(dumps_bytes(message)) for message in to_wire(event)])
            except Exception:
                # A malformed event must not stop the feed; it is logged and skipped.
                log.exception("feed: could not serialise %s", type(event).__name__)
                per_event.append([])
        chunks: dict[int, tuple[bytes, int]] = {}  # first event index → (joined frames, frame count)
        for client in tuple(self._clients):
            start = 0
            if client.skip:
                start = min(client.skip, len(events))
                client.skip -= start
            chunk = chunks.get(start)
            if chunk is None:
                frames = [f for fs in per_event[start:] for f in fs]
                chunk = chunks[start] = (b"".join(frames), len(frames))
            if chunk[1] and not client.push(*chunk):
                self._slow(client)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            self._broadcast(text_frame(dumps(heartbeat_message(self._clock.now()))))

    # --- GET /dashboard ----------------------------------------------------------------------------

    async def handle_dashboard(self, request: web.Request) -> web.StreamResponse:
        """The self-contained dashboard page. No auth here: the page asks for the token itself."""
        if self._page is None:
            self._page = load_page()
        return page_response(request, self._page, self._guard)

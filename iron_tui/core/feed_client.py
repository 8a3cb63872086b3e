"""One client of the WebSocket feed: its handshake (token check), its bounded queue of ready-made frames,
and closing its socket without letting a stalled peer keep it open."""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections import deque
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)
INVALID_TOKEN = "invalid token"


@dataclass(eq=False)
class FeedClient:
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    maxlen: int
    # Ready-made WebSocket frames, or several joined into one chunk; `queued` counts the frames.
    queue: deque[bytes] = field(default_factory=deque)
    queued: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    urgent: asyncio.Event = field(default_factory=asyncio.Event)
    writer: asyncio.Task[None] | None = None
    closer: asyncio.Task[None] | None = None
    # Bus events published before this client's snapshot but not yet fanned out: the snapshot already
    # reflects them, so the fan-out skips that many for this client (no duplicates, no gaps).
    skip: int = 0
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # the handler stopped reading

    def push(self, chunk: bytes, frames: int = 1) -> bool:
        """Queue frames; False when the queue is already full (the client is not keeping up).

        A batch may take the queue past its size once: only a queue still full at the next batch
        means the client's writer is not draining."""
        if self.queued >= self.maxlen:
            return False
        self.queue.append(chunk)
        self.queued += frames
        self.wakeup.set()
        if self.queued * 2 >= self.maxlen:
            self.urgent.set()  # cut the batching pause short rather than call a busy client slow
        return True


# --- the handshake ---------------------------------------------------------------------------------


async def authenticate(ws: web.WebSocketResponse, request: web.Request, token: bytes,
                       timeout_s: float) -> str | None:
    """None when the client is authenticated, else the close reason."""
    header = request.headers.get("Authorization")
    if header is not None:
        m = _BEARER.match(header)
        return None if m and token_ok(m.group(1), token) else INVALID_TOKEN
    try:
        msg = await ws.receive(timeout=timeout_s)
    except TimeoutError:
        return "authentication timed out"
    if msg.type is not WSMsgType.TEXT:
        return "expected an AUTH message"
    try:
        data = json.loads(msg.data)
    except ValueError:
        return "expected an AUTH message"
    if not isinstance(data, dict) or data.get("type") != "AUTH":
        return "expected an AUTH message"
    given = data.get("token")
    return None if isinstance(given, str) and token_ok(given, token) else INVALID_TOKEN


def token_ok(given: str, token: bytes) -> bool:
    # Empty tokens never match, so a misconfigured empty token cannot open the feed.
    return bool(given) and bool(token) and hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token)


# --- closing -----------------------------------------------------------------------------------------


async def close_client(client: FeedClient, code: int, reason: str, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await client.ws.close(code=code, message=reason.encode("utf-8"))
        return
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            abort(client)  # the feed is shutting down: no grace
            raise
        # Not cancelled ourselves: aiohttp shares one drain future between all writers of a
        # connection, and cancelling (or timing out) the stuck writer task cancelled it under us. The
        # close frame is already queued and aiohttp is now closing the transport gracefully.
    except Exception:  # timed out, or the peer is already gone
        pass
    # The close frame is queued behind data a stalled peer never read. Give it one more grace period
    # to read it, then drop the connection so the socket cannot linger forever. Cancellation (the feed
    # shutting down) ends the grace period early.
    try:
        async with asyncio.timeout(timeout_s):
            await client.gone.wait()
    except TimeoutError:
        pass
    finally:
        abort(client)


def abort(client: FeedClient) -> None:
    if client.transport is not None:
        client.transport.abort()


async def close_quietly(ws: web.WebSocketResponse, code: int, reason: str, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await ws.close(code=code, message=reason.encode("utf-8"))
    except Exception:  # timed out, or the peer is already gone
        pass

"""State and plumbing shared by the simulated providers: settings, request log, faults, streaming."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from aiohttp import web

from iron_tui.sim.script import Directives

MAX_RECORDED = 10_000
_POLL_S = 0.05  # how often a sleeping handler checks that its client is still there
_SEEN_PREFIXES = 4096


@dataclass
class SimSettings:
    openai_keys: set[str] = field(default_factory=lambda: {"sk-sim-openai"})
    anthropic_keys: set[str] = field(default_factory=lambda: {"sk-ant-sim-anthropic"})
    latency_ms: float = 0.0  # before the response / first byte
    chunk_delay_ms: float = 0.0  # between stream chunks
    words: int = 12  # default length of a generated reply (words == output tokens)
    # OpenAI-compatible mode (a local Ollama/vLLM-like server): no key needed, and /v1/models lists these.
    open_access: bool = False
    served_models: tuple[str, ...] | None = None
    # Models whose every call is answered "overloaded" (503), for fallback demos and tests.
    overloaded_models: frozenset[str] = frozenset()


@dataclass
class ReceivedRequest:
    """One request as the sim saw it. `headers` keys are lower-case."""

    provider: str  # "openai" | "anthropic"
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    received_at: float
    cancelled: bool = False  # the client went away before the response finished
    completed: bool = False  # the whole response was handed to the transport
    status: int = 0  # HTTP status sent; 0 until answered, -1 when the sim dropped the connection
    query: str = ""  # the query string as received (Claude Code's `beta=true`), without the "?"
    _done: asyncio.Event | None = field(default=None, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.cancelled or self.completed or self.status < 0

    async def wait_done(self, timeout: float = 5.0) -> ReceivedRequest:
        """Wait until the response completed or the client went away (TimeoutError otherwise)."""
        if not self.finished:
            if self._done is None:
                self._done = asyncio.Event()
            async with asyncio.timeout(timeout):
                await self._done.wait()
        return self

    def _finish(self) -> None:
        if self._done is not None:
            self._done.set()


@dataclass
class Fault:
    """A queued failure. `kind`: "status" (error response), "disconnect" (close the socket without an
    answer), "hang" (never answer), "stall" (stream a few chunks then hang), "midstream_error",
    "prestream_error" (as the directives of the same names)."""

    status: int = 500
    times: int = 1
    provider: str | None = None
    body: dict[str, Any] | None = None
    retry_after: float | None = None
    kind: str = "status"
    path: str | None = None


class FaultQueue:
    """Programmatic fault injection: the next matching requests fail as configured, first pushed first."""

    _KINDS = frozenset({"status", "disconnect", "hang", "stall", "midstream_error", "prestream_error"})

    def __init__(self) -> None:
        self._items: list[Fault] = []

    def push(
        self,
        status: int = 500,
        times: int = 1,
        provider: str | None = None,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
        *,
        kind: str = "status",
        path: str | None = None,
    ) -> Fault:
        """Make the next `times` requests (of `provider` / to `path`, when given) fail this way."""
        if kind not in self._KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(self._KINDS)}")
        if provider not in (None, "openai", "anthropic"):
            raise ValueError(f"unknown provider {provider!r}; expected 'openai' or 'anthropic'")
        fault = Fault(status, times, provider, body, retry_after, kind, path)
        if times > 0:
            self._items.append(fault)
        return fault

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def pending(self) -> list[Fault]:
        return list(self._items)

    def take(self, provider: str, path: str) -> Fault | None:
        for i, fault in enumerate(self._items):
            if fault.provider not in (None, provider) or fault.path not in (None, path):
                continue
            fault.times -= 1
            if fault.times <= 0:
                del self._items[i]
            return fault
        return None


def apply_fault(d: Directives, fault: Fault | None) -> Directives:
    """Fold a fault into the request's directives (a fault wins over the prompt's directives)."""
    if fault is None:
        return d
    if fault.kind == "status":
        retry = None if fault.retry_after is None else f"{fault.retry_after:g}"
        return replace(d, error=fault.status, retry_after=retry)
    flags: dict[str, Any] = {fault.kind: True}
    return replace(d, **flags)


class ClientGone(Exception):
    """The client closed the connection (or the sim is stopping) while the handler waited."""


class Dropped(Exception):
    """The sim closed the connection on purpose (`disconnect` directive/fault)."""


def loads(raw: bytes) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class SimState:
    """Everything the provider handlers share. `ProviderSim` adds the HTTP server around it."""

    def __init__(self, settings: SimSettings | None = None) -> None:
        self.settings = settings or SimSettings()
        self.requests: list[ReceivedRequest] = []
        self.faults = FaultQueue()
        self._cancelled: list[ReceivedRequest] = []
        self._cancel_taken = 0
        self._cancel_event = asyncio.Event()
        self._stopping = False
        self._ids = itertools.count(1)
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._seen_openai: OrderedDict[bytes, None] = OrderedDict()

    # ---- request log -------------------------------------------------------------------------------

    def record(self, provider: str, request: web.BaseRequest, body: dict[str, Any] | None) -> ReceivedRequest:
        rec = ReceivedRequest(
            provider,
            request.method,
            request.path,
            {k.lower(): v for k, v in request.headers.items()},
            body,
            time.time(),
            query=request.query_string,
        )
        reqs = self.requests
        reqs.append(rec)
        if len(reqs) > MAX_RECORDED:
            del reqs[0]
        return rec

    def mark_cancelled(self, rec: ReceivedRequest) -> None:
        if rec.cancelled or rec.completed:
            return
        rec.cancelled = True
        self._cancelled.append(rec)
        self._cancel_event.set()
        rec._finish()

    def mark_completed(self, rec: ReceivedRequest, status: int) -> None:
        rec.status = status
        rec.completed = True
        rec._finish()

    def mark_dropped(self, rec: ReceivedRequest) -> None:
        rec.status = -1
        rec._finish()

    @property
    def cancelled_requests(self) -> list[ReceivedRequest]:
        return list(self._cancelled)

    async def wait_cancelled(self, timeout: float = 5.0) -> ReceivedRequest:
        """Return the next request (oldest first, each once) whose client went away before the response
        finished; raise TimeoutError when none does within `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while self._cancel_taken >= len(self._cancelled):
                self._cancel_event.clear()
                await self._cancel_event.wait()
        rec = self._cancelled[self._cancel_taken]
        self._cancel_taken += 1
        return rec

    async def wait_requests(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Wait until at least `count` requests were received; return the log."""
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                await asyncio.sleep(0.005)
        return self.requests

    def reset(self) -> None:
        """Forget requests, faults and cache state (between tests sharing one sim)."""
        self.requests.clear()
        self.faults.clear()
        self._cancelled.clear()
        self._cancel_taken = 0
        self._seen.clear()
        self._seen_openai.clear()

    # ---- small helpers for handlers ----------------------------------------------------------------

    def next_id(self) -> int:
        return next(self._ids)

    def seen_before(self, key: bytes, *, openai: bool = False) -> bool:
        """Remember a prompt-cache prefix; True when it was already seen (bounded LRU)."""
        seen = self._seen_openai if openai else self._seen
        if key in seen:
            seen.move_to_end(key)
            return True
        seen[key] = None
        if len(seen) > _SEEN_PREFIXES:
            seen.popitem(last=False)
        return False

    @staticmethod
    def prefix_key(obj: Any) -> bytes:
        return hashlib.sha1(json.dumps(obj, sort_keys=True).encode(), usedforsecurity=False).digest()

    def _client_gone(self, request: web.BaseRequest) -> bool:
        transport = request.transport
        if self._stopping and transport is not None:
            transport.close()  # shutting down: cut the exchange rather than answer it
            return True
        return transport is None or transport.is_closing()

    async def pause(self, request: web.BaseRequest, seconds: float) -> None:
        """Sleep, but notice a vanished client even when aiohttp does not cancel the handler."""
        if seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while True:
            left = end - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, _POLL_S))
            if self._client_gone(request):
                raise ClientGone

    async def hang(self, request: web.BaseRequest) -> None:
        """Never answer: wait until the client (or the sim) gives up."""
        while not self._client_gone(request):
            await asyncio.sleep(_POLL_S)
        raise ClientGone

    @staticmethod
    def drop(request: web.BaseRequest) -> None:
        transport = request.transport
        if transport is not None:
            transport.close()
        raise Dropped

    async def stream(
        self,
        request: web.BaseRequest,
        headers: dict[str, str],
        events: list[bytes],
        delay_s: float,
        *,
        stall: bool = False,
    ) -> web.StreamResponse:
        """Send pre-encoded SSE events. Without a delay they go out in one write (cheap for the
        benchmark); with one, event by event so clients see them arrive and can hang up mid-way."""
        resp = web.StreamResponse(status=200, headers=headers)
        await resp.prepare(request)
        if delay_s <= 0:
            await resp.write(b"".join(events))
        else:
            for i, event in enumerate(events):
                if i:
                    await self.pause(request, delay_s)
                await resp.write(event)
        if stall:
            await self.hang(request)
        await resp.write_eof()
        return resp


class ProviderApi:
    """Base of the per-provider handler sets: access to the shared state and the common preamble."""

    provider = ""

    def __init__(self, sim: SimState) -> None:
        self.sim = sim

    async def before(
        self, request: web.BaseRequest, d: Directives
    ) -> tuple[Directives, dict[str, Any] | None]:
        """Apply queued faults, `disconnect`, `hang` and latency. Returns the effective directives and
        a fault's custom error body (if any); the caller then answers `d.error` or the reply."""
        sim = self.sim
        fault = sim.faults.take(self.provider, request.path) if sim.faults._items else None
        d = apply_fault(d, fault)
        if d.disconnect:
            sim.drop(request)
        if d.hang:
            await sim.hang(request)
        latency = d.latency_ms if d.latency_ms is not None else sim.settings.latency_ms
        if latency > 0:
            await sim.pause(request, latency / 1000)
        return d, (fault.body if fault is not None else None)

    def chunk_delay(self, d: Directives) -> float:
        ms = d.slow_stream_ms if d.slow_stream_ms is not None else self.sim.settings.chunk_delay_ms
        return max(ms, 0.0) / 1000


_P = TypeVar("_P", bound=ProviderApi)


def exchange(
    provider: str,
) -> Callable[
    [Callable[[_P, web.Request, ReceivedRequest, dict[str, Any] | None], Awaitable[web.StreamResponse]]],
    Callable[[_P, web.Request], Awaitable[web.StreamResponse]],
]:
    """Wrap a provider handler: read and record the request, and note how the exchange ended."""

    def deco(
        fn: Callable[
            [_P, web.Request, ReceivedRequest, dict[str, Any] | None], Awaitable[web.StreamResponse]
        ],
    ) -> Callable[[_P, web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(fn)
        async def handler(self: _P, request: web.Request) -> web.StreamResponse:
            sim = self.sim
            raw = await request.read() if request.body_exists else b""
            rec = sim.record(provider, request, loads(raw))
            try:
                resp = await fn(self, request, rec, rec.body)
            except asyncio.CancelledError:
                sim.mark_cancelled(rec)
                raise
            except (ClientGone, ConnectionResetError):
                sim.mark_cancelled(rec)
                return web.Response(status=499)  # never reaches anyone: the connection is gone
            except Dropped:
                sim.mark_dropped(rec)
                return web.Response(status=502)
            sim.mark_completed(rec, resp.status)
            return resp

        return handler

    return deco

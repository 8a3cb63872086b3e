"""A loopback server that browsers cannot abuse: one check in front of every route (`RequestGuard.wrap`).

- **Host.** Only the bound loopback address's names (`127.0.0.1`, `localhost`, `[::1]`, with the port)
  are served; anything else is 403 — a page on `attacker.example` that re-resolves its name to
  127.0.0.1 (DNS rebinding) reaches the port, but with its own name in `Host`. `--allow-remote` serves
  any Host; `allowed_hosts` adds names (`*`: any).
- **Origin** on `/ws` and `/dashboard`: a browser says which page opened the socket; only the same
  origin (or `allowed_origins`) is accepted. Clients that send no Origin (SDKs, scripts) are unaffected.
- **Routes.** A path nothing serves is 404, a method it does not take is 405 with `Allow`, OPTIONS is
  answered with `Allow` — in JSON, in the route's API shape. No CORS headers, ever, by default.
- **Wrong tokens** slow down per peer (`AuthThrottle`), never the right token or another peer.

The per-request cost is about 1 µs of CPU: a header lookup and a set membership test (bench/guard_cost.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from iron_tui.core.proxy.auth import Authenticator
from iron_tui.core.proxy.errors import Shape, error_response, json_response
from iron_tui.core.safe_text import clean_name

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# Routes whose callers are browsers: their Origin is checked.
_BROWSER_PATHS = frozenset({"/ws", "/dashboard"})


def shape_for_path(path: str) -> Shape:
    """The API a path belongs to, for answers made before any handler ran."""
    return "anthropic" if path.startswith(("/v1/messages", "/anthropic/")) else "openai"


@dataclass(frozen=True)
class HostPolicy:
    """Which Host and Origin values are served, fixed once the port is bound."""

    hosts: frozenset[str]  # exact, lower-case `name:port` (and `name` on port 80)
    any_host: bool
    origins: frozenset[str]
    any_origin: bool

    @classmethod
    def build(cls, host: str, port: int, *, allow_remote: bool, allowed_hosts: Iterable[str] = (),
              allowed_origins: Iterable[str] = ()) -> HostPolicy:
        extra = [h.strip().lower() for h in allowed_hosts if h.strip()]
        bound = f"[{host}]" if ":" in host else host
        names = {bound.lower(), *_LOOPBACK_NAMES}
        hosts: set[str] = set()
        for name in (*names, *extra):
            if name.endswith("]") or ":" not in name:  # no port given: the bound port
                hosts.add(f"{name}:{port}")
                if port == 80:
                    hosts.add(name)
            else:
                hosts.add(name)
        origins = [o.strip().lower().rstrip("/") for o in allowed_origins if o.strip()]
        return cls(hosts=frozenset(hosts), any_host="*" in extra or (allow_remote and not extra),
                   origins=frozenset(origins), any_origin="*" in origins)

    def host_ok(self, host: str | None) -> bool:
        if host is None:
            return False
        return self.any_host or host in self.hosts or host.lower() in self.hosts

    def host_listed(self, host: str) -> bool:
        """Named by the policy itself (not merely let through by `any_host`)."""
        return host.lower() in self.hosts

    def origin_ok(self, origin: str | None, host: str | None) -> bool:
        if origin is None:
            return True  # not a browser
        o = origin.lower()
        if self.any_origin or o in self.origins:
            return True
        # Same origin: the page was served by this very host (which the Host check already vetted).
        return host is not None and o in (f"http://{host.lower()}", f"https://{host.lower()}")


class AuthThrottle:
    """Wrong tokens slow down per peer; the right token and other peers never wait.

    After `free` wrong tokens (forgotten `window` seconds after the last), each further wrong token from
    that peer is answered only after a delay that doubles up to `max_delay`. A peer that keeps more than
    `max_pending` such answers waiting gets 429 at once for every call, its token unexamined — so however
    many connections it opens, it can test at most `max_pending` guesses per delay."""

    def __init__(self, *, free: int = 5, base_delay: float = 0.25, max_delay: float = 8.0,
                 window: float = 60.0, max_pending: int = 16, max_peers: int = 10_000) -> None:
        self.free = free
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.window = window
        self.max_pending = max_pending
        self.max_peers = max_peers
        self.failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # peer → (count, last at)
        self._pending: dict[str, int] = {}

    def failed(self, peer: str) -> None:
        count, _ = self.failures.pop(peer, (0, 0.0))
        self.failures[peer] = (count + 1, time.monotonic())
        while len(self.failures) > self.max_peers:
            self.failures.popitem(last=False)

    def delay(self, peer: str) -> float:
        """How long this peer's next wrong token waits (0 while it has free attempts left)."""
        entry = self.failures.get(peer)
        if entry is None:
            return 0.0
        count, last = entry
        if time.monotonic() - last > self.window:
            del self.failures[peer]
            return 0.0
        over = count - self.free
        return 0.0 if over < 0 else min(self.max_delay, self.base_delay * (2.0 ** min(over, 30)))

    def flooding(self, peer: str) -> bool:
        return self._pending.get(peer, 0) >= self.max_pending

    async def wait(self, peer: str, seconds: float) -> None:
        self._pending[peer] = self._pending.get(peer, 0) + 1
        try:
            await asyncio.sleep(seconds)
        finally:
            left = self._pending[peer] - 1
            if left:
                self._pending[peer] = left
            else:
                del self._pending[peer]


def token_weakness(token: str) -> str | None:
    """Why a user-chosen token is easy to guess, or None."""
    if len(token) < 16:
        return f"it is short ({len(token)} characters)"
    if len(set(token)) < 8 or token.lower().strip("0123456789-_") in _COMMON:
        return "it is a common or repetitive word"
    return None


_COMMON = frozenset({"password", "token", "secret", "changeme", "test", "admin", "iron", "iron-tui", "letmein",
                     "qwerty", "default", "local", "localhost", "apikey", "api-key", "my-token", "mytoken"})


class RequestGuard:
    """The checks in front of every route, and those the feed shares. `bind()` once the port is known."""

    def __init__(self, auth: Authenticator, *, allow_remote: bool, allowed_hosts: Iterable[str] = (),
                 allowed_origins: Iterable[str] = (), throttle: AuthThrottle | None = None) -> None:
        self.auth = auth
        self.throttle = throttle or AuthThrottle()
        self._allow_remote = allow_remote
        self._allowed_hosts = tuple(allowed_hosts)
        self._allowed_origins = tuple(allowed_origins)
        self.policy = HostPolicy.build("127.0.0.1", 0, allow_remote=allow_remote)
        self.refused_hosts = 0
        self.direct: dict[str, Handler] = {}

    def route_directly(self, posts: dict[str, Handler]) -> None:
        """POST paths whose handler `wrap` calls itself, without the app's router: the LLM routes, which are
        plain paths with no middleware, so routing them is one dict lookup instead of aiohttp's resolve,
        match info and handler lookup (6-8 µs of proxy CPU a call, measured with bench/). The app keeps the
        same routes for every other case."""
        self.direct = dict(posts)

    def bind(self, host: str, port: int) -> None:
        self.policy = HostPolicy.build(host, port, allow_remote=self._allow_remote,
                                       allowed_hosts=self._allowed_hosts, allowed_origins=self._allowed_origins)

    def wrap(self, handler: Handler) -> Handler:
        """`handler` (the app's own: routing, then the route) behind the guard. The server calls this
        directly (`GuardedRunner(guard=...)`): cheaper than an aiohttp middleware, which costs ~2 µs per
        request before doing anything (bench/guard_cost.py)."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            host = request.headers.get("Host")
            policy = self.policy
            if host not in policy.hosts and not policy.host_ok(host):  # the first test is the usual answer
                self.refused_hosts += 1
                return self._bad_host(request, host)
            if request.path in _BROWSER_PATHS and not policy.origin_ok(request.headers.get("Origin"), host):
                return error_response("openai", 403, "this page's Origin may not use iron-tui: only pages it "
                                      "serves itself (or allowed_origins) may", code="origin_not_allowed")
            throttle = self.throttle
            if throttle.failures:  # no recent wrong token (the usual case): nothing to slow down
                early = await self._slow_down(request)
                if early is not None:
                    return early
            try:
                # A request with `Expect:` goes through the app, which answers the 100-continue.
                direct = self.direct.get(request.path) if request.method == "POST" else None
                if direct is not None and "Expect" not in request.headers:
                    resp = await direct(request)
                else:
                    resp = await handler(request)
            except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as refused:  # raised by the router
                return self._route_answer(request, refused)
            if resp.status == 401 and self.auth.check(request.headers) is None:
                throttle.failed(request.remote or "")
            return resp

        return guarded

    async def _slow_down(self, request: web.Request) -> web.StreamResponse | None:
        """A peer with recent wrong tokens: make its wrong ones wait; refuse outright when it floods."""
        peer = request.remote or ""
        seconds = self.throttle.delay(peer)
        if not seconds:
            return None
        if self.throttle.flooding(peer):
            return error_response(shape_for_path(request.path), 429, "too many wrong iron-tui tokens from this "
                                  "address; wait before trying again", code="too_many_auth_failures",
                                  headers={"Retry-After": str(max(1, round(seconds)))})
        h = request.headers
        # No credential is no guess; the feed checks (and slows) its own tokens after the upgrade.
        if request.path != "/ws" and ("x-api-key" in h or "authorization" in h) and self.auth.check(h) is None:
            await self.throttle.wait(peer, seconds)
        return None

    async def peer_failed(self, request: web.Request) -> None:
        """The feed's wrong token: counted, and slowed like the API's."""
        peer = request.remote or ""
        seconds = self.throttle.delay(peer)  # as for the API: what the failures before this one earned
        self.throttle.failed(peer)
        if seconds and not self.throttle.flooding(peer):
            await self.throttle.wait(peer, seconds)

    def _bad_host(self, request: web.Request, host: str | None) -> web.Response:
        shown = "no Host header" if host is None else f"Host {clean_name(host)!r}"
        return error_response(
            shape_for_path(request.path), 403,
            f"{shown} is not served: iron-tui answers only requests addressed to its own loopback address "
            "(a web page may be trying to reach it by DNS rebinding). To serve other names, set "
            "allowed_hosts (or --allow-remote).", code="host_not_allowed")

    def _route_answer(self, request: web.Request, refused: web.HTTPNotFound | web.HTTPMethodNotAllowed
                      ) -> web.Response:
        shape = shape_for_path(request.path)
        where = clean_name(request.path)
        if isinstance(refused, web.HTTPMethodNotAllowed):
            allow = ", ".join(sorted({*refused.allowed_methods, "OPTIONS"}))
            if request.method == "OPTIONS":
                return json_response(200, {"allow": allow.split(", ")}, {"Allow": allow})
            return error_response(shape, 405, f"{request.method} is not allowed on {where} (allowed: {allow})",
                                  code="method_not_allowed", headers={"Allow": allow})
        if isinstance(refused, web.HTTPNotFound):
            return error_response(shape, 404, f"Invalid URL ({clean_name(request.method)} {where}): iron-tui "
                                  "serves /v1/chat/completions, /v1/responses, /v1/messages, /v1/embeddings, "
                                  "/v1/completions and /v1/models", code="not_found")
        return error_response(shape, refused.status, refused.reason)

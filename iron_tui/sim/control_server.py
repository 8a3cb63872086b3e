"""A simulated Iron Cage control server (tests and `iron-tui demo`), faithful to
reference/iron-cage-protocol.md: same paths, bodies, statuses and error shapes.

Accounting is kept in plain attributes so tests can assert on it: `events` (event_id → event) and
`event_order`, `leases`, per-endpoint `requests` counters, `key_fetches`, `duplicates`.
Fault injection: `down()`/`up()` close and re-bind the same port (clients see connection refused,
then recovery), `fail_next(n, status, retry_after=…)`, `fail_events(rate)` (a share of event POSTs
answer 500), `max_event_bytes` (a larger event is refused with 413), `slow_ms`, `reject_event_ids` /
`reject_event`.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DEFAULT_GRANT = 10_000_000  # µ$ ($10), the original's default lease
MAX_REQUESTED = 100_000_000
MAX_TOKEN_LEN = 2000
PROVIDERS = ("openai", "anthropic")
EVENT_PROVIDERS = ("openai", "anthropic", "unknown")
EVENT_TYPES = ("llm_request_completed", "llm_request_failed")

# Endpoint names used as keys of `requests` and `fail_next(endpoint=...)`.
PROVIDER_KEY = "provider_key"
HANDSHAKE = "handshake"
REPORT = "report"
RETURN = "return"
EVENTS = "events"
_ENDPOINTS = {
    "/api/v1/agents/provider-key": PROVIDER_KEY,
    "/api/v1/budget/handshake": HANDSHAKE,
    "/api/v1/budget/report": REPORT,
    "/api/v1/budget/return": RETURN,
    "/api/v1/analytics/events": EVENTS,
}


@dataclass
class SimAgent:
    """One agent as the server knows it, found by its IC token."""

    token: str
    agent_id: str = "agent_1"
    provider: str | None = "openai"  # None → 403 NO_PROVIDER_ASSIGNED
    provider_key: str = "sk-sim-0000000000000000000000000000"
    base_url: str | None = None
    budget_micros: int = 100_000_000  # total the agent may lease
    key_disabled: bool = False  # → 403 NO_PROVIDER_ASSIGNED
    deleted: bool = False  # token valid but agent gone → 404 INVALID_TOKEN "Agent not found"
    provider_missing: bool = False  # → 404 PROVIDER_NOT_FOUND
    leased_micros: int = 0  # granted minus returned, i.e. not available for new leases

    @property
    def remaining_micros(self) -> int:
        return max(self.budget_micros - self.leased_micros, 0)


@dataclass
class SimLease:
    lease_id: str
    token: str
    provider: str
    granted: int
    reported: int = 0  # sum of cost_microdollars from /report
    spent: int | None = None  # spent_microdollars from /return
    returned: int | None = None
    state: str = "active"  # active | returned | revoked | expired
    reports: list[dict[str, Any]] = field(default_factory=list)


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


class ControlSim:
    def __init__(self, agents: Iterable[SimAgent] = (), *, report_enabled: bool = True,
                 crypto_unavailable: bool = False) -> None:
        self.agents: dict[str, SimAgent] = {a.token: a for a in agents}
        self.report_enabled = report_enabled
        self.crypto_unavailable = crypto_unavailable
        self.events: dict[str, dict[str, Any]] = {}
        self.event_order: list[str] = []
        self.leases: dict[str, SimLease] = {}
        self.requests: Counter[str] = Counter()  # every request that reached a handler
        self.duplicates = 0
        self.random_failures = 0  # event POSTs failed by `event_failure_rate`
        self.rejected_too_large = 0  # event POSTs refused with 413
        self.key_fetches = 0  # provider-key requests answered 200
        self.slow_ms = 0
        self.reject_event_ids: set[str] = set()
        # Return (status, body) to force an answer for an event, or None to process it normally.
        self.reject_event: Callable[[dict[str, Any]], tuple[int, dict[str, Any]] | None] | None = None
        self._fail: list[tuple[int, str | None, float | None]] = []  # (status, endpoint or None = any, Retry-After)
        # Failure modes of the analytics endpoint: this share of event POSTs answer 500 (random, seeded),
        # and an event whose body is larger than `max_event_bytes` is refused with 413.
        self.event_failure_rate = 0.0
        self.max_event_bytes: int | None = None
        self._rng = random.Random(0)
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0

    # --- configuration ---------------------------------------------------------------------------

    def add_agent(self, token: str, **kw: Any) -> SimAgent:
        agent = SimAgent(token=token, **kw)
        self.agents[token] = agent
        return agent

    def fail_next(self, n: int = 1, status: int = 500, *, endpoint: str | None = None,
                  retry_after: float | None = None) -> None:
        """The next `n` requests (to `endpoint`, or to any endpoint) answer `status` with that
        endpoint's error body (and a `Retry-After` header when given)."""
        self._fail.extend([(status, endpoint, retry_after)] * n)

    def fail_events(self, rate: float, *, seed: int = 0) -> None:
        """From now on, answer `rate` (0..1) of the event POSTs with a 500, at random (seeded)."""
        self.event_failure_rate = rate
        self._rng = random.Random(seed)

    def expire_lease(self, lease_id: str) -> None:
        self.leases[lease_id].state = "expired"

    def revoke_lease(self, lease_id: str) -> None:
        self.leases[lease_id].state = "revoked"

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("ControlSim is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def is_up(self) -> bool:
        return self._runner is not None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._host = host
        self._port = port
        await self.up()
        return self.url

    async def stop(self) -> None:
        await self.down()

    async def down(self) -> None:
        """Close the listening socket and every open connection: clients get connection refused."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def up(self) -> None:
        """Listen again on the same port (after `down()`)."""
        if self._runner is not None:
            return
        # A fresh app each time: an aiohttp Application cannot be reused after its runner cleaned up.
        runner = web.AppRunner(self._app(), shutdown_timeout=0.2, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        # runner.addresses works for asyncio's and uvloop's servers alike.
        self._port = runner.addresses[0][1]
        self._runner = runner

    async def __aenter__(self) -> ControlSim:
        if self._runner is None:
            await self.start(self._host, self._port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/api/v1/agents/provider-key", self._provider_key)
        app.router.add_post("/api/v1/budget/handshake", self._handshake)
        if self.report_enabled:
            app.router.add_post("/api/v1/budget/report", self._report)
        app.router.add_post("/api/v1/budget/return", self._return)
        app.router.add_post("/api/v1/analytics/events", self._events)
        return app

    # --- faults ----------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        endpoint = _ENDPOINTS.get(request.path, request.path)
        self.requests[endpoint] += 1
        if self.slow_ms:
            await asyncio.sleep(self.slow_ms / 1000)
        for i, (status, only, retry_after) in enumerate(self._fail):
            if only is None or only == endpoint:
                del self._fail[i]
                fault = _json(status, self._fault_body(endpoint, status))
                if retry_after is not None:
                    fault.headers["Retry-After"] = f"{retry_after:g}"
                return fault
        if endpoint == EVENTS:
            if self.max_event_bytes is not None and (request.content_length or 0) > self.max_event_bytes:
                self.rejected_too_large += 1
                return _json(413, {"error": "PAYLOAD_TOO_LARGE",
                                   "message": f"event larger than {self.max_event_bytes} bytes"})
            if self.event_failure_rate and self._rng.random() < self.event_failure_rate:
                self.random_failures += 1
                return _json(500, self._fault_body(endpoint, 500))
        resp: web.StreamResponse = await handler(request)
        return resp

    @staticmethod
    def _fault_body(endpoint: str, status: int) -> dict[str, Any]:
        if endpoint == PROVIDER_KEY:
            code = "CRYPTO_UNAVAILABLE" if status == 503 else "INTERNAL_ERROR"
            return {"error": "Internal server error", "code": code}
        if endpoint == EVENTS:
            return {"error": "DATABASE_ERROR", "message": "simulated database failure"}
        return {"error": "Internal server error"}

    # --- handlers --------------------------------------------------------------------------------

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _provider_key(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        token = body.get("ic_token") if body else None
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LEN:
            return _json(400, {"error": "IC Token is required and must be at most 2000 characters",
                               "code": "INVALID_TOKEN"})
        agent = self.agents.get(token)
        if agent is None:
            return _json(401, {"error": "Invalid IC Token", "code": "UNAUTHORIZED"})
        if agent.deleted:
            return _json(404, {"error": "Agent not found", "code": "INVALID_TOKEN"})
        if agent.provider is None or agent.key_disabled:
            return _json(403, {"error": "No provider key assigned to agent", "code": "NO_PROVIDER_ASSIGNED"})
        if agent.provider_missing:
            return _json(404, {"error": "Provider key not found", "code": "PROVIDER_NOT_FOUND"})
        if self.crypto_unavailable:
            return _json(503, {"error": "Key decryption unavailable", "code": "CRYPTO_UNAVAILABLE"})
        self.key_fetches += 1
        answer: dict[str, Any] = {"provider_key": agent.provider_key, "provider": agent.provider}
        if agent.base_url:
            answer["base_url"] = agent.base_url
        return _json(200, answer)

    def _bearer_agent(self, request: web.Request, body: dict[str, Any] | None) -> SimAgent | None:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if not token or (body and body.get("ic_token") not in (None, token)):
            return None
        agent = self.agents.get(token)
        return None if agent is None or agent.deleted else agent

    async def _handshake(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        agent = self._bearer_agent(request, body)
        if agent is None:
            return _json(401, {"error": "Invalid IC Token"})
        assert body is not None
        provider = body.get("provider")
        if provider not in PROVIDERS:
            return _json(400, {"error": f"Unsupported provider: {provider}"})
        if agent.provider != provider or agent.key_disabled or agent.provider_missing:
            return _json(404, {"error": f"No provider key found for provider {provider}"})
        requested = body.get("requested_budget")
        if requested is not None and (not isinstance(requested, int) or isinstance(requested, bool)
                                      or not 0 < requested <= MAX_REQUESTED):
            return _json(400, {"error": "requested_budget must be > 0 and <= 100000000"})
        if agent.remaining_micros <= 0:
            return _json(403, {"error": "Budget limit exceeded", "budget_remaining": 0})
        granted = min(requested or DEFAULT_GRANT, agent.remaining_micros)
        agent.leased_micros += granted
        lease = SimLease(lease_id=f"lease_{uuid.uuid4()}", token=agent.token, provider=provider,
                         granted=granted)
        self.leases[lease.lease_id] = lease
        return _json(200, {"ip_token": f"ip_{uuid.uuid4().hex}", "lease_id": lease.lease_id,
                           "budget_granted": granted, "budget_remaining": agent.remaining_micros,
                           "expires_at": None})

    async def _report(self, request: web.Request) -> web.Response:
        body = await self._body(request) or {}
        lease = self.leases.get(str(body.get("lease_id")))
        if lease is None:
            return _json(404, {"error": "Lease not found"})
        tokens, cost = body.get("tokens"), body.get("cost_microdollars")
        if not isinstance(tokens, int) or tokens <= 0 or not isinstance(cost, int) or cost < 0:
            return _json(400, {"error": "tokens must be > 0 and cost_microdollars >= 0"})
        if lease.state == "expired":
            return _json(403, {"error": "Lease expired"})
        if lease.state != "active":
            return _json(403, {"error": "Lease has been revoked"})
        if lease.reported + cost > lease.granted:
            return _json(403, {"error": "Insufficient lease budget"})
        lease.reported += cost
        lease.reports.append(body)
        return _json(200, {"success": True, "budget_remaining": lease.granted - lease.reported})

    async def _return(self, request: web.Request) -> web.Response:
        body = await self._body(request) or {}
        lease = self.leases.get(str(body.get("lease_id")))
        if lease is None:
            return _json(404, {"error": "Lease not found"})
        if lease.state != "active":
            return _json(400, {"error": "Lease is not active"})
        spent = body.get("spent_microdollars")
        if not isinstance(spent, int) or spent < 0:
            return _json(400, {"error": "spent_microdollars must be >= 0"})
        returned = max(lease.granted - spent, 0)
        lease.spent, lease.returned, lease.state = spent, returned, "returned"
        self.agents[lease.token].leased_micros -= returned
        return _json(200, {"success": True, "returned": returned})

    async def _events(self, request: web.Request) -> web.Response:
        event = await self._body(request)
        if event is None:
            return _json(400, {"error": "VALIDATION_ERROR", "message": "body must be a JSON object"})
        agent = self.agents.get(str(event.get("ic_token")))
        if agent is None or agent.deleted:
            return _json(401, {"error": "UNAUTHORIZED", "message": "Invalid IC Token"})
        problem = self._validate(event)
        if problem:
            return _json(400, {"error": "VALIDATION_ERROR", "message": problem})
        event_id = event["event_id"]
        forced = self.reject_event(event) if self.reject_event else None
        if forced is None and event_id in self.reject_event_ids:
            forced = (400, {"error": "VALIDATION_ERROR", "message": f"event {event_id} rejected (test)"})
        if forced is not None:
            return _json(*forced)
        if event_id in self.events:
            self.duplicates += 1
            return _json(200, {"event_id": event_id, "status": "duplicate"})
        self.events[event_id] = event
        self.event_order.append(event_id)
        return _json(202, {"event_id": event_id, "status": "accepted"})

    @staticmethod
    def _validate(event: dict[str, Any]) -> str | None:
        nulls = [k for k, v in event.items() if v is None]
        if nulls:  # the contract: absent optional fields are omitted, never null
            return f"fields must be omitted rather than null: {', '.join(sorted(nulls))}"
        if not isinstance(event.get("event_id"), str) or not event["event_id"]:
            return "event_id is required"
        if not isinstance(event.get("timestamp_ms"), int):
            return "timestamp_ms must be an integer"
        if event.get("event_type") not in EVENT_TYPES:
            return f"invalid event_type: {event.get('event_type')}"
        if event.get("provider") not in EVENT_PROVIDERS:
            return f"invalid provider: {event.get('provider')}"
        if not isinstance(event.get("model"), str):
            return "model is required"
        if event["event_type"] == "llm_request_completed":
            for k in ("input_tokens", "output_tokens"):
                if not isinstance(event.get(k), int):
                    return f"{k} is required for llm_request_completed"
        return None

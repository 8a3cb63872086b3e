"""Typed events that flow over the bus, and their WebSocket wire form (docs/feed.md).

Events are small frozen dataclasses; the mutable per-request record lives in `RequestRecord`, and a
finished or started event carries a *copy* of its summary so late readers never see it change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from iron_tui.core.clock import iso_utc
from iron_tui.core.safe_text import NAME_LIMIT, clean_name, clean_optional, clean_text

Provider = Literal["openai", "anthropic", "unknown"]
Severity = Literal["warning", "critical", "exhausted"]
SyncState = Literal["ok", "retrying", "offline", "disabled"]
AgentState = Literal["idle", "starting", "running", "stopping", "exited", "failed"]

MICROS_PER_USD = 1_000_000


_MAX_USD = 1e300  # a finite stand-in for amounts beyond float range: every JSON encoder takes it


def usd(micros: int | None) -> float | None:
    """µ$ → USD. Never raises: an amount beyond float range (only absurd inputs get there) is capped, so
    a snapshot or feed message can always be built."""
    if micros is None:
        return None
    try:
        return micros / MICROS_PER_USD
    except OverflowError:
        return _MAX_USD if micros > 0 else -_MAX_USD


@dataclass(frozen=True, slots=True)
class Attempt:
    """One upstream try of a call that was retried or fell back to another provider/model."""

    started_at: float  # epoch seconds
    duration_ms: float
    provider: str
    model: str
    status: int | None = None  # upstream HTTP status; None when no answer came
    error_type: str | None = None  # None for the try that succeeded (e.g. "429", "connect", "skipped")
    error: str | None = None  # what went wrong, for people (key-redacted)
    waited_ms: float = 0.0  # back-off before the next try

    def wire(self) -> dict[str, Any]:
        """The feed's `request.attempts[]` item (also history and the log line)."""
        return {"provider": self.provider, "model": self.model, "status": self.status, "error": self.error,
                "latency_ms": round(self.duration_ms, 1), "waited_ms": round(self.waited_ms, 1)}


@dataclass(slots=True)
class RequestRecord:
    """Everything known about one proxied call. Owned by the proxy while in flight."""

    id: str
    started_at: float  # epoch seconds
    method: str
    path: str
    api: str  # openai.chat | anthropic.messages | openai.embeddings | openai.completions | openai.responses
    model: str
    provider: Provider
    stream: bool = False
    translated: bool = False
    agent_id: str | None = None
    state: Literal["pending", "ok", "error"] = "pending"
    status: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_micros: int | None = None  # None while unknown / when unpriced
    priced: bool = True
    cost_estimated: bool = False  # charged from an estimate (stream cut before usage arrived)
    reserved_micros: int = 0
    max_output_tokens: int = 0  # the most output the request allows (caps estimates of cut streams)
    error: str | None = None
    error_code: str | None = None
    warnings: list[str] = field(default_factory=list)
    # The output cap iron-tui lowered to fit the budget (`x-iron-max-tokens`), set by whoever lowers it.
    capped_max_tokens: int | None = None
    # Each upstream try when a call was retried or fell back (issue 16); each becomes a child span.
    attempts: tuple[Attempt, ...] = ()  # each try when there was more than one (retries, fallbacks)
    # Detail for the dashboard's translation view: truncated, keys redacted.
    request_body: str | None = None
    translated_request: str | None = None
    upstream_response: str | None = None
    translated_response: str | None = None
    upstream_api: str | None = None  # the provider dialect that served the call (openai, anthropic, …)
    client_model: str | None = None  # the name the client sent, when an alias or NAME/ prefix changed it
    traceparent: str | None = None  # the client's W3C trace context, continued by tracing
    event_id: str | None = None  # its analytics event's id, fixed at admission (crash recovery reuses it)
    interrupted: bool = False  # settled by crash recovery: the iron-tui relaying it died (core/recovery.py)

    def __post_init__(self) -> None:
        # Names the client chose reach log lines, the dashboard, the feed and stored rows: keys
        # redacted, control characters escaped, length capped, once, here.
        self.model = clean_name(self.model)
        self.path = clean_name(self.path)
        if self.agent_id is not None:
            self.agent_id = clean_name(self.agent_id)

    def summary(self) -> dict[str, Any]:
        """The feed's `request` object (DESIGN.md section 6)."""
        # Built twice per call (start and finish): locals and `_round3` keep it cheap.
        latency = self.latency_ms
        ttft = self.ttft_ms
        cost = self.cost_micros
        summary = {
            "id": self.id,
            "started_at": iso_utc(self.started_at),
            "model": self.model,
            "provider": self.provider,
            "api": self.api,
            "path": self.path,
            "translated": self.translated,
            "stream": self.stream,
            "agent_id": self.agent_id,
            "state": self.state,
            "status": self.status,
            "latency_ms": None if latency is None else _round3(latency),
            "ttft_ms": None if ttft is None else _round3(ttft),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cost_usd": usd(cost),
            "priced": self.priced,
            "cost_estimated": self.cost_estimated,
            "capped_max_tokens": self.capped_max_tokens,
            "error": self.error,
            "client_model": self.client_model,
            "attempts": [a.wire() for a in self.attempts] if self.attempts else [],
        }
        if self.interrupted:  # only then: the usual summary keeps its documented shape
            summary["interrupted"] = True
        return summary


def _round3(x: float) -> float:
    """`round(x, 3)`, exactly, without its decimal-string round trip in the usual case.

    For 0 < y = fl(x·1000) < 2³², n + ½ is a float, and rounding is monotonic, so y < n + ½ exactly
    when x·1000 < n + ½ (n = ⌊y⌋; likewise for >): the nearest integer to x·1000 is then n or n + 1
    (if x·1000 lies just below n, y rounded up to n and n is still nearest), as `round` finds, and
    n / 1000 is correctly rounded like the float `round` returns. Ties, zero, negatives, huge values,
    NaN and ints go to `round` itself.
    """
    y = x * 1000.0
    if 0.0 < y < 4294967296.0 and type(x) is float:
        n = int(y)
        frac = y - n
        if frac < 0.5:
            return n / 1000
        if frac > 0.5:
            return (n + 1) / 1000
    return round(x, 3)


class Event:
    """Base of every bus event. `timestamp` is epoch seconds from the engine clock."""

    kind: ClassVar[str] = "event"
    timestamp: float


@dataclass(frozen=True, slots=True)
class RequestStarted(Event):
    kind: ClassVar[str] = "request_started"
    timestamp: float
    request: dict[str, Any]  # RequestRecord.summary() at start


@dataclass(frozen=True, slots=True)
class RequestFinished(Event):
    kind: ClassVar[str] = "request_finished"
    timestamp: float
    request: dict[str, Any]  # RequestRecord.summary() at finish


@dataclass(frozen=True, slots=True)
class SpendChanged(Event):
    """Spend, reservation or limit changed. Amounts in microdollars; limit None = unlimited."""

    kind: ClassVar[str] = "spend_changed"
    timestamp: float
    spent_micros: int
    reserved_micros: int
    limit_micros: int | None
    agent_id: str | None = None
    period: str = "session"


@dataclass(frozen=True, slots=True)
class CostAlert(Event):
    kind: ClassVar[str] = "cost_alert"
    timestamp: float
    severity: Severity
    spent_micros: int
    limit_micros: int
    agent_id: str | None = None

    @property
    def percentage(self) -> float:
        return round(100.0 * self.spent_micros / self.limit_micros, 1) if self.limit_micros else 100.0


@dataclass(frozen=True, slots=True)
class SyncStatus(Event):
    kind: ClassVar[str] = "sync_status"
    timestamp: float
    state: SyncState
    pending: int = 0
    sent: int = 0
    rejected: int = 0
    last_success: float | None = None
    next_attempt: float | None = None
    last_error: str | None = None
    dead_letters: int = 0  # events the server will never take, kept in the outbox's dead-letter table

    def __post_init__(self) -> None:  # a server's error text is shown and logged
        object.__setattr__(self, "last_error", clean_optional(self.last_error))


@dataclass(frozen=True, slots=True)
class AgentStateChanged(Event):
    kind: ClassVar[str] = "agent_state"
    timestamp: float
    agent_id: str
    state: AgentState
    name: str | None = None
    pid: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    restarts: int = 0

    def __post_init__(self) -> None:  # the name is the agent's command line, which may hold anything
        object.__setattr__(self, "name", clean_optional(self.name, NAME_LIMIT))
        object.__setattr__(self, "reason", clean_optional(self.reason))


@dataclass(frozen=True, slots=True)
class AgentOutput(Event):
    kind: ClassVar[str] = "agent_output"
    timestamp: float
    agent_id: str
    stream: Literal["stdout", "stderr"]
    line: str
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """A human-readable message for the dashboard and logs (e.g. a bad theme, a lease granted)."""

    kind: ClassVar[str] = "notice"
    timestamp: float
    level: Literal["info", "warning", "error"]
    message: str

    def __post_init__(self) -> None:  # messages quote exceptions and servers
        object.__setattr__(self, "message", clean_text(self.message))


@dataclass(frozen=True, slots=True)
class ProviderHealthChanged(Event):
    """A provider's health state changed (core/health.py); `data` is its wire form (feed PROVIDER_HEALTH)."""

    kind: ClassVar[str] = "provider_health"
    timestamp: float
    provider: str
    state: Literal["ok", "degraded", "down"]
    data: dict[str, Any]


# --- wire form (WebSocket feed) -------------------------------------------------------------------


def sync_wire(status: SyncStatus) -> dict[str, Any]:
    """The feed's `sync` object (SYNC_STATUS messages and the snapshot)."""
    return {
        "state": status.state,
        "pending": status.pending,
        "sent": status.sent,
        "rejected": status.rejected,
        "last_success": None if status.last_success is None else iso_utc(status.last_success),
        "next_attempt": None if status.next_attempt is None else iso_utc(status.next_attempt),
        "last_error": status.last_error,
        "dead_letters": status.dead_letters,
    }


def _agent(agent_id: str | None) -> str:
    return agent_id or "agent_local"


def to_wire(event: Event) -> list[dict[str, Any]]:
    """The feed messages for one bus event (some events map to two messages, some to none)."""
    ts = iso_utc(event.timestamp)
    if isinstance(event, RequestStarted):
        return [{"type": "REQUEST_STARTED", "timestamp": ts, "request": event.request}]
    if isinstance(event, RequestFinished):
        r = event.request
        return [
            {"type": "REQUEST_FINISHED", "timestamp": ts, "request": r},
            {
                "type": "AGENT_EVENT",
                "timestamp": ts,
                "agent_id": _agent(r.get("agent_id")),
                "event": "llm_call",
                "data": {
                    "request_id": r["id"],
                    "model": r["model"],
                    "provider": r["provider"],
                    "tokens": r["input_tokens"] + r["output_tokens"],
                    "input_tokens": r["input_tokens"],
                    "output_tokens": r["output_tokens"],
                    "cost_usd": r["cost_usd"],
                    "status": r["status"],
                    "success": r["state"] == "ok",
                },
            },
        ]
    if isinstance(event, SpendChanged):
        return [
            {
                "type": "STATE_UPDATE",
                "timestamp": ts,
                "agent_id": _agent(event.agent_id),
                "state": "budget",
                "data": {
                    "budget_spent": usd(event.spent_micros),
                    "budget_limit": usd(event.limit_micros),
                    "budget_reserved": usd(event.reserved_micros),
                    "period": event.period,
                },
            }
        ]
    if isinstance(event, CostAlert):
        return [
            {
                "type": "COST_ALERT",
                "timestamp": ts,
                "agent_id": _agent(event.agent_id),
                "severity": event.severity,
                "data": {
                    "budget_spent": usd(event.spent_micros),
                    "budget_limit": usd(event.limit_micros),
                    "percentage": event.percentage,
                },
            }
        ]
    if isinstance(event, SyncStatus):
        return [{"type": "SYNC_STATUS", "timestamp": ts, "sync": sync_wire(event)}]
    if isinstance(event, AgentStateChanged):
        data = {"name": event.name, "pid": event.pid, "exit_code": event.exit_code,
                "reason": event.reason, "restarts": event.restarts}
        return [
            {"type": "STATE_UPDATE", "timestamp": ts, "agent_id": event.agent_id, "state": event.state,
             "data": data},
            {"type": "AGENT_EVENT", "timestamp": ts, "agent_id": event.agent_id,
             "event": _AGENT_STATE_EVENT.get(event.state, event.state), "data": data},
        ]
    if isinstance(event, AgentOutput):
        return [
            {"type": "AGENT_EVENT", "timestamp": ts, "agent_id": event.agent_id, "event": "output",
             "data": {"stream": event.stream, "line": event.line, "seq": event.seq}}
        ]
    if isinstance(event, ProviderHealthChanged):
        return [{"type": "PROVIDER_HEALTH", "timestamp": ts, "provider": event.data}]
    return []


_AGENT_STATE_EVENT = {"running": "started", "exited": "exited", "failed": "failed",
                      "starting": "starting", "stopping": "stopping", "idle": "idle"}

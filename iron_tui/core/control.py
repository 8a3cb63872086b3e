"""HTTP client for the Iron Cage control server (reference/iron-cage-protocol.md).

One `ControlClient` per IC token. It fetches provider keys (TTL-cached per provider, single-flight so a
burst of requests after expiry costs one fetch), takes and returns budget leases, reports usage and
posts analytics events. Every call has an explicit timeout; every failure is a `ControlError` value
with a clear message, never a bare aiohttp exception. Provider keys never appear in a repr, a log line
or an error message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from iron_tui.core.clock import Clock

log = logging.getLogger(__name__)

PROVIDER_KEY_PATH = "/api/v1/agents/provider-key"
HANDSHAKE_PATH = "/api/v1/budget/handshake"
REPORT_PATH = "/api/v1/budget/report"
RETURN_PATH = "/api/v1/budget/return"
EVENTS_PATH = "/api/v1/analytics/events"

# Codes for failures that never reached an HTTP answer (ControlError.status is None for these).
NETWORK = "NETWORK"
UNREACHABLE = "UNREACHABLE"  # connection refused / DNS: the server is not there at all
TIMEOUT = "TIMEOUT"
BAD_RESPONSE = "BAD_RESPONSE"  # answered 2xx but not with the documented body
PROVIDER_MISMATCH = "PROVIDER_MISMATCH"

_MAX_ERROR_TEXT = 300


def redact(key: str) -> str:
    """`sk-...abcd`: enough to recognise a key, never enough to use it."""
    if len(key) <= 12:
        return "***"
    prefix = "sk-ant-" if key.startswith("sk-ant-") else key[:3]
    return f"{prefix}...{key[-4:]}"


class ControlError(Exception):
    """A control-server call failed. `status` is None when no HTTP answer arrived."""

    def __init__(self, status: int | None, code: str | None, message: str, *, endpoint: str = "") -> None:
        self.status = status
        self.code = code
        self.message = message
        self.endpoint = endpoint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"control server {self.endpoint}" if self.endpoint else "control server"
        if self.status is None:
            return f"{where} unreachable ({self.code}): {self.message}"
        code = f" {self.code}" if self.code else ""
        return f"{where} answered {self.status}{code}: {self.message}"

    @property
    def retryable(self) -> bool:
        """Worth trying again later: no answer, 5xx, or the server asked us to slow down."""
        if self.code == PROVIDER_MISMATCH:
            return False
        return self.status is None or self.status >= 500 or self.status in (408, 425, 429)


@dataclass(frozen=True)
class ProviderKey:
    provider: str
    key: str
    base_url: str | None
    fetched_at: float  # clock.monotonic() at fetch, for the TTL

    def __repr__(self) -> str:
        return (f"ProviderKey(provider={self.provider!r}, key={redact(self.key)!r}, "
                f"base_url={self.base_url!r}, fetched_at={self.fetched_at!r})")

    __str__ = __repr__


@dataclass(frozen=True)
class Lease:
    lease_id: str
    granted_micros: int
    remaining_micros: int | None  # the agent's budget left on the server after this grant
    provider: str
    ip_token: str | None

    def __repr__(self) -> str:
        # ip_token is a credential for the lease; keep it out of logs.
        return (f"Lease(lease_id={self.lease_id!r}, granted_micros={self.granted_micros}, "
                f"remaining_micros={self.remaining_micros}, provider={self.provider!r})")


def _error_from_body(status: int, body: Any, endpoint: str) -> ControlError:
    """The protocol has three error-body shapes; normalise them to (code, message)."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(body.get("code"), str):  # provider-key: {"error": msg, "code": CODE}
            return ControlError(status, body["code"], str(err or body["code"]), endpoint=endpoint)
        if isinstance(body.get("message"), str):  # analytics: {"error": CODE, "message": msg}
            return ControlError(status, str(err) if err else None, body["message"], endpoint=endpoint)
        if isinstance(err, dict):  # defensive: OpenAI-style nesting from a proxy in between
            return ControlError(status, err.get("code"), str(err.get("message", err)), endpoint=endpoint)
        if err:  # budget endpoints: {"error": msg}
            return ControlError(status, None, str(err), endpoint=endpoint)
    text = body if isinstance(body, str) else json.dumps(body)
    return ControlError(status, None, (text or "no error message")[:_MAX_ERROR_TEXT], endpoint=endpoint)


class ControlClient:
    """Talks to one control server for one IC token. The aiohttp session is owned by the caller."""

    def __init__(
        self,
        server_url: str,
        ic_token: str,
        *,
        session: aiohttp.ClientSession,
        clock: Clock,
        cache_ttl_seconds: float = 300,
        timeout_s: float = 10,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self._token = ic_token
        self._session = session
        self._clock = clock
        self._ttl = cache_ttl_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._keys: dict[str, ProviderKey] = {}
        self._known: set[str] = set()  # providers the server has ever assigned us (survives invalidate)
        self._last: ProviderKey | None = None  # the latest answer, whatever its provider
        self._inflight: asyncio.Future[ProviderKey] | None = None
        self.key_fetches = 0  # fetches actually sent (observability, tests)

    def __repr__(self) -> str:
        return f"ControlClient({self.server_url!r})"

    @property
    def ic_token(self) -> str:
        """The IC token (analytics events carry it). A credential: never log it."""
        return self._token

    def cached_providers(self) -> frozenset[str]:
        """Providers the server has assigned a key for so far (fresh, expired or invalidated)."""
        return frozenset(self._known)

    # --- transport -------------------------------------------------------------------------------

    async def _post(self, path: str, body: dict[str, Any], *, auth: bool = False,
                    timeout: aiohttp.ClientTimeout | None = None) -> tuple[int, Any]:
        status, parsed, _retry_after = await self._post_full(path, body, auth=auth, timeout=timeout)
        return status, parsed

    async def _post_full(self, path: str, body: dict[str, Any], *, auth: bool = False,
                         timeout: aiohttp.ClientTimeout | None = None) -> tuple[int, Any, float]:
        """(status, parsed body, seconds of the answer's Retry-After or 0)."""
        headers = {"Authorization": f"Bearer {self._token}"} if auth else None
        try:
            async with self._session.post(self.server_url + path, json=body, headers=headers,
                                          timeout=timeout or self._timeout) as resp:
                raw = await resp.read()
                text = raw.decode("utf-8", "replace")
                try:
                    parsed: Any = json.loads(text) if text else {}
                except ValueError:
                    parsed = text[:_MAX_ERROR_TEXT]
                return resp.status, parsed, retry_after_seconds(resp.headers.get("Retry-After"))
        except TimeoutError:
            raise ControlError(None, TIMEOUT, f"no answer within {self._timeout.total:g} s",
                               endpoint=path) from None
        except aiohttp.ClientConnectorError as e:
            raise ControlError(None, UNREACHABLE, f"cannot connect to {self.server_url} ({e.os_error})",
                               endpoint=path) from None
        except aiohttp.ClientError as e:
            raise ControlError(None, NETWORK, f"{type(e).__name__}: {e}", endpoint=path) from None

    # --- provider keys ---------------------------------------------------------------------------

    def _fresh(self, provider: str | None) -> ProviderKey | None:
        now = self._clock.monotonic()
        if provider is None:
            # Any fresh key: the server assigns one provider per agent and we do not know it yet.
            for pk in self._keys.values():
                if now - pk.fetched_at < self._ttl:
                    return pk
            return None
        found = self._keys.get(provider)
        return found if found is not None and now - found.fetched_at < self._ttl else None

    async def provider_key(self, provider: str | None = None, *, force_refresh: bool = False) -> ProviderKey:
        """The provider key for `provider` (or the agent's only provider), cached for the TTL."""
        if not force_refresh:
            fresh = self._fresh(provider)
            if fresh is not None:
                return fresh
            last = self._last
            if provider is not None and last is not None and last.provider != provider \
                    and self._clock.monotonic() - last.fetched_at < self._ttl:
                # The server assigns one provider per agent and told us which one moments ago:
                # refuse without a round trip per request for the other provider.
                raise self._mismatch(last.provider, provider)
        if self._inflight is None:
            # Single flight: whoever arrives first starts the fetch, everyone else awaits the same one.
            self._inflight = asyncio.ensure_future(self._fetch_key())
            self._inflight.add_done_callback(self._clear_inflight)
        # shield: a cancelled caller (client disconnected) must not cancel the fetch for the others.
        pk = await asyncio.shield(self._inflight)
        if provider is not None and pk.provider != provider:
            raise self._mismatch(pk.provider, provider)
        return pk

    @staticmethod
    def _mismatch(assigned: str, wanted: str) -> ControlError:
        return ControlError(None, PROVIDER_MISMATCH, f"the control server assigned a {assigned} key to this "
                            f"agent, not a {wanted} key", endpoint=PROVIDER_KEY_PATH)

    def _clear_inflight(self, fut: asyncio.Future[ProviderKey]) -> None:
        if self._inflight is fut:
            self._inflight = None
        if not fut.cancelled():
            fut.exception()  # mark retrieved: a failure nobody awaited is not a "never retrieved" warning

    async def _fetch_key(self) -> ProviderKey:
        self.key_fetches += 1
        status, body = await self._post(PROVIDER_KEY_PATH, {"ic_token": self._token})
        if status != 200:
            raise _error_from_body(status, body, PROVIDER_KEY_PATH)
        if not isinstance(body, dict) or not isinstance(body.get("provider_key"), str) \
                or body.get("provider") not in ("openai", "anthropic"):
            raise ControlError(status, BAD_RESPONSE, "provider-key answer lacks provider_key/provider",
                               endpoint=PROVIDER_KEY_PATH)
        base_url = body.get("base_url")
        pk = ProviderKey(provider=body["provider"], key=body["provider_key"],
                         base_url=base_url if isinstance(base_url, str) and base_url else None,
                         fetched_at=self._clock.monotonic())
        self._keys[pk.provider] = pk
        self._known.add(pk.provider)
        self._last = pk
        log.info("fetched %s provider key %s from control server", pk.provider, redact(pk.key))
        return pk

    def invalidate(self, provider: str) -> None:
        """Forget the cached key (the provider rejected it); the next `provider_key` call refetches."""
        self._keys.pop(provider, None)
        if self._last is not None and self._last.provider == provider:
            self._last = None

    # --- budget leases ---------------------------------------------------------------------------

    async def handshake(self, provider: str, requested_micros: int | None = None, *,
                        attempts: int = 3, backoff_s: float = 0.5) -> Lease:
        """Take a budget lease. Retries refused connections and 5xx with back-off; 4xx, timeouts and
        broken connections are final (the lease may exist on the server already)."""
        body: dict[str, Any] = {"ic_token": self._token, "provider": provider}
        if requested_micros is not None:
            body["requested_budget"] = int(requested_micros)
        last: ControlError | None = None
        for attempt in range(max(1, attempts)):
            if attempt:
                await asyncio.sleep(backoff_s * (2 ** (attempt - 1)))
            try:
                status, answer = await self._post(HANDSHAKE_PATH, body, auth=True)
            except ControlError as e:
                # A handshake is not idempotent: after a timeout or a broken connection the server may
                # already hold a lease for us, so only "could not connect at all" is safe to retry.
                if e.code != UNREACHABLE:
                    raise
                last = e
                continue
            if status == 200:
                return self._lease(answer, provider)
            last = _error_from_body(status, answer, HANDSHAKE_PATH)
            if not last.retryable:
                raise last
        assert last is not None
        raise last

    @staticmethod
    def _lease(answer: Any, provider: str) -> Lease:
        try:
            remaining = answer.get("budget_remaining")
            return Lease(lease_id=str(answer["lease_id"]), granted_micros=int(answer["budget_granted"]),
                         remaining_micros=None if remaining is None else int(remaining),
                         provider=provider, ip_token=answer.get("ip_token"))
        except (AttributeError, KeyError, TypeError, ValueError):
            raise ControlError(200, BAD_RESPONSE, "handshake answer lacks lease_id/budget_granted",
                               endpoint=HANDSHAKE_PATH) from None

    async def report(self, lease_id: str, request_id: str, tokens: int, cost_micros: int, model: str,
                     provider: str) -> int | None:
        """Report one call's usage against the lease; returns the lease's remaining µ$.

        None when the server has no report endpoint (404): reporting is advisory, the lease return
        carries the true spend anyway.
        """
        body = {"lease_id": lease_id, "request_id": request_id, "tokens": max(int(tokens), 1),
                "cost_microdollars": max(int(cost_micros), 0), "model": model, "provider": provider}
        status, answer = await self._post(REPORT_PATH, body, auth=True)
        if status == 404:
            log.debug("control server has no usage report for lease %s (404); ignored", lease_id)
            return None
        if status != 200:
            raise _error_from_body(status, answer, REPORT_PATH)
        remaining = answer.get("budget_remaining") if isinstance(answer, dict) else None
        return int(remaining) if isinstance(remaining, int | float) else None

    async def return_lease(self, lease_id: str, spent_micros: int) -> int:
        """Give back the unspent part of a lease; returns the amount the server took back."""
        body = {"lease_id": lease_id, "spent_microdollars": max(int(spent_micros), 0)}
        status, answer = await self._post(RETURN_PATH, body, auth=True)
        if status != 200:
            raise _error_from_body(status, answer, RETURN_PATH)
        returned = answer.get("returned") if isinstance(answer, dict) else None
        if not isinstance(returned, int | float):
            raise ControlError(status, BAD_RESPONSE, "return answer lacks 'returned'", endpoint=RETURN_PATH)
        return int(returned)

    # --- analytics -------------------------------------------------------------------------------

    async def post_event(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST one analytics event; the raw status and body (the sync loop classifies them).

        Raises ControlError only when no HTTP answer arrived.
        """
        status, answer, _retry_after = await self.post_event_with_retry_after(event)
        return status, answer

    async def post_event_with_retry_after(self, event: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        """As `post_event`, plus the answer's Retry-After in seconds (0 when it sent none)."""
        status, answer, retry_after = await self._post_full(EVENTS_PATH, event)
        if not isinstance(answer, dict):
            answer = {"error": str(answer)[:_MAX_ERROR_TEXT]}
        return status, answer, retry_after


def retry_after_seconds(value: str | None) -> float:
    """Seconds a Retry-After header asks for: delta-seconds or an HTTP date; 0 when absent or unreadable."""
    if not value:
        return 0.0
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return 0.0
        import time

        seconds = when.timestamp() - time.time()
    return seconds if seconds > 0 and seconds == seconds and seconds != float("inf") else 0.0

"""The feed's wire (docs/feed.md): the JSON Schema of its messages, their encoding, the messages the feed
builds itself (the rest come from `events.to_wire`), WebSocket text frames and close codes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from typing import Any

import orjson

from iron_tui.core.clock import iso_utc
from iron_tui.core.events import AgentStateChanged, SyncStatus, usd
from iron_tui.core.events import sync_wire as events_sync_wire

# Close codes (docs/feed.md).
CLOSE_GOING_AWAY = 1001  # server shutting down
CLOSE_INTERNAL_ERROR = 1011  # the snapshot could not be built
CLOSE_TRY_AGAIN_LATER = 1013  # client too slow; reconnect and take a fresh snapshot
CLOSE_UNAUTHORIZED = 4401  # missing, wrong or late token


def load_feed_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of every server → client message."""
    text = resources.files("iron_tui.core").joinpath("feed_schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON; NaN/Infinity are refused because browsers' JSON.parse rejects them."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def dumps_bytes(message: dict[str, Any]) -> bytes:
    """`dumps` as UTF-8, fast: every feed message is serialised on the proxy's loop."""
    try:
        # orjson writes NaN/Infinity as null, which browsers accept; it is also compact.
        return orjson.dumps(message)
    except TypeError:
        return dumps(message).encode()


# --- messages the feed itself builds (the rest come from events.to_wire) ---------------------------


def sync_wire(status: SyncStatus | None) -> dict[str, Any]:
    """The `sync` object of SYNC_STATUS and of the snapshot; `None` means sync is disabled."""
    if status is None:
        return {"state": "disabled", "pending": 0, "sent": 0, "rejected": 0, "last_success": None,
                "next_attempt": None, "last_error": None, "dead_letters": 0}
    return events_sync_wire(status)


def agent_wire(agent: AgentStateChanged | None) -> dict[str, Any]:
    """The snapshot's `agent` object; `None` means no agent has been started."""
    if agent is None:
        return {"agent_id": None, "state": "idle", "name": None, "pid": None, "exit_code": None,
                "reason": None, "restarts": 0}
    return {"agent_id": agent.agent_id, "state": agent.state, "name": agent.name, "pid": agent.pid,
            "exit_code": agent.exit_code, "reason": agent.reason, "restarts": agent.restarts}


def snapshot_state(
    *,
    mode: str,
    proxy_url: str,
    spent_micros: int,
    limit_micros: int | None,
    reserved_micros: int = 0,
    sync: SyncStatus | None = None,
    agent: AgentStateChanged | None = None,
    requests: Iterable[dict[str, Any]] = (),
    version: str | None = None,
) -> dict[str, Any]:
    """Build the SNAPSHOT `state` in the documented shape (the engine's `snapshot` callable returns this).

    `requests` are the most recent `RequestRecord.summary()` dicts, newest first.
    """
    state: dict[str, Any] = {
        "mode": mode,
        "proxy_url": proxy_url,
        "budget": {"spent_usd": usd(spent_micros), "limit_usd": usd(limit_micros),
                   "reserved_usd": usd(reserved_micros)},
        "sync": sync_wire(sync),
        "agent": agent_wire(agent),
        "requests": list(requests),
    }
    if version is not None:
        state["version"] = version
    return state


def snapshot_message(timestamp: float, state: dict[str, Any]) -> dict[str, Any]:
    return {"type": "SNAPSHOT", "timestamp": iso_utc(timestamp), "state": state}


def heartbeat_message(timestamp: float) -> dict[str, Any]:
    return {"type": "HEARTBEAT", "timestamp": iso_utc(timestamp)}


def pong_message(timestamp: float) -> dict[str, Any]:
    return {"type": "PONG", "timestamp": iso_utc(timestamp)}


def error_message(timestamp: float, message: str) -> dict[str, Any]:
    return {"type": "ERROR", "timestamp": iso_utc(timestamp), "message": message}


def text_frame(text: str | bytes) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455 section 5.2)."""
    payload = text.encode("utf-8") if isinstance(text, str) else text
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload

"""The analytics event of a call (one per call, whatever it took), in the control server's protocol
(`reference/iron-cage-protocol.md`): a finished call, or one a crashed iron-tui left in flight."""

from __future__ import annotations

from typing import Any

from iron_tui.core.analytics_protocol import completed_event, failed_event
from iron_tui.core.events import RequestRecord
from iron_tui.core.providers import BUILTIN
from iron_tui.core.recovery import INTERRUPTED, RecoveredCall, interrupted_message


def record_event(rec: RequestRecord, ic_token: str, event_id: str, timestamp_ms: int) -> dict[str, Any]:
    common: dict[str, Any] = {
        "ic_token": ic_token,
        "event_id": event_id,
        "timestamp_ms": timestamp_ms,
        "model": rec.model,
        "provider": rec.provider,
        "agent_id": rec.agent_id,
    }
    if rec.provider not in BUILTIN:
        # The protocol's provider is openai / anthropic / unknown: name a configured one here.
        common["provider_id"] = rec.provider
    if rec.state == "ok":
        return completed_event(input_tokens=rec.input_tokens, output_tokens=rec.output_tokens,
                               cost_micros=rec.cost_micros or 0, **common)
    message = rec.error or "failed"
    if len(rec.attempts) > 1:  # one event per call, whatever it took: say so
        message += f" (after {len(rec.attempts)} attempts)"
    return failed_event(error_code=rec.error_code or str(rec.status or "error"), error_message=message, **common)


def interrupted_event(call: RecoveredCall, ic_token: str, event_id: str, timestamp_ms: int) -> dict[str, Any]:
    row = call.row
    return failed_event(
        ic_token=ic_token, event_id=event_id, timestamp_ms=timestamp_ms, model=row.model, provider=row.provider,
        agent_id=row.agent_id, error_code=INTERRUPTED, error_message=interrupted_message(call))

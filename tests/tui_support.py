"""Shared helpers for the dashboard tests: a deterministic app on a real engine, and sample traffic."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Literal

from textual.pilot import Pilot

from iron_tui.config import Settings
from iron_tui.core.clock import FixedClock, SequentialIds
from iron_tui.core.engine import Engine
from iron_tui.core.events import (
    AgentOutput,
    AgentStateChanged,
    CostAlert,
    RequestFinished,
    RequestRecord,
    RequestStarted,
    SpendChanged,
    SyncStatus,
)
from iron_tui.tui.app import IronApp, create_app

DISPLAY_URL = "http://127.0.0.1:8478/v1"
TOKEN = "iron-snapshot-token-0001"


def snapshot_app(tmp_path: Path, *, theme: str = "iron", budget: float | None = None,
                 user_theme_dir: Path | None = None, **settings: Any) -> tuple[IronApp, Engine, FixedClock]:
    """A dashboard on a real (not yet started) engine with a fixed clock and ids; the app starts it."""
    clock = FixedClock()
    values: dict[str, Any] = {
        "port": 0,
        "openai_key": "sk-test-openai-0000",
        "anthropic_key": "sk-ant-test-0000",
        "openai_base_url": "http://127.0.0.1:9",  # never called: snapshot traffic is published directly
        "anthropic_base_url": "http://127.0.0.1:9",
        "token": TOKEN,
        "data_dir": tmp_path / "data",
        "agent": "python demo_agent.py",
        "budget": budget,
    }
    values.update(settings)
    engine = Engine(Settings(**{k: v for k, v in values.items() if v is not None}), clock=clock,
                    ids=SequentialIds())
    app = create_app(engine, clock=clock, theme=theme, user_theme_dir=user_theme_dir or tmp_path / "themes",
                     display_url=DISPLAY_URL)
    app.animation_level = "none"
    app.flush_interval = 0.01
    return app, engine, clock


async def settle(pilot: Pilot[Any]) -> None:
    """Until the pump has drained the bus and the dashboard has handled what it posted."""
    app = pilot.app
    assert isinstance(app, IronApp)
    await asyncio.wait_for(app.engine_ready.wait(), 10)
    for _ in range(200):
        await pilot.pause(0.02)
        if app.pending_events == 0:
            break
    await pilot.pause(0.05)
    await pilot.pause()


# --- sample traffic ------------------------------------------------------------------------------

OPENAI_REQ = {"model": "claude-3-5-haiku-latest", "max_tokens": 256,
              "messages": [{"role": "system", "content": "You are terse."},
                           {"role": "user", "content": "Name a prime number."}]}
ANTHROPIC_REQ = {"model": "claude-3-5-haiku-latest", "max_tokens": 256, "system": "You are terse.",
                 "messages": [{"role": "user", "content": "Name a prime number."}]}
ANTHROPIC_RESP = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-latest",
                  "content": [{"type": "text", "text": "7"}], "stop_reason": "end_turn",
                  "usage": {"input_tokens": 18, "output_tokens": 3}}
OPENAI_RESP = {"id": "chatcmpl-msg_01", "object": "chat.completion", "created": 1767225600,
               "model": "claude-3-5-haiku-latest",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": "7"},
                            "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 18, "completion_tokens": 3, "total_tokens": 21}}


def _rec(i: int, clock: FixedClock, **kw: Any) -> RequestRecord:
    base: dict[str, Any] = {
        "id": f"req_{i:06d}", "started_at": clock.now(), "method": "POST", "path": "/v1/chat/completions",
        "api": "openai.chat", "model": "gpt-4o-mini", "provider": "openai", "state": "ok", "status": 200,
        "latency_ms": 420.0, "ttft_ms": None, "input_tokens": 1200, "output_tokens": 300,
        "cost_micros": 360,
    }
    base.update(kw)
    return RequestRecord(**base)


def traffic(clock: FixedClock) -> list[RequestRecord]:
    """Mixed providers: OpenAI, native Anthropic, a translated call, a stream, an error, an unpriced model,
    an estimated cost, and one still in flight (the last)."""
    return [
        _rec(1, clock),
        _rec(2, clock, model="claude-3-5-haiku-latest", provider="anthropic", api="anthropic.messages",
             path="/v1/messages", latency_ms=612.5, input_tokens=2048, output_tokens=512, cost_micros=3686),
        _rec(3, clock, model="claude-3-5-haiku-latest", provider="anthropic", translated=True, latency_ms=801.0,
             input_tokens=18, output_tokens=3, cost_micros=26,
             request_body=json.dumps(OPENAI_REQ), translated_request=json.dumps(ANTHROPIC_REQ),
             upstream_response=json.dumps(ANTHROPIC_RESP), translated_response=json.dumps(OPENAI_RESP)),
        _rec(4, clock, model="gpt-4o", stream=True, latency_ms=2300.0, ttft_ms=310.0, input_tokens=15000,
             output_tokens=1800, cost_micros=55500),
        _rec(5, clock, model="gpt-4o", state="error", status=429, latency_ms=95.0, input_tokens=0,
             output_tokens=0, cost_micros=None, error="upstream 429: rate limit reached for gpt-4o",
             error_code="rate_limit_exceeded", warnings=["retry-after: 20s"],
             request_body=json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})),
        _rec(6, clock, model="local-llama-3", priced=False, cost_micros=None, latency_ms=150.0),
        _rec(7, clock, model="claude-3-5-haiku-latest", provider="anthropic", translated=True, stream=True,
             latency_ms=1500.0, ttft_ms=200.0, cost_micros=900, cost_estimated=True),
        _rec(8, clock, model="gpt-4o-mini", state="pending", status=None, latency_ms=None, input_tokens=0,
             output_tokens=0, cost_micros=None),
    ]


def publish_traffic(engine: Engine, clock: FixedClock) -> list[RequestRecord]:
    """Put the sample traffic in the history and on the bus, 3 s apart; returns the records."""
    records = traffic(clock)
    for rec in records:
        rec.started_at = clock.now()
        engine.history.add(rec)
        engine.bus.publish(RequestStarted(clock.now(), rec.summary()))
        if rec.state != "pending":
            engine.bus.publish(RequestFinished(clock.now(), rec.summary()))
        clock.advance(3)
    spent = sum(r.cost_micros or 0 for r in records)
    engine.bus.publish(SpendChanged(clock.now(), spent, 1200, engine.ledger.limit))
    return records


def publish_spend(engine: Engine, clock: FixedClock, spent: int, limit: int, alert: str | None) -> None:
    engine.bus.publish(SpendChanged(clock.now(), spent, 0, limit))
    if alert is not None:
        engine.bus.publish(CostAlert(clock.now(), alert, spent, limit))  # type: ignore[arg-type]


def publish_sync_offline(engine: Engine, clock: FixedClock) -> None:
    engine.bus.publish(SyncStatus(clock.now(), "offline", pending=12, sent=40, rejected=1,
                                  last_success=clock.now() - 95,
                                  last_error="control server unreachable: connection refused"))


def publish_agent_running(engine: Engine, clock: FixedClock, lines: int = 8) -> None:
    engine.bus.publish(AgentStateChanged(clock.now(), "agent_00000001", "starting", name="agent"))
    engine.bus.publish(AgentStateChanged(clock.now(), "agent_00000001", "running", name="agent", pid=4242))
    for i in range(lines):
        stream: Literal["stdout", "stderr"] = "stderr" if i == 5 else "stdout"
        text = "warning: retrying tool call" if stream == "stderr" else f"step {i}: calling gpt-4o-mini"
        engine.bus.publish(AgentOutput(clock.now(), "agent_00000001", stream, text, seq=i + 1))


def publish_agent_crash(engine: Engine, clock: FixedClock) -> None:
    publish_agent_running(engine, clock, lines=4)
    engine.bus.publish(AgentOutput(clock.now(), "agent_00000001", "stderr",
                                   "Traceback (most recent call last): KeyError: 'choices'", seq=9))
    engine.bus.publish(AgentStateChanged(clock.now(), "agent_00000001", "exited", name="agent", pid=4242,
                                         exit_code=1, reason="crashed (exit code 1)"))

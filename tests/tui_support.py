"""Shared helpers for the dashboard tests: a deterministic app on a real engine, and sample traffic."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import openai
from textual.pilot import Pilot
from textual.widgets import Static

from iron_tui.config import Settings
from iron_tui.core.clock import FixedClock, SequentialIds
from iron_tui.core.engine import Engine
from iron_tui.core.events import (
    AgentOutput,
    AgentStateChanged,
    Attempt,
    CostAlert,
    RequestFinished,
    RequestRecord,
    RequestStarted,
    SpendChanged,
    SyncStatus,
)
from iron_tui.core.ledger_schema import CallRow
from iron_tui.core.recovery import RecoveredCall, interrupted_record
from iron_tui.core.token_usage import TokenUsage
from iron_tui.tui.app import IronApp, create_app
from iron_tui.tui.screens.detail import RequestDetailScreen
from iron_tui.tui.widgets.requests import RequestsTable

DISPLAY_URL = "http://127.0.0.1:8478/v1"
SIZES = [(80, 24), (120, 36), (200, 60)]
TOKEN = "iron-snapshot-token-0001"


def snapshot_app(tmp_path: Path, *, theme: str = "iron", budget: float | None = None,
                 user_theme_dir: Path | None = None, known_agents: Any = (),
                 **settings: Any) -> tuple[IronApp, Engine, FixedClock]:
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
                     display_url=DISPLAY_URL, known_agents=known_agents)  # (): not what is on this PATH
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


NATIVE_REQ = {"model": "gpt-4o-mini", "max_tokens": 300, "tools": [{"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    "messages": [
        {"role": "system", "content": "You are a weather assistant."},
        {"role": "user", "content": [{"type": "text", "text": "What should I wear in Oslo today?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "iVBOR" * 600}}]},
        {"role": "assistant", "content": None, "reasoning_content": "The user is in Oslo; check the weather first.",
         "tool_calls": [{"id": "call_w1", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_w1", "content": "4 °C, light rain"}]}
NATIVE_RESP = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
               "choices": [{"index": 0, "finish_reason": "stop", "message": {
                   "role": "assistant", "content": "A warm coat and an umbrella: 4 °C with light rain."}}],
               "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}}
STREAM_REQ = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "Write a haiku."}]}
STREAM_SSE = "".join("data: " + json.dumps(c) + "\n\n" for c in [
    {"model": "gpt-4o", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Rain on the fjord, "}}]},
    {"choices": [{"index": 0, "delta": {"content": "grey light, "}}]},
    {"choices": [{"index": 0, "delta": {"content": "a gull waits."}, "finish_reason": "stop"}]},
]) + "data: [DONE]\n\n"
RATE_LIMIT_BODY = {"error": {"message": "Rate limit reached for gpt-4o. Please try again in 20s.",
                             "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
BUDGET_MESSAGE = ("Iron Cage budget limit exceeded. Spent: $1.00, Reserved: $0.00, Limit: $1.00. "
                  "Increase the budget (router.set_budget(), --budget or the dashboard).")


def _rec(i: int, clock: FixedClock, **kw: Any) -> RequestRecord:
    base: dict[str, Any] = {
        "id": f"req_{i:06d}", "started_at": clock.now(), "method": "POST", "path": "/v1/chat/completions",
        "api": "openai.chat", "model": "gpt-4o-mini", "provider": "openai", "state": "ok", "status": 200,
        "latency_ms": 420.0, "ttft_ms": None, "input_tokens": 1200, "output_tokens": 300,
        "cost_micros": 360, "reserved_micros": 1500,
    }
    base.update(kw)
    return RequestRecord(**base)


def traffic(clock: FixedClock) -> list[RequestRecord]:
    """Mixed providers: a native call with a tool round trip, native Anthropic, a translated call, a
    stream, a provider 429, an unpriced model, an estimated cost, a 402 iron-tui refused, one in flight."""
    return [
        _rec(1, clock, request_body=json.dumps(NATIVE_REQ), upstream_response=json.dumps(NATIVE_RESP),
             upstream_api="openai"),
        _rec(2, clock, model="claude-3-5-haiku-latest", provider="anthropic", api="anthropic.messages",
             path="/v1/messages", latency_ms=612.5, input_tokens=2048, output_tokens=512, cost_micros=3686),
        _rec(3, clock, model="claude-3-5-haiku-latest", provider="anthropic", translated=True, latency_ms=801.0,
             input_tokens=18, output_tokens=3, cost_micros=26, upstream_api="anthropic",
             request_body=json.dumps(OPENAI_REQ), translated_request=json.dumps(ANTHROPIC_REQ),
             upstream_response=json.dumps(ANTHROPIC_RESP), translated_response=json.dumps(OPENAI_RESP)),
        _rec(4, clock, model="gpt-4o", stream=True, latency_ms=2300.0, ttft_ms=310.0, input_tokens=15000,
             output_tokens=1800, cost_micros=55500, request_body=json.dumps(STREAM_REQ), upstream_response=STREAM_SSE),
        _rec(5, clock, model="gpt-4o", state="error", status=429, latency_ms=95.0, input_tokens=0,
             output_tokens=0, cost_micros=None, error="upstream 429: Rate limit reached for gpt-4o. Please try "
             "again in 20s.", error_code="429", upstream_response=json.dumps(RATE_LIMIT_BODY),
             request_body=json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})),
        _rec(6, clock, model="local-llama-3-8b-instruct-q4_K_M", priced=False, cost_micros=None, latency_ms=150.0),
        _rec(7, clock, model="claude-3-5-haiku-latest", provider="anthropic", translated=True, stream=True,
             latency_ms=1500.0, ttft_ms=200.0, cost_micros=900, cost_estimated=True),
        _rec(8, clock, model="gpt-4o", state="error", status=402, latency_ms=1.2, input_tokens=0, output_tokens=0,
             cost_micros=None, reserved_micros=0, error=BUDGET_MESSAGE, error_code="budget_exceeded",
             request_body=json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "one more"}]})),
        _rec(9, clock, model="gpt-4o-mini", state="pending", status=None, latency_ms=None, input_tokens=0,
             output_tokens=0, cost_micros=None, request_body=json.dumps(STREAM_REQ)),
    ]


def publish_traffic(engine: Engine, clock: FixedClock, *, in_flight: bool = True) -> list[RequestRecord]:
    """Put the sample traffic in the history and on the bus, 3 s apart; returns the records.
    Without `in_flight` the last call is the budget 402 (as at the end of the demo)."""
    records = traffic(clock) if in_flight else traffic(clock)[:-1]
    for rec in records:
        rec.started_at = clock.now()
        engine.history.add(rec)
        engine.bus.publish(RequestStarted(clock.now(), rec.summary()))
        if rec.state != "pending":
            engine.bus.publish(RequestFinished(clock.now(), rec.summary()))
            engine.history.finished(rec, rec.summary())  # on disk too, for the history browser
        clock.advance(3)
    spent = sum(r.cost_micros or 0 for r in records)
    engine.bus.publish(SpendChanged(clock.now(), spent, 1200, engine.ledger.limit))
    return records


def fallback_alias_interrupted(clock: FixedClock) -> list[RequestRecord]:
    """A call served by a fallback (OpenAI 503, then Claude), one named by an alias, and one a killed
    iron-tui left in flight, as crash recovery reports it."""
    t = clock.now()
    tries = (Attempt(t, 180.0, "openai", "gpt-4o", 503, "503", "upstream 503: overloaded", 500.0),
             Attempt(t + 0.7, 640.0, "anthropic", "claude-3-5-haiku-latest", 200))
    fallback = _rec(10, clock, model="claude-3-5-haiku-latest", provider="anthropic", translated=True,
                    client_model="gpt-4o", attempts=tries, latency_ms=1320.0, cost_micros=1100)
    alias = _rec(11, clock, client_model="fast", latency_ms=380.0)
    dead = CallRow("req_000012", "2026-01-01", 50_000, t, "openai", "gpt-4o-mini", "openai.chat", input_tokens=1000)
    interrupted = interrupted_record(RecoveredCall("gone", dead, TokenUsage(1000, 750), 600))
    return [fallback, alias, interrupted]


def publish_provider_states(engine: Engine, clock: FixedClock) -> None:
    """Traffic with a fallback, an alias and an interrupted call; OpenAI ok, Anthropic degraded (a 429),
    Groq down for 24 more seconds; two events dead-lettered by the control server."""
    publish_traffic(engine, clock)
    for rec in fallback_alias_interrupted(clock):
        engine.history.add(rec)
        engine.bus.publish(RequestFinished(clock.now(), rec.summary()))
        clock.advance(3)
    health = engine.health
    for _ in range(4):
        health.record("openai", ok=True, latency_ms=420.0)
    health.record("anthropic", ok=True, latency_ms=640.0)
    health.record("anthropic", ok=False, hard=False, error="upstream 429: rate limited")
    for _ in range(3):
        health.record("groq", ok=False, error="Groq is unreachable at https://api.groq.com/openai/v1")
    clock.advance(6)
    engine.bus.publish(SyncStatus(clock.now(), "ok", sent=40, rejected=2, last_success=clock.now() - 4,
                                  dead_letters=2))


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


def publish_agent_long_lines(engine: Engine, clock: FixedClock) -> None:
    """Lines longer than the agent panel is wide, one with control characters in it."""
    publish_agent_running(engine, clock, lines=0)
    lines = [
        "demo: step 8: A request whose worst case does not fit in what is left of the budget is refused with "
        "402 before anything goes upstream: budget",
        "demo: step 9: the tool result came back \x1b[2J\x1b]0;pwned\x07 with escape codes, shown harmlessly",
    ]
    for i, text in enumerate(lines):
        engine.bus.publish(AgentOutput(clock.now(), "agent_00000001", "stdout", text, seq=20 + i))


# --- Pilot helpers (apps on a running engine) ---------------------------------------------------


def app_for(engine: Engine, tmp_path: Path, **kw: Any) -> IronApp:
    kw.setdefault("start_engine", False)
    app = create_app(engine, user_theme_dir=tmp_path / "user-themes", **kw)
    app.animation_level = "none"
    app.flush_interval = 0.01
    return app


async def open_detail(pilot: Pilot[Any], app: IronApp, request_id: str, tab: str | None = None) -> Any:
    app.dashboard.open_detail(request_id, tab)
    await until(pilot, lambda: isinstance(app.screen, RequestDetailScreen) and app.screen.is_mounted
                and bool(app.screen.query("#detail-title")), what="detail screen")
    await pilot.pause(0.05)
    return app.screen


async def until(pilot: Pilot[Any], cond: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout  # a hang guard only
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await pilot.pause(0.02)


def table(app: IronApp) -> RequestsTable:
    return app.dashboard.query_one(RequestsTable)


def text_of(widget: Static) -> str:
    return widget.content.plain if hasattr(widget.content, "plain") else str(widget.content)


def screen_text(screen: Any) -> str:
    return "\n".join(text_of(s) for s in screen.query(Static))


def oai(engine: Engine) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)

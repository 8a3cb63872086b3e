"""Terminal-safe text: control characters from clients, upstreams and agents never reach a terminal raw,
and names a client chooses are capped in records."""

from __future__ import annotations

import json
import sys

import pytest

from iron_tui.core.agent import AgentSupervisor, ProxyWiring
from iron_tui.core.bus import EventBus
from iron_tui.core.clock import SystemClock
from iron_tui.core.engine import Engine
from iron_tui.core.events import AgentOutput, Notice, RequestFinished, SyncStatus
from iron_tui.core.safe_text import NAME_LIMIT, clean_name, escape_controls
from iron_tui.headless import format_event
from tests.helpers.raw_http import raw_exchange, request_bytes


@pytest.mark.parametrize(("raw", "shown"), [
    ("a\nb", "a\\nb"),
    ("a\r\nb", "a\\r\\nb"),
    ("tab\there", "tab\\there"),
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),  # CSI
    ("\x1b]52;c;aGVsbG8=\x07", "\\x1b]52;c;aGVsbG8=\\x07"),  # OSC 52: write the clipboard
    ("\x9b2J", "\\x9b2J"),  # C1 CSI
    ("\x00\x7f", "\\x00\\x7f"),
    ("invoice\u202egnp.exe", "invoice\\u202egnp.exe"),  # right-to-left override
    ("\u2066x\u2069 \u200f \u2028", "\\u2066x\\u2069 \\u200f \\u2028"),
    ("lone \udcff", "lone \\udcff"),
])
def test_controls_are_escaped(raw: str, shown: str) -> None:
    assert escape_controls(raw) == shown
    assert escape_controls(shown) == shown  # the escaped form is printable: escaping is idempotent


def test_printable_text_is_unchanged() -> None:
    for text in ("gpt-4o-mini", "naïve ✗ — 日本語 émoji 🎉", ""):
        assert escape_controls(text) is text
    assert escape_controls("a\tb", keep_tabs=True) == "a\tb"


def test_client_names_are_capped_with_a_marker() -> None:
    name = clean_name("m" * 10_000)
    assert len(name) < NAME_LIMIT + 30 and name.startswith("m" * NAME_LIMIT) and "[+9800 chars]" in name


async def test_model_and_agent_names_cannot_forge_log_lines(engine: Engine) -> None:
    sub = engine.bus.subscribe(1000, name="test")
    forged = "gpt-4o\n2026-01-01T00:00:00Z req_9 openai gpt-4o 200 1.0ms in=1 out=1 $0.000000"
    forged += "\x1b]0;pwned\x07"
    agent = "\u202eagent" + "x" * 5000  # (the HTTP parser itself refuses ESC in a header)
    body = json.dumps({"model": forged, "messages": [{"role": "user", "content": "hi"}]}).encode()
    # Raw bytes: real clients refuse to send control characters in a header.
    await raw_exchange(engine.port, request_bytes(
        "POST", "/v1/chat/completions", f"127.0.0.1:{engine.port}",
        {"authorization": f"Bearer {engine.token}", "x-iron-agent-id": agent, "content-type": "application/json"},
        body))
    finished = None
    while finished is None:
        for ev in await sub.get_batch():
            if isinstance(ev, RequestFinished):
                finished = ev
    line = format_event(finished, "text")
    assert line is not None and "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert "gpt-4o\\n2026" in line  # shown, escaped
    rec = engine.history.recent(1)[0]
    assert rec.agent_id is not None and len(rec.agent_id) < NAME_LIMIT + 30
    assert rec.agent_id.startswith("\\u202eagentxxx")
    assert finished.request["model"] == rec.model and "\n" not in rec.model


def test_server_and_notice_text_is_escaped() -> None:
    assert SyncStatus(0.0, "retrying", last_error="HTTP 503\n\x1b[2J").last_error == "HTTP 503\\n\\x1b[2J"
    assert Notice(0.0, "error", "lease failed: \x1b]8;;http://evil\x07").message == \
        "lease failed: \\x1b]8;;http://evil\\x07"


async def test_agent_output_is_escaped_before_the_bus() -> None:
    bus = EventBus()
    sub = bus.subscribe(100, name="test")
    sup = AgentSupervisor(publish=bus.publish, clock=SystemClock(),
                          wiring=ProxyWiring(base_url="http://127.0.0.1:1", token="t" * 20))
    script = r"import sys; sys.stdout.write('\x1b]52;c;aGk=\x07 colour \x1b[31mred\x1b[0m\tcol\n')"
    await sup.start([sys.executable, "-c", script])
    assert await sup.wait() == 0
    lines = [e.line for e in await sub.get_batch() if isinstance(e, AgentOutput)]
    assert lines == ["\\x1b]52;c;aGk=\\x07 colour \\x1b[31mred\\x1b[0m\tcol"]
    assert [o.text for o in sup.output] == lines  # the dashboard's buffer too
    await sup.close()

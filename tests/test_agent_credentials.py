"""Launched agents get no credentials: no LLM credential variable, no variable holding a configured key,
and the tools that read their own variable for the key get the agent's local token there. What the agent
prints is redacted before anything sees it."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest

from iron_tui.core.agent_env import PROVIDER_SECRET_VARS
from iron_tui.core.events import AgentOutput
from iron_tui.headless import format_event
from tests.conftest import EngineFactory

ROOT = Path(__file__).resolve().parent.parent
PRINT_ENV = str(ROOT / "tests" / "agents" / "print_env.py")
# A configured key without the usual prefix: only its exact value can find it.
ODD_KEY = "gsk_custom0123456789abcdefXYZ"

PLANTED = {
    "CODEX_API_KEY": "planted-codex",
    "CLAUDE_CODE_OAUTH_TOKEN": "planted-claude-oauth",
    "ANTHROPIC_AUTH_TOKEN": "planted-bearer",
    "AZURE_OPENAI_API_KEY": "planted-azure",
    "AZURE_OPENAI_AD_TOKEN": "planted-azure-ad",
    "GEMINI_API_KEY": "planted-gemini",
    "GOOGLE_API_KEY": "planted-google",
    "MISTRAL_API_KEY": "planted-mistral",
    "GROQ_API_KEY": "planted-groq",
    "DEEPSEEK_API_KEY": "planted-deepseek",
    "OPENROUTER_API_KEY": "planted-openrouter",
    "TOGETHER_API_KEY": "planted-together",
    "XAI_API_KEY": "planted-xai",
    "COHERE_API_KEY": "planted-cohere",
    "AWS_BEARER_TOKEN_BEDROCK": "planted-bedrock",
    # Any name, holding a configured key: found by value.
    "MY_TOOL_SETTING": ODD_KEY,
    "SOME_JSON": json.dumps({"auth": ODD_KEY}),
}


async def _run_agent(make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> list[str]:
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SERPAPI_API_KEY", "tool-key-kept")
    engine = await make_engine(openai_key=ODD_KEY)
    sub = engine.bus.subscribe(1000, name="test")
    await engine.agent.start(argv)
    async with asyncio.timeout(60):
        assert await engine.agent.wait() == 0
    events = []
    while len(sub):  # every output line is published before the agent counts as exited
        events += await sub.get_batch()
    lines = [format_event(e, "text") for e in events if isinstance(e, AgentOutput)]
    assert all(isinstance(x, str) for x in lines)
    return [e.line for e in events if isinstance(e, AgentOutput)] + [x for x in lines if x]


async def test_agent_environment_holds_no_credential(make_engine: EngineFactory,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = await _run_agent(make_engine, monkeypatch, [sys.executable, PRINT_ENV])
    env = json.loads(out[0])
    local = env["OPENAI_API_KEY"]
    assert re.fullmatch(r"iron-agent-[\w-]+\.agent_\w+", local)
    # Codex CLI and Claude Code read these for the key: they get the agent's local token.
    assert env["CODEX_API_KEY"] == env["ANTHROPIC_API_KEY"] == local
    for name in ("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "AZURE_OPENAI_API_KEY", "GEMINI_API_KEY", "AWS_BEARER_TOKEN_BEDROCK",
                 "MY_TOOL_SETTING", "SOME_JSON"):
        assert name not in env, name
    dumped = json.dumps(env)
    assert "planted-" not in dumped and ODD_KEY not in dumped
    assert env["SERPAPI_API_KEY"] == "tool-key-kept"  # not an LLM credential


async def test_what_the_agent_prints_is_redacted(make_engine: EngineFactory,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    script = ("import sys; print('found ' + sys.argv[1] + ' and sk-ant-api03-' + 'A' * 40); "
              "print('split', sys.argv[1], file=sys.stderr)")
    out = await _run_agent(make_engine, monkeypatch, [sys.executable, "-c", script, ODD_KEY])
    text = "\n".join(out)
    assert ODD_KEY not in text and "A" * 40 not in text
    assert "found [redacted] and sk-ant-api0...[redacted]" in text


def test_the_credential_list_is_documented() -> None:
    doc = (ROOT / "docs" / "security.md").read_text()
    missing = sorted(n for n in PROVIDER_SECRET_VARS if f"`{n}`" not in doc)
    assert not missing, f"docs/security.md does not list: {missing}"

"""Any model: configured providers, presets, `NAME/model`, aliases, retries, fallbacks and provider health,
driven by the official SDKs through iron-tui to two independent OpenAI-compatible upstreams: the
project's simulator in OpenAI-compatible mode (a local server: no key) and mockllm, a third-party mock
server from PyPI, run as a real subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from iron_tui.config import ConfigError, Settings
from iron_tui.core.clock import FixedClock, SequentialIds
from iron_tui.core.engine import Engine
from iron_tui.core.events import ProviderHealthChanged
from iron_tui.core.providers import ProviderTable, UnknownModel, upstream_url
from iron_tui.sim import ProviderSim, SimSettings

# --- resolution (pure) -------------------------------------------------------------------------------


def _table(**kw: Any) -> ProviderTable:
    s = Settings(openai_key="sk-test-openai-0000", **kw)
    return ProviderTable.from_settings(s, {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com"})


def test_names_resolve_by_prefix_alias_pattern_and_family() -> None:
    t = _table(providers={"local": {"base_url": "http://127.0.0.1:11434/v1", "models": ["llama-*"]}},
               models={"fast": "local/llama-3-8b", "claude-haiku-*": "ollama/qwen2.5-coder"})
    assert t.resolve("ollama/qwen2.5-coder").provider == "ollama"  # a preset needs no configuration
    r = t.resolve("openrouter/anthropic/claude-sonnet-4.5")
    assert (r.provider, r.model) == ("openrouter", "anthropic/claude-sonnet-4.5")
    assert t.resolve("fast") == t.resolve("fast").__class__("local", "llama-3-8b", via="fast")
    haiku = t.resolve("claude-haiku-4-5-20251001")
    assert (haiku.provider, haiku.model, haiku.via) == ("ollama", "qwen2.5-coder", "claude-haiku-4-5-20251001")
    assert t.resolve("Llama-3.1-70B").provider == "local"  # the provider's own patterns, case-insensitive
    assert t.resolve("claude-sonnet-4-5").provider == "anthropic"
    assert t.resolve("gpt-4o").provider == "openai"
    assert t.resolve("whatever", forced="anthropic").provider == "anthropic"
    with pytest.raises(UnknownModel) as err:
        t.resolve("mystery-model")
    assert "mystery-model" in err.value.message and "local" in err.value.message and "[models]" in err.value.message


def test_a_provider_needs_a_base_url_unless_it_is_a_preset() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        _table(providers={"mine": {"api": "openai"}})
    groq = _table(providers={"groq": {"models": ["llama*"]}}).specs["groq"]
    assert groq.base_url == "https://api.groq.com/openai/v1" and groq.key_env == "GROQ_API_KEY"


@pytest.mark.parametrize("bad", [{"key_env": "gsk_abc-123!"}, {"headers": {"Authorization": "Bearer x"}},
                                 {"base_url": "ftp://x"}, {"api": "grpc"}])
def test_keys_never_live_in_the_file(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Settings(providers={"p": {"base_url": "http://127.0.0.1:1/v1", **bad}})


@pytest.mark.parametrize(("base", "path", "api", "url"), [
    ("https://api.openai.com", "/v1/chat/completions", "openai", "https://api.openai.com/v1/chat/completions"),
    ("http://127.0.0.1:11434/v1", "/v1/chat/completions", "openai", "http://127.0.0.1:11434/v1/chat/completions"),
    ("https://generativelanguage.googleapis.com/v1beta/openai", "/v1/chat/completions", "openai",
     "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"),
    ("https://api.anthropic.com/v1", "/v1/messages", "anthropic", "https://api.anthropic.com/v1/messages"),
    ("https://gw.example/anthropic?team=a", "/v1/messages", "anthropic", "https://gw.example/anthropic/v1/messages?team=a"),
])
def test_urls_join_the_way_each_sdk_does(base: str, path: str, api: str, url: str) -> None:
    assert upstream_url(base, path, "", api) == url


# --- end to end --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mockllm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """mockllm (github.com/lukehinds/mockllm) as its users run it: uvicorn serving mockllm.server:app."""
    d = tmp_path_factory.mktemp("mockllm")
    (d / "responses.yml").write_text('responses:\n  "ping": "pong from mockllm"\ndefaults:\n'
                                     '  unknown_response: "mockllm says hi"\nsettings:\n  lag_enabled: false\n')
    port = _free_port()
    env = {**os.environ, "MOCKLLM_RESPONSES_FILE": str(d / "responses.yml"),
           # mockllm counts tokens with tiktoken, which would try to download an encoding: fail fast.
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "TIKTOKEN_CACHE_DIR": str(d)}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "mockllm.server:app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                    raise RuntimeError(f"mockllm exited: {err}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
async def local_sim() -> AsyncIterator[ProviderSim]:
    """The simulator as a local OpenAI-compatible server (Ollama-like: no key, its own model names)."""
    s = ProviderSim(SimSettings(open_access=True, served_models=("qwen2.5-coder", "llama3.2")))
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


async def _engine(tmp_path: Path, sim: ProviderSim, **kw: Any) -> Engine:
    values: dict[str, Any] = dict(port=0, openai_key="sk-sim-openai", anthropic_key="sk-ant-sim-anthropic",
                                  openai_base_url=sim.url, anthropic_base_url=sim.url, token="test-token",
                                  data_dir=tmp_path / "data",
                                  retries={"attempts": 3, "backoff": 0.01, "max_wait": 5, "cooldown": 30})
    values.update(kw)
    clock = kw.pop("clock", None)
    values.pop("clock", None)
    engine = Engine(Settings(**values), ids=SequentialIds(), clock=clock)
    await engine.start()
    return engine


def _oai(engine: Engine) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key="test-token", max_retries=0)


MSG = [{"role": "user", "content": "ping"}]


async def test_sdk_calls_reach_two_independent_openai_compatible_upstreams(
        tmp_path: Path, sim: ProviderSim, local_sim: ProviderSim, mockllm_url: str) -> None:
    engine = await _engine(tmp_path, sim, providers={
        "local": {"base_url": local_sim.url + "/v1"},
        "mock": {"base_url": mockllm_url, "models": ["mock-*"]},
    }, models={"fast": "local/qwen2.5-coder"})
    try:
        client = _oai(engine)
        r = await client.chat.completions.create(model="fast", messages=MSG)  # alias → local
        assert r.choices[0].message.content.startswith("Simulated reply")
        rec = engine.history.recent(1)[0]
        assert (rec.provider, rec.model, rec.client_model) == ("local", "qwen2.5-coder", "fast")
        assert rec.cost_micros == 0 and rec.priced, "a local model costs $0 (priced, not unknown)"
        assert local_sim.requests[-1].body["model"] == "qwen2.5-coder"
        assert "authorization" not in {k.lower() for k in local_sim.requests[-1].headers}, "no key for a local server"

        r = await client.chat.completions.create(model="mock-llama3", messages=MSG)  # the provider's pattern
        assert r.choices[0].message.content == "pong from mockllm"
        chunks = [c async for c in await client.chat.completions.create(model="mock/llama3", messages=MSG,
                                                                          stream=True)]
        # (mockllm's stream looks its reply up again as a prompt, so it streams its default answer.)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "mockllm says hi"
        rec = engine.history.recent(1)[0]
        assert rec.provider == "mock" and rec.state == "ok" and rec.cost_estimated, \
            "mockllm streams no usage: charged from an estimate, marked so"

        ids = [m.id async for m in client.models.list()]
        assert "local/qwen2.5-coder" in ids and "gpt-4o" in ids
        with pytest.raises(openai.BadRequestError) as err:
            await client.chat.completions.create(model="qwen2.5-coder", messages=MSG)
        assert "local" in str(err.value) and "mock" in str(err.value)
    finally:
        await engine.stop()


async def test_a_429_is_retried_after_its_retry_after_and_both_attempts_are_recorded(
        tmp_path: Path, sim: ProviderSim) -> None:
    engine = await _engine(tmp_path, sim)
    try:
        sim.faults.push(status=429, times=1, provider="openai", retry_after=0)
        r = await _oai(engine).chat.completions.create(model="gpt-4o-mini", messages=MSG)
        assert r.choices[0].message.content
        rec = engine.history.recent(1)[0]
        assert rec.state == "ok" and [a.status for a in rec.attempts] == [429, 200]
        assert rec.summary()["attempts"][0]["error"]
        assert engine.ledger.reserved == 0 and rec.cost_micros and rec.cost_micros > 0
    finally:
        await engine.stop()


async def test_retries_give_up_and_relay_the_last_error_when_nothing_is_left(
        tmp_path: Path, sim: ProviderSim) -> None:
    engine = await _engine(tmp_path, sim)
    try:
        sim.faults.push(status=503, times=5, provider="openai")
        with pytest.raises(openai.InternalServerError) as err:
            await _oai(engine).chat.completions.create(model="gpt-4o-mini", messages=MSG)
        assert err.value.status_code == 503
        rec = engine.history.recent(1)[0]
        assert rec.state == "error" and [a.status for a in rec.attempts] == [503, 503, 503]
        assert sum(1 for r in sim.requests if r.path == "/v1/chat/completions") == 3
    finally:
        await engine.stop()


async def test_a_model_that_keeps_failing_falls_back_to_another_provider_translating_as_needed(
        tmp_path: Path, sim: ProviderSim, local_sim: ProviderSim) -> None:
    engine = await _engine(tmp_path, sim, providers={"local": {"base_url": local_sim.url + "/v1"}},
                           fallbacks={"gpt-4o-mini": ["claude-haiku-4-5", "local/qwen2.5-coder"]})
    try:
        sim.faults.push(status=503, times=3, provider="openai")
        sim.faults.push(status=529, times=3, provider="anthropic")
        r = await _oai(engine).chat.completions.create(model="gpt-4o-mini", messages=MSG)
        assert r.choices[0].message.content.startswith("Simulated reply")
        rec = engine.history.recent(1)[0]
        assert (rec.state, rec.provider, rec.model) == ("ok", "local", "qwen2.5-coder")
        tried = [(a.provider, a.status) for a in rec.attempts]
        assert tried == [("openai", 503)] * 3 + [("anthropic", 529)] * 3 + [("local", 200)]
        assert engine.ledger.reserved == 0
    finally:
        await engine.stop()


async def test_a_provider_that_keeps_failing_is_marked_down_skipped_and_recovers(
        tmp_path: Path, sim: ProviderSim) -> None:
    port = _free_port()  # nothing listens here yet: connections are refused
    clock = FixedClock()
    engine = await _engine(tmp_path, sim, clock=clock,
                           providers={"flaky": {"base_url": f"http://127.0.0.1:{port}/v1"}},
                           fallbacks={"flaky/m1": ["gpt-4o-mini"]},
                           retries={"attempts": 3, "backoff": 0.0, "max_wait": 5, "cooldown": 30})
    events = engine.bus.subscribe()
    revived: ProviderSim | None = None
    try:
        client = _oai(engine)
        await client.chat.completions.create(model="flaky/m1", messages=MSG)  # 3 refusals, then the fallback
        assert engine.health.state("flaky") == "down"
        downs = [e for e in events.drain() if isinstance(e, ProviderHealthChanged) and e.provider == "flaky"]
        assert downs and downs[-1].state == "down" and downs[-1].data["retry_in_s"] == 30.0
        assert any(p["provider"] == "flaky" and p["state"] == "down" for p in engine.snapshot()["providers"])

        await client.chat.completions.create(model="flaky/m1", messages=MSG)
        rec = engine.history.recent(1)[0]
        assert rec.attempts[0].error == "skipped: provider down" and rec.provider == "openai"

        revived = ProviderSim(SimSettings(open_access=True))
        await revived.start(port=port)
        clock.advance(31)  # the cool-down is over: the next call probes it
        await client.chat.completions.create(model="flaky/m1", messages=MSG)
        rec = engine.history.recent(1)[0]
        assert rec.provider == "flaky" and rec.state == "ok"
        assert engine.health.state("flaky") == "ok"
        ups = [e for e in events.drain() if isinstance(e, ProviderHealthChanged) and e.provider == "flaky"]
        assert ups and ups[-1].state == "ok"
    finally:
        await engine.stop()
        if revived is not None:
            await revived.stop()


async def test_a_model_whose_only_provider_is_down_is_still_tried(tmp_path: Path, sim: ProviderSim) -> None:
    engine = await _engine(tmp_path, sim, retries={"attempts": 1, "backoff": 0.0, "max_wait": 5, "cooldown": 30})
    try:
        sim.faults.push(status=503, times=3, provider="openai")
        for _ in range(3):
            with pytest.raises(openai.InternalServerError):
                await _oai(engine).chat.completions.create(model="gpt-4o-mini", messages=MSG)
        assert engine.health.state("openai") == "down"
        r = await _oai(engine).chat.completions.create(model="gpt-4o-mini", messages=MSG)
        assert r.choices[0].message.content, "never locked out: no fallback means it is tried anyway"
    finally:
        await engine.stop()


async def test_a_missing_preset_key_is_a_clear_400(tmp_path: Path, sim: ProviderSim,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    engine = await _engine(tmp_path, sim)
    try:
        with pytest.raises(openai.BadRequestError) as err:
            await _oai(engine).chat.completions.create(model="groq/llama-3.3-70b-versatile", messages=MSG)
        assert "GROQ_API_KEY" in str(err.value)
    finally:
        await engine.stop()


async def test_a_preset_key_from_its_variable_is_sent_and_priced_by_that_provider(
        tmp_path: Path, sim: ProviderSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk_sim_groq_key_0123456789")
    sim.settings.openai_keys.add("gsk_sim_groq_key_0123456789")
    engine = await _engine(tmp_path, sim, providers={"groq": {"base_url": sim.url + "/v1", "price_provider": "groq"}})
    try:
        await _oai(engine).chat.completions.create(model="groq/llama-3.3-70b-versatile", messages=MSG)
        rec = engine.history.recent(1)[0]
        assert rec.state == "ok" and rec.priced and rec.cost_micros and rec.cost_micros > 0, "groq's price"
        headers = {k.lower(): v for k, v in sim.requests[-1].headers.items()}
        assert headers["authorization"] == "Bearer gsk_sim_groq_key_0123456789"
    finally:
        await engine.stop()


def test_the_log_line_shows_each_try() -> None:
    from iron_tui.core.events import RequestRecord
    from iron_tui.core.proxy.attempts import attempt
    from iron_tui.headless import format_request

    rec = RequestRecord(id="r1", started_at=0.0, method="POST", path="/v1/chat/completions", api="openai.chat",
                        model="qwen2.5-coder", provider="local", state="ok", status=200,  # type: ignore[arg-type]
                        client_model="gpt-4.1", attempts=(attempt(0.0, "openai", "gpt-4.1", 503, "overloaded", 3.0),
                                                          attempt(0.0, "local", "qwen2.5-coder", 200, None, 4.0)))
    line = format_request(rec.summary())
    assert "[as=gpt-4.1]" in line and line.endswith("tries: openai/gpt-4.1 503, local/qwen2.5-coder 200")


async def test_each_provider_gets_the_output_cap_field_it_reads(
        tmp_path: Path, sim: ProviderSim, local_sim: ProviderSim) -> None:
    """A translated call (here Anthropic Messages → Chat Completions) and a budget cap both write the cap:
    OpenAI itself reads max_completion_tokens (its reasoning models refuse max_tokens); a compatible
    server such as Ollama reads max_tokens."""
    import anthropic

    engine = await _engine(tmp_path, sim, providers={"local": {"base_url": local_sim.url + "/v1"}})
    try:
        client = anthropic.AsyncAnthropic(base_url=engine.base_url, api_key="test-token", max_retries=0)
        for model in ("gpt-4o-mini", "local/qwen2.5-coder"):
            await client.messages.create(model=model, max_tokens=77, messages=[{"role": "user", "content": "hi"}])
        to_openai = next(r.body for r in reversed(sim.requests) if r.path == "/v1/chat/completions")
        to_local = local_sim.requests[-1].body
        assert to_openai["max_completion_tokens"] == 77 and "max_tokens" not in to_openai
        assert to_local["max_tokens"] == 77 and "max_completion_tokens" not in to_local
    finally:
        await engine.stop()


def test_a_budget_cap_goes_in_the_field_the_body_uses_or_the_providers() -> None:
    from iron_tui.core.dialects.provider_apis import with_output_cap

    assert with_output_cap("openai", {"messages": []}, 9, "max_tokens") == {"messages": [], "max_tokens": 9}
    assert with_output_cap("openai", {"messages": []}, 9) == {"messages": [], "max_completion_tokens": 9}
    both = with_output_cap("openai", {"max_tokens": 50, "max_completion_tokens": 60}, 9, "max_tokens")
    assert both == {"max_tokens": 9, "max_completion_tokens": 9}
    assert with_output_cap("openai", {"prompt": "x"}, 9) == {"prompt": "x", "max_tokens": 9}

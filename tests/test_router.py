"""LlmRouter: the synchronous Python API, against the simulator on a real port (in a background thread)."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from iron_tui import LlmRouter
from iron_tui.sim import ProviderSim
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    """A simulator on its own thread, so synchronous router code can call it."""
    loop = asyncio.new_event_loop()
    sim = ProviderSim()
    ready = threading.Event()
    stop: list[asyncio.Event] = []

    async def main() -> None:
        await sim.start()
        stop.append(asyncio.Event())
        ready.set()
        await stop[0].wait()
        await sim.stop()

    t = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    t.start()
    assert ready.wait(10)
    try:
        yield sim.url
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        t.join(10)


def router(sim_url: str, tmp_path: Path, **kw: object) -> LlmRouter:
    kw.setdefault("provider_key", OPENAI_KEY)
    return LlmRouter(openai_base_url=sim_url, anthropic_base_url=sim_url, data_dir=tmp_path, **kw)  # type: ignore[arg-type]


def test_direct_mode_properties_and_call(sim_url: str, tmp_path: Path) -> None:
    with router(sim_url, tmp_path, budget=5.0) as r:
        assert r.is_running
        assert r.base_url == f"http://127.0.0.1:{r.port}/v1"
        assert r.provider == "openai"
        assert r.api_key and r.api_key != OPENAI_KEY
        assert r.budget == 5.0
        assert r.budget_status == (0.0, 5.0)
        client = openai.OpenAI(base_url=r.base_url, api_key=r.api_key, max_retries=0)
        resp = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content
        spent, limit = r.budget_status
        assert 0 < spent < limit and r.total_spent() == spent
        r.set_budget(10.0)
        assert r.budget_status == (spent, 10.0), "changing the limit keeps what was spent"
    assert not r.is_running
    with pytest.raises(RuntimeError, match="Router is stopped"):
        _ = r.base_url
    for prop in ("api_key", "port", "provider"):
        with pytest.raises(RuntimeError):
            getattr(r, prop)
    r.stop()  # idempotent


def test_no_budget_means_unlimited(sim_url: str, tmp_path: Path) -> None:
    with router(sim_url, tmp_path) as r:
        assert r.budget is None and r.budget_status is None
        client = openai.OpenAI(base_url=r.base_url, api_key=r.api_key, max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert r.total_spent() > 0


def test_anthropic_key_and_both_providers(sim_url: str, tmp_path: Path) -> None:
    with router(sim_url, tmp_path, provider_key=None,
                provider_keys={"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY}) as r:
        a = anthropic.Anthropic(base_url=r.base_url.removesuffix("/v1"), api_key=r.api_key, max_retries=0)
        msg = a.messages.create(model="claude-3-5-haiku-latest", max_tokens=50,
                                messages=[{"role": "user", "content": "hi"}])
        assert msg.content
        o = openai.OpenAI(base_url=r.base_url, api_key=r.api_key, max_retries=0)
        assert o.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]).choices
    with router(sim_url, tmp_path, provider_key=ANTHROPIC_KEY) as r2:
        assert r2.provider == "anthropic"


def test_value_errors() -> None:
    with pytest.raises(ValueError, match="provider_key"):
        LlmRouter()
    with pytest.raises(ValueError):
        LlmRouter(api_key="ic_token_only")
    with pytest.raises(ValueError):
        LlmRouter(server_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="budget"):
        LlmRouter(provider_key="sk-x", budget=-1)


def test_port_in_use_raises_instead_of_hanging(sim_url: str, tmp_path: Path) -> None:
    with router(sim_url, tmp_path) as r:
        with pytest.raises(RuntimeError, match="cannot listen"):
            router(sim_url, tmp_path / "b", port=r.port)


def test_unreachable_server_does_not_hang(tmp_path: Path) -> None:
    # Server mode against a closed port: the constructor returns (the lease is retried in the
    # background) and calls get a clear error instead of a hang.
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    with LlmRouter(api_key="ic_x", server_url=f"http://127.0.0.1:{dead}", data_dir=tmp_path) as r:
        client = openai.OpenAI(base_url=r.base_url, api_key=r.api_key, max_retries=0, timeout=20)
        with pytest.raises(openai.APIStatusError) as e:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        assert e.value.status_code in (502, 503)


def test_start_stop_twenty_times_leaks_nothing(sim_url: str, tmp_path: Path) -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    with router(sim_url, tmp_path):
        pass
    gc.collect()
    threads0, fds0 = threading.active_count(), fds()
    for i in range(20):
        with router(sim_url, tmp_path) as r:
            client = openai.OpenAI(base_url=r.base_url, api_key=r.api_key, max_retries=0)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": str(i)}])
            client.close()
    gc.collect()
    assert threading.active_count() <= threads0
    assert fds() <= fds0 + 3


def test_providers_aliases_and_fallbacks_through_the_python_api(sim_url: str, tmp_path: Path) -> None:
    # No provider key at all: only a local OpenAI-compatible server (the simulator stands in for Ollama).
    with LlmRouter(providers={"local": {"base_url": sim_url + "/v1", "key_env": "IRON_TEST_LOCAL_KEY"}},
                   models={"fast": "local/gpt-4o-mini"}, data_dir=tmp_path) as r:
        os.environ.pop("IRON_TEST_LOCAL_KEY", None)
        client = openai.OpenAI(base_url=r.base_url, api_key=r.api_key, max_retries=0)
        with pytest.raises(openai.AuthenticationError):  # the sim wants its key, and none is set
            client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    os.environ["IRON_TEST_LOCAL_KEY"] = OPENAI_KEY
    try:
        with LlmRouter(providers={"local": {"base_url": sim_url + "/v1", "key_env": "IRON_TEST_LOCAL_KEY"}},
                       models={"fast": "local/gpt-4o-mini"}, data_dir=tmp_path) as r:
            client = openai.OpenAI(base_url=r.base_url, api_key=r.api_key, max_retries=0)
            reply = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content
            assert r.total_spent() == 0.0, "a server on this machine is free"
    finally:
        os.environ.pop("IRON_TEST_LOCAL_KEY", None)

"""The agent supervisor, with real subprocesses (the scripts in tests/agents/)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from iron_tui.core.agent import AgentError, AgentPreset, AgentSupervisor, ProxyWiring
from iron_tui.core.agent_env import child_environment, command_argv, needs_shell
from iron_tui.core.agent_output import LineAssembler
from iron_tui.core.clock import FixedClock
from iron_tui.core.events import AgentOutput, AgentStateChanged, Event

AGENTS = Path(__file__).parent / "agents"
WIRING = ProxyWiring(base_url="http://127.0.0.1:9", token="iron-local-token-abcd")
GRACE = 0.3
pytestmark = pytest.mark.timeout(30)  # a hung supervisor should fail fast, not stall the suite


def agent(name: str, *args: str) -> list[str]:
    return [sys.executable, str(AGENTS / name), *args]


def alive(pid: int) -> bool:
    """Is `pid` a live process? A zombie (dead, not yet reaped by a lazy init) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] not in (b"Z", b"X")


async def gone(pid: int, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def line_starting(sup: AgentSupervisor, prefix: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        for line in list(sup.output):
            if line.text.startswith(prefix):
                return line.text
        if time.monotonic() > deadline:
            raise AssertionError(f"no output line starting {prefix!r}: {[x.text for x in sup.output]}")
        await asyncio.sleep(0.01)


def states(events: list[Event]) -> list[str]:
    return [e.state for e in events if isinstance(e, AgentStateChanged)]


def texts(sup: AgentSupervisor, stream: str | None = None) -> list[str]:
    return [line.text for line in sup.output if stream is None or line.stream == stream]


Factory = Callable[..., AgentSupervisor]


@pytest.fixture
async def make() -> AsyncIterator[Factory]:
    """Build supervisors that record their events; every one is closed after the test."""
    made: list[AgentSupervisor] = []

    def factory(events: list[Event] | None = None, **kw: Any) -> AgentSupervisor:
        sink: list[Event] = [] if events is None else events
        kw.setdefault("wiring", WIRING)
        kw.setdefault("grace_seconds", GRACE)
        kw.setdefault("drain_seconds", 0.3)
        sup = AgentSupervisor(publish=sink.append, clock=FixedClock(), **kw)
        made.append(sup)
        return sup

    yield factory
    for sup in made:
        await sup.close()
        assert sup.pid is None or not alive(sup.pid)


@pytest.fixture
def strays() -> Iterator[list[int]]:
    """Pids a failing test might leave behind; SIGKILLed at teardown whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --- environment ----------------------------------------------------------------------------------


async def test_child_env_is_wired_and_parent_keys_do_not_leak(make: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret-openai")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-parent-secret")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "parent-secret-bearer")
    monkeypatch.setenv("GEMINI_API_KEY", "parent-secret-gemini")
    monkeypatch.setenv("IC_TOKEN", "parent-secret-ic")
    monkeypatch.setenv("SERPAPI_API_KEY", "tool-key-kept")
    monkeypatch.setenv("HTTPS_PROXY", "http://corp-proxy:3128")
    sup = make()
    preset = AgentPreset(name="env", command=agent("print_env.py"), env={"MY_SETTING": "42"})
    await sup.start(preset)
    assert await sup.wait() == 0
    env = json.loads(texts(sup, "stdout")[0])

    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9"
    assert env["IRON_PROXY_URL"] == "http://127.0.0.1:9"
    # The local token plus the agent id, so the proxy can attribute the agent's calls to it.
    assert env["OPENAI_API_KEY"] == env["ANTHROPIC_API_KEY"] == f"iron-local-token-abcd.{sup.agent_id}"
    assert env["IRON_AGENT_ID"] == sup.agent_id
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["MY_SETTING"] == "42"
    assert env["SERPAPI_API_KEY"] == "tool-key-kept"  # not an LLM provider key: the agent may need it
    assert "127.0.0.1" in env["NO_PROXY"].split(",")  # a corporate proxy must not intercept local calls
    # One Anthropic credential (the local token): the parent's bearer token is gone, and none replaces
    # it (the Anthropic SDK and Claude Code would warn about two).
    for name in ("GEMINI_API_KEY", "IC_TOKEN", "ANTHROPIC_AUTH_TOKEN"):
        assert name not in env
    assert "parent-secret" not in json.dumps(env)


def test_child_env_without_wiring_still_strips_keys() -> None:
    env = child_environment({"OPENAI_API_KEY": "sk-x", "openai_api_key": "sk-y", "PATH": "/bin"}, None, "a1")
    assert env == {"PATH": "/bin", "IRON_AGENT_ID": "a1", "PYTHONUNBUFFERED": "1"}
    assert "sk-" not in repr(WIRING) and "abcd" in repr(WIRING)


async def test_start_without_wiring_fails_clearly(make: Factory) -> None:
    sup = make(wiring=None)
    await sup.start(agent("lines.py"))
    assert sup.state == "failed" and "proxy is not ready" in (sup.reason or "")
    sup.set_wiring(WIRING)
    await sup.start(agent("lines.py", "1"))
    assert await sup.wait() == 0 and texts(sup) == ["line 0"]


# --- command rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "shell"),
    [
        ("python agent.py --model gpt-4o", False),
        ("python -c \"print('a;b|c')\"", False),
        ("node 'my agent.js'", False),
        ("python agent.py | tee log", True),
        ("python agent.py > out.txt", True),
        ("make build && ./agent", True),
        ("python a.py; python b.py", True),
        ("python $AGENT", True),
        ('echo "$HOME"', True),
        ("echo '$HOME'", False),
        ("python *.py", True),
        ("python ~/agent.py", True),
        ("FOO=1 python agent.py", True),
        ("cd sub && python agent.py", True),
        ("source venv/bin/activate", True),
        ("python a\\;b", False),
    ],
)
def test_shell_syntax_rule(command: str, shell: bool) -> None:
    assert needs_shell(command) is shell


def test_command_argv() -> None:
    assert command_argv("node 'my agent.js' --fast") == (["node", "my agent.js", "--fast"], False)
    assert command_argv("a | b") == (["/bin/sh", "-c", "a | b"], True)
    assert command_argv(["python", "x y.py"]) == (["python", "x y.py"], False)
    bad: str | list[str]
    for bad in ("", "   ", [], "python 'unclosed"):
        with pytest.raises(ValueError):
            command_argv(bad)


async def test_shell_command_string_and_unparsable_command(make: Factory) -> None:
    sup = make()
    await sup.start('echo hello && echo "id=$IRON_AGENT_ID" >&2')
    assert await sup.wait() == 0
    assert texts(sup, "stdout") == ["hello"]
    assert texts(sup, "stderr") == [f"id={sup.agent_id}"]
    await sup.start("python 'unclosed")
    assert sup.state == "failed" and "No closing quotation" in (sup.reason or "")


async def test_shell_exit_127_is_explained(make: Factory) -> None:
    sup = make()
    await sup.start("no-such-command-xyz > /dev/null")
    assert await sup.wait() == 127
    assert sup.reason == "crashed (exit code 127: command not found)"


# --- output ---------------------------------------------------------------------------------------


async def test_ten_thousand_lines_in_order_before_exit(make: Factory) -> None:
    events: list[Event] = []
    sup = make(events)
    await sup.start(agent("lines.py", "10000"))
    assert await sup.wait() == 0
    assert texts(sup) == [f"line {i}" for i in range(10_000)]
    seqs = [line.seq for line in sup.output]
    assert seqs == sorted(seqs) and len(set(seqs)) == 10_000
    outputs = [i for i, e in enumerate(events) if isinstance(e, AgentOutput)]
    exited = [i for i, e in enumerate(events) if isinstance(e, AgentStateChanged) and e.state == "exited"]
    assert len(outputs) == 10_000 and len(exited) == 1 and outputs[-1] < exited[0]
    assert all(isinstance(e, AgentOutput) and e.agent_id == sup.agent_id for e in (events[i] for i in outputs))


async def test_stderr_separate_binary_crlf_and_partial_last_lines(make: Factory) -> None:
    sup = make()
    await sup.start(agent("streams.py"))
    assert await sup.wait() == 0
    # (a NUL is escaped for display, like every control character)
    assert texts(sup, "stdout") == ["out 1", "bin \ufffd\ufffd\\x00 end", "crlf", "progress 100%", "out partial"]
    assert texts(sup, "stderr") == ["err 1", "err partial"]
    assert texts(sup)[:2] == ["out 1", "err 1"]


async def test_very_long_line_is_truncated_with_marker(make: Factory) -> None:
    sup = make(max_line_bytes=1000)
    await sup.start(agent("long_line.py", "300000"))
    assert await sup.wait() == 0
    long, after = texts(sup)
    assert long == "x" * 1000 + " … [truncated 299000 bytes]"
    assert after == "after"


async def test_buffer_is_bounded_but_every_line_is_published(make: Factory) -> None:
    events: list[Event] = []
    sup = make(events, buffer_lines=100)
    await sup.start(agent("lines.py", "300"))
    await sup.wait()
    assert texts(sup) == [f"line {i}" for i in range(200, 300)] and sup.dropped_lines == 200
    assert sum(isinstance(e, AgentOutput) for e in events) == 300


def test_line_assembler_edges() -> None:
    la = LineAssembler(max_line_bytes=5)
    assert la.feed(b"ab") == [] and la.feed(b"c\nde") == ["abc"]
    assert la.feed("éé\n".encode()) == ["deé … [truncated 2 bytes]"]  # no half "é" left behind
    assert la.feed(b"1234567") == [] and la.flush() == ["12345 … [truncated 2 bytes]"]
    assert la.flush() == []
    assert LineAssembler(100).feed(b"\r\n\n") == ["", ""]


# --- exits and failures ---------------------------------------------------------------------------


async def test_crash_is_reported_with_its_exit_code(make: Factory) -> None:
    events: list[Event] = []
    sup = make(events)
    await sup.start(AgentPreset(name="crasher", command=agent("exit_with.py", "3")))
    assert await sup.wait() == 3
    assert sup.state == "exited" and sup.exit_code == 3 and sup.reason == "crashed (exit code 3)"
    assert states(events) == ["starting", "running", "exited"]
    last = events[-1]
    assert isinstance(last, AgentStateChanged) and last.exit_code == 3 and last.name == "crasher"
    assert texts(sup) == ["about to exit 3"]


async def test_command_not_found_fails_without_exception(make: Factory) -> None:
    events: list[Event] = []
    sup = make(events)
    await sup.start("definitely-not-a-command-xyz --flag")
    assert sup.state == "failed" and sup.reason == "command not found: definitely-not-a-command-xyz"
    assert await sup.wait() is None and sup.pid is None
    assert states(events) == ["starting", "failed"]


async def test_non_executable_file_and_bad_cwd_fail_clearly(make: Factory, tmp_path: Path) -> None:
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    sup = make()
    await sup.start([str(script)])
    assert sup.state == "failed" and "not executable" in (sup.reason or "")
    await sup.start(AgentPreset(name="x", command=agent("lines.py"), cwd=str(tmp_path / "missing")))
    assert sup.state == "failed" and sup.reason == f"working directory not found: {tmp_path / 'missing'}"


async def test_relative_command_runs_in_preset_cwd(make: Factory, tmp_path: Path) -> None:
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\npwd\n")
    script.chmod(0o755)
    sup = make()
    await sup.start(AgentPreset(name="rel", command="./agent.sh", cwd=str(tmp_path)))
    assert await sup.wait() == 0 and texts(sup) == [str(tmp_path)]


# --- stopping -------------------------------------------------------------------------------------


async def test_stop_terminates_gracefully(make: Factory) -> None:
    events: list[Event] = []
    sup = make(events)
    await sup.start(agent("sleeper.py"))
    await line_starting(sup, "ready")
    pid = sup.pid
    assert pid is not None and sup.state == "running"
    # -15: it ended on SIGTERM; had the 30 s grace been waited out, SIGKILL (-9) would have ended it.
    assert await sup.stop(grace_seconds=30.0) == -15
    assert sup.state == "exited" and sup.reason == "stopped" and not alive(pid)
    assert states(events) == ["starting", "running", "stopping", "exited"]
    assert await sup.stop() == -15  # a no-op now


async def test_agent_ignoring_sigterm_is_killed_after_grace(make: Factory) -> None:
    sup = make()
    await sup.start(agent("sleeper.py", "--ignore-term"))
    await line_starting(sup, "ready")
    pid = sup.pid
    assert pid is not None
    started = time.monotonic()
    assert await sup.stop(grace_seconds=0.4) == -9
    assert time.monotonic() - started >= 0.4  # the grace period was given (a lower bound: load cannot break it)
    assert not alive(pid)
    assert "ignoring SIGTERM" in texts(sup)
    assert sup.reason == "killed: still running 0.4 s after SIGTERM"


async def test_stop_kills_the_whole_process_group(make: Factory, strays: list[int]) -> None:
    sup = make()
    await sup.start(agent("grandchild.py"))
    grandchild = int((await line_starting(sup, "grandchild ")).split()[1])
    strays.append(grandchild)
    await line_starting(sup, "ready")
    assert alive(grandchild)
    await sup.stop()
    assert sup.pid is not None and not alive(sup.pid)
    assert await gone(grandchild, timeout=0.5)  # it ignored SIGTERM, so the group got SIGKILL


async def test_leftovers_of_an_agent_that_exits_are_cleared(make: Factory, strays: list[int]) -> None:
    """A grandchild holding the agent's stdout must neither outlive it nor stall the exit."""
    sup = make()
    await sup.start(agent("grandchild.py", "--exit"))
    # The grandchild lives far longer than this guard: waiting for it would fail here, not pass slowly.
    assert await asyncio.wait_for(sup.wait(), 60) == 0
    grandchild = int(next(t for t in texts(sup) if t.startswith("grandchild ")).split()[1])
    strays.append(grandchild)
    assert await gone(grandchild, timeout=0.5)


async def test_close_leaves_no_process(make: Factory) -> None:
    sup = make()
    await sup.start(agent("sleeper.py", "--ignore-term"))
    await line_starting(sup, "ready")
    pid = sup.pid
    assert pid is not None
    await sup.close()
    assert not alive(pid) and sup.state == "exited"
    await sup.close()  # idempotent
    with pytest.raises(AgentError):
        await sup.start(agent("sleeper.py"))


async def test_idle_supervisor_noops() -> None:
    sup = AgentSupervisor(publish=lambda e: None, clock=FixedClock(), wiring=WIRING)
    assert sup.state == "idle" and await sup.wait() is None and await sup.stop() is None
    with pytest.raises(AgentError, match="no agent configured"):
        await sup.start()
    with pytest.raises(AgentError, match="no agent to restart"):
        await sup.restart()
    await sup.close()


# --- starting, restarting -------------------------------------------------------------------------


async def test_start_while_running_is_refused(make: Factory) -> None:
    sup = make()
    await sup.start(agent("sleeper.py"))
    pid, agent_id = sup.pid, sup.agent_id
    with pytest.raises(AgentError, match="an agent is already running"):
        await sup.start(agent("lines.py"))
    assert sup.state == "running" and (sup.pid, sup.agent_id) == (pid, agent_id)


async def test_presets_by_name_and_default(make: Factory) -> None:
    ids = iter(["agent_001", "agent_002"])
    presets = [AgentPreset(name="one", command=agent("lines.py", "1")), AgentPreset(name="two", command=agent("lines.py", "2"))]
    sup = make(presets=presets, agent_id_factory=lambda: next(ids))
    await sup.start("two")
    assert await sup.wait() == 0 and sup.current is presets[1] and sup.agent_id == "agent_001"
    await sup.start()  # the last one run
    assert await sup.wait() == 0 and sup.current is presets[1] and sup.agent_id == "agent_002"
    assert [(line.agent_id, line.text) for line in sup.output][-2:] == [("agent_002", "line 0"), ("agent_002", "line 1")]


async def test_restart_gives_a_new_pid_and_agent_id(make: Factory) -> None:
    sup = make()
    await sup.start(agent("sleeper.py"))
    await line_starting(sup, "ready")
    old_pid, old_id = sup.pid, sup.agent_id
    assert old_pid is not None
    await sup.restart()
    assert sup.state == "running"
    assert sup.pid not in (None, old_pid) and sup.agent_id != old_id
    assert not alive(old_pid)


async def test_restart_on_crash_backs_off_up_to_the_limit(make: Factory) -> None:
    delays: list[float] = []

    async def fast_sleep(seconds: float) -> None:
        delays.append(seconds)

    events: list[Event] = []
    sup = make(events, restart_backoff=0.5, sleep=fast_sleep)
    preset = AgentPreset(name="flaky", command=agent("exit_with.py", "2"), restart_on_crash=True, max_restarts=2)
    await sup.start(preset)
    assert await sup.wait() == 2
    assert delays == [0.5, 1.0]
    assert sup.restarts == 2 and sup.state == "exited" and sup.reason == "crashed (exit code 2)"
    runs = [e for e in events if isinstance(e, AgentStateChanged) and e.state == "running"]
    assert len(runs) == 3 and len({e.agent_id for e in runs}) == 3
    assert [e.restarts for e in runs] == [0, 1, 2]


async def test_stop_during_crash_backoff_cancels_the_restart(make: Factory) -> None:
    sup = make(restart_backoff=30.0)
    preset = AgentPreset(name="flaky", command=agent("exit_with.py", "1"), restart_on_crash=True)
    await sup.start(preset)
    deadline = time.monotonic() + 5
    while sup.state != "exited" and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert "restarting in 30 s (1/3)" in (sup.reason or "") and sup.is_active
    assert await sup.stop() == 1
    assert await asyncio.wait_for(sup.wait(), 1) == 1 and not sup.is_active and sup.restarts == 0


# --- the wiring end to end: the official SDK with nothing but the injected environment ----------


async def test_openai_sdk_agent_reaches_the_proxy_with_the_local_token(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-key-must-not-be-used")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # must be overridden (closed port)
    seen: list[tuple[str, str]] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append((request.headers.get("Authorization", ""), body["model"]))
        if not request.headers.get("Authorization", "").startswith(f"Bearer {WIRING.token}."):
            return web.json_response({"error": {"message": "bad token", "type": "auth"}}, status=401)
        return web.json_response({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "hello from the proxy"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5},
        })

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        sup = make()
        sup.set_wiring(ProxyWiring(base_url=f"http://127.0.0.1:{port}", token=WIRING.token))
        await sup.start(agent("openai_agent.py"))
        code = await asyncio.wait_for(sup.wait(), 30)
        assert code == 0, texts(sup)
        assert texts(sup, "stdout") == ["reply: hello from the proxy"]
        assert seen == [(f"Bearer {WIRING.token}.{sup.agent_id}", "gpt-4o-mini")]
    finally:
        await runner.cleanup()


async def test_stop_while_a_crash_is_winding_up_prevents_the_restart(make: Factory) -> None:
    # The agent exits 3 at once but a background child keeps its output open for a moment: stop()
    # arrives while the crash is still being wound up, and must win over restart_on_crash.
    sup = make(restart_backoff=0.2)
    preset = AgentPreset(name="flaky", command=["/bin/sh", "-c", "(sleep 0.4) & exit 3"],
                         restart_on_crash=True, max_restarts=3)
    await sup.start(preset)
    await asyncio.sleep(0.05)
    assert await sup.stop() == 3
    await asyncio.sleep(0.8)
    assert sup.state == "exited" and sup.restarts == 0


def test_codex_preset_is_wired_to_the_proxy_at_launch() -> None:
    from iron_tui.core.agent_env import ProxyWiring, agent_arguments
    from iron_tui.core.known_agents import KNOWN_AGENTS

    codex = next(a for a in KNOWN_AGENTS if a.program == "codex")
    preset = codex.preset("fix the tests", cwd="/tmp")
    argv, via_shell = command_argv(preset.command)
    assert argv == ["codex", "exec", "--skip-git-repo-check", "fix the tests"] and not via_shell
    wiring = ProxyWiring("http://127.0.0.1:8478", "tok")
    assert agent_arguments(argv, wiring) == [
        "codex", "-c", 'openai_base_url="http://127.0.0.1:8478/v1"', "exec", "--skip-git-repo-check", "fix the tests"]
    # The user's own base URL, and other programs, are left alone.
    own = ["/usr/bin/codex", "-c", "openai_base_url=http://x/v1", "exec", "t"]
    assert agent_arguments(own, wiring) == own
    assert agent_arguments(["python", "codex"], wiring) == ["python", "codex"]


def test_claude_code_preset_is_wired_to_the_proxy_at_launch() -> None:
    from iron_tui.core.agent_env import agent_arguments
    from iron_tui.core.known_agents import KNOWN_AGENTS

    claude = next(a for a in KNOWN_AGENTS if a.program == "claude")
    argv, via_shell = command_argv(claude.preset("explain main.py").command)
    assert argv == ["claude", "-p", "explain main.py"] and not via_shell
    wired = agent_arguments(argv, ProxyWiring("http://127.0.0.1:8478", "tok"))
    assert wired[:2] == ["claude", "--settings"] and wired[3:] == argv[1:]
    # Outranks a settings file that points Claude Code at another gateway or at Bedrock/Vertex/Foundry;
    # only non-secret values go on the command line.
    assert json.loads(wired[2]) == {"env": {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:8478", "CLAUDE_CODE_USE_BEDROCK": "0",
        "CLAUDE_CODE_USE_VERTEX": "0", "CLAUDE_CODE_USE_FOUNDRY": "0"}}
    assert "tok" not in wired[2]
    own = ["/opt/bin/claude", "--settings", "/etc/my.json", "-p", "x"]
    assert agent_arguments(own, ProxyWiring("http://127.0.0.1:8478", "tok")) == own


def test_claude_code_stays_on_the_proxy_and_off_the_network() -> None:
    wiring = ProxyWiring("http://127.0.0.1:8478", "tok")
    base = {"CLAUDE_CODE_USE_BEDROCK": "1", "CLAUDE_CODE_USE_VERTEX": "1", "CLAUDE_CODE_USE_FOUNDRY": "1",
            "AWS_REGION": "us-east-1", "PATH": "/bin"}
    env = child_environment(base, wiring, "a1")
    assert not {"CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY"} & env.keys()
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1" and env["AWS_REGION"] == "us-east-1"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8478" and env["ANTHROPIC_API_KEY"] == "tok.a1"
    # The user's own choice, and a preset's, win.
    assert child_environment({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "0"}, wiring, "a1")[
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "0"
    assert child_environment({}, wiring, "a1", {"CLAUDE_CODE_USE_VERTEX": "1"})["CLAUDE_CODE_USE_VERTEX"] == "1"

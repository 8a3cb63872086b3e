"""Ctrl-C twice exits at once with the outbox intact, headless and in the dashboard (real processes; the
dashboard on a pseudo-terminal, where the first Ctrl-C is a key press and the second, once the terminal
is back to normal, a SIGINT). The control server never answers, so a graceful stop would wait for the
final analytics flush (600 s here)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from iron_tui.sim import ProviderSim
from tests.conftest import OPENAI_KEY

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "Zq8v-2LmRtY7wK9pXc4NbA6d"
CALLS = 3


@pytest.fixture
async def silent_control() -> AsyncIterator[str]:
    """A control server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    for w in held:
        w.close()
    server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _args(sim: ProviderSim, control: str, data: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "iron_tui", "--port", str(port), "--openai-key", OPENAI_KEY,
            "--openai-base-url", sim.url, "--server-url", control, "--token", TOKEN, "--data-dir", str(data),
            "--flush-timeout", "600"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.update(PYTHONPATH=str(ROOT), IRON_CONFIG=str(tmp_path / "none.toml"), TERM="xterm-256color",
               COLUMNS="120", LINES="40")
    return env


async def _calls(port: int) -> None:
    """Wait until the proxy serves, then make CALLS calls (each one an analytics event in the outbox)."""
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as s:
        async with asyncio.timeout(60):
            while True:
                try:
                    async with s.get(url + "/health") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        for _ in range(CALLS):
            async with s.post(url + "/v1/chat/completions", headers={"authorization": f"Bearer {TOKEN}"},
                              json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}) as r:
                assert r.status == 200


def _outbox_intact(data: Path) -> None:
    db = sqlite3.connect(data / "outbox.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM outbox").fetchone() == (CALLS,)
    finally:
        db.close()


async def _refused(port: int) -> None:
    """Until the port stops accepting: the graceful stop has begun."""
    async with asyncio.timeout(60):
        while True:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
            except OSError:
                return
            await asyncio.sleep(0.05)


async def test_headless_ctrl_c_twice(sim: ProviderSim, silent_control: str, tmp_path: Path) -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(*_args(sim, silent_control, tmp_path / "data", port), "--no-ui",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env=_env(tmp_path), cwd=tmp_path)
    try:
        await _calls(port)
        proc.send_signal(signal.SIGINT)
        await _refused(port)  # stopping gracefully, and now waiting for the flush
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):  # a hang guard: the flush alone would take 600 s
            _, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 130 and b"forced exit" in err
    _outbox_intact(tmp_path / "data")


async def test_dashboard_ctrl_c_twice(sim: ProviderSim, silent_control: str, tmp_path: Path) -> None:
    port = _free_port()
    args, env = _args(sim, silent_control, tmp_path / "data", port), _env(tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the dashboard, on the pseudo-terminal as its controlling terminal
        os.chdir(tmp_path)
        os.execve(args[0], args, env)
    screen = bytearray()
    loop = asyncio.get_running_loop()
    loop.add_reader(fd, lambda: screen.extend(_read(fd)))  # keep draining: a full pty would block the app

    async def shown(text: bytes) -> None:
        async with asyncio.timeout(60):
            while text not in screen:
                await asyncio.sleep(0.05)

    try:
        await _calls(port)
        os.write(fd, b"\x03")  # Ctrl-C, a key press to the dashboard: leave gracefully
        await shown(b"iron-tui: stopping")  # the terminal is back; the final flush is waiting
        os.write(fd, b"\x03")  # Ctrl-C again, now SIGINT from the terminal: quit at once
        async with asyncio.timeout(30):  # a hang guard: the flush alone would take 600 s
            while (status := os.waitpid(pid, os.WNOHANG))[0] == 0:
                await asyncio.sleep(0.05)
    finally:
        loop.remove_reader(fd)
        screen.extend(_drain(fd))  # what the child wrote last may not have been read yet
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status[1]) == 130, bytes(screen[-2000:])
    assert b"forced exit" in screen
    _outbox_intact(tmp_path / "data")


def _drain(fd: int) -> bytes:
    """Everything still buffered in the terminal, without blocking."""
    os.set_blocking(fd, False)
    out = bytearray()
    while chunk := _read(fd):
        out.extend(chunk)
    return bytes(out)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # the child closed the terminal
        return b""

"""The agent's process group: starting it in its own session, signalling and watching the group, its
exit code and the reasons a start or a run ended, in the user's terms. POSIX only (process groups)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
from collections.abc import Sequence

_POLL = 0.02  # seconds between "is the group gone yet?" checks while stopping


async def exec_agent(
    argv: list[str], cwd: str | None, env: dict[str, str]
) -> tuple[asyncio.subprocess.Process | None, str]:
    """Start the agent in its own session, stdin from /dev/null, both pipes captured; else the reason."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        return None, _spawn_error(argv[0], cwd, exc)
    except (ValueError, TypeError) as exc:  # e.g. "embedded null byte" in an argument
        return None, f"cannot start {argv[0]}: {exc}"
    return proc, ""


async def terminate_group(proc: asyncio.subprocess.Process, grace: float) -> bool:
    """SIGTERM the agent's process group, SIGKILL it after `grace`; True when the agent itself was still
    running at the SIGKILL."""
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, grace)
    while (proc.returncode is None or group_alive(pgid)) and loop.time() < deadline:
        await asyncio.sleep(_POLL)
    if proc.returncode is None or group_alive(pgid):
        killed = proc.returncode is None
        _signal_group(pgid, signal.SIGKILL)
        return killed
    return False


def exit_reason(code: int, *, stopped: bool, killed_after: float | None, via_shell: bool) -> str:
    if stopped:
        if killed_after is not None:
            return f"killed: still running {killed_after:g} s after SIGTERM"
        return "stopped"
    if code == 0:
        return "finished (exit code 0)"
    if code < 0:
        return f"killed by {_signal_name(-code)}"
    if via_shell and code == 127:
        return "crashed (exit code 127: command not found)"
    if via_shell and code == 126:
        return "crashed (exit code 126: command not executable)"
    return f"crashed (exit code {code})"


async def wait_exit_code(proc: asyncio.subprocess.Process, waiter: asyncio.Future[int]) -> int:
    """The agent's exit code as soon as it exits.

    `Process.wait()` alone is not enough: on Python 3.11 it also waits for the pipes to close,
    which never happens while a grandchild holds them, so the exit status is polled as well.
    """
    while proc.returncode is None and not waiter.done():
        await asyncio.wait({waiter}, timeout=0.05)
    return proc.returncode if proc.returncode is not None else waiter.result()


async def wait_some(tasks: Sequence[asyncio.Task[None]], timeout: float) -> list[asyncio.Task[None]]:
    """Wait up to `timeout` for `tasks`; return those still running."""
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    return list(pending)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """Does any live (non-zombie) process remain in group `pgid`?"""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg also succeeds for zombies, which an init that never reaps (containers) leaves
    # behind forever; on Linux, look closer so we do not wait out the grace period for nothing.
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _spawn_error(program: str, cwd: str | None, exc: OSError) -> str:
    """A one-line reason for a failed exec, in the user's terms."""
    path = program if os.path.isabs(program) or cwd is None else os.path.join(cwd, program)
    if isinstance(exc, FileNotFoundError):
        if os.sep in program and os.path.exists(path):
            return f"cannot run {program}: its interpreter (the #! line) was not found"
        return f"command not found: {program}"
    if isinstance(exc, PermissionError):
        if os.path.isdir(path):
            return f"cannot run {program}: it is a directory"
        return f"permission denied: {program} is not executable (chmod +x, or run it via its interpreter)"
    if exc.errno == errno.ENOEXEC:
        return f"cannot run {program}: not a program (a script needs a #! line)"
    return f"cannot start {program}: {exc.strerror or exc}"

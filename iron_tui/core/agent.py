"""The agent supervisor: launch the user's agent with the proxy wired in, watch it, stop it.

One agent at a time. Lifecycle: idle → starting → running → stopping → exited | failed, with an
`AgentStateChanged` on every transition and an `AgentOutput` per captured line.

- The agent runs in its own session/process group (`start_new_session=True`), with stdin from
  /dev/null and no controlling terminal, so it can never read or scribble on the TUI's terminal,
  and stopping it signals the whole group: SIGTERM, then SIGKILL after the grace period.
- When the agent exits on its own, anything still running in its group is stopped the same way:
  the agent's helpers never outlive it unseen.
- All output is read (both pipes to EOF) before `exited` is published, so nothing is lost.
- A crash is a non-zero exit that `stop()` did not ask for. With `restart_on_crash` the preset is
  relaunched after `restart_backoff * 2**n` seconds, at most `max_restarts` times in a row;
  `restarts` counts them and an explicit `start()`/`restart()` resets it.
- Exit codes are asyncio's: negative for "killed by signal N". POSIX only (process groups).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from iron_tui.core.agent_env import (
    ProxyWiring,
    agent_arguments,
    child_environment,
    command_argv,
    default_cwd,
    describe_command,
)
from iron_tui.core.agent_output import LineAssembler
from iron_tui.core.clock import Clock
from iron_tui.core.events import AgentOutput, AgentState, AgentStateChanged, Event
from iron_tui.core.safe_text import clean_text

__all__ = ["AgentError", "AgentPreset", "AgentSupervisor", "OutputLine", "ProxyWiring"]

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_POLL = 0.02  # seconds between "is the group gone yet?" checks while stopping


class AgentError(Exception):
    """A request the supervisor refuses (already running, nothing configured, closed)."""


@dataclass(frozen=True)
class AgentPreset:
    name: str
    command: list[str] | str
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    restart_on_crash: bool = False
    max_restarts: int = 3


@dataclass(frozen=True, slots=True)
class OutputLine:
    seq: int
    stream: Literal["stdout", "stderr"]
    text: str
    timestamp: float
    agent_id: str = ""  # which run produced it (the buffer spans restarts)


def _default_agent_id() -> str:
    return "agent_" + secrets.token_hex(4)


class AgentSupervisor:
    def __init__(
        self,
        *,
        publish: Callable[[Event], None],
        clock: Clock,
        wiring: ProxyWiring | None = None,
        presets: Sequence[AgentPreset] = (),
        grace_seconds: float = 5.0,
        buffer_lines: int = 20_000,
        max_line_bytes: int = 16_384,
        agent_id_factory: Callable[[], str] | None = None,
        restart_backoff: float = 0.5,
        drain_seconds: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        secrets: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self._publish = publish
        self._clock = clock
        self._wiring = wiring
        self.presets: list[AgentPreset] = list(presets)
        self.grace_seconds = grace_seconds
        self._max_line_bytes = max_line_bytes
        self._new_id = agent_id_factory or _default_agent_id
        self._restart_backoff = restart_backoff
        self._drain_seconds = drain_seconds  # how long to wait for pipes to close after an exit
        self._sleep = sleep
        self._secrets = secrets  # the provider keys now configured: no variable holding one is inherited

        self.state: AgentState = "idle"
        self.agent_id: str | None = None
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.reason: str | None = None
        self.restarts = 0
        self.current: AgentPreset | None = None
        self._output: deque[OutputLine] = deque(maxlen=max(1, buffer_lines))
        self.dropped_lines = 0
        self._seq = 0

        self._proc: asyncio.subprocess.Process | None = None
        self._monitor_task: asyncio.Task[None] | None = None
        self._restart_task: asyncio.Task[None] | None = None
        self._spawned = asyncio.Event()
        self._spawned.set()
        self._done = asyncio.Event()  # set whenever no agent runs and no restart is pending
        self._done.set()
        self._stop_requested = False
        self._no_restart = False  # stop() arrived while a crashed agent was still winding up
        self._killed_after: float | None = None
        self._via_shell = False
        self._closed = False

    # --- public API -----------------------------------------------------------------------------

    @property
    def output(self) -> Sequence[OutputLine]:
        return self._output

    @property
    def wiring(self) -> ProxyWiring | None:
        return self._wiring

    def set_wiring(self, wiring: ProxyWiring) -> None:
        """Set once the proxy port is known; applies to the next start."""
        self._wiring = wiring

    @property
    def is_active(self) -> bool:
        """An agent process exists or is about to (including a pending crash restart)."""
        return self.state in ("starting", "running", "stopping") or self._restart_pending

    def clear_output(self) -> None:
        self._output.clear()
        self.dropped_lines = 0

    def child_env(self, agent_id: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return child_environment(os.environ, self._wiring, agent_id, extra, secrets=self._secrets())

    async def start(self, preset: AgentPreset | str | list[str] | None = None) -> None:
        """Launch an agent: a preset, a preset's name, an argv list, a command string, or None
        (the last agent run, else the first preset). Returns once it is running or has failed.

        Raises AgentError when an agent is already running or nothing is configured; a command
        that cannot start is *not* an exception: the state becomes `failed` with a reason.
        An explicit start during a crash back-off replaces the pending automatic restart.
        """
        if self._closed:
            raise AgentError("the agent supervisor is shut down")
        if self.state in ("starting", "running", "stopping"):
            raise AgentError("an agent is already running")
        resolved = self._resolve(preset)
        self._cancel_pending_restart()
        self.restarts = 0
        await self._launch(resolved)

    async def stop(self, grace_seconds: float | None = None) -> int | None:
        """SIGTERM the agent's process group, SIGKILL it after the grace period; returns the exit
        code. Also cancels a pending crash restart. A no-op (returning the last exit code) when
        nothing runs."""
        grace = self.grace_seconds if grace_seconds is None else grace_seconds
        if self.state == "starting":
            await self._spawned.wait()
        if self._cancel_pending_restart():
            self._done.set()
        proc, monitor = self._proc, self._monitor_task
        if proc is None or monitor is None:
            return self.exit_code
        if self.state == "stopping" or proc.returncode is not None:
            # Already being stopped, or it exited on its own and is being wound up: just wait, and
            # make sure a crash seen meanwhile does not schedule a restart the caller asked against.
            self._no_restart = True
            await asyncio.shield(monitor)
            if self._cancel_pending_restart():
                self._done.set()
            return self.exit_code
        self._stop_requested = True
        self._set_state("stopping")
        await self._terminate_group(proc, grace, count_kill=True)
        await asyncio.shield(monitor)
        return self.exit_code

    async def restart(self) -> None:
        """Stop the current agent (if running) and start the same preset again with a new id."""
        if self._closed:
            raise AgentError("the agent supervisor is shut down")
        preset = self.current
        if preset is None:
            raise AgentError("no agent to restart")
        await self.stop()
        if self.state in ("starting", "running", "stopping"):
            raise AgentError("an agent is already running")
        self._cancel_pending_restart()
        self.restarts = 0
        await self._launch(preset)

    async def wait(self) -> int | None:
        """Until the agent has finally exited (after any automatic restarts); its exit code, or
        None when it failed to start / never ran."""
        await self._done.wait()
        return None if self.state == "failed" else self.exit_code

    async def close(self) -> None:
        """Engine shutdown: stop the agent and anything left in its process group. Idempotent."""
        self._closed = True
        if self._cancel_pending_restart():
            self._done.set()
        # stop() waits for the monitor, which also clears out the agent's process group.
        await self.stop()

    # --- launching --------------------------------------------------------------------------------

    def _resolve(self, preset: AgentPreset | str | list[str] | None) -> AgentPreset:
        if isinstance(preset, AgentPreset):
            return preset
        if preset is None:
            chosen = self.current or (self.presets[0] if self.presets else None)
            if chosen is None:
                raise AgentError("no agent configured: give a command or define an agent preset")
            return chosen
        if isinstance(preset, str):
            for p in self.presets:
                if p.name == preset:
                    return p
        return AgentPreset(name=describe_command(preset), command=preset)

    async def _launch(self, preset: AgentPreset) -> None:
        agent_id = self._new_id()
        self.current = preset
        self.agent_id = agent_id
        self.pid = self.exit_code = None
        self.reason = None
        self._stop_requested = False
        self._no_restart = False
        self._killed_after = None
        self._done.clear()
        self._spawned.clear()
        self._set_state("starting")
        try:
            proc, problem = await self._spawn(preset, agent_id)
        except asyncio.CancelledError:
            self.reason = "start cancelled"
            self._set_state("failed")
            self._done.set()
            raise
        finally:
            self._spawned.set()
        if proc is None:
            self.reason = problem
            self._set_state("failed")
            self._done.set()
            return
        assert proc.stdout is not None and proc.stderr is not None
        self._proc = proc
        self.pid = proc.pid
        self._set_state("running")
        readers = [
            asyncio.create_task(self._read(proc.stdout, "stdout", agent_id)),
            asyncio.create_task(self._read(proc.stderr, "stderr", agent_id)),
        ]
        self._monitor_task = asyncio.create_task(self._monitor(proc, readers, preset))

    async def _spawn(
        self, preset: AgentPreset, agent_id: str
    ) -> tuple[asyncio.subprocess.Process | None, str]:
        if self._wiring is None:
            return None, "the proxy is not ready yet (no address to give the agent)"
        try:
            argv, self._via_shell = command_argv(preset.command)
        except ValueError as exc:
            return None, str(exc)
        if not self._via_shell:
            argv = agent_arguments(argv, self._wiring)
        cwd = default_cwd(preset.cwd)
        if cwd is not None and not os.path.isdir(cwd):
            return None, f"working directory not found: {cwd}"
        env = self.child_env(agent_id, preset.env)
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

    # --- watching ---------------------------------------------------------------------------------

    async def _read(self, stream: asyncio.StreamReader, name: Literal["stdout", "stderr"], agent_id: str) -> None:
        lines = LineAssembler(self._max_line_bytes)
        try:
            while chunk := await stream.read(_CHUNK):
                for text in lines.feed(chunk):
                    self._emit_line(agent_id, name, text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken pipe must not take the supervisor down
            log.debug("agent %s: reading %s failed: %s", agent_id, name, exc)
        finally:
            for text in lines.flush():  # a last line without a newline still counts
                self._emit_line(agent_id, name, text)

    def _emit_line(self, agent_id: str, stream: Literal["stdout", "stderr"], text: str) -> None:
        # Before anything sees the line (buffer, bus, log, feed): an agent may print a key it found, or
        # escape sequences that would drive the user's terminal.
        text = clean_text(text, 4 * self._max_line_bytes, keep_tabs=True)
        self._seq += 1
        ts = self._clock.now()
        if len(self._output) == self._output.maxlen:
            self.dropped_lines += 1
        self._output.append(OutputLine(self._seq, stream, text, ts, agent_id))
        self._emit(AgentOutput(timestamp=ts, agent_id=agent_id, stream=stream, line=text, seq=self._seq))

    async def _monitor(
        self, proc: asyncio.subprocess.Process, readers: list[asyncio.Task[None]], preset: AgentPreset
    ) -> None:
        waiter = asyncio.ensure_future(proc.wait())
        code = await _exit_code(proc, waiter)
        pending = await _wait_some(readers, self._drain_seconds)
        if not self._stop_requested and _group_alive(proc.pid):
            # The agent is gone but its helpers are not; they go with it (and release our pipes).
            await self._terminate_group(proc, self.grace_seconds, count_kill=False)
        if pending:
            pending = await _wait_some(pending, self._drain_seconds)
            for task in pending:  # held open by a process outside the group: stop waiting
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if not waiter.done():
            waiter.cancel()  # a pipe is still held open elsewhere; the exit code is all we need
        self._proc = None
        self.exit_code = code
        crashed = code != 0 and not self._stop_requested
        reason = self._exit_reason(code)
        delay: float | None = None
        if (crashed and preset.restart_on_crash and self.restarts < preset.max_restarts and not self._closed
                and not self._no_restart):
            delay = self._restart_backoff * 2**self.restarts
            reason += f"; restarting in {delay:g} s ({self.restarts + 1}/{preset.max_restarts})"
        self.reason = reason
        self._set_state("exited")
        if delay is None:
            self._done.set()
        else:
            self._restart_task = asyncio.create_task(self._restart_later(preset, delay))

    def _exit_reason(self, code: int) -> str:
        if self._stop_requested:
            if self._killed_after is not None:
                return f"killed: still running {self._killed_after:g} s after SIGTERM"
            return "stopped"
        if code == 0:
            return "finished (exit code 0)"
        if code < 0:
            return f"killed by {_signal_name(-code)}"
        if self._via_shell and code == 127:
            return "crashed (exit code 127: command not found)"
        if self._via_shell and code == 126:
            return "crashed (exit code 126: command not executable)"
        return f"crashed (exit code {code})"

    async def _restart_later(self, preset: AgentPreset, delay: float) -> None:
        await self._sleep(delay)
        self._restart_task = None  # from here on this is a normal launch that stop() can stop
        self.restarts += 1
        await self._launch(preset)

    @property
    def _restart_pending(self) -> bool:
        return self._restart_task is not None and not self._restart_task.done()

    def _cancel_pending_restart(self) -> bool:
        task, self._restart_task = self._restart_task, None
        if task is None or task.done():
            return False
        task.cancel()
        return True

    # --- stopping ---------------------------------------------------------------------------------

    async def _terminate_group(self, proc: asyncio.subprocess.Process, grace: float, *, count_kill: bool) -> None:
        pgid = proc.pid
        _signal_group(pgid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, grace)
        while (proc.returncode is None or _group_alive(pgid)) and loop.time() < deadline:
            await asyncio.sleep(_POLL)
        if proc.returncode is None or _group_alive(pgid):
            if count_kill and proc.returncode is None:
                self._killed_after = grace
            _signal_group(pgid, signal.SIGKILL)

    # --- events -----------------------------------------------------------------------------------

    def _set_state(self, state: AgentState) -> None:
        self.state = state
        self._emit(
            AgentStateChanged(
                timestamp=self._clock.now(),
                agent_id=self.agent_id or "",
                state=state,
                name=self.current.name if self.current else None,
                pid=self.pid,
                exit_code=self.exit_code,
                reason=self.reason,
                restarts=self.restarts,
            )
        )

    def _emit(self, event: Event) -> None:
        try:
            self._publish(event)
        except Exception:  # a faulty subscriber must not stall the pipes (the agent would block)
            log.exception("publishing an agent event failed")


# --- process helpers ----------------------------------------------------------------------------


async def _exit_code(proc: asyncio.subprocess.Process, waiter: asyncio.Future[int]) -> int:
    """The agent's exit code as soon as it exits.

    `Process.wait()` alone is not enough: on Python 3.11 it also waits for the pipes to close,
    which never happens while a grandchild holds them, so the exit status is polled as well.
    """
    while proc.returncode is None and not waiter.done():
        await asyncio.wait({waiter}, timeout=0.05)
    return proc.returncode if proc.returncode is not None else waiter.result()


async def _wait_some(tasks: Sequence[asyncio.Task[None]], timeout: float) -> list[asyncio.Task[None]]:
    """Wait up to `timeout` for `tasks`; return those still running."""
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    return list(pending)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
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

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

The process group itself (exec, signals, exit reasons) is in agent_process.py, output capture in
agent_output.py, the child's environment and arguments in agent_env.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from iron_tui.core.agent_env import (
    ProxyWiring,
    agent_arguments,
    child_environment,
    command_argv,
    default_cwd,
    describe_command,
)
from iron_tui.core.agent_output import OutputCapture, OutputLine
from iron_tui.core.agent_process import (
    exec_agent,
    exit_reason,
    group_alive,
    terminate_group,
    wait_exit_code,
    wait_some,
)
from iron_tui.core.clock import Clock
from iron_tui.core.events import AgentState, AgentStateChanged, Event

__all__ = ["AgentError", "AgentPreset", "AgentSupervisor", "OutputLine", "ProxyWiring"]

log = logging.getLogger(__name__)


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
        self._capture = OutputCapture(clock=clock, emit=self._emit, buffer_lines=buffer_lines,
                                      max_line_bytes=max_line_bytes)

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
        return self._capture.lines

    @property
    def dropped_lines(self) -> int:
        """Lines the bounded buffer let go (the bus still carried them)."""
        return self._capture.dropped_lines

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
        self._capture.clear()

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
            asyncio.create_task(self._capture.read(proc.stdout, "stdout", agent_id)),
            asyncio.create_task(self._capture.read(proc.stderr, "stderr", agent_id)),
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
        return await exec_agent(argv, cwd, env)

    # --- watching ---------------------------------------------------------------------------------

    async def _monitor(
        self, proc: asyncio.subprocess.Process, readers: list[asyncio.Task[None]], preset: AgentPreset
    ) -> None:
        waiter = asyncio.ensure_future(proc.wait())
        code = await wait_exit_code(proc, waiter)
        pending = await wait_some(readers, self._drain_seconds)
        if not self._stop_requested and group_alive(proc.pid):
            # The agent is gone but its helpers are not; they go with it (and release our pipes).
            await self._terminate_group(proc, self.grace_seconds, count_kill=False)
        if pending:
            pending = await wait_some(pending, self._drain_seconds)
            for task in pending:  # held open by a process outside the group: stop waiting
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if not waiter.done():
            waiter.cancel()  # a pipe is still held open elsewhere; the exit code is all we need
        self._proc = None
        self.exit_code = code
        crashed = code != 0 and not self._stop_requested
        reason = exit_reason(code, stopped=self._stop_requested, killed_after=self._killed_after,
                             via_shell=self._via_shell)
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
        if await terminate_group(proc, grace) and count_kill:
            self._killed_after = grace

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

"""The exec runner: one plain ``airflow ...`` subprocess per command, owned from start to reap."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress

from .base import Chunk, Command, RunState, Stream

CHUNK_BYTES = 64 * 1024
#: After the command exits and its group is killed, how long the pipes may take to close.
DRAIN_S = 2.0
#: Every process the gateway starts carries this variable, so anything it owns can be found and checked.
OWNER_ENV = "AIRFLOW_REST_GATEWAY_OWNER"


class RunnerUnavailable(Exception):
    """The command could not be started at all (no such executable, no permission)."""


def signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class ExecRun:
    """A running process group: stdout and stderr pumped concurrently into one bounded queue.

    The queue is bounded on purpose: a slow consumer slows the command down (pipe backpressure)
    instead of growing the gateway's memory.
    """

    def __init__(self, proc: asyncio.subprocess.Process, timeout_s: float, kill_grace_s: float) -> None:
        self._proc = proc
        self._pgid = proc.pid  # start_new_session: the child leads its own group
        self._grace_s = kill_grace_s
        self._started = time.monotonic()
        self._queue: asyncio.Queue[Chunk | None] = asyncio.Queue(maxsize=16)
        self._reading: dict[Stream, bool] = {"stdout": False, "stderr": False}
        self._stopped_as: RunState | None = None
        self.state = RunState.RUNNING
        self.exit_code: int | None = None
        self.duration_s = 0.0
        assert proc.stdout is not None and proc.stderr is not None
        self._pumps = {
            "stdout": asyncio.create_task(self._pump(proc.stdout, "stdout")),
            "stderr": asyncio.create_task(self._pump(proc.stderr, "stderr")),
        }
        self._exit = asyncio.ensure_future(self._wait_exit())
        self._watcher = asyncio.create_task(self._watch(timeout_s))

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def output(self) -> AsyncIterator[Chunk]:
        open_streams = 2
        while open_streams:
            item = await self._queue.get()
            if item is None:
                open_streams -= 1
            else:
                yield item
        await self._watcher

    async def _pump(self, reader: asyncio.StreamReader, stream: Stream) -> None:
        while True:
            self._reading[stream] = True
            data = await reader.read(CHUNK_BYTES)
            self._reading[stream] = False
            if not data:
                break
            await self._queue.put(Chunk(stream, data))
        await self._queue.put(None)

    async def _wait_exit(self) -> None:
        """Until the command itself exits (and is reaped).

        Not ``proc.wait()``: on Python 3.11 that also waits for every holder of the pipes, so a
        grandchild keeping stdout open would hide the exit (cpython#119710). A pidfd says when the
        process ends; the loop's child watcher reaps it and sets ``returncode`` right after.
        """
        try:
            pidfd = os.pidfd_open(self._proc.pid)
        except ProcessLookupError:
            pidfd = None
        if pidfd is not None:
            loop = asyncio.get_running_loop()
            readable = loop.create_future()
            loop.add_reader(pidfd, lambda: readable.done() or readable.set_result(None))
            try:
                await readable
            finally:
                loop.remove_reader(pidfd)
                os.close(pidfd)
        while self._proc.returncode is None:  # noqa: ASYNC110 - the watcher reaps within a few ms of the pidfd
            await asyncio.sleep(0.005)

    async def _watch(self, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._exit), timeout_s)
        except TimeoutError:
            self._stopped_as = RunState.TIMED_OUT
            await self._stop_group()
        # The command is over; whatever is left in its group is an orphan we own.
        signal_group(self._pgid, signal.SIGKILL)
        self._finish()
        _, pending = await asyncio.wait(self._pumps.values(), timeout=DRAIN_S)
        for stream, task in self._pumps.items():
            # Still blocked on a pipe a runaway (that left our group) holds open: give up on it.
            if task in pending and self._reading[stream]:
                task.cancel()
                await self._queue.put(None)

    async def _stop_group(self) -> None:
        signal_group(self._pgid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._exit), self._grace_s)
        except TimeoutError:
            signal_group(self._pgid, signal.SIGKILL)
            await self._exit

    def _finish(self) -> None:
        if self.exit_code is not None:
            return
        self.exit_code = self._proc.returncode
        self.duration_s = time.monotonic() - self._started
        if self._stopped_as is not None:
            self.state = self._stopped_as
        else:
            self.state = RunState.SUCCEEDED if self.exit_code == 0 else RunState.FAILED

    async def close(self) -> None:
        """Stop (if still running) and reap; safe to call from a cancelled task."""
        await asyncio.shield(self._close())

    async def _close(self) -> None:
        if not self._exit.done():
            self._stopped_as = self._stopped_as or RunState.CANCELLED
            await self._stop_group()
        signal_group(self._pgid, signal.SIGKILL)
        self._finish()
        tasks = [*self._pumps.values(), self._watcher, self._exit]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class ExecRunner:
    """Runs each command as a fresh process in its own session (process group).

    This is the reference path: slow (every call pays Airflow's import time) but with nothing shared
    between runs.
    """

    mode = "exec"

    def __init__(
        self,
        *,
        executable: str,
        python: str,
        env: Mapping[str, str],
        timeout_s: float,
        kill_grace_s: float,
        owner: str,
    ) -> None:
        self.executable = executable
        self.python = python
        self.env = {**env, OWNER_ENV: owner}
        self.timeout_s = timeout_s
        self.kill_grace_s = kill_grace_s

    def argv(self, command: Command) -> list[str]:
        if command.helper:
            return [self.python, "-m", "gateway.helpers", *command.argv]
        return [self.executable, *command.argv]

    @asynccontextmanager
    async def start(self, command: Command, timeout_s: float | None = None) -> AsyncIterator[ExecRun]:
        argv = self.argv(command)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=DEVNULL,
                stdout=PIPE,
                stderr=PIPE,
                start_new_session=True,
                env={**self.env, **command.env},
            )
        except OSError as exc:
            raise RunnerUnavailable(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
        run = ExecRun(proc, timeout_s or self.timeout_s, self.kill_grace_s)
        try:
            yield run
        finally:
            await run.close()

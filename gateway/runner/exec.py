"""The exec runner: one plain ``airflow ...`` subprocess per command, owned from start to reap."""

from __future__ import annotations

import asyncio
import os
import shutil
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from . import contain
from .base import OWNER_ENV, Command, RunnerUnavailable
from .group import GroupRun

#: The leader of every exec'd command (run as a script: standard library only, no package import).
CONTAIN_SCRIPT = contain.__file__


class ExecRun(GroupRun):
    """A command started by the exec runner: our own child process."""

    def __init__(self, proc: asyncio.subprocess.Process, timeout_s: float, kill_grace_s: float) -> None:
        self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        # start_new_session: the child leads its own group
        super().__init__(proc.pid, proc.stdout, proc.stderr, timeout_s, kill_grace_s)

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

    def _returncode(self) -> int | None:
        return self._proc.returncode


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

    def program(self, command: Command) -> list[str]:
        if command.helper:
            return [self.python, "-m", "gateway.helpers", *command.argv]
        return [self.executable, *command.argv]

    def argv(self, command: Command) -> list[str]:
        """The command under its contained leader (see :mod:`gateway.runner.contain`)."""
        return [self.python, "-I", "-S", CONTAIN_SCRIPT, "--parent-pid", str(os.getpid()), "--", *self.program(command)]

    @asynccontextmanager
    async def start(self, command: Command, timeout_s: float | None = None) -> AsyncIterator[ExecRun]:
        program = self.program(command)[0]
        if shutil.which(program) is None:
            raise RunnerUnavailable(f"cannot start {program!r}: not found or not executable")
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

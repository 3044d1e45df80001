"""One lifecycle for the gateway's long-lived helper processes: the warm runner's fork server and the
experimental API's Airflow worker (after CPython's ``multiprocessing.forkserver``).

Both are ``python -m MODULE ... --parent-pid PID`` in Airflow's environment, in a session of their own.
Each prints one JSON line with ``"ready": true`` on stdout once it has warmed up; what it writes to stderr
(warnings, a traceback that may quote a request's values) becomes the gateway's log records, masked and
escaped like any other (``gateway.helper.<module>``), never raw lines in the gateway's log; dies with the gateway
(``PR_SET_PDEATHSIG``, see :mod:`.contain`), and is stopped with SIGTERM, then SIGKILL. Who restarts
them, and when, is their owner's policy; how they start, come up and go away is this class.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

from ..aio import cancel_and_wait
from .base import RunnerUnavailable
from .group import signal_group

#: Longest stderr line of a helper logged as one record (the rest is cut).
MAX_LOGGED_LINE = 8192


class HelperProcess:
    def __init__(
        self,
        *,
        python: str,
        module: str,
        args: Sequence[str],
        env: Mapping[str, str],
        startup_timeout_s: float,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.python = python
        self.module = module
        self.args = tuple(args)
        self.env = dict(env)
        self.startup_timeout_s = startup_timeout_s
        self.pass_fds = tuple(pass_fds)
        self._proc: asyncio.subprocess.Process | None = None
        self._relay: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    async def start(self) -> dict[str, Any]:
        """Spawn it and wait for its ready line (its JSON is returned); :class:`RunnerUnavailable` if none comes."""
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                self.module,
                *self.args,
                "--parent-pid",
                str(os.getpid()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                pass_fds=self.pass_fds,
                env=self.env,
            )
        except OSError as exc:  # no such interpreter, out of processes: a refusal, not a crash
            raise RunnerUnavailable(f"{self.module} could not be started ({exc.strerror or exc})") from None
        assert self._proc.stdout is not None and self._proc.stderr is not None
        # In a context of its own: not the request's (whose masker would otherwise outlive it) that started it.
        self._relay = asyncio.create_task(self._log_stderr(self._proc.stderr), context=contextvars.Context())
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), self.startup_timeout_s)
            hello = json.loads(line) if line.startswith(b"{") else {}
        except (TimeoutError, ValueError):
            hello = {}
        if not isinstance(hello, dict) or not hello.get("ready"):
            await self.stop()
            raise RunnerUnavailable(f"{self.module} did not start (exit code {self.returncode})")
        return hello

    async def _log_stderr(self, stderr: asyncio.StreamReader) -> None:
        log = logging.getLogger(f"gateway.helper.{self.module.rsplit('.', 1)[-1]}")
        pending = b""
        while chunk := await stderr.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                log.warning("%s", line[:MAX_LOGGED_LINE].decode("utf-8", "replace"))
            pending = pending[-MAX_LOGGED_LINE:]
        if pending:
            log.warning("%s", pending.decode("utf-8", "replace"))

    def signal(self, signum: int) -> None:
        if self._proc is not None:
            with suppress(ProcessLookupError):
                self._proc.send_signal(signum)

    async def wait(self) -> int:
        assert self._proc is not None
        return await self._proc.wait()

    async def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM to its group, SIGKILL after ``grace_s``; reaped either way."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace_s)
            except TimeoutError:
                signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
        if self._relay is not None:
            with suppress(TimeoutError):  # its last lines; a grandchild may still hold the pipe open
                await asyncio.wait_for(asyncio.shield(self._relay), 1.0)
            await cancel_and_wait(self._relay)
            self._relay = None

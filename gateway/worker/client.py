"""The gateway's side of the Airflow worker: start it, send it operations, restart it when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import time
from collections.abc import Mapping
from typing import Any

from ..aio import cancel_and_wait
from ..runner import OWNER_ENV, Command, RunnerUnavailable, RunResult, RunState
from ..runner.helper import HelperProcess

log = logging.getLogger(__name__)


class AirflowWorker:
    """A persistent process that runs the experimental API's operations and the plugin's reads in-process, so
    small reads cost milliseconds instead of a CLI process each.

    Requests are pipelined over one socket and run on ``threads`` threads in the worker; replies come back as
    they finish, matched by id. A request that is in flight when the worker dies fails with
    :class:`RunnerUnavailable` (503), and the next one starts a fresh worker.
    """

    def __init__(
        self, *, python: str, env: Mapping[str, str], owner: str, startup_timeout_s: float, threads: int = 8
    ) -> None:
        self.python = python
        self.env = {**env, OWNER_ENV: owner}
        self.startup_timeout_s = startup_timeout_s
        self.threads = threads
        self.restarts = 0
        self._helper: HelperProcess | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[tuple[int, Any]]] = {}
        self._ids = itertools.count(1)
        self._starting: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._helper.pid if self._helper is not None and self._helper.alive else None

    def warm(self) -> None:
        """Start in the background, so the first request does not pay Airflow's import time."""
        self._ensure_starting()

    def _ensure_starting(self) -> asyncio.Task[None]:
        if self._starting is None or (self._starting.done() and self.pid is None):
            if self._starting is not None and self._starting.done():
                self.restarts += 1
            self._starting = asyncio.create_task(self._start())
        return self._starting

    async def _start(self) -> None:
        ours, theirs = socket.socketpair()
        self._helper = HelperProcess(
            python=self.python,
            module="gateway.worker.main",
            args=("--fd", str(theirs.fileno()), "--threads", str(self.threads)),
            env={**self.env, "PYTHONWARNINGS": "ignore", "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR", "NO_COLOR": "1"},
            startup_timeout_s=self.startup_timeout_s,
            pass_fds=(theirs.fileno(),),
        )
        try:
            await self._helper.start()
        except RunnerUnavailable:
            ours.close()
            raise RunnerUnavailable("the Airflow worker did not start") from None
        finally:
            theirs.close()
        reader, self._writer = await asyncio.open_connection(sock=ours, limit=64 << 20)
        self._reader_task = asyncio.create_task(self._read_replies(reader))

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            reply = json.loads(line)
            future = self._pending.pop(reply["id"], None)
            if future is not None and not future.done():
                future.set_result((reply["status"], reply["body"]))
        # EOF: the worker is gone.
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RunnerUnavailable("the Airflow worker stopped; it restarts on the next request"))
        self._pending.clear()
        if self._helper is not None:
            await self._helper.stop(grace_s=0)

    async def call(self, op: str, **args: Any) -> tuple[int, Any]:
        try:
            await asyncio.shield(self._ensure_starting())
        except RunnerUnavailable:
            self._starting = None
            raise
        assert self._writer is not None
        request_id = next(self._ids)
        future: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._writer.write(json.dumps({"id": request_id, "op": op, "args": args}).encode() + b"\n")
        await self._writer.drain()
        return await future

    async def read(self, command: Command, max_output_bytes: int) -> RunResult | None:
        """A read-only CLI command answered in-process (:mod:`gateway.worker.reads`), as if it had run; None when
        the worker does not answer it exactly (or is down, or it printed more than the CLI's cap): run the CLI.
        """
        if command.helper:  # a gateway helper, not Airflow's CLI: the worker answers only the CLI's reads
            return None
        started = time.monotonic()
        try:
            status, body = await self.call("read", argv=list(command.argv))
        except RunnerUnavailable:
            return None
        if status != 200 or "fallback" in body:
            return None
        if len(body["stdout"].encode()) + len(body["stderr"].encode()) > max_output_bytes:
            return None  # the CLI path cuts it at the cap and says so
        return RunResult(
            state=RunState.SUCCEEDED if body["exit_code"] == 0 else RunState.FAILED,
            exit_code=body["exit_code"],
            duration_s=time.monotonic() - started,
            stdout=body["stdout"],
            stderr=body["stderr"],
            truncated=False,
        )

    async def _stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._helper is not None:
            await self._helper.stop()

    async def close(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, RunnerUnavailable):
                await self._starting
        await self._stop()
        await cancel_and_wait(self._reader_task)

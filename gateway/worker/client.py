"""The gateway's side of the Airflow worker: start it, send it operations, restart it when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
from collections.abc import Mapping
from typing import Any

from ..runner import OWNER_ENV, RunnerUnavailable
from ..runner.helper import HelperProcess

log = logging.getLogger(__name__)


class AirflowWorker:
    """A persistent process that runs experimental-API operations in-process, so small reads cost milliseconds.

    Requests are pipelined over one socket and answered in order; a request that is in flight when the
    worker dies fails with :class:`RunnerUnavailable` (503), and the next one starts a fresh worker.
    """

    def __init__(self, *, python: str, env: Mapping[str, str], owner: str, startup_timeout_s: float) -> None:
        self.python = python
        self.env = {**env, OWNER_ENV: owner}
        self.startup_timeout_s = startup_timeout_s
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
            args=("--fd", str(theirs.fileno())),
            env={**self.env, "PYTHONWARNINGS": "ignore", "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"},
            startup_timeout_s=self.startup_timeout_s,
            pass_fds=(theirs.fileno(),),
        )
        try:
            await self._helper.start()
        except RunnerUnavailable:
            ours.close()
            raise RunnerUnavailable("the Airflow worker for the experimental API did not start") from None
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
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task

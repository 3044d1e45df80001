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
#: The largest reply the worker sends (a larger answer becomes a small 413 reply, see worker/main.py).
MAX_REPLY_BYTES = 64 << 20
#: Room above the reply limit for the reply's own framing: a reply the worker refused still fits.
REPLY_HEADROOM_BYTES = 64 << 10


class _Link:
    """One worker process and its socket, from its ready line to its end.

    Requests are pipelined by id. Whatever breaks the link — EOF, a reset, a reply longer than the line
    limit, a line that is not the protocol, a failed write — every request waiting on it fails at once
    with :class:`RunnerUnavailable` and the process is killed: a link never half-works.
    """

    def __init__(
        self, helper: HelperProcess, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_break: Any
    ) -> None:
        self.helper = helper
        self.writer = writer
        self.error: str | None = None
        self._pending: dict[int, asyncio.Future[tuple[int, Any]]] = {}
        self._on_break = on_break
        self.task = asyncio.create_task(self._read(reader))

    @property
    def alive(self) -> bool:
        return self.error is None

    async def call(self, request_id: int, op: str, args: dict[str, Any]) -> tuple[int, Any]:
        if self.error is not None:
            raise self._unavailable()
        future: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self.writer.write(json.dumps({"id": request_id, "op": op, "args": args}).encode() + b"\n")
            await self.writer.drain()
        except (OSError, RuntimeError) as exc:  # the reset seen from the write side; a closed transport
            self.broken(f"writing to it failed ({type(exc).__name__}: {exc})")
        try:
            return await future
        finally:
            self._pending.pop(request_id, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                self._deliver(line)
            self.broken("it closed its connection")
        except (OSError, ValueError, KeyError, TypeError) as exc:  # ValueError: also a line over the limit
            self.broken(f"its connection broke ({type(exc).__name__}: {exc})")
        finally:
            await self.helper.stop(grace_s=0)

    def _deliver(self, line: bytes) -> None:
        reply = json.loads(line)
        future = self._pending.pop(reply["id"], None)
        if future is not None and not future.done():
            future.set_result((reply["status"], reply["body"]))

    def broken(self, reason: str) -> None:
        """Fail every waiting request and let the process go (the reader task kills and reaps it)."""
        if self.error is not None:
            return
        self.error = reason
        log.warning("the Airflow worker is down: %s; it restarts", reason)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self._unavailable())
        self._pending.clear()
        self.writer.close()
        self._on_break(self)

    def _unavailable(self) -> RunnerUnavailable:
        return RunnerUnavailable("the Airflow worker stopped; it is restarting, retry")


class AirflowWorker:
    """A persistent process that runs the experimental API's operations and the plugin's reads in-process, so
    small reads cost milliseconds instead of a CLI process each.

    Requests are pipelined over one socket and run on ``threads`` threads in the worker; replies come back as
    they finish, matched by id. A request that is in flight when the worker (or its connection) breaks fails
    with :class:`RunnerUnavailable` (503), and a fresh worker starts at once.
    """

    def __init__(
        self,
        *,
        python: str,
        env: Mapping[str, str],
        owner: str,
        startup_timeout_s: float,
        threads: int = 8,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        self.python = python
        self.env = {**env, OWNER_ENV: owner}
        self.startup_timeout_s = startup_timeout_s
        self.threads = threads
        self.max_reply_bytes = max_reply_bytes
        self.restarts = 0
        #: Why the worker last went down (or failed to start); None if it never did.
        self.last_error: str | None = None
        self._link: _Link | None = None
        self._dead: list[_Link] = []
        self._ids = itertools.count(1)
        self._starting: asyncio.Task[_Link] | None = None
        self._closing = False

    @property
    def pid(self) -> int | None:
        link = self._link
        return link.helper.pid if link is not None and link.alive and link.helper.alive else None

    @property
    def ready(self) -> bool:
        return self._link is not None and self._link.alive

    @property
    def down(self) -> bool:
        """It went down (or did not start) and is not back yet: answers that need it fail or take the CLI."""
        return self.last_error is not None and not self.ready

    def state(self) -> dict[str, Any]:
        """What ``/health`` shows of it."""
        return {"ready": self.ready, "restarts": self.restarts, "last_error": self.last_error}

    def warm(self) -> None:
        """Start in the background, so the first request does not pay Airflow's import time."""
        self._ensure_starting()

    def _ensure_starting(self) -> asyncio.Task[_Link]:
        if self._starting is None or (self._starting.done() and not self._started_alive()):
            if self._starting is not None:
                self.restarts += 1
            self._starting = asyncio.create_task(self._start())
            self._starting.add_done_callback(_retrieve)  # a background start nobody awaits may fail
        return self._starting

    def _started_alive(self) -> bool:
        task = self._starting
        return task is not None and not task.cancelled() and task.exception() is None and task.result().alive

    async def _start(self) -> _Link:
        ours, theirs = socket.socketpair()
        helper = HelperProcess(
            python=self.python,
            module="gateway.worker.main",
            args=(
                "--fd",
                str(theirs.fileno()),
                "--threads",
                str(self.threads),
                "--max-reply-bytes",
                str(self.max_reply_bytes),
            ),
            env={**self.env, "PYTHONWARNINGS": "ignore", "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR", "NO_COLOR": "1"},
            startup_timeout_s=self.startup_timeout_s,
            pass_fds=(theirs.fileno(),),
        )
        try:
            await helper.start()
        except RunnerUnavailable as exc:
            ours.close()
            self.last_error = f"it did not start: {exc.message}"
            raise RunnerUnavailable("the Airflow worker did not start") from None
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours, limit=self.max_reply_bytes + REPLY_HEADROOM_BYTES)
        self._link = _Link(helper, reader, writer, self._on_break)
        return self._link

    def _on_break(self, link: _Link) -> None:
        self.last_error = link.error
        self._dead = [*(d for d in self._dead if not d.task.done()), link]
        if not self._closing:
            self._ensure_starting()  # at once: /health shows it back without waiting for a request

    async def _connected(self) -> _Link:
        starting = self._ensure_starting()
        try:
            return await asyncio.shield(starting)
        except RunnerUnavailable:
            if self._starting is starting:
                self._starting = None  # the next request tries again
            raise

    async def call(self, op: str, **args: Any) -> tuple[int, Any]:
        link = await self._connected()
        return await link.call(next(self._ids), op, args)

    async def database_answers(self) -> bool:
        """Whether Airflow's metadata database answers now: a CLI that found nothing may have found no database
        (``variables get`` says "does not exist" then). True when the worker cannot tell (it is down)."""
        try:
            status, _ = await self.call("ping")
        except RunnerUnavailable:
            return True
        return status != 503

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

    async def close(self) -> None:
        self._closing = True
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, RunnerUnavailable):
                await self._starting
        links = [link for link in (self._link, *self._dead) if link is not None]
        for link in links:
            link.writer.close()
            await link.helper.stop()
        await cancel_and_wait(*(link.task for link in links))


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a start's failure as seen: it is recorded in ``last_error``, and the next request tries again."""
    if not task.cancelled():
        task.exception()

"""A running process group, whoever started it: output pumped concurrently, timeout, kill, reap."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import suppress

from . import contain
from .base import Chunk, RunState, Stream

CHUNK_BYTES = 64 * 1024
#: After the command exits and its group is killed, how long the pipes may take to close.
DRAIN_S = 2.0


def signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class GroupRun:
    """One command running as the leader of its own process group.

    stdout and stderr are pumped concurrently into one bounded queue: a slow consumer slows the
    command down (pipe backpressure) instead of growing the gateway's memory. Subclasses say how the
    command's exit is learned (:meth:`_wait_exit`) and where its exit code comes from (:meth:`_returncode`).
    """

    def __init__(
        self,
        pgid: int,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        timeout_s: float,
        kill_grace_s: float,
    ) -> None:
        self._pgid = pgid
        self._grace_s = kill_grace_s
        self._started = time.monotonic()
        self._queue: asyncio.Queue[Chunk | None] = asyncio.Queue(maxsize=16)
        self._reading: dict[Stream, bool] = {"stdout": False, "stderr": False}
        self._stopped_as: RunState | None = None
        self.state = RunState.RUNNING
        self.exit_code: int | None = None
        self.duration_s = 0.0
        #: Set when the run could not be followed to its end (the warm runner's fork server died).
        self.lost: str | None = None
        self._pumps = {
            "stdout": asyncio.create_task(self._pump(stdout, "stdout")),
            "stderr": asyncio.create_task(self._pump(stderr, "stderr")),
        }
        self._exit = asyncio.ensure_future(self._wait_exit())
        self._watcher = asyncio.create_task(self._watch(timeout_s))

    @property
    def pid(self) -> int:
        return self._pgid

    async def _wait_exit(self) -> None:
        raise NotImplementedError

    def _returncode(self) -> int | None:
        raise NotImplementedError

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
        """SIGTERM to every group in the run's tree; whatever is left after the grace is frozen and killed.

        The leader is a child subreaper (:mod:`.contain`), so its tree holds everything the command started,
        including daemons that ``setsid``'d and double-forked.
        """
        if contain.leads_own_group(self._pgid):
            contain.signal_groups([self._pgid, *contain.descendants(self._pgid)], signal.SIGTERM)
        else:
            # Not leading a group (yet): the group it is in is its parent's, the fork server's. Only it is ours.
            with suppress(ProcessLookupError, PermissionError):
                os.kill(self._pgid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._exit), self._grace_s)
        except TimeoutError:
            contain.kill_tree(self._pgid, include_root=True)
            await self._exit

    def _finish(self) -> None:
        if self.exit_code is not None or self.state is not RunState.RUNNING:
            return
        self.exit_code = self._returncode()
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
        self._release()

    def _release(self) -> None:
        """Free what the subclass holds (pipes, sockets) once the run is over."""

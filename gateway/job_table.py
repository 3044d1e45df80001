"""Background runs ("jobs"): started with ``async=true``, followed, replayed and cancelled under ``/api/jobs``.

:class:`Jobs` is what is per gateway process: the asyncio task running each of *this* gateway's jobs (its
command's process group lives and dies with the task). Everything shared — jobs, their output events,
cancel requests, retention — is the job store's (:mod:`gateway.job_store`): files for one gateway,
PostgreSQL for replicas, where any replica answers for any job. An offset (``next_offset``) is the one
resume token: replaying or following from it neither loses nor repeats a line.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from .aio import cancel_and_wait
from .errors import ApiError, StorageFull
from .job_store import Event, Job, JobStore
from .job_store.base import CHUNK_BYTES, STOPPED_WHILE_RUNNING, Cursor, Wakeups, event_bytes
from .masking import Masker
from .outflow import MaskedOutput
from .runner import Command, Overloaded, Run, RunState

__all__ = ["Job", "Jobs"]

log = logging.getLogger(__name__)

Starter = Callable[[Command], AbstractAsyncContextManager[Run]]
#: A replay answers about this much of the log at most (read a chunk at a time); ``next_offset`` continues it.
READ_MAX_BYTES = 1 << 20
#: A job's final state is saved this many times at most, waiting twice as long after each failure (a full disk
#: may be freed meanwhile); then it is logged as unsaved, and a restart finds the job ``lost``.
FINAL_SAVE_ATTEMPTS = 6
FINAL_SAVE_FIRST_DELAY_S = 0.5
#: Jobs a page of the list holds unless ``limit`` says otherwise, and the most it may say.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: How long ``DELETE`` waits for another replica to report the job it was asked to cancel has ended.
REMOTE_CANCEL_WAIT_S = 10.0


class Jobs:
    """This gateway's running jobs, over the shared store."""

    def __init__(self, store: JobStore, retention_s: float, poll_s: float) -> None:
        self.store = store
        self.retention_s = retention_s
        self.poll_s = poll_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: This gateway's unfinished jobs, as their tasks update them.
        self._running: dict[str, Job] = {}

    async def open(self) -> None:
        await self.store.open(self._cancel_requested)
        await self.store.prune(self.retention_s)

    async def get(self, job_id: str) -> Job | None:
        return await self.store.get(job_id)

    async def page(self, limit: int, before: Cursor | None = None, owner: str | None = None) -> list[Job]:
        return await self.store.page(limit, before, owner)

    async def count_by_state(self) -> dict[RunState, int]:
        return await self.store.count_by_state()

    async def submit(
        self,
        api: str,
        command: Command,
        owner: str,
        start: Starter,
        masker: Masker | None = None,
        daemon: bool = False,
        learn: Callable[[str], None] | None = None,
    ) -> Job:
        """Start ``command`` in the background; everything it prints goes to the job's log masked with ``masker``.

        ``learn``: the command's output is a document whose secrets are known only once it is whole (a data
        command): its lines are held until it ended, ``learn(stdout)`` teaches the masker, then they are
        written (:class:`~gateway.outflow.MaskedOutput`)."""
        masker = masker or Masker()
        await self.store.prune(self.retention_s)
        job = Job(
            id=secrets.token_hex(8),
            api=api,
            command=command.display(masker),
            owner=owner,
            state=RunState.QUEUED,
            created_at=time.time(),
            daemon=daemon,
        )
        await self.store.create(job)  # a full state dir refuses it here (507): nothing has started
        self._running[job.id] = job
        output = MaskedOutput(masker, hold=learn is not None)
        self._tasks[job.id] = asyncio.create_task(self._execute(job, command, start, output, learn))
        return job

    async def _execute(
        self, job: Job, command: Command, start: Starter, output: MaskedOutput, learn: Callable[[str], None] | None
    ) -> None:
        masker = output.masker
        try:
            async with start(command) as run:
                job.state, job.started_at = RunState.RUNNING, time.time()
                await self.store.save(job)
                async for chunk in run.output():
                    await self._append(job, output.feed(chunk))
                await self._append(job, output.finish(learn))
            job.state, job.exit_code = run.state, run.exit_code
            job.error = run.lost
            if run.lost:
                job.state = RunState.LOST
        except Overloaded as exc:
            job.state, job.error = RunState.FAILED, str(exc)
        except StorageFull as exc:
            # Its output can no longer be kept: the command was stopped (leaving ``start`` kills its group).
            job.state, job.error = RunState.FAILED, f"Stopped: its output could not be saved ({exc.where} is full)"
        except asyncio.CancelledError:
            job.state = RunState.CANCELLED
        except Exception as exc:
            log.exception("job %s failed to run", job.id)
            job.state, job.error = RunState.FAILED, str(exc)
        finally:
            job.finished_at = time.time()
            job.error = masker.text(job.error) if job.error else job.error
            await self._save_final(job)
            self._tasks.pop(job.id, None)
            self._running.pop(job.id, None)

    async def _save_final(self, job: Job) -> None:
        """Record how ``job`` ended as soon as the store can take it: a few tries, each wait twice the last."""
        delay_s = FINAL_SAVE_FIRST_DELAY_S
        for attempt in range(1, FINAL_SAVE_ATTEMPTS + 1):
            try:
                await self.store.save(job)
                return
            except Exception as exc:
                if attempt == FINAL_SAVE_ATTEMPTS:
                    log.exception("job %s ended %s, which could not be saved", job.id, job.state.value)
                    return
                log.warning("job %s ended %s; saving it failed (%s), trying again", job.id, job.state.value, exc)
                await asyncio.sleep(delay_s)
                delay_s *= 2

    async def _append(self, job: Job, lines: list[tuple[str, str]]) -> None:
        if lines:
            await self.store.append(job.id, [{"stream": stream, "text": text} for stream, text in lines])

    def _cancel_requested(self, job_id: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()

    async def cancel(self, job: Job) -> Job:
        """Stop ``job`` wherever it runs; its state once it ended (or, if its replica is slow to say, as it is)."""
        task = self._tasks.get(job.id)
        if task is not None:
            await cancel_and_wait(task)
        else:
            await self.store.request_cancel(job.id)
            deadline = time.monotonic() + REMOTE_CANCEL_WAIT_S
            while not job.finished and time.monotonic() < deadline:
                waiter = self.store.wakeups.waiter(job.id)
                job = await self.store.get(job.id) or job
                if not job.finished:
                    await Wakeups.wait(waiter, self.poll_s)
        return await self.store.get(job.id) or job

    async def check_offset(self, job: Job, offset: int) -> None:
        """Refuse (400) an offset no ``next_offset`` could have been."""
        problem = await self.store.check_offset(job.id, offset)
        if problem is not None:
            raise ApiError(400, problem)

    async def read(self, job: Job, offset: int, max_bytes: int = READ_MAX_BYTES) -> tuple[list[Event], int]:
        """Events from ``offset`` (about ``max_bytes``, asked of the store a chunk at a time) and the offset to
        continue from."""
        events: list[Event] = []
        budget = max_bytes
        while budget > 0:
            found = await self.store.read(job.id, offset, min(budget, CHUNK_BYTES))
            if not found:
                break
            events += [event for _, event in found]
            offset = found[-1][0]
            budget -= sum(event_bytes(event) for _, event in found)
        return events, offset

    async def follow(self, job: Job, offset: int) -> AsyncIterator[tuple[int, Event]]:
        """Events from ``offset`` on, each with the offset right after it (the resume token, the SSE id), live until
        the job has finished and everything was read."""
        while True:
            waiter = self.store.wakeups.waiter(job.id)
            current = await self.store.get(job.id)  # before reading: a job seen finished has all its events stored
            found = await self.store.read(job.id, offset, CHUNK_BYTES)  # the next only once these were taken
            for event_offset, event in found:
                yield event_offset, event
            if found:
                offset = found[-1][0]
                continue
            if current is None or current.finished:
                return
            await Wakeups.wait(waiter, self.poll_s)

    async def close(self) -> None:
        """Cancel every running job of this gateway (their process groups are killed) and close the store."""
        for job in list(self._running.values()):
            await self.cancel(job)
            job.state, job.error = RunState.LOST, STOPPED_WHILE_RUNNING
            try:
                await self.store.save(job)
            except Exception:
                log.exception("job %s: could not save that it was lost", job.id)
        await self.store.close()

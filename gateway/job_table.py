"""Background runs ("jobs"): started with ``async=true``, followed, replayed and cancelled under ``/api/jobs``.

A job's output is written as it arrives to ``<state_dir>/jobs/<id>.log``, one JSON event per line
(``{"stream", "text"}``), so a byte ``offset`` is a resumable position for replay and live follow.
Its metadata is kept beside it in ``<id>.json``. After a gateway restart, finished jobs (and their
logs) are still there; jobs that were running are marked ``lost``. Files older than
``jobs.retention_s`` are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ApiError
from .masking import Masker
from .runner import Command, Lines, Overloaded, Run, RunState

log = logging.getLogger(__name__)

FINISHED = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.TIMED_OUT, RunState.LOST})
Starter = Callable[[Command], AbstractAsyncContextManager[Run]]


@dataclass
class Job:
    id: str
    api: str
    command: str
    #: The token that started it (its name, never the secret).
    owner: str
    state: RunState
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    error: str | None = None
    daemon: bool = False

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def public(self) -> dict[str, Any]:
        body = asdict(self)
        body["state"] = self.state.value
        for key in ("created_at", "started_at", "finished_at"):
            if body[key] is not None:
                body[key] = datetime.fromtimestamp(body[key], UTC).isoformat()
        body["duration_s"] = round((self.finished_at or time.time()) - self.started_at, 3) if self.started_at else None
        return body


class Jobs:
    """The job table: in memory, mirrored to files so a restart loses nothing finished."""

    def __init__(self, directory: Path, retention_s: float) -> None:
        self.directory = directory
        self.retention_s = retention_s
        self._jobs: dict[str, Job] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._changed: dict[str, asyncio.Event] = {}

    def load(self) -> None:
        """Read what a previous gateway left; running jobs it left are ``lost``."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for meta in self.directory.glob("*.json"):
            try:
                data = json.loads(meta.read_text())
                job = Job(**{**data, "state": RunState(data["state"])})
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring unreadable job file %s: %s", meta, exc)
                continue
            if not job.finished:
                job.state, job.finished_at = RunState.LOST, time.time()
                job.error = "The gateway stopped while this job was running"
                self._save(job)
            self._jobs[job.id] = job
        self.prune()

    def prune(self) -> None:
        horizon = time.time() - self.retention_s
        for job in list(self._jobs.values()):
            if job.finished and (job.finished_at or 0) < horizon:
                del self._jobs[job.id]
                self._changed.pop(job.id, None)
                for suffix in (".json", ".log"):
                    (self.directory / f"{job.id}{suffix}").unlink(missing_ok=True)

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def newest_first(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda job: job.created_at, reverse=True)

    def log_path(self, job: Job) -> Path:
        return self.directory / f"{job.id}.log"

    def submit(
        self, api: str, command: Command, owner: str, start: Starter, masker: Masker | None = None, daemon: bool = False
    ) -> Job:
        """Start ``command`` in the background; everything it prints goes to the job's log masked with ``masker``."""
        masker = masker or Masker()
        self.prune()
        job = Job(
            id=secrets.token_hex(8),
            api=api,
            command=masker.text(command.display()),
            owner=owner,
            state=RunState.QUEUED,
            created_at=time.time(),
            daemon=daemon,
        )
        self._jobs[job.id] = job
        self._changed[job.id] = asyncio.Event()
        self.log_path(job).touch(mode=0o600)
        self._save(job)
        self._tasks[job.id] = asyncio.create_task(self._execute(job, command, start, masker))
        return job

    async def _execute(self, job: Job, command: Command, start: Starter, masker: Masker) -> None:
        try:
            async with start(command) as run:
                job.state, job.started_at = RunState.RUNNING, time.time()
                self._save(job)
                lines = Lines()
                with self._open_log(job) as out:
                    async for chunk in run.output():
                        self._append(out, lines.feed(chunk), job, masker)
                    self._append(out, lines.rest(), job, masker)
            job.state, job.exit_code = run.state, run.exit_code
            job.error = run.lost
            if run.lost:
                job.state = RunState.LOST
        except Overloaded as exc:
            job.state, job.error = RunState.FAILED, str(exc)
        except asyncio.CancelledError:
            job.state = RunState.CANCELLED
        except Exception as exc:
            log.exception("job %s failed to run", job.id)
            job.state, job.error = RunState.FAILED, str(exc)
        finally:
            job.finished_at = time.time()
            job.error = masker.text(job.error) if job.error else job.error
            self._save(job)
            self._tasks.pop(job.id, None)
            self._notify(job)

    def _open_log(self, job: Job) -> Any:
        # Local appends of a few lines: cheaper inline than a thread hop per line.
        return open(self.log_path(job), "a", encoding="utf-8")

    def _append(self, out: Any, lines: list[tuple[str, str]], job: Job, masker: Masker) -> None:
        if not lines:
            return
        for stream, text in lines:
            out.write(json.dumps({"stream": stream, "text": masker.text(text)}) + "\n")
        out.flush()
        self._notify(job)

    def _notify(self, job: Job) -> None:
        event = self._changed.get(job.id)
        if event is not None:
            event.set()
            self._changed[job.id] = asyncio.Event()

    def _save(self, job: Job) -> None:
        path = self.directory / f"{job.id}.json"
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(asdict(job) | {"state": job.state.value}))
        temporary.replace(path)

    async def cancel(self, job: Job) -> None:
        task = self._tasks.get(job.id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def check_offset(self, job: Job, offset: int) -> None:
        """An offset is the start of an event: 0, or a position right after a newline, within the log."""
        with open(self.log_path(job), "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if offset > size:
                raise ApiError(400, f"'offset' {offset} is past the end of the log ({size} bytes so far)")
            if offset > 0:
                handle.seek(offset - 1)
                if handle.read(1) != b"\n":
                    raise ApiError(400, f"'offset' {offset} is not the start of an event; use a next_offset value")

    def read(self, job: Job, offset: int, max_bytes: int = 1 << 20) -> tuple[list[dict[str, Any]], int]:
        """Events from byte ``offset`` (whole lines only) and the offset to continue from."""
        placed = self.read_placed(job, offset, max_bytes)
        return [event for event, _ in placed], placed[-1][1] if placed else offset

    def read_placed(self, job: Job, offset: int, max_bytes: int = 1 << 20) -> list[tuple[dict[str, Any], int]]:
        """Events from byte ``offset`` (whole lines only), each with the offset right after it: where a reader
        that has seen it resumes (an SSE event's ``id``)."""
        with open(self.log_path(job), "rb") as handle:
            handle.seek(offset)
            data = handle.read(max_bytes)
        placed = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            if end > start:
                placed.append((json.loads(data[start:end]), offset + end + 1))
            start = end + 1
        return placed

    async def follow(self, job: Job, offset: int) -> AsyncIterator[tuple[dict[str, Any], int]]:
        """Events from ``offset`` on, each with the offset after it, live until the job has finished and
        everything was read."""
        while True:
            waiter = self._changed.get(job.id)
            placed = self.read_placed(job, offset)
            for event, offset in placed:
                yield event, offset
            if placed:
                continue
            if job.finished or waiter is None:
                return
            await waiter.wait()

    async def close(self) -> None:
        """Cancel every running job (their process groups are killed); used at shutdown."""
        for job_id in list(self._tasks):
            job = self._jobs[job_id]
            await self.cancel(job)
            job.state, job.error = RunState.LOST, "The gateway stopped while this job was running"
            self._save(job)

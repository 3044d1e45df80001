"""The zero-setup job store, for one gateway: ``<state_dir>/jobs/<id>.json`` and ``<id>.log``.

A job's output is appended to ``<id>.log``, one JSON event per line, so a byte offset is a resume point.
Its metadata is kept beside it in ``<id>.json``, written atomically. Jobs live in memory too: this store
is the only writer; a job is there once its files were written, and kept sorted newest first (per owner
too) so a page of the list costs its length. A write the filesystem has no room for is a 507
(:class:`~gateway.errors.StorageFull`) and leaves nothing half-written: a failed create leaves no job, a
failed metadata write the previous one, a failed append the log as it was.

At start, jobs a previous gateway left running are ``lost``: with files, one gateway owns the directory
(share it between replicas and they mark each other's jobs lost — use PostgreSQL for replicas).
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from ..errors import STATE_DIR, full_is_507
from ..runner import RunState
from .base import STOPPED_WHILE_RUNNING, CancelHandler, Cursor, Event, Job, JobStore

log = logging.getLogger(__name__)


class FileStore(JobStore):
    kind = "files"

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self._jobs: dict[str, Job] = {}
        #: Every job's cursor, oldest first: under None all of them, under an owner's name theirs.
        self._order: dict[str | None, list[Cursor]] = {}

    async def open(self, on_cancel: CancelHandler) -> None:
        """Read what a previous gateway left; running jobs it left are ``lost``. Cancels are always local here."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for meta in self.directory.glob("*.json"):
            try:
                data = json.loads(meta.read_text())
                job = Job(**{**data, "state": RunState(data["state"])})
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring unreadable job file %s: %s", meta, exc)
                continue
            if not job.finished:
                job.state, job.finished_at, job.error = RunState.LOST, time.time(), STOPPED_WHILE_RUNNING
                try:
                    self._write(job)
                except OSError as exc:  # a full disk: lost it is all the same, and the next start says so again
                    log.warning("could not record that job %s was lost: %s", job.id, exc)
            self._remember(job)

    async def close(self) -> None:
        self._jobs.clear()
        self._order.clear()

    async def create(self, job: Job) -> None:
        try:
            with full_is_507(STATE_DIR):
                self._log_path(job.id).touch(mode=0o600)
                self._write(job)
        except BaseException:
            self._log_path(job.id).unlink(missing_ok=True)
            raise
        self._remember(job)

    async def save(self, job: Job) -> None:
        self._jobs[job.id] = job
        with full_is_507(STATE_DIR):
            self._write(job)
        self.wakeups.wake(job.id)

    async def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    async def page(self, limit: int, before: Cursor | None = None, owner: str | None = None) -> list[Job]:
        order = self._order.get(owner, [])
        end = len(order) if before is None else bisect.bisect_left(order, before)
        return [self._jobs[cursor.id] for cursor in reversed(order[max(0, end - limit) : end])]

    async def count_by_state(self) -> dict[RunState, int]:
        return dict.fromkeys(RunState, 0) | Counter(job.state for job in self._jobs.values())

    async def append(self, job_id: str, events: list[Event]) -> None:
        with full_is_507(STATE_DIR):
            self._append(job_id, events)
        self.wakeups.wake(job_id)

    async def read(self, job_id: str, offset: int, max_bytes: int) -> list[tuple[int, Event]]:
        data = self._read(job_id, offset, max_bytes)
        found = []
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            offset += len(line)
            found.append((offset, json.loads(line)))
        return found

    async def end_offset(self, job_id: str) -> int:
        return self._log_path(job_id).stat().st_size

    async def check_offset(self, job_id: str, offset: int) -> str | None:
        """A byte offset is the start of an event: 0, or a position right after a newline, within the log."""
        return self._check_offset(job_id, offset)

    # Local reads and appends of a few lines: cheaper inline than a thread hop each.

    def _append(self, job_id: str, events: list[Event]) -> None:
        """All of ``events`` or, when the write fails (a full disk), none: a partial line would end the log."""
        data = "".join(json.dumps(event) + "\n" for event in events).encode("utf-8")
        with open(self._log_path(job_id), "ab") as out:
            end = out.tell()
            try:
                out.write(data)
                out.flush()
            except OSError:
                out.truncate(end)  # shrinking needs no space
                raise

    def _read(self, job_id: str, offset: int, max_bytes: int) -> bytes:
        with open(self._log_path(job_id), "rb") as handle:
            handle.seek(offset)
            data = handle.read(max_bytes)
            if data and b"\n" not in data:  # one event longer than max_bytes: still one at least
                data += handle.readline()
        return data

    def _check_offset(self, job_id: str, offset: int) -> str | None:
        with open(self._log_path(job_id), "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if offset > size:
                return f"'offset' {offset} is past the end of the log ({size} bytes so far)"
            if offset > 0:
                handle.seek(offset - 1)
                if handle.read(1) != b"\n":
                    return f"'offset' {offset} is not the start of an event; use a next_offset value"
        return None

    async def request_cancel(self, job_id: str) -> None:
        """Nothing to ask: with files, every running job is this gateway's own."""

    async def prune(self, retention_s: float) -> None:
        horizon = time.time() - retention_s
        for job in list(self._jobs.values()):
            if job.finished and (job.finished_at or 0) < horizon:
                self._forget(job)
                for path in (self._meta_path(job.id), self._log_path(job.id)):
                    path.unlink(missing_ok=True)

    def _log_path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.log"

    def _meta_path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.json"

    def _remember(self, job: Job) -> None:
        self._jobs[job.id] = job
        for key in (None, job.owner):
            bisect.insort(self._order.setdefault(key, []), Cursor.after(job))

    def _forget(self, job: Job) -> None:
        del self._jobs[job.id]
        for key in (None, job.owner):
            order = self._order[key]
            del order[bisect.bisect_left(order, Cursor.after(job))]

    def _write(self, job: Job) -> None:
        """The metadata, replaced whole: a failed write leaves the previous file and no temporary one."""
        path = self._meta_path(job.id)
        temporary = path.with_suffix(".json.tmp")
        try:
            temporary.write_text(json.dumps(asdict(job) | {"state": job.state.value}))
            temporary.replace(path)
        finally:
            temporary.unlink(missing_ok=True)

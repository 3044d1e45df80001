"""The zero-setup job store, for one gateway: ``<state_dir>/jobs/<id>.json`` and ``<id>.log``.

A job's output is appended to ``<id>.log``, one JSON event per line, so a byte offset is a resume point.
Its metadata is kept beside it in ``<id>.json``, written atomically. Jobs live in memory too: this store
is the only writer. At start, jobs a previous gateway left running are ``lost``: with files, one
gateway owns the directory (share it between replicas and they mark each other's jobs lost — use
PostgreSQL for replicas).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

from ..runner import RunState
from .base import STOPPED_WHILE_RUNNING, CancelHandler, Event, Job, JobStore

log = logging.getLogger(__name__)


class FileStore(JobStore):
    kind = "files"

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self._jobs: dict[str, Job] = {}

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
                self._write(job)
            self._jobs[job.id] = job

    async def close(self) -> None:
        self._jobs.clear()

    async def create(self, job: Job) -> None:
        self._jobs[job.id] = job
        self._log_path(job.id).touch(mode=0o600)
        self._write(job)

    async def save(self, job: Job) -> None:
        self._jobs[job.id] = job
        self._write(job)
        self.wakeups.wake(job.id)

    async def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    async def newest_first(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda job: job.created_at, reverse=True)

    async def append(self, job_id: str, events: list[Event]) -> None:
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
        with open(self._log_path(job_id), "a", encoding="utf-8") as out:
            out.writelines(json.dumps(event) + "\n" for event in events)

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
                del self._jobs[job.id]
                for path in (self._meta_path(job.id), self._log_path(job.id)):
                    path.unlink(missing_ok=True)

    def _log_path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.log"

    def _meta_path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.json"

    def _write(self, job: Job) -> None:
        path = self._meta_path(job.id)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(asdict(job) | {"state": job.state.value}))
        temporary.replace(path)

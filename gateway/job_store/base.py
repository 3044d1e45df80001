"""What a job store keeps — jobs, their output events (already masked), cancel requests — and how followers wake.

The store is the one place jobs are shared: the :class:`~gateway.job_table.Jobs` of each gateway runs its
own jobs' commands and asks the store about everybody's. An *offset* is opaque to clients (``next_offset``):
the position right after an event, from which a reader resumes without losing or repeating a line.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..runner import RunState

FINISHED = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.TIMED_OUT, RunState.LOST})
#: One line of a job's output: ``{"stream": "stdout"|"stderr", "text": ...}``, masked before it is stored.
Event = dict[str, Any]
#: Called with a job id when some replica asked to cancel it (the owner's store calls it).
CancelHandler = Callable[[str], None]
STOPPED_WHILE_RUNNING = "The gateway stopped while this job was running"
#: The most a store reads of a job's log at once: a follower holds one chunk, whatever the log's size.
CHUNK_BYTES = 64 * 1024
#: What an event costs beyond its text, in the reckoning of a read's ``max_bytes`` (its JSON, about).
EVENT_OVERHEAD_BYTES = 32
_CURSOR = re.compile(r"([0-9][0-9.e+-]{0,31})_([0-9A-Za-z]{1,64})")


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


def event_bytes(event: Event) -> int:
    """About what ``event`` weighs in a read's ``max_bytes``."""
    return len(event["text"]) + EVENT_OVERHEAD_BYTES


@dataclass(frozen=True, order=True)
class Cursor:
    """Where a page of the job list ends: jobs sort newest first by ``(created_at, id)``, and the next page holds
    those before it. Clients get it as an opaque token (``before=``), so its form may change."""

    created_at: float
    id: str

    @classmethod
    def after(cls, job: Job) -> Cursor:
        return cls(job.created_at, job.id)

    def token(self) -> str:
        return f"{self.created_at!r}_{self.id}"

    @classmethod
    def parse(cls, token: str) -> Cursor | None:
        """The cursor a :meth:`token` was made from, or None for anything no page could have given."""
        match = _CURSOR.fullmatch(token)
        if match is None:
            return None
        try:
            created_at = float(match[1])
        except ValueError:
            return None
        return cls(created_at, match[2]) if math.isfinite(created_at) and created_at >= 0 else None


class Wakeups:
    """Per-job events: a follower takes one before reading, whoever sees the job change sets it."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def waiter(self, job_id: str) -> asyncio.Event:
        return self._events.setdefault(job_id, asyncio.Event())

    def wake(self, job_id: str) -> None:
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()

    @staticmethod
    async def wait(event: asyncio.Event, timeout_s: float) -> None:
        """Until ``event`` is set or ``timeout_s`` passed (the polling fallback: a wake-up can always be missed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)


class JobStore(ABC):
    """Persistence for jobs. Only the replica running a job writes it; any replica reads and cancels it."""

    #: Said by /health: ``files`` or ``postgresql`` (never where).
    kind: ClassVar[str]

    def __init__(self) -> None:
        self.wakeups = Wakeups()

    @abstractmethod
    async def open(self, on_cancel: CancelHandler) -> None:
        """Ready the store; ``on_cancel(job_id)`` is called when another replica asks to cancel a job of ours."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def create(self, job: Job) -> None:
        """A new job, owned by this replica."""

    @abstractmethod
    async def save(self, job: Job) -> None:
        """The job's new state (and wake its followers)."""

    @abstractmethod
    async def get(self, job_id: str) -> Job | None: ...

    @abstractmethod
    async def page(self, limit: int, before: Cursor | None = None, owner: str | None = None) -> list[Job]:
        """At most ``limit`` jobs, newest first, from just before ``before`` (from the newest without); only
        ``owner``'s when given. The store sorts and cuts: a page costs ``limit`` jobs, not every job."""

    @abstractmethod
    async def count_by_state(self) -> dict[RunState, int]:
        """How many jobs are in each state (the metrics' ``gateway_jobs``), every state present."""

    @abstractmethod
    async def append(self, job_id: str, events: list[Event]) -> None:
        """Output lines, already masked, in order (and wake the job's followers)."""

    @abstractmethod
    async def read(self, job_id: str, offset: int, max_bytes: int) -> list[tuple[int, Event]]:
        """Events after ``offset`` (at least one if there is one, about ``max_bytes`` in all), each with the offset
        right after it. Callers ask for at most :data:`CHUNK_BYTES`; the store holds no more than that (and one
        event, which the line cap bounds) at once."""

    @abstractmethod
    async def end_offset(self, job_id: str) -> int:
        """The offset after the job's last event so far."""

    async def check_offset(self, job_id: str, offset: int) -> str | None:
        """Why ``offset`` cannot be resumed from, or None. Offsets come from ``next_offset``."""
        end = await self.end_offset(job_id)
        if offset > end:
            return f"'offset' {offset} is past the end of the log ({end} so far)"
        return None

    @abstractmethod
    async def request_cancel(self, job_id: str) -> None:
        """Ask the replica running the job to cancel it."""

    @abstractmethod
    async def prune(self, retention_s: float) -> None:
        """Forget jobs finished more than ``retention_s`` ago, with their events (idempotent)."""

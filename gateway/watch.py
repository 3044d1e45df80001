"""Following a DAG run to its end: ``trigger_dag&wait=true``, ``watch_dag_run`` and the experimental API's
``?wait=true``.

A :class:`RunWatch` polls the run through the Airflow worker (state, task instances, log file names)
and tails the task log files itself, yielding events as they happen::

    ("run",  {"dag_id", "run_id", "state"})                   the run's state changed
    ("task", {"task_id", "map_index", "try_number", "state"}) a task instance's state changed
    ("log",  {"task_id", "map_index", "try_number", "timestamp", "level", "text"})  a new log line

A wait that cannot end refuses early instead of hanging until its timeout: a paused DAG (409), no
scheduler heartbeating (503), the run deleted (404); past ``timeout_s`` it stops with a 504. Log lines
are read from ``[logging] base_log_folder`` on this machine: with remote task logs and no shared log
folder, a watch reports states only.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import ApiError

#: States after which a run or a task instance no longer changes by itself.
FINISHED_RUN_STATES = frozenset({"success", "failed"})
#: The most a log file is read per poll (a chatty task catches up over a few polls instead of stalling one).
MAX_LOG_READ_BYTES = 1024 * 1024
MAX_LOG_LINE_CHARS = 32 * 1024

Event = tuple[str, dict[str, Any]]


class Worker(Protocol):
    async def call(self, op: str, **args: Any) -> tuple[int, Any]: ...


async def ask(worker: Worker, op: str, **args: Any) -> dict[str, Any]:
    """One worker operation; its refusals (404, ...) become :class:`ApiError` as they are."""
    status, body = await worker.call(op, **args)
    if status != 200:
        raise ApiError(status, body.get("error", "the Airflow worker refused") if isinstance(body, dict) else "")
    return body


def no_scheduler(health: dict[str, Any]) -> str:
    seen = health.get("latest_heartbeat")
    return (
        f"No Airflow scheduler is running (last heartbeat: {seen or 'never'}; a scheduler counts as running "
        f"within {health.get('threshold_s', '?')} s of its heartbeat): runs stay queued until one starts"
    )


async def check_can_run(worker: Worker, dag_id: str) -> None:
    """Before triggering a run to wait for: refuse at once what would only time out (nothing is created)."""
    found = await ask(worker, "preflight", dag_id=dag_id)
    if found["is_paused"]:
        raise ApiError(409, f"DAG '{dag_id}' is paused, so its runs do not start: unpause it first (api=unpause)")
    if not found["scheduler"]["alive"]:
        raise ApiError(503, no_scheduler(found["scheduler"]), {"Retry-After": "10"})


async def scheduler_warning(worker: Worker, state: Any) -> str | None:
    """The warning for an answer about a run that waits on a scheduler (None: there is one, or it is moot)."""
    if state not in ("queued", "running"):
        return None
    try:
        health = await ask(worker, "scheduler_health")
    except ApiError:  # the worker is down: say nothing rather than fail an answer that succeeded
        return None
    return None if health["alive"] else no_scheduler(health)


def _log_text(raw: str) -> dict[str, Any]:
    """One line of a task log (Airflow 3 writes JSON lines) as ``timestamp``, ``level`` and readable ``text``."""
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return {"timestamp": None, "level": None, "text": raw[:MAX_LOG_LINE_CHARS]}
    text = str(record.get("event", ""))
    for detail in record.get("error_detail") or ():
        if isinstance(detail, dict):
            text += f" ({detail.get('exc_type')}: {detail.get('exc_value')})"
    return {"timestamp": record.get("timestamp"), "level": record.get("level"), "text": text[:MAX_LOG_LINE_CHARS]}


class LogTail:
    """The new complete lines of one growing log file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read(MAX_LOG_READ_BYTES)
        except OSError:  # not created yet, or rotated away: nothing new
            return []
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines if line.strip()]


@dataclass
class TaskKey:
    task_id: str
    map_index: int
    try_number: int


class RunWatch:
    """One run followed to its end. Iterate :meth:`events`; afterwards :attr:`snapshot` is the final one."""

    def __init__(self, worker: Worker, dag_id: str, run_id: str, *, poll_s: float, timeout_s: float) -> None:
        self.worker = worker
        self.dag_id = dag_id
        self.run_id = run_id
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.snapshot: dict[str, Any] = {}
        self._states: dict[tuple[str, int], tuple[Any, int]] = {}
        self._run_state: Any = object()
        self._tails: dict[str, tuple[TaskKey, LogTail]] = {}
        self.started = time.monotonic()

    async def events(self) -> AsyncIterator[Event]:
        deadline = self.started + self.timeout_s
        settled = False
        while True:
            self.snapshot = await ask(self.worker, "run_snapshot", dag_id=self.dag_id, run_id=self.run_id)
            for event in self._changes():
                yield event
            for event in await asyncio.to_thread(self._new_log_lines):
                yield event
            if self.finished:
                if settled:  # one more pass after the end: the last log lines land just after the state
                    return
                settled = True
            elif self.snapshot["is_paused"]:
                raise ApiError(409, f"DAG '{self.dag_id}' is paused: run '{self.run_id}' will not go on until it is")
            elif not self.snapshot["scheduler"]["alive"]:
                raise ApiError(503, no_scheduler(self.snapshot["scheduler"]), {"Retry-After": "10"})
            elif time.monotonic() >= deadline:
                raise ApiError(
                    504, f"Run '{self.run_id}' is still {self.snapshot['state']} after the wait of {self.timeout_s:g} s"
                )
            await asyncio.sleep(self.poll_s)

    async def run_to_end(self) -> ApiError | None:
        """Follow without streaming: None when the run finished, else why the wait ended."""
        try:
            async for _ in self.events():
                pass
        except ApiError as exc:
            return exc
        return None

    @property
    def finished(self) -> bool:
        return self.snapshot.get("state") in FINISHED_RUN_STATES

    def result(self) -> dict[str, Any]:
        """The run as it stands, for an answer (server paths left out)."""
        shown = {k: v for k, v in self.snapshot.items() if k not in ("log_folder", "scheduler", "is_paused")}
        shown["tasks"] = [{k: v for k, v in ti.items() if k != "log"} for ti in self.snapshot.get("tasks", ())]
        shown["waited_s"] = round(time.monotonic() - self.started, 3)
        return shown

    def failure(self) -> str | None:
        """Why the finished run failed (None when it succeeded)."""
        if self.snapshot.get("state") != "failed":
            return None
        reasons = []
        for state in ("failed", "upstream_failed"):
            tasks = sorted({ti["task_id"] for ti in self.snapshot["tasks"] if ti["state"] == state})
            if tasks:
                reasons.append(f"{state.replace('_', ' ')}: {', '.join(tasks)}")
        return f"DAG run '{self.run_id}' failed" + (f" ({'; '.join(reasons)})" if reasons else "")

    def _changes(self) -> list[Event]:
        events: list[Event] = []
        snap = self.snapshot
        if snap["state"] != self._run_state:
            self._run_state = snap["state"]
            events.append(("run", {"dag_id": self.dag_id, "run_id": self.run_id, "state": snap["state"]}))
        for ti in snap["tasks"]:
            key = (ti["task_id"], ti["map_index"])
            now = (ti["state"], ti["try_number"])
            if self._states.get(key) != now:
                self._states[key] = now
                events.append(("task", {k: ti[k] for k in ("task_id", "map_index", "try_number", "state")}))
        return events

    def _new_log_lines(self) -> list[Event]:
        folder = Path(self.snapshot["log_folder"]).resolve()
        events: list[Event] = []
        for ti in self.snapshot["tasks"]:
            if not ti.get("log"):
                continue
            path = (folder / ti["log"]).resolve()
            if not path.is_relative_to(folder):  # a log template pointing elsewhere is not ours to read
                continue
            if str(path) not in self._tails:
                self._tails[str(path)] = (TaskKey(ti["task_id"], ti["map_index"], ti["try_number"]), LogTail(path))
            key, tail = self._tails[str(path)]
            for line in tail.read():
                ident = {"task_id": key.task_id, "map_index": key.map_index, "try_number": key.try_number}
                events.append(("log", {**ident, **_log_text(line)}))
        return events

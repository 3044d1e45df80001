"""Running Airflow commands: admission in front, a backend (exec today) behind, output as a stream."""

from __future__ import annotations

import collections
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, nullcontext

from .admission import Admission, Overloaded
from .base import OWNER_ENV, Chunk, Command, Run, RunnerUnavailable, RunResult, RunState, Stream
from .exec import ExecRun, ExecRunner
from .warm import WarmRunner

#: Anything with ``mode`` and an async-context ``start(command, timeout_s)`` yielding a Run.
Backend = ExecRunner | WarmRunner

__all__ = [
    "OWNER_ENV",
    "Admission",
    "Chunk",
    "Collector",
    "Command",
    "CommandRunner",
    "ExecRun",
    "ExecRunner",
    "Overloaded",
    "Run",
    "RunResult",
    "RunState",
    "RunnerUnavailable",
    "Stream",
    "WarmRunner",
    "collect",
]


class Collector:
    """Keeps a run's output up to ``max_output_bytes`` (the rest is dropped and flagged ``truncated``)."""

    def __init__(self, max_output_bytes: int) -> None:
        self._kept = {"stdout": bytearray(), "stderr": bytearray()}
        self._room = max_output_bytes
        self.truncated = False

    def add(self, chunk: Chunk) -> None:
        piece = chunk.data[: self._room]
        if len(piece) < len(chunk.data):
            self.truncated = True
        self._kept[chunk.stream] += piece
        self._room -= len(piece)

    def result(self, run: Run) -> RunResult:
        return RunResult(
            state=run.state,
            exit_code=run.exit_code,
            duration_s=run.duration_s,
            stdout=self._kept["stdout"].decode("utf-8", errors="replace"),
            stderr=self._kept["stderr"].decode("utf-8", errors="replace"),
            truncated=self.truncated,
        )


async def collect(run: Run, max_output_bytes: int) -> RunResult:
    """Buffer a run's whole output, keeping at most ``max_output_bytes`` (the rest is read and dropped)."""
    collector = Collector(max_output_bytes)
    async for chunk in run.output():
        collector.add(chunk)
    return collector.result(run)


def _write_files(directory: str, files: Mapping[str, bytes]) -> None:
    for name, content in files.items():
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(content)


class CommandRunner:
    """The one door every command goes through: an admission slot, then the backend."""

    def __init__(self, backend: Backend, admission: Admission, max_output_bytes: int) -> None:
        self.backend = backend
        self.admission = admission
        self.max_output_bytes = max_output_bytes
        #: Processes started so far (bad input must never move it).
        self.started = 0
        #: Runs by how they ended (timed out, cancelled, ...).
        self.ended: collections.Counter[RunState] = collections.Counter()
        #: Runs killed because their client hung up (counted by the HTTP layer, which sees the hang-up).
        self.killed_on_disconnect = 0

    @property
    def mode(self) -> str:
        return self.backend.mode

    @property
    def ready(self) -> bool:
        return getattr(self.backend, "ready", True)

    @property
    def restarts(self) -> int:
        return getattr(self.backend, "restarts", 0)

    @asynccontextmanager
    async def start(self, command: Command, timeout_s: float | None = None) -> AsyncIterator[Run]:
        async with self.admission.slot():
            self.started += 1
            with tempfile.TemporaryDirectory(prefix="gateway-run-") if command.files else nullcontext() as directory:
                if directory is not None:
                    _write_files(directory, command.files)
                    command = command.with_files_at(directory)
                run: Run | None = None
                try:
                    async with self.backend.start(command, timeout_s) as run:
                        yield run
                finally:
                    if run is not None:
                        self.ended[run.state] += 1

    async def run(self, command: Command, timeout_s: float | None = None) -> RunResult:
        async with self.start(command, timeout_s) as run:
            result = await collect(run, self.max_output_bytes)
        if run.lost:
            raise RunnerUnavailable(run.lost)
        return result

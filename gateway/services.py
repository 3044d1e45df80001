"""Airflow's own services beside the gateway (``services.run``): what makes a triggered run actually run in the
demo or a one-box install — scheduler, dag-processor, triggerer, and the api-server that tasks report to
through the Execution API.

Each service is an exec'd command like any other (:mod:`gateway.runner.contain`): its whole process tree
is killed when it is stopped, and it dies with the gateway even when the gateway is SIGKILLed. A service
that exits is started again after ``restart_delay_s``. Its output goes to ``state_dir/services/NAME.log``
(rotated once at ``MAX_LOG_BYTES``). In production next to an existing Airflow this stays off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aio import cancel_and_wait
from .catalog import INFO_ENV
from .runner import Command, ExecRunner, RunnerUnavailable

log = logging.getLogger(__name__)
MAX_LOG_BYTES = 20 * 1024 * 1024


@dataclass
class ServiceState:
    pid: int | None = None
    running_since: float | None = None
    starts: int = 0
    last_exit_code: int | None = None

    def public(self) -> dict[str, Any]:
        return {
            "running": self.pid is not None,
            "pid": self.pid,
            "up_s": round(time.monotonic() - self.running_since, 1) if self.running_since else None,
            "restarts": max(self.starts - 1, 0),
            "last_exit_code": self.last_exit_code,
        }


class AirflowServices:
    def __init__(self, backend: ExecRunner, names: Sequence[str], log_dir: Path, restart_delay_s: float) -> None:
        self.backend = backend
        self.log_dir = log_dir
        self.restart_delay_s = restart_delay_s
        self.states = {name: ServiceState() for name in names}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self.states:
            self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._tasks = [asyncio.create_task(self._supervise(name), name=f"service-{name}") for name in self.states]

    async def close(self) -> None:
        """Stop every service (its process tree is killed as its run's block is left) and wait until it is gone."""
        await cancel_and_wait(*self._tasks)

    def public(self) -> dict[str, Any]:
        return {name: state.public() for name, state in self.states.items()}

    async def _supervise(self, name: str) -> None:
        state = self.states[name]
        path = self.log_dir / f"{name}.log"
        while True:
            state.starts += 1
            try:
                async with self.backend.start(Command(argv=(name,), env=INFO_ENV)) as run:
                    state.pid, state.running_since = run.pid, time.monotonic()
                    log.info("started Airflow %s (pid %s)", name, run.pid)
                    async for chunk in run.output():
                        _append(path, chunk.data)
                state.last_exit_code = run.exit_code
                log.warning(
                    "Airflow %s exited with code %s; restarting in %g s", name, run.exit_code, self.restart_delay_s
                )
            except RunnerUnavailable as exc:
                log.error("cannot start Airflow %s: %s", name, exc.message)
            finally:
                state.pid = state.running_since = None
            await asyncio.sleep(self.restart_delay_s)


def _append(path: Path, data: bytes) -> None:
    try:
        if path.exists() and path.stat().st_size > MAX_LOG_BYTES:
            path.replace(path.with_suffix(".log.1"))
        with open(path, "ab") as handle:
            handle.write(data)
    except OSError as exc:
        log.error("cannot write %s: %s", path, exc.strerror)

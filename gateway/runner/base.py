"""What a runner takes (a :class:`Command`) and gives back (chunks, then a :class:`RunResult`)."""

from __future__ import annotations

import enum
import shlex
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from ..errors import ApiError

Stream = Literal["stdout", "stderr"]
#: Every process the gateway starts carries this variable, so anything it owns can be found and checked.
OWNER_ENV = "AIRFLOW_REST_GATEWAY_OWNER"
#: Longest line kept whole (output and job logs); longer ones are split, never fatal.
MAX_LINE_BYTES = 32 * 1024


class RunnerUnavailable(ApiError):
    """The command could not be started or followed to its end (no executable, a fork server or worker down):
    a 503 whose ``Retry-After`` says when a restarted helper will likely be there."""

    def __init__(self, message: str, retry_after_s: int = 2) -> None:
        super().__init__(503, message, {"Retry-After": str(retry_after_s)})


class RunState(enum.StrEnum):
    """Lifecycle of one run, shared by the HTTP API and the runners."""

    #: Waiting for an admission slot.
    QUEUED = "queued"
    RUNNING = "running"
    #: Exited with code 0.
    SUCCEEDED = "succeeded"
    #: Exited non-zero (or was killed by a signal it did not get from us).
    FAILED = "failed"
    #: Stopped on request (client disconnect or cancel).
    CANCELLED = "cancelled"
    #: Killed because it ran past its timeout.
    TIMED_OUT = "timed_out"
    #: Nobody saw it end: the gateway (or the warm runner's fork server) stopped while it ran.
    LOST = "lost"


@dataclass(frozen=True)
class Command:
    """One process to run: Airflow's CLI (``airflow *argv``) or one of the gateway's in-Airflow helpers."""

    argv: tuple[str, ...]
    #: True: ``python -m gateway.helpers *argv`` in Airflow's environment instead of the CLI.
    helper: bool = False
    #: Extra environment for this command only (log levels, mostly).
    env: Mapping[str, str] = field(default_factory=dict)
    #: Substrings (passwords) masked wherever the command is shown.
    secrets: tuple[str, ...] = ()
    #: Files the command reads: ``{file:NAME}`` in argv becomes the path of a private temporary copy.
    files: Mapping[str, bytes] = field(default_factory=dict)

    def display(self) -> str:
        """A shell-quoted rendering, for humans: the envelope's ``airflow_cmd``."""
        program = "gateway-helper" if self.helper else "airflow"
        shown = shlex.join((program, *self.argv))
        for secret in self.secrets:
            shown = shown.replace(secret, "***")
        return shown

    def run_as(self, name: str) -> Command:
        """This command with ``USER``/``LOGNAME`` naming the caller, so Airflow's audit log and
        ``triggering_user_name`` say who asked (the OS user is the same for every caller)."""
        return replace(self, env={**self.env, "USER": name, "LOGNAME": name})

    def with_files_at(self, directory: str) -> Command:
        """This command with ``{file:NAME}`` placeholders pointing into ``directory``."""
        argv = list(self.argv)
        for name in self.files:
            argv = [a.replace(f"{{file:{name}}}", f"{directory}/{name}") for a in argv]
        return replace(self, argv=tuple(argv), files={})


@dataclass(frozen=True)
class Chunk:
    stream: Stream
    data: bytes


@dataclass(frozen=True)
class RunResult:
    state: RunState
    exit_code: int | None
    duration_s: float
    stdout: str
    stderr: str
    #: True when output past ``max_output_bytes`` was dropped.
    truncated: bool


class Run(Protocol):
    """A started process. Iterate :meth:`output` once; the result fields are final after it ends."""

    state: RunState
    exit_code: int | None
    duration_s: float

    #: Why the run could not be followed to its end (the warm runner's fork server died), or None.
    lost: str | None

    def output(self) -> AsyncIterator[Chunk]: ...


class Lines:
    """Turns a run's chunks into whole lines (split at ``MAX_LINE_BYTES``), keeping partial lines until complete."""

    def __init__(self) -> None:
        self._pending: dict[Stream, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    def feed(self, chunk: Chunk) -> list[tuple[Stream, str]]:
        buffer = self._pending[chunk.stream]
        buffer += chunk.data
        lines = []
        while True:
            newline = buffer.find(b"\n")
            if newline == -1 and len(buffer) < MAX_LINE_BYTES:
                break
            cut = newline + 1 if newline != -1 and newline < MAX_LINE_BYTES else MAX_LINE_BYTES
            lines.append((chunk.stream, _decode(bytes(buffer[:cut]))))
            del buffer[:cut]
        return lines

    def rest(self) -> list[tuple[Stream, str]]:
        out = [(stream, _decode(bytes(buffer))) for stream, buffer in self._pending.items() if buffer]
        for buffer in self._pending.values():
            buffer.clear()
        return out


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").rstrip("\n")

"""What a runner takes (a :class:`Command`) and gives back (chunks, then a :class:`RunResult`)."""

from __future__ import annotations

import enum
import shlex
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from ..errors import ApiError
from ..masking import Masker

Stream = Literal["stdout", "stderr"]
#: Every process the gateway starts carries this variable, so anything it owns can be found and checked.
OWNER_ENV = "AIRFLOW_REST_GATEWAY_OWNER"


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

    def display(self, masker: Masker | None = None) -> str:
        """A shell-quoted rendering, for humans: the envelope's ``airflow_cmd``. Each argument is masked
        *before* it is quoted (quoting would cut a password with a quote in it into pieces the masker cannot
        recognise), an option's value as a value of its own."""
        masker = masker or Masker()
        for secret in self.secrets:
            masker.add(secret)
        program = "gateway-helper" if self.helper else "airflow"
        return shlex.join((program, *(_masked_arg(arg, masker) for arg in self.argv)))

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


def _masked_arg(arg: str, masker: Masker) -> str:
    flag, sep, value = arg.partition("=")
    if sep and flag.startswith("--"):
        return f"{flag}={masker.text(value)}"
    return masker.text(arg)

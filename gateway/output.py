"""Reading what an Airflow command printed: log lines versus data, JSON, and what an error means."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# structlog console lines: "2026-11-22T04:26:16.595974Z [info     ] message [logger] key=value"
_LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}\S*\s+\[\s*[a-z]+\s*\]")


def split_log_lines(text: str) -> tuple[str, str]:
    """Separate Airflow's log lines from data lines: ``(data, log)``. Nothing is dropped.

    This replaces the old plugin's filter, which deleted everything up to the last line starting
    with ``[`` and so erased JSON lists and real output.
    """
    data, log = [], []
    for line in text.splitlines(keepends=True):
        (log if _LOG_LINE.match(line) else data).append(line)
    return "".join(data), "".join(log)


def parse_json(text: str) -> Any | None:
    """The JSON document a command printed, or None when the output is not JSON."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


@dataclass(frozen=True)
class Failure:
    http_status: int
    message: str


# Known Airflow failures, most specific first: (pattern over the output, HTTP status).
_KNOWN_FAILURES: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"DagRunAlreadyExists|already exists"), 409),
    (re.compile(r"DagNotFound|DagRunNotFound|TaskNotFound|Dag '[^']*' could not be found|not found in DagModel"), 404),
    (re.compile(r"Variable .* does not exist|Pool .* does not exist|Did not find a connection"), 404),
    (re.compile(r"does not exist in 'dag' table"), 404),
    (re.compile(r"DagNonPeriodicScheduleException|does not support backfills"), 400),
    (re.compile(r"^usage: airflow", re.MULTILINE), 400),
)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def classify_failure(exit_code: int | None, stdout: str, stderr: str) -> Failure:
    """Map a failed command to an HTTP status and a one-line message (the traceback's last line)."""
    text = f"{stderr}\n{stdout}"
    status = 500
    for pattern, code in _KNOWN_FAILURES:
        if pattern.search(text):
            status = code
            break
    message = last_line(stderr) or last_line(stdout) or f"airflow exited with code {exit_code}"
    if status == 400 and message.startswith("airflow") and "error:" in message:
        message = message.split("error:", 1)[1].strip()
    return Failure(status, message)

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
    #: The command's output says nothing the client may see (a driver's traceback naming the database's host).
    hide_output: bool = False


#: Airflow's metadata database could not be reached (down, restarting, locked): the call may succeed if tried
#: again, so it is a 503 with a plain message — never the driver's text, which names the host and port — and
#: it wins over what the command concluded meanwhile (``variables get`` says "does not exist").
_DATABASE_UNAVAILABLE = re.compile(
    r"OperationalError\b.{0,300}?(could not connect to server|connection to server (at|on) .{0,200}? failed|"
    r"Connection refused|"
    r"server closed the connection unexpectedly|terminating connection due to administrator command|"
    r"the database system is (starting up|shutting down|in recovery mode)|SSL SYSCALL error|"
    r"database is locked|unable to open database file|Can't connect to MySQL server|Lost connection to MySQL)"
)
DATABASE_UNAVAILABLE = "Airflow's metadata database cannot be reached right now; try again shortly"

# Known Airflow failures, most specific first: (pattern over the output, HTTP status).
_KNOWN_FAILURES: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"DagRunAlreadyExists|already exists|UNIQUE constraint failed|IntegrityError"), 409),
    (re.compile(r"(DagNotFound|DagRunNotFound|TaskNotFound|TaskInstanceNotFound)\b|not found in DagModel"), 404),
    (re.compile(r"Dag '[^']*' could not be found|does not exist in 'dag' table|Can not find dag '"), 404),
    (re.compile(r"Variable (?s:.*?) does not exist|Pool (?s:.*?) does not exist|Did not find a connection"), 404),
    (re.compile(r"DagNonPeriodicScheduleException|does not support backfills|DagNoScheduleException"), 400),
    (re.compile(r"^airflow[\w -]*:? (command )?error: ", re.MULTILINE), 400),
    (re.compile(r"map_index passed to non-mapped task|The URI provided to --conn-uri is invalid"), 400),
    # The CLI's own refusals of what it was given (SystemExit messages).
    (re.compile(r"are not compatible with the --conn|Must supply either conn|Cannot supply both conn"), 400),
    (re.compile(r"conn-json is invalid|Could not create connection\.|default_pool cannot be deleted"), 400),
    # A template that needs what the run does not have (a run id that names no run has no logical date).
    (re.compile(r"jinja2\.exceptions\.UndefinedError: .*"), 400),
    # Python's own "this value is wrong", raised by Airflow about a value the gateway passed on as given.
    (re.compile(r"^(ValueError|OverflowError): .*\Z", re.MULTILINE), 400),
)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def classify_failure(exit_code: int | None, stdout: str, stderr: str, runs_task_code: bool = False) -> Failure:
    """Map a failed command to an HTTP status and a one-line message (the traceback's last line).

    ``runs_task_code``: the output is a task's (whose own database errors are the task's failure, not a sign that
    Airflow's database is down)."""
    text = f"{stderr}\n{stdout}"
    if not runs_task_code and _DATABASE_UNAVAILABLE.search(text):
        return Failure(503, DATABASE_UNAVAILABLE, hide_output=True)
    status, message = 500, ""
    for pattern, code in _KNOWN_FAILURES:
        # The last mention: earlier ones may be source lines quoted in the traceback.
        found = next(reversed([*pattern.finditer(text)]), None)
        if found:
            status = code
            # The line that says it (a traceback's last line may be SQLAlchemy's "Background on this error").
            start = text.rfind("\n", 0, found.start()) + 1
            end = text.find("\n", found.end())
            message = text[start : end if end != -1 else None].strip()
            break
    message = message or last_line(stderr) or last_line(stdout) or f"airflow exited with code {exit_code}"
    if status == 400 and message.startswith("airflow") and "error:" in message:  # argparse's "prog: error: msg"
        message = message.split("error:", 1)[1].strip()
    return Failure(status, message)

"""What every area's entries share: argument definitions, the environment profiles, argv helpers, generic readers.

Conventions every builder keeps: option values are one ``--flag=value`` element (a value can never
be read as another option); positionals come after ``--``; stdin is always ``/dev/null`` and
prompting commands get ``-y``; the environment profile keeps Airflow's log noise out of the data."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .. import airflow_release
from ..output import parse_json
from ..runner import Command
from .model import ApiError, Arg, ArgType, Outcome, Values

DATA_ENV = {"PYTHONWARNINGS": "ignore", "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR", "NO_COLOR": "1"}


#: Environment for commands that run task code: the task's own log lines and its final state stay visible.
TASK_ENV = {
    "PYTHONWARNINGS": "ignore",
    "PYTHONUNBUFFERED": "1",
    "NO_COLOR": "1",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    # The task's own output is logged by airflow.task; its final state by the in-process execution API.
    "AIRFLOW__LOGGING__NAMESPACE_LEVELS": (
        "airflow.task=info airflow.api_fastapi.execution_api.routes.task_instances=info"
    ),
}
if airflow_release.series() < (3, 2):  # Airflow 3.1 has no [logging] namespace_levels: every info line is shown
    TASK_ENV = {**TASK_ENV, "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"}
    del TASK_ENV["AIRFLOW__LOGGING__NAMESPACE_LEVELS"]


#: Environment for commands whose info logs are their report (backfill creation, reserialize).
INFO_ENV = {"PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}


def dag_id(help_text: str = "The id of the DAG") -> Arg:
    return Arg("dag_id", ArgType.ID, help_text, required=True)


TASK_ID = Arg("task_id", ArgType.ID, "The id of the task", required=True)


EXECUTION_DATE = Arg(
    "execution_date",
    ArgType.DATE_OR_RUN_ID,
    "Logical date of the DAG run (2017-01-02T03:04:05) or its run id",
    required=True,
    aliases=("logical_date",),
)


WAIT_TIMEOUT = Arg(
    "wait_timeout_s",
    ArgType.INT,
    "Stop waiting after this many seconds (504); default wait.timeout_s, at most wait.max_timeout_s",
    min_value=1,
    max_value=7 * 24 * 3600,
)


MAP_INDEX = Arg("map_index", ArgType.INT, "Index of a mapped task instance")


SUBDIR = Arg(
    "subdir",
    ArgType.SERVER_PATH,
    "(refused) File location or directory from which to look for the dag",
    refusal="Airflow 3 finds DAGs through the configured DAG bundle; upload files with api=deploy_dag.",
)


def name_arg(name: str, help_text: str, max_chars: int) -> Arg:
    """Text that names something (a variable key, a pool, a host): one line, at most Airflow's column size."""
    return Arg(name, ArgType.TEXT, help_text, max_chars=max_chars, single_line=True)


def removed(name: str, what: str, instead: str) -> Arg:
    return Arg(name, ArgType.REMOVED, f"(no Airflow 3 equivalent) {what}", refusal=instead)


def airflow(*argv: str, env: Mapping[str, str] = DATA_ENV, secrets: tuple[str, ...] = ()) -> Command:
    return Command(argv=tuple(argv), env=env, secrets=secrets)


def opt(flag: str, value: Any) -> tuple[str, ...]:
    """``--flag=value`` (one argv element, so a value can never be read as another option), or nothing."""
    if value is None:
        return ()
    if isinstance(value, dict):
        value = json.dumps(value)
    return (f"{flag}={value}",)


def flag(flag: str, on: bool | None) -> tuple[str, ...]:
    return (flag,) if on else ()


def one_action(api: str, values: Values, actions: tuple[str, ...]) -> str | None:
    chosen = [a for a in actions if values.get(a) not in (None, False)]
    if len(chosen) > 1:
        raise ApiError(400, f"API '{api}' takes one action at a time; got {', '.join(chosen)}")
    return chosen[0] if chosen else None


def run_ref(values: Values) -> tuple[str, ...]:
    return (values["dag_id"], values["task_id"], values["execution_date"])


def no_data(values: Values, stdout: str) -> Outcome:
    return Outcome()


def read_lines(values: Values, stdout: str) -> Outcome:
    return Outcome(data=[line.strip() for line in stdout.splitlines() if line.strip()])


_INTEGER = re.compile(r"-?[0-9]{1,19}")


def as_bool(text: str) -> Any:
    return {"True": True, "False": False}.get(text, text)


def as_int(text: str) -> Any:
    return int(text) if _INTEGER.fullmatch(text) else text


def as_date(text: str) -> Any:
    """``str(datetime)`` (``2024-01-02 03:04:05+00:00``) as ISO 8601 (``2024-01-02T03:04:05+00:00``)."""
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return text


#: How one field of a command's JSON output is typed back: its printed text → its JSON value.
FieldTypes = Mapping[str, Callable[[str], Any]]


def typed(value: Any, fields: FieldTypes) -> Any:
    """Airflow's console prints every value of a row with ``str()`` (``"False"``, ``"128"``): the named fields
    get their JSON types back, in a row or in a list of rows. Values that are not strings stay as they are."""
    if isinstance(value, list):
        return [typed(item, fields) for item in value]
    if isinstance(value, dict):
        return {k: fields[k](v) if k in fields and isinstance(v, str) else v for k, v in value.items()}
    return value


def read_typed(fields: FieldTypes) -> Callable[[Values, str], Outcome]:
    """A reader for ``-o json`` output whose ``fields`` are typed (a command that printed no JSON: no data)."""

    def parse(values: Values, stdout: str) -> Outcome:
        return Outcome(data=typed(parse_json(stdout), fields))

    return parse

"""The API catalog: one declarative entry per plugin API, and the one place arguments are understood.

Each :class:`Api` names its arguments (with types, so validation happens before any process starts),
how they become an Airflow 3.3 argv (``build``), and how the command's output becomes ``data``
(``parse``). The plugin route, the HTML page and the README table are all generated from here.

Run ``python -m gateway.catalog`` to print the Markdown API table.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .output import Failure, parse_json
from .runner import Command

# Airflow's own patterns: airflow.utils.helpers.KEY_REGEX and [scheduler] allowed_run_id_pattern.
_KEY = re.compile(r"^[\w.-]+$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_.~:+-]+$")
_DATE_SHAPED = re.compile(r"^\d{4}-\d{2}-\d{2}")
_MAX_ID_CHARS = 250
_MAX_TEXT_CHARS = 65536
_TRUE = frozenset({"", "true", "1", "yes", "on", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "off", "n", "f"})

#: Environment for data commands: no warnings, no info logs, so stdout is the data.
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
#: Environment for commands whose info logs are their report (backfill creation, reserialize).
INFO_ENV = {"PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}


class ApiError(Exception):
    """A request the gateway refuses before running anything; ``status`` is the HTTP code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ArgType(enum.Enum):
    ID = "id"
    TEXT = "text"
    RUN_ID = "run_id"
    DATE = "date"
    DATE_OR_RUN_ID = "date_or_run_id"
    BOOL = "bool"
    INT = "int"
    JSON_OBJECT = "json_object"
    CHOICE = "choice"
    FILE = "file"
    #: A file upload, a JSON object, or a string holding one.
    JSON_DOCUMENT = "json_document"
    #: Names a path on the server: always refused.
    SERVER_PATH = "server_path"
    #: An old flag with no Airflow 3 equivalent: always refused, naming what to use instead.
    REMOVED = "removed"


class Kind(enum.Enum):
    #: A short command: run and answer.
    QUICK = "quick"
    #: Runs task code or creates many runs; may take minutes.
    LONG = "long"
    #: Starts a server that never returns.
    DAEMON = "daemon"
    #: Answered by the gateway itself (no CLI equivalent).
    CUSTOM = "custom"


@dataclass(frozen=True)
class Upload:
    """A file sent with the request (multipart) or a JSON document standing in for one."""

    filename: str
    content: bytes


@dataclass(frozen=True)
class Arg:
    name: str
    type: ArgType
    help: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    #: For SERVER_PATH and REMOVED: why it is refused and what to do instead.
    refusal: str = ""
    #: Masked in echoed arguments and in ``airflow_cmd``.
    secret: bool = False

    @property
    def accepted(self) -> bool:
        return self.type not in (ArgType.SERVER_PATH, ArgType.REMOVED)


Values = dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What a finished command means: parsed ``data``, or a failure despite exit code 0, or a warning."""

    data: Any = None
    failure: Failure | None = None
    warning: str | None = None


def _parse_json_output(values: Values, stdout: str) -> Outcome:
    return Outcome(data=parse_json(stdout))


@dataclass(frozen=True)
class Api:
    name: str
    summary: str
    #: The Airflow 3.3 command(s) it maps to, for people.
    runs: str
    args: tuple[Arg, ...] = ()
    build: Callable[[Values], Command] | None = None
    parse: Callable[[Values, str], Outcome] = _parse_json_output
    kind: Kind = Kind.QUICK
    methods: tuple[str, ...] = ("GET", "POST")
    #: The old plugin's "Available in Airflow Version" text.
    since: str = ""
    #: Set when Airflow 3 has no equivalent: the message, naming the replacement.
    gone: str = ""
    #: False when the log lines are the output (task runs): keep them in stdout.
    split_logs: bool = True
    notes: str = ""
    examples: tuple[str, ...] = field(default=())

    def arg(self, name: str) -> Arg | None:
        for arg in self.args:
            if name == arg.name or name in arg.aliases:
                return arg
        return None


# ----------------------------------------------------------------------------------------------------
# Validation


def parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return True
    if isinstance(value, str) and value.strip().lower() in _FALSE:
        return False
    raise ApiError(400, f"'{name}' must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}")


def parse_date(value: str) -> datetime | None:
    """ISO 8601 as Airflow accepts it; a ``+`` turned into a space by URL decoding is put back."""
    text = value.strip()
    for candidate in (text, text.replace(" ", "+")):
        try:
            return datetime.fromisoformat(candidate.replace("Z", "+00:00"))
        except ValueError:
            continue
    return None


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise ApiError(400, f"'{name}' must be a string")
    if "\x00" in value:
        raise ApiError(400, f"'{name}' contains a NUL character")
    if len(value) > _MAX_TEXT_CHARS:
        raise ApiError(400, f"'{name}' is longer than {_MAX_TEXT_CHARS} characters")
    return value


def _json_object(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ApiError(400, f"'{name}' is not valid JSON: {exc}") from None
        if isinstance(parsed, dict):
            return parsed
    raise ApiError(400, f'\'{name}\' must be a JSON object, like {{"key": "value"}}')


def _convert(arg: Arg, value: Any) -> Any:
    name = arg.name
    if arg.type is ArgType.BOOL:
        return parse_bool(name, value)
    if arg.type is ArgType.JSON_OBJECT:
        return _json_object(name, value)
    if arg.type is ArgType.FILE:
        if not isinstance(value, Upload):
            raise ApiError(400, f"'{name}' must be a file upload (multipart/form-data)")
        return value
    if arg.type is ArgType.JSON_DOCUMENT:
        if isinstance(value, Upload):
            return value
        document = _json_object(name, value) if not isinstance(value, str) or value.lstrip().startswith("{") else None
        if document is None:
            raise ApiError(400, f"'{name}' takes an uploaded file or a JSON object, not a path on the server")
        return Upload(f"{name}.json", json.dumps(document).encode())
    text = _as_text(name, value)
    if arg.type is ArgType.ID:
        if len(text) > _MAX_ID_CHARS or not _KEY.match(text) or text.startswith("-"):
            raise ApiError(
                400,
                f"'{name}' must be letters, digits, '_', '.', '-' (at most {_MAX_ID_CHARS}), "
                f"not starting with '-': {text!r}",
            )
        return text
    if arg.type is ArgType.RUN_ID:
        if len(text) > _MAX_ID_CHARS or not _RUN_ID.match(text) or text.startswith("-"):
            raise ApiError(400, f"'{name}' is not a valid run id: {text!r}")
        return text
    if arg.type is ArgType.DATE:
        parsed = parse_date(text)
        if parsed is None:
            raise ApiError(400, f"'{name}' is not a date: {text!r} (expected for example 2017-01-02T03:04:05)")
        return parsed.isoformat()
    if arg.type is ArgType.DATE_OR_RUN_ID:
        parsed = parse_date(text)
        if parsed is not None:
            return parsed.isoformat()
        if _DATE_SHAPED.match(text):
            raise ApiError(
                400, f"'{name}' must be a date (2017-01-02T03:04:05) or a run id; {text!r} is not a valid date"
            )
        if len(text) <= _MAX_ID_CHARS and _RUN_ID.match(text) and not text.startswith("-"):
            return text
        raise ApiError(400, f"'{name}' must be a date (2017-01-02T03:04:05) or a run id, got {text!r}")
    if arg.type is ArgType.INT:
        try:
            number = int(text)
        except ValueError:
            raise ApiError(400, f"'{name}' must be a whole number, got {text!r}") from None
        if number < 0:
            raise ApiError(400, f"'{name}' must not be negative")
        return number
    if arg.type is ArgType.CHOICE:
        if text not in arg.choices:
            raise ApiError(400, f"'{name}' must be one of {', '.join(arg.choices)}; got {text!r}")
        return text
    return text


def validate(api: Api, raw: Mapping[str, Any]) -> Values:
    """Turn request values into typed ones, or raise :class:`ApiError` (400) before anything runs.

    ``raw`` maps argument names (or aliases) to strings from a query/form, JSON values, or
    :class:`Upload`\\ s. An empty string means "present without a value": true for booleans, absent otherwise.
    """
    values: Values = {}
    unknown = []
    for key, value in raw.items():
        arg = api.arg(key)
        if arg is None:
            unknown.append(key)
            continue
        if arg.type is ArgType.REMOVED:
            raise ApiError(400, f"'{key}' has no Airflow 3 equivalent: {arg.refusal}")
        if arg.type is ArgType.SERVER_PATH:
            raise ApiError(400, f"'{key}' names a path on the server, which the gateway never accepts: {arg.refusal}")
        if value is None or (value == "" and arg.type is not ArgType.BOOL):
            continue
        if arg.name in values:
            raise ApiError(400, f"'{arg.name}' was given twice (as {key!r} and another spelling)")
        values[arg.name] = _convert(arg, value)
    if unknown:
        known = ", ".join(a.name for a in api.args if a.accepted) or "none"
        raise ApiError(400, f"Unknown argument(s) for API '{api.name}': {', '.join(sorted(unknown))}. Known: {known}")
    missing = [a.name for a in api.args if a.required and a.name not in values]
    if missing:
        raise ApiError(400, f"The argument(s) {missing} are required")
    return values


# ----------------------------------------------------------------------------------------------------
# Shared arguments


def _dag_id(help_text: str = "The id of the DAG") -> Arg:
    return Arg("dag_id", ArgType.ID, help_text, required=True)


TASK_ID = Arg("task_id", ArgType.ID, "The id of the task", required=True)
EXECUTION_DATE = Arg(
    "execution_date",
    ArgType.DATE_OR_RUN_ID,
    "Logical date of the DAG run (2017-01-02T03:04:05) or its run id",
    required=True,
    aliases=("logical_date",),
)
MAP_INDEX = Arg("map_index", ArgType.INT, "Index of a mapped task instance")
SUBDIR = Arg(
    "subdir",
    ArgType.SERVER_PATH,
    "(refused) File location or directory from which to look for the dag",
    refusal="Airflow 3 finds DAGs through the configured DAG bundle; upload files with api=deploy_dag.",
)
_DAEMON_REFUSAL = "the gateway never starts detached daemons or writes to server paths for them."


def _server_path(name: str, what: str) -> Arg:
    return Arg(name, ArgType.SERVER_PATH, f"(refused) {what}", refusal=_DAEMON_REFUSAL)


def _removed(name: str, what: str, instead: str) -> Arg:
    return Arg(name, ArgType.REMOVED, f"(no Airflow 3 equivalent) {what}", refusal=instead)


DAEMON_PATH_ARGS = (
    _server_path("pid", "PID file location"),
    _server_path("stdout", "Redirect stdout to this file"),
    _server_path("stderr", "Redirect stderr to this file"),
    _server_path("log-file", "Location of the log file"),
    _removed("daemon", "Daemonize instead of running in the foreground", _DAEMON_REFUSAL),
)


def _airflow(*argv: str, env: Mapping[str, str] = DATA_ENV, secrets: tuple[str, ...] = ()) -> Command:
    return Command(argv=tuple(argv), env=env, secrets=secrets)


def _opt(flag: str, value: Any) -> tuple[str, ...]:
    """``--flag=value`` (one argv element, so a value can never be read as another option), or nothing."""
    if value is None:
        return ()
    if isinstance(value, dict):
        value = json.dumps(value)
    return (f"{flag}={value}",)


def _flag(flag: str, on: bool | None) -> tuple[str, ...]:
    return (flag,) if on else ()


def _one_action(api: str, values: Values, actions: tuple[str, ...]) -> str | None:
    chosen = [a for a in actions if values.get(a) not in (None, False)]
    if len(chosen) > 1:
        raise ApiError(400, f"API '{api}' takes one action at a time; got {', '.join(chosen)}")
    return chosen[0] if chosen else None


def _run_ref(values: Values) -> tuple[str, ...]:
    return (values["dag_id"], values["task_id"], values["execution_date"])


# ----------------------------------------------------------------------------------------------------
# Output parsers


def _plain(values: Values, stdout: str) -> Outcome:
    return Outcome()


def _lines(values: Values, stdout: str) -> Outcome:
    return Outcome(data=[line.strip() for line in stdout.splitlines() if line.strip()])


def _task_state(values: Values, stdout: str) -> Outcome:
    state = stdout.strip().splitlines()[-1].strip() if stdout.strip() else "None"
    return Outcome(data={"state": None if state == "None" else state})


def _dag_state(values: Values, stdout: str) -> Outcome:
    text = stdout.strip().splitlines()[-1].strip() if stdout.strip() else "None"
    if text == "None":
        return Outcome(failure=Failure(404, f"DagRun not found: {values['dag_id']} {values['execution_date']}"))
    state, _, conf = text.partition(", ")
    return Outcome(data={"state": state, "conf": parse_json(conf) if conf else {}})


def _trigger(values: Values, stdout: str) -> Outcome:
    parsed = parse_json(stdout)
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
        run = dict(parsed[0])
        run["run_id"] = run.get("dag_run_id")
        return Outcome(data=run)
    return Outcome(data=parsed)


def _pause(paused: bool) -> Callable[[Values, str], Outcome]:
    def parse(values: Values, stdout: str) -> Outcome:
        before = parse_json(stdout)
        if isinstance(before, list) and before:
            return Outcome(data={"dag_id": values["dag_id"], "is_paused": paused, "changed": True})
        return Outcome(
            data={"dag_id": values["dag_id"], "is_paused": paused, "changed": False},
            warning=f"Nothing changed: DAG '{values['dag_id']}' is already {'paused' if paused else 'unpaused'}, "
            "or does not exist",
        )

    return parse


_NEW_STATE = re.compile(r"new_state=(\w+)")


def _task_run(values: Values, stdout: str) -> Outcome:
    states = _NEW_STATE.findall(stdout)
    state = states[-1] if states else None
    if state == "failed":
        # `airflow tasks test` exits 0 even when the task fails; the caller must not read that as success.
        return Outcome(data={"state": state}, failure=Failure(500, "The task ended in state 'failed'"))
    return Outcome(data={"state": state})


def _variable_get(values: Values, stdout: str) -> Outcome:
    if "get" not in values:
        return Outcome(data=parse_json(stdout))
    value = stdout[:-1] if stdout.endswith("\n") else stdout
    if not values.get("json"):
        return Outcome(data=value)
    try:
        return Outcome(data=json.loads(value))
    except ValueError:
        return Outcome(data=value, warning=f"Variable {values['get']!r} does not hold valid JSON; returned as text")


# ----------------------------------------------------------------------------------------------------
# Builders


def _render(v: Values) -> Command:
    return _airflow("tasks", "render", *_opt("--map-index", v.get("map_index")), "--", *_run_ref(v))


def _failed_deps(v: Values) -> Command:
    return _airflow("tasks", "failed-deps", *_opt("--map-index", v.get("map_index")), "--", *_run_ref(v))


def _task_state_cmd(v: Values) -> Command:
    return _airflow("tasks", "state", *_opt("--map-index", v.get("map_index")), "--", *_run_ref(v))


def _variables(v: Values) -> Command:
    if v.get("cmd") == "set" or "key" in v or "value" in v:
        if "set" in v:
            raise ApiError(
                400, "Give the variable either as set=KEY&set_value=VALUE or as cmd=set&key=KEY&value=VALUE, not both"
            )
        if v.get("cmd") != "set":
            raise ApiError(400, "'key' and 'value' go with cmd=set")
        v = {**v, "set": v.get("key"), "set_value": v.get("value")}
        if v["set"] is None:
            raise ApiError(400, "cmd=set needs 'key'")
    action = _one_action("variables", v, ("set", "get", "delete", "import", "export"))
    if action == "set":
        if v.get("set_value") is None:
            raise ApiError(400, "Setting a variable needs 'set_value' (or cmd=set&key=..&value=..)")
        return _airflow(
            "variables", "set", *_opt("--description", v.get("description")), "--", v["set"], v["set_value"]
        )
    if action == "get":
        # Not `--json`: Airflow then prints a Python repr. The value is fetched raw and decoded in _variable_get.
        return _airflow("variables", "get", *_opt("--default", v.get("default")), "--", v["get"])
    if action == "delete":
        return _airflow("variables", "delete", "--", v["delete"])
    if action == "import":
        return Command(
            argv=(
                "variables",
                "import",
                *_opt("--action-on-existing-key", v.get("action_on_existing_key")),
                "--",
                "{file:variables.json}",
            ),
            env=DATA_ENV,
            files={"variables.json": v["import"].content},
        )
    if action == "export":
        return _airflow("variables", "export", "-")
    return _airflow("variables", "list", "-o", "json")


def _connections(v: Values) -> Command:
    action = _one_action("connections", v, ("list", "add", "delete"))
    if action in ("add", "delete") and "conn_id" not in v:
        raise ApiError(400, f"connections {action} needs 'conn_id'")
    if action == "delete":
        return _airflow("connections", "delete", "--", v["conn_id"])
    if action == "add":
        if not any(k in v for k in ("conn_uri", "conn_type", "conn_json")):
            raise ApiError(400, "connections add needs 'conn_uri', 'conn_type' or 'conn_json'")
        secrets = tuple(s for s in (_uri_password(v.get("conn_uri")), v.get("conn_password")) if s)
        if "conn_json" in v and v["conn_json"].get("password"):
            secrets += (str(v["conn_json"]["password"]),)
        flags = [
            *_opt("--conn-uri", v.get("conn_uri")),
            *_opt("--conn-json", v.get("conn_json")),
            *_opt("--conn-type", v.get("conn_type")),
            *_opt("--conn-host", v.get("conn_host")),
            *_opt("--conn-login", v.get("conn_login")),
            *_opt("--conn-password", v.get("conn_password")),
            *_opt("--conn-port", v.get("conn_port")),
            *_opt("--conn-schema", v.get("conn_schema")),
            *_opt("--conn-extra", v.get("conn_extra")),
            *_opt("--conn-description", v.get("conn_description")),
        ]
        return _airflow("connections", "add", *flags, "--", v["conn_id"], secrets=secrets)
    return _airflow("connections", "list", "-o", "json")


def _uri_password(uri: str | None) -> str | None:
    if not uri:
        return None
    try:
        return urlsplit(uri).password
    except ValueError:
        return None


def _pause_cmd(sub: str) -> Callable[[Values], Command]:
    return lambda v: _airflow("dags", sub, "-o", "json", "--", v["dag_id"])


def _trigger_cmd(v: Values) -> Command:
    return _airflow(
        "dags",
        "trigger",
        "-o",
        "json",
        *_opt("--run-id", v.get("run_id")),
        *_opt("--conf", v.get("conf")),
        *_opt("--logical-date", v.get("exec_date")),
        *_flag("--no-replace-microseconds", v.get("replace_microseconds") is False),
        "--",
        v["dag_id"],
    )


def _test_cmd(v: Values) -> Command:
    ref = (v["dag_id"], v["task_id"], *((v["execution_date"],) if "execution_date" in v else ()))
    return Command(
        argv=(
            "tasks",
            "test",
            *_opt("--task-params", v.get("task_params")),
            *_opt("--env-vars", v.get("env_vars")),
            *_opt("--map-index", v.get("map_index")),
            "--",
            *ref,
        ),
        env=TASK_ENV,
    )


def _dag_state_cmd(v: Values) -> Command:
    return _airflow("dags", "state", "--", v["dag_id"], v["execution_date"])


def _list_tasks(v: Values) -> Command:
    if v.get("tree"):
        return _airflow("dags", "show", "--", v["dag_id"])
    return _airflow("tasks", "list", "--", v["dag_id"])


def _backfill(v: Values) -> Command:
    start, end = v.get("start_date"), v.get("end_date")
    if start is None and end is None:
        raise ApiError(400, "backfill needs 'start_date' or 'end_date' (one alone backfills that single date)")
    return Command(
        argv=(
            "backfill",
            "create",
            f"--dag-id={v['dag_id']}",
            f"--from-date={start or end}",
            f"--to-date={end or start}",
            *_flag("--dry-run", v.get("dry_run")),
            *_flag("--run-backwards", v.get("run_backwards")),
            *_opt("--reprocess-behavior", v.get("reprocess_behavior")),
            *_opt("--max-active-runs", v.get("max_active_runs")),
            *_opt("--dag-run-conf", v.get("dag_run_conf")),
        ),
        env=INFO_ENV,
    )


def _list_dags(v: Values) -> Command:
    return _airflow("dags", "report" if v.get("report") else "list", "-o", "json")


def _pool(v: Values) -> Command:
    if v.get("cmd") == "set" or "pool_name" in v:
        if "set" in v:
            raise ApiError(
                400,
                "Give the pool either as set='NAME SLOTS DESCRIPTION' or as cmd=set&pool_name=..&slot_count=.., "
                "not both",
            )
        if "pool_name" not in v or "slot_count" not in v:
            raise ApiError(400, "cmd=set needs 'pool_name' and 'slot_count'")
        name, slots, description = v["pool_name"], v["slot_count"], v.get("pool_description", "")
        v = {**v, "set": name}
    elif "set" in v:
        parts = v["set"].split(maxsplit=2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ApiError(400, "'set' takes 'NAME SLOT_COUNT DESCRIPTION', for example set=etl 5 nightly jobs")
        name, slots, description = parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""
    action = _one_action("pool", v, ("set", "get", "delete"))
    if action == "set":
        return _airflow(
            "pools", "set", *_flag("--include-deferred", v.get("include_deferred")), "--", name, str(slots), description
        )
    if action == "get":
        return _airflow("pools", "get", "-o", "json", "--", v["get"])
    if action == "delete":
        return _airflow("pools", "delete", "--", v["delete"])
    return _airflow("pools", "list", "-o", "json")


def _clear(v: Values) -> Command:
    if v.get("task_regex") is not None:
        try:
            re.compile(v["task_regex"])
        except re.error as exc:
            raise ApiError(400, f"'task_regex' is not a valid regular expression: {exc}") from None
    if "run_id" in v:
        if any(k in v for k in ("task_regex", "start_date", "end_date", "upstream", "downstream")):
            raise ApiError(
                400, "With 'run_id' the whole run is cleared; task_regex, dates, upstream and downstream do not apply"
            )
        flags = (*_flag("--only-failed", v.get("only_failed")), *_flag("--only-running", v.get("only_running")))
        return _airflow("dags", "clear", "-y", f"--run-id={v['run_id']}", *flags, "--", v["dag_id"])
    return _airflow(
        "tasks",
        "clear",
        "-y",
        *_opt("--task-regex", v.get("task_regex")),
        *_opt("--start-date", v.get("start_date")),
        *_opt("--end-date", v.get("end_date")),
        *_flag("--upstream", v.get("upstream")),
        *_flag("--downstream", v.get("downstream")),
        *_flag("--only-failed", v.get("only_failed")),
        *_flag("--only-running", v.get("only_running")),
        "--",
        v["dag_id"],
    )


def _refresh_dag(v: Values) -> Command:
    return Command(argv=("refresh-dag", v["dag_id"]), helper=True, env=DATA_ENV)


def _refresh_all(v: Values) -> Command:
    return _airflow("dags", "reserialize", env=INFO_ENV)


def _delete_dag(v: Values) -> Command:
    return _airflow("dags", "delete", "-y", "--", v["dag_id"], env=INFO_ENV)


# ----------------------------------------------------------------------------------------------------
# The catalog

_RUN_REMOVED = "Airflow 3 has no `tasks run`; the gateway runs `tasks test` against the given run instead."
_BACKFILL_REMOVED = "Airflow 3's `backfill create` only creates runs for the scheduler; this option is gone."
_CELERY = "Needs apache-airflow-providers-celery (Airflow 3: `airflow celery worker|flower`)."

APIS: tuple[Api, ...] = (
    Api(
        name="version",
        summary="Gets the version of Airflow currently running",
        runs="airflow version",
        build=lambda v: _airflow("version"),
        parse=_plain,
        since="1.0.0 or greater",
    ),
    Api(
        name="rest_api_plugin_version",
        summary="Displays the version of this gateway (the plugin-compatible API version)",
        runs="(answered by the gateway)",
        kind=Kind.CUSTOM,
        since="None - Custom API",
    ),
    Api(
        name="render",
        summary="Render a task instance's template(s)",
        runs="airflow tasks render DAG_ID TASK_ID DATE_OR_RUN_ID",
        args=(_dag_id(), TASK_ID, EXECUTION_DATE, MAP_INDEX, SUBDIR),
        build=_render,
        parse=_plain,
        since="1.7.0 or greater",
    ),
    Api(
        name="variables",
        summary="CRUD operations on variables",
        runs="airflow variables list|set|get|delete|import|export",
        args=(
            Arg("set", ArgType.TEXT, "Sets a variable: the key. Needs set_value"),
            Arg("set_value", ArgType.TEXT, "The value of the variable (with set)"),
            Arg("cmd", ArgType.CHOICE, "cmd=set with key and value: the plugin form's way to set", choices=("set",)),
            Arg("key", ArgType.TEXT, "Variable key (with cmd=set)"),
            Arg("value", ArgType.TEXT, "Variable value (with cmd=set)"),
            Arg("description", ArgType.TEXT, "Description stored with a variable being set"),
            Arg("get", ArgType.TEXT, "Get the value of a variable"),
            Arg("json", ArgType.BOOL, "Deserialize the JSON value of the variable (with get)"),
            Arg("default", ArgType.TEXT, "Value returned if the variable does not exist (with get)"),
            Arg("import", ArgType.JSON_DOCUMENT, "Import variables: an uploaded .json file or a JSON object"),
            Arg(
                "action_on_existing_key",
                ArgType.CHOICE,
                "On import, what to do with keys that exist",
                choices=("overwrite", "fail", "skip"),
            ),
            Arg("export", ArgType.BOOL, "Export all variables; the JSON is returned in the response"),
            Arg("delete", ArgType.TEXT, "Delete a variable"),
        ),
        build=_variables,
        parse=_variable_get,
        since="1.7.1 or greater",
        notes="With no action it lists variable keys. import/export never touch server paths.",
    ),
    Api(
        name="connections",
        summary="List/Add/Delete connections",
        runs="airflow connections list|add|delete",
        args=(
            Arg("list", ArgType.BOOL, "List all connections (ids and types; no secrets)"),
            Arg("add", ArgType.BOOL, "Add a connection"),
            Arg("delete", ArgType.BOOL, "Delete a connection"),
            Arg("conn_id", ArgType.ID, "Connection id, required to add/delete a connection"),
            Arg("conn_uri", ArgType.TEXT, "Connection URI, to add a connection", secret=True),
            Arg("conn_type", ArgType.TEXT, "Connection type, to add a connection without a URI"),
            Arg("conn_json", ArgType.JSON_OBJECT, "The whole connection as JSON, to add a connection", secret=True),
            Arg("conn_extra", ArgType.JSON_OBJECT, "Connection 'Extra' field (JSON object)"),
            Arg("conn_host", ArgType.TEXT, "Host"),
            Arg("conn_login", ArgType.TEXT, "Login"),
            Arg("conn_password", ArgType.TEXT, "Password", secret=True),
            Arg("conn_port", ArgType.INT, "Port"),
            Arg("conn_schema", ArgType.TEXT, "Schema"),
            Arg("conn_description", ArgType.TEXT, "Description"),
        ),
        build=_connections,
        since="1.8.0 or greater",
    ),
    Api(
        name="pause",
        summary="Pauses a DAG",
        runs="airflow dags pause DAG_ID",
        args=(_dag_id(), SUBDIR),
        build=_pause_cmd("pause"),
        parse=_pause(True),
        since="1.7.0 or greater",
    ),
    Api(
        name="unpause",
        summary="Resume a paused DAG",
        runs="airflow dags unpause DAG_ID",
        args=(_dag_id(), SUBDIR),
        build=_pause_cmd("unpause"),
        parse=_pause(False),
        since="1.7.0 or greater",
    ),
    Api(
        name="task_failed_deps",
        summary="Returns the unmet dependencies for a task instance from the perspective of the scheduler",
        runs="airflow tasks failed-deps DAG_ID TASK_ID DATE_OR_RUN_ID",
        args=(_dag_id(), TASK_ID, EXECUTION_DATE, MAP_INDEX, SUBDIR),
        build=_failed_deps,
        parse=_plain,
        since="1.8.0 or greater",
    ),
    Api(
        name="trigger_dag",
        summary="Triggers a DAG to run; returns the run id and logical date",
        runs="airflow dags trigger DAG_ID",
        args=(
            _dag_id("The DAG ID of the DAG you want to trigger"),
            Arg("run_id", ArgType.RUN_ID, "The RUN ID to use for the DAG run"),
            Arg("conf", ArgType.JSON_OBJECT, "Configuration to pass to the DAG run (a JSON object)"),
            Arg(
                "exec_date",
                ArgType.DATE,
                "Logical date of the run (Airflow 3 leaves it empty when not given)",
                aliases=("execution_date", "logical_date"),
            ),
            Arg("replace_microseconds", ArgType.BOOL, "false keeps the microseconds of exec_date"),
            SUBDIR,
        ),
        build=_trigger_cmd,
        parse=_trigger,
        since="1.6.0 or greater",
    ),
    Api(
        name="test",
        summary="Test a task instance: run it now, without checking dependencies",
        runs="airflow tasks test DAG_ID TASK_ID [DATE_OR_RUN_ID]",
        args=(
            _dag_id(),
            TASK_ID,
            Arg(
                "execution_date",
                ArgType.DATE_OR_RUN_ID,
                "Logical date or run id (optional; without it Airflow makes a temporary run)",
                aliases=("logical_date",),
            ),
            Arg("task_params", ArgType.JSON_OBJECT, "A JSON params dict for the task"),
            Arg("env_vars", ArgType.JSON_OBJECT, "Environment variables for the task (JSON object)"),
            MAP_INDEX,
            _removed("dry_run", "Perform a dry run", "use api=render to see the rendered templates."),
            SUBDIR,
        ),
        build=_test_cmd,
        parse=_task_run,
        kind=Kind.LONG,
        split_logs=False,
        since="0.1 or greater",
        notes="Against an existing run, Airflow 3 records the task's state. A failed task answers status ERROR.",
    ),
    Api(
        name="dag_state",
        summary="Get the status of a dag run",
        runs="airflow dags state DAG_ID DATE_OR_RUN_ID",
        args=(_dag_id(), EXECUTION_DATE, SUBDIR),
        build=_dag_state_cmd,
        parse=_dag_state,
        since="1.8.0 or greater",
    ),
    Api(
        name="run",
        summary="Run a single task instance (Airflow 3: `tasks test` against the given run)",
        runs="airflow tasks test DAG_ID TASK_ID DATE_OR_RUN_ID",
        args=(
            _dag_id(),
            TASK_ID,
            EXECUTION_DATE,
            MAP_INDEX,
            _removed("mark_success", "Mark jobs as succeeded without running them", _RUN_REMOVED),
            _removed("force", "Ignore previous task instance state", _RUN_REMOVED),
            _removed("pool", "Resource pool to use", "set pool= on the operator."),
            _removed("local", "Run the task using the LocalExecutor", _RUN_REMOVED),
            _removed("ignore_all_dependencies", "Ignore all non-critical dependencies", _RUN_REMOVED),
            _removed("ignore_dependencies", "Ignore task-specific dependencies", _RUN_REMOVED),
            _removed("ignore_depends_on_past", "Ignore depends_on_past dependencies", _RUN_REMOVED),
            _removed(
                "ship_dag", "Pickles the DAG and ships it to the worker", "DAG pickling was removed in Airflow 3."
            ),
            Arg(
                "pickle",
                ArgType.SERVER_PATH,
                "(refused) Serialized pickle of the DAG",
                refusal="DAG pickling was removed in Airflow 3.",
            ),
            Arg(
                "cfg_path",
                ArgType.SERVER_PATH,
                "(refused) Path to config file",
                refusal="configure Airflow through the gateway's airflow.env.",
            ),
            SUBDIR,
        ),
        build=_test_cmd,
        parse=_task_run,
        kind=Kind.LONG,
        split_logs=False,
        since="1.0.0 or greater",
        notes="Airflow 3 removed `tasks run`; this runs `tasks test` on the given run, which records the task's state.",
    ),
    Api(
        name="list_tasks",
        summary="List the tasks within a DAG",
        runs="airflow tasks list DAG_ID (tree: airflow dags show DAG_ID)",
        args=(_dag_id(), Arg("tree", ArgType.BOOL, "Graph of the DAG in DOT format (`dags show`)"), SUBDIR),
        build=_list_tasks,
        parse=lambda v, out: _plain(v, out) if v.get("tree") else _lines(v, out),
        since="0.1 or greater",
    ),
    Api(
        name="backfill",
        summary="Create backfill runs of a DAG for a date range (Airflow 3's scheduler runs them)",
        runs="airflow backfill create --dag-id DAG_ID --from-date START --to-date END",
        args=(
            _dag_id(),
            Arg("start_date", ArgType.DATE, "First logical date, YYYY-MM-DD (alone: just that date)"),
            Arg("end_date", ArgType.DATE, "Last logical date, YYYY-MM-DD (alone: just that date)"),
            Arg("dry_run", ArgType.BOOL, "Only print the dates that would be run"),
            Arg(
                "reprocess_behavior",
                ArgType.CHOICE,
                "What to do with dates that already have runs",
                choices=("none", "completed", "failed"),
            ),
            Arg("max_active_runs", ArgType.INT, "At most this many backfill runs at once"),
            Arg("run_backwards", ArgType.BOOL, "Run the most recent dates first"),
            Arg("dag_run_conf", ArgType.JSON_OBJECT, "conf for every created run (JSON object)"),
            _removed("task_regex", "Regex to filter task ids", _BACKFILL_REMOVED),
            _removed("mark_success", "Mark jobs as succeeded without running them", _BACKFILL_REMOVED),
            _removed("local", "Run using the LocalExecutor", _BACKFILL_REMOVED),
            _removed("donot_pickle", "Do not pickle the DAG", "DAG pickling was removed in Airflow 3."),
            _removed("include_adhoc", "Include adhoc tasks", _BACKFILL_REMOVED),
            _removed("ignore_dependencies", "Ignore task-specific dependencies", _BACKFILL_REMOVED),
            _removed("ignore_first_depends_on_past", "Ignore depends_on_past for the first runs", _BACKFILL_REMOVED),
            _removed("pool", "Resource pool to use", "set pool= on the operator."),
            SUBDIR,
        ),
        build=_backfill,
        parse=_plain,
        kind=Kind.LONG,
        since="0.1 or greater",
    ),
    Api(
        name="list_dags",
        summary="List all the DAGs",
        runs="airflow dags list (report: airflow dags report)",
        args=(Arg("report", ArgType.BOOL, "Show the DagBag loading report"), SUBDIR),
        build=_list_dags,
        since="0.1 or greater",
    ),
    Api(
        name="kerberos",
        summary="Start a kerberos ticket renewer (daemon)",
        runs="airflow kerberos [PRINCIPAL]",
        args=(
            Arg("principal", ArgType.TEXT, "kerberos principal"),
            Arg("keytab", ArgType.SERVER_PATH, "(refused) keytab", refusal=_DAEMON_REFUSAL),
            *DAEMON_PATH_ARGS,
        ),
        kind=Kind.DAEMON,
        since="1.6.0 or greater",
    ),
    Api(
        name="worker",
        summary="Start a Celery worker node (daemon)",
        runs="airflow celery worker",
        args=(
            Arg("queues", ArgType.TEXT, "Comma delimited list of queues to serve"),
            Arg("concurrency", ArgType.INT, "The number of worker processes"),
            _removed("do_pickle", "Attempt to pickle the DAG", "DAG pickling was removed in Airflow 3."),
            *DAEMON_PATH_ARGS,
        ),
        kind=Kind.DAEMON,
        since="0.1 or greater",
        notes=_CELERY,
    ),
    Api(
        name="flower",
        summary="Start a Celery Flower monitoring server (daemon)",
        runs="airflow celery flower",
        args=(
            Arg("hostname", ArgType.TEXT, "Set the hostname on which to run the server"),
            Arg("port", ArgType.INT, "The port on which to run the server"),
            Arg("broker_api", ArgType.TEXT, "Broker api"),
            Arg("flower_conf", ArgType.SERVER_PATH, "(refused) Configuration file for flower", refusal=_DAEMON_REFUSAL),
            *DAEMON_PATH_ARGS,
        ),
        kind=Kind.DAEMON,
        since="1.0.0 or greater",
        notes=_CELERY,
    ),
    Api(
        name="scheduler",
        summary="Start a scheduler instance (daemon)",
        runs="airflow scheduler",
        args=(
            Arg("num_runs", ArgType.INT, "Set the number of runs to execute before exiting"),
            _removed("dag_id", "Schedule one DAG only", "the Airflow 3 scheduler has no per-DAG mode."),
            _removed("run-duration", "Seconds to execute before exiting", "use num_runs."),
            _removed("do_pickle", "Attempt to pickle the DAG", "DAG pickling was removed in Airflow 3."),
            SUBDIR,
            *DAEMON_PATH_ARGS,
        ),
        kind=Kind.DAEMON,
        since="1.0.0 or greater",
    ),
    Api(
        name="task_state",
        summary="Get the status of a task instance",
        runs="airflow tasks state DAG_ID TASK_ID DATE_OR_RUN_ID",
        args=(_dag_id(), TASK_ID, EXECUTION_DATE, MAP_INDEX, SUBDIR),
        build=_task_state_cmd,
        parse=_task_state,
        since="1.0.0 or greater",
    ),
    Api(
        name="pool",
        summary="CRUD operations on pools",
        runs="airflow pools list|set|get|delete",
        args=(
            Arg("set", ArgType.TEXT, "Set pool slot count and description: 'NAME SLOT_COUNT POOL_DESCRIPTION'"),
            Arg("cmd", ArgType.CHOICE, "cmd=set with pool_name, slot_count, pool_description", choices=("set",)),
            Arg("pool_name", ArgType.TEXT, "Pool name (with cmd=set)"),
            Arg("slot_count", ArgType.INT, "Slot count (with cmd=set)"),
            Arg("pool_description", ArgType.TEXT, "Pool description (with cmd=set)", aliases=("description",)),
            Arg("include_deferred", ArgType.BOOL, "Count deferred tasks against the pool's slots"),
            Arg("get", ArgType.TEXT, "Get pool info"),
            Arg("delete", ArgType.TEXT, "Delete a pool"),
        ),
        build=_pool,
        since="1.8.0 or greater",
        notes="With no action it lists pools.",
    ),
    Api(
        name="serve_logs",
        summary="Serve logs generated by workers",
        runs="(none in Airflow 3)",
        kind=Kind.DAEMON,
        gone="Airflow 3 has no serve-logs command: the log server runs inside the scheduler and triggerer "
        "(see [logging] worker_log_server_port).",
        since="0.1 or greater",
    ),
    Api(
        name="clear",
        summary="Clear a set of task instances, as if they never ran",
        runs="airflow tasks clear DAG_ID -y (run_id: airflow dags clear DAG_ID --run-id RUN -y)",
        args=(
            _dag_id(),
            Arg("task_regex", ArgType.TEXT, "The regex to filter specific task_ids to clear"),
            Arg("start_date", ArgType.DATE, "Override start_date YYYY-MM-DD"),
            Arg("end_date", ArgType.DATE, "Override end_date YYYY-MM-DD"),
            Arg("run_id", ArgType.RUN_ID, "Clear this whole run (runs without a logical date need it)"),
            Arg("upstream", ArgType.BOOL, "Include upstream tasks"),
            Arg("downstream", ArgType.BOOL, "Include downstream tasks"),
            Arg("no_confirm", ArgType.BOOL, "Do not request confirmation (the gateway never prompts)"),
            Arg("only_failed", ArgType.BOOL, "Only failed jobs"),
            Arg("only_running", ArgType.BOOL, "Only running jobs"),
            _removed("exclude_subdags", "Exclude subdags", "SubDAGs were removed in Airflow 3."),
            SUBDIR,
        ),
        build=_clear,
        parse=_plain,
        since="0.1 or greater",
    ),
    Api(
        name="deploy_dag",
        summary="Deploy a new DAG file: checked in a child process, written atomically, serialized at once",
        runs="(gateway) parse in a child, atomic write to the DAGs folder, serialize",
        args=(
            Arg("dag_file", ArgType.FILE, "Python file to upload and deploy", required=True),
            Arg("force", ArgType.BOOL, "Replace the file if it already exists"),
            Arg("pause", ArgType.BOOL, "Pause every DAG in the file"),
            Arg("unpause", ArgType.BOOL, "Unpause every DAG in the file"),
        ),
        kind=Kind.CUSTOM,
        methods=("POST",),
        since="None - Custom API",
    ),
    Api(
        name="refresh_dag",
        summary="Refresh a DAG: parse its file again and store the result",
        runs="(gateway helper) parse the DAG's file and serialize it",
        args=(_dag_id(),),
        build=_refresh_dag,
        since="None - Custom API",
    ),
    Api(
        name="refresh_all_dags",
        summary="Refresh all DAGs: parse every file again and store the result",
        runs="airflow dags reserialize",
        build=_refresh_all,
        parse=_plain,
        since="None - Custom API",
    ),
    Api(
        name="delete_dag",
        summary="Delete all DB records of a DAG (the file stays; delete it to stop it coming back)",
        runs="airflow dags delete DAG_ID -y",
        args=(_dag_id(),),
        build=_delete_dag,
        parse=_plain,
        since="None - Custom API",
    ),
)

CATALOG: Mapping[str, Api] = {api.name: api for api in APIS}


def example_query(api: Api) -> str:
    """``api=NAME&arg=value`` with the required arguments (every argument for a short list)."""
    parts = [f"api={api.name}"]
    for arg in api.args:
        if not arg.accepted or arg.type is ArgType.FILE or not arg.required:
            continue
        parts.append(f"{arg.name}={_EXAMPLE_VALUES.get(arg.type, 'value')}")
    return "&".join(parts)


_EXAMPLE_VALUES = {ArgType.ID: "value", ArgType.DATE_OR_RUN_ID: "2017-01-02T03:04:05", ArgType.DATE: "2017-01-02"}


def markdown_table() -> str:
    """The API table for the README, generated so it cannot drift from the code."""
    rows = ["| API | Airflow 3.3 command | Arguments | Kind |", "|---|---|---|---|"]
    for api in APIS:
        args = ", ".join(f"`{a.name}`{'*' if a.required else ''}" for a in api.args if a.accepted) or "-"
        runs = api.gone or api.runs
        rows.append(f"| `{api.name}` | {runs} | {args} | {api.kind.value} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())

"""How each API's values become an Airflow 3.3 argv (builders), and how its output becomes ``data`` (parsers).

Conventions every builder keeps: option values are one ``--flag=value`` element (a value can never
be read as another option); positionals come after ``--``; stdin is always ``/dev/null`` and
prompting commands get ``-y``; the environment profile keeps Airflow's log noise out of the data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ..output import Failure, parse_json
from ..runner import Command
from .model import ApiError, Arg, ArgType, Outcome, Values, parse_date

#: Airflow's column sizes: longer values fail in the database (PostgreSQL) or are cut.
VARIABLE_KEY_CHARS = 250
POOL_NAME_CHARS = 256
CONNECTION_FIELD_CHARS = 500
#: ``airflow connections add`` validates the id with max_length=200.
CONN_ID_CHARS = 200
#: What Connection(...) takes from --conn-json (anything else is a TypeError in Airflow).
CONN_JSON_KEYS = frozenset({"conn_type", "description", "host", "login", "password", "schema", "port", "extra", "uri"})
#: The CLI refuses these beside --conn-uri or --conn-json.
_CONN_FIELDS = ("conn_type", "conn_host", "conn_login", "conn_password", "conn_port", "conn_schema")

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


# Shared arguments


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
MAP_INDEX = Arg("map_index", ArgType.INT, "Index of a mapped task instance")
SUBDIR = Arg(
    "subdir",
    ArgType.SERVER_PATH,
    "(refused) File location or directory from which to look for the dag",
    refusal="Airflow 3 finds DAGs through the configured DAG bundle; upload files with api=deploy_dag.",
)
DAEMON_REFUSAL = "the gateway never starts detached daemons or writes to server paths for them."


def _server_path(name: str, what: str) -> Arg:
    return Arg(name, ArgType.SERVER_PATH, f"(refused) {what}", refusal=DAEMON_REFUSAL)


def name_arg(name: str, help_text: str, max_chars: int) -> Arg:
    """Text that names something (a variable key, a pool, a host): one line, at most Airflow's column size."""
    return Arg(name, ArgType.TEXT, help_text, max_chars=max_chars, single_line=True)


def removed(name: str, what: str, instead: str) -> Arg:
    return Arg(name, ArgType.REMOVED, f"(no Airflow 3 equivalent) {what}", refusal=instead)


DAEMON_PATH_ARGS = (
    _server_path("pid", "PID file location"),
    _server_path("stdout", "Redirect stdout to this file"),
    _server_path("stderr", "Redirect stderr to this file"),
    _server_path("log-file", "Location of the log file"),
    removed("daemon", "Daemonize instead of running in the foreground", DAEMON_REFUSAL),
)


def airflow(*argv: str, env: Mapping[str, str] = DATA_ENV, secrets: tuple[str, ...] = ()) -> Command:
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


# Output parsers


def plain(values: Values, stdout: str) -> Outcome:
    return Outcome()


def lines(values: Values, stdout: str) -> Outcome:
    return Outcome(data=[line.strip() for line in stdout.splitlines() if line.strip()])


def task_state(values: Values, stdout: str) -> Outcome:
    state = stdout.strip().splitlines()[-1].strip() if stdout.strip() else "None"
    return Outcome(data={"state": None if state == "None" else state})


def dag_state(values: Values, stdout: str) -> Outcome:
    text = stdout.strip().splitlines()[-1].strip() if stdout.strip() else "None"
    if text == "None":
        return Outcome(failure=Failure(404, f"DagRun not found: {values['dag_id']} {values['execution_date']}"))
    state, _, conf = text.partition(", ")
    return Outcome(data={"state": state, "conf": parse_json(conf) if conf else {}})


def trigger(values: Values, stdout: str) -> Outcome:
    parsed = parse_json(stdout)
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
        run = dict(parsed[0])
        run["run_id"] = run.get("dag_run_id")
        return Outcome(data=run)
    return Outcome(data=parsed)


def pause(paused: bool) -> Callable[[Values, str], Outcome]:
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


def task_run(values: Values, stdout: str) -> Outcome:
    states = _NEW_STATE.findall(stdout)
    state = states[-1] if states else None
    if state == "failed":
        # `airflow tasks test` exits 0 even when the task fails; the caller must not read that as success.
        return Outcome(data={"state": state}, failure=Failure(500, "The task ended in state 'failed'"))
    return Outcome(data={"state": state})


def variable_get(values: Values, stdout: str) -> Outcome:
    if "get" not in values:
        return Outcome(data=parse_json(stdout))
    value = stdout[:-1] if stdout.endswith("\n") else stdout
    if not values.get("json"):
        return Outcome(data=value)
    try:
        return Outcome(data=json.loads(value))
    except ValueError:
        return Outcome(data=value, warning=f"Variable {values['get']!r} does not hold valid JSON; returned as text")


# Builders


def render(v: Values) -> Command:
    return airflow("tasks", "render", *_opt("--map-index", v.get("map_index")), "--", *_run_ref(v))


def failed_deps(v: Values) -> Command:
    return airflow("tasks", "failed-deps", *_opt("--map-index", v.get("map_index")), "--", *_run_ref(v))


def task_state_cmd(v: Values) -> Command:
    return airflow("tasks", "state", *_opt("--map-index", v.get("map_index")), "--", *_run_ref(v))


def variables(v: Values) -> Command:
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
        return airflow("variables", "set", *_opt("--description", v.get("description")), "--", v["set"], v["set_value"])
    if action == "get":
        # Not `--json`: Airflow then prints a Python repr. The value is fetched raw and decoded in variable_get.
        return airflow("variables", "get", *_opt("--default", v.get("default")), "--", v["get"])
    if action == "delete":
        return airflow("variables", "delete", "--", v["delete"])
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
        return airflow("variables", "export", "-")
    return airflow("variables", "list", "-o", "json")


def _check_uri(uri: str) -> None:
    """What Airflow's Connection(uri=...) needs: a scheme, a host part that parses, a whole-number port."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ApiError(400, f"'conn_uri' is not a valid URI: {exc}") from None
    if not parts.scheme or not parts.netloc:
        raise ApiError(400, "'conn_uri' must look like scheme://[login[:password]@]host[:port][/schema]")


def _check_conn_json(document: dict[str, Any]) -> None:
    """What Airflow's Connection.from_json needs: known keys, a whole-number port, ``extra`` as an object,
    a valid ``uri`` (alone), and a ``conn_type`` unless the uri carries one."""
    unknown = sorted(set(document) - CONN_JSON_KEYS)
    if unknown:
        raise ApiError(400, f"'conn_json' has unknown key(s) {unknown}; known: {', '.join(sorted(CONN_JSON_KEYS))}")
    if "uri" in document and set(document) - {"uri", "description", "extra"}:
        raise ApiError(400, "'conn_json' gives either a uri or the separate fields, not both")
    if "uri" not in document and not document.get("conn_type"):
        raise ApiError(400, "'conn_json' needs a conn_type")
    for key in ("conn_type", "description", "host", "login", "password", "schema"):
        if document.get(key) is not None and not isinstance(document[key], str):
            raise ApiError(400, f"'conn_json' {key} must be a string")
    port = document.get("port")
    if port is not None and not re.fullmatch(r"[0-9]{1,5}", str(port) if not isinstance(port, bool) else ""):
        raise ApiError(400, "'conn_json' port must be a whole number from 0 to 65535")
    extra = document.get("extra")
    if isinstance(extra, str) and extra.strip():
        try:
            extra = json.loads(extra)
        except ValueError:
            extra = None
        if not isinstance(extra, dict):
            raise ApiError(400, "'conn_json' extra must be a JSON object (or a string holding one)")
    elif extra is not None and not isinstance(extra, dict | str):
        raise ApiError(400, "'conn_json' extra must be a JSON object (or a string holding one)")
    if "uri" in document:
        if not isinstance(document["uri"], str):
            raise ApiError(400, "'conn_json' uri must be a string")
        _check_uri(document["uri"])


def connections(v: Values) -> Command:
    action = _one_action("connections", v, ("list", "add", "delete"))
    if action in ("add", "delete") and "conn_id" not in v:
        raise ApiError(400, f"connections {action} needs 'conn_id'")
    if action == "delete":
        return airflow("connections", "delete", "--", v["conn_id"])
    if action == "add":
        if not any(k in v for k in ("conn_uri", "conn_type", "conn_json")):
            raise ApiError(400, "connections add needs 'conn_uri', 'conn_type' or 'conn_json'")
        whole = [k for k in ("conn_uri", "conn_json") if k in v]
        others = [k for k in (*_CONN_FIELDS, *(("conn_extra",) if "conn_json" in v else ())) if k in v]
        if len(whole) > 1 or (whole and others):
            raise ApiError(
                400, f"'{whole[0]}' gives the whole connection; it cannot go with {', '.join(whole[1:] + others)}"
            )
        if "conn_uri" in v:
            _check_uri(v["conn_uri"])
        if "conn_json" in v:
            _check_conn_json(v["conn_json"])
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
        return airflow("connections", "add", *flags, "--", v["conn_id"], secrets=secrets)
    return airflow("connections", "list", "-o", "json")


def _uri_password(uri: str | None) -> str | None:
    if not uri:
        return None
    try:
        return urlsplit(uri).password
    except ValueError:
        return None


def pause_cmd(sub: str) -> Callable[[Values], Command]:
    return lambda v: airflow("dags", sub, "-o", "json", "--", v["dag_id"])


def trigger_cmd(v: Values) -> Command:
    return airflow(
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


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_env_vars(env_vars: dict[str, Any]) -> None:
    for key, value in env_vars.items():
        if not _ENV_NAME.fullmatch(key) or not isinstance(value, str) or "\x00" in value:
            raise ApiError(400, "'env_vars' maps variable names (letters, digits, '_') to strings")


def test_cmd(v: Values) -> Command:
    if "env_vars" in v:
        _check_env_vars(v["env_vars"])
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


def dag_state_cmd(v: Values) -> Command:
    return airflow("dags", "state", "--", v["dag_id"], v["execution_date"])


def list_tasks(v: Values) -> Command:
    if v.get("tree"):
        return airflow("dags", "show", "--", v["dag_id"])
    return airflow("tasks", "list", "--", v["dag_id"])


def _utc(validated_date: str) -> datetime:
    moment = parse_date(validated_date)
    assert moment is not None  # validated before the builder runs
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def backfill(v: Values) -> Command:
    start, end = v.get("start_date"), v.get("end_date")
    if start is None and end is None:
        raise ApiError(400, "backfill needs 'start_date' or 'end_date' (one alone backfills that single date)")
    if start is not None and end is not None and _utc(start) > _utc(end):
        raise ApiError(400, "'start_date' is after 'end_date'")
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


def list_dags(v: Values) -> Command:
    return airflow("dags", "report" if v.get("report") else "list", "-o", "json")


def pool(v: Values) -> Command:
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
        if len(parts) < 2 or not re.fullmatch(r"[0-9]{1,9}", parts[1]) or len(parts[0]) > POOL_NAME_CHARS:
            raise ApiError(
                400,
                f"'set' takes 'NAME SLOT_COUNT DESCRIPTION' (a name of at most {POOL_NAME_CHARS} characters, "
                "a whole number of slots), for example set=etl 5 nightly jobs",
            )
        name, slots, description = parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""
    action = _one_action("pool", v, ("set", "get", "delete"))
    if action == "set":
        return airflow(
            "pools", "set", *_flag("--include-deferred", v.get("include_deferred")), "--", name, str(slots), description
        )
    if action == "get":
        return airflow("pools", "get", "-o", "json", "--", v["get"])
    if action == "delete":
        return airflow("pools", "delete", "--", v["delete"])
    return airflow("pools", "list", "-o", "json")


def clear(v: Values) -> Command:
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
        return airflow("dags", "clear", "-y", f"--run-id={v['run_id']}", *flags, "--", v["dag_id"])
    return airflow(
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


def _celery(*argv: str) -> Command:
    import importlib.util

    if importlib.util.find_spec("airflow.providers.celery") is None:
        raise ApiError(501, "This API needs apache-airflow-providers-celery, which is not installed")
    return airflow("celery", *argv, env=INFO_ENV)


def scheduler(v: Values) -> Command:
    return airflow("scheduler", *_opt("--num-runs", v.get("num_runs")), env=INFO_ENV)


def triggerer(v: Values) -> Command:
    return airflow("triggerer", *_opt("--capacity", v.get("capacity")), env=INFO_ENV)


def dag_processor(v: Values) -> Command:
    return airflow("dag-processor", *_opt("--num-runs", v.get("num_runs")), env=INFO_ENV)


def kerberos(v: Values) -> Command:
    return airflow("kerberos", *(("--", v["principal"]) if "principal" in v else ()), env=INFO_ENV)


def worker(v: Values) -> Command:
    return _celery("worker", *_opt("--queues", v.get("queues")), *_opt("--concurrency", v.get("concurrency")))


def flower(v: Values) -> Command:
    return _celery(
        "flower",
        *_opt("--hostname", v.get("hostname")),
        *_opt("--port", v.get("port")),
        *_opt("--broker-api", v.get("broker_api")),
    )


def refresh_dag(v: Values) -> Command:
    return Command(argv=("refresh-dag", v["dag_id"]), helper=True, env=DATA_ENV)


def refresh_all(v: Values) -> Command:
    return airflow("dags", "reserialize", env=INFO_ENV)


def delete_dag(v: Values) -> Command:
    return airflow("dags", "delete", "-y", "--", v["dag_id"], env=INFO_ENV)

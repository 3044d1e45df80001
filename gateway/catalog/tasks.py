"""Task instances: list, render, state, failed deps, test/run, clear."""

from __future__ import annotations

import re
from typing import Any

from .. import airflow_release
from ..output import Failure
from ..runner import Command
from .common import (
    EXECUTION_DATE,
    MAP_INDEX,
    SUBDIR,
    TASK_ENV,
    TASK_ID,
    airflow,
    dag_id,
    flag,
    no_data,
    opt,
    read_lines,
    removed,
    run_ref,
)
from .model import Api, ApiError, Arg, ArgType, Kind, Outcome, Values


def read_task_state(values: Values, stdout: str) -> Outcome:
    state = stdout.strip().splitlines()[-1].strip() if stdout.strip() else "None"
    return Outcome(data={"state": None if state == "None" else state})


def read_failed_deps(values: Values, stdout: str) -> Outcome:
    """``{"met": bool, "failed": [{"dep", "reason"}]}``, sorted by dependency (Airflow checks them in set order)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines or lines[0] != "Task instance dependencies not met:":
        return Outcome(data={"met": any("are all met" in line for line in lines), "failed": []})
    failed = [dict(zip(("dep", "reason"), line.split(": ", 1), strict=False)) for line in lines[1:]]
    return Outcome(data={"met": False, "failed": sorted(failed, key=lambda d: (d["dep"], d.get("reason", "")))})


_NEW_STATE = re.compile(r"new_state=(\w+)")


def read_task_run(values: Values, stdout: str) -> Outcome:
    states = _NEW_STATE.findall(stdout)
    state = states[-1] if states else None
    if state == "failed":
        # `airflow tasks test` exits 0 even when the task fails; the caller must not read that as success.
        # 422, not 5xx: the gateway did its part; the task (its code, or the params it was given) failed.
        return Outcome(data={"state": state}, failure=Failure(422, "The task ended in state 'failed'"))
    return Outcome(data={"state": state})


def build_render(v: Values) -> Command:
    return airflow("tasks", "render", *opt("--map-index", v.get("map_index")), "--", *run_ref(v))


def build_failed_deps(v: Values) -> Command:
    return airflow("tasks", "failed-deps", *opt("--map-index", v.get("map_index")), "--", *run_ref(v))


def build_task_state(v: Values) -> Command:
    return airflow("tasks", "state", *opt("--map-index", v.get("map_index")), "--", *run_ref(v))


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_env_vars(env_vars: dict[str, Any]) -> None:
    for key, value in env_vars.items():
        if not _ENV_NAME.fullmatch(key) or not isinstance(value, str) or "\x00" in value:
            raise ApiError(400, "'env_vars' maps variable names (letters, digits, '_') to strings")


def build_test(v: Values) -> Command:
    if "env_vars" in v:
        _check_env_vars(v["env_vars"])
    ref = (v["dag_id"], v["task_id"], *((v["execution_date"],) if "execution_date" in v else ()))
    return Command(
        argv=(
            "tasks",
            "test",
            *opt("--task-params", v.get("task_params")),
            *opt("--env-vars", v.get("env_vars")),
            *opt("--map-index", v.get("map_index")),
            "--",
            *ref,
        ),
        env=TASK_ENV,
    )


def build_list_tasks(v: Values) -> Command:
    if v.get("tree"):
        return airflow("dags", "show", "--", v["dag_id"])
    return airflow("tasks", "list", "--", v["dag_id"])


def build_clear(v: Values) -> Command:
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
        missing = airflow_release.needs((3, 3), "Clearing one run by 'run_id' (airflow dags clear --run-id)")
        if missing:
            raise ApiError(400, f"{missing}: clear by start_date and end_date instead")
        flags = (*flag("--only-failed", v.get("only_failed")), *flag("--only-running", v.get("only_running")))
        return airflow("dags", "clear", "-y", f"--run-id={v['run_id']}", *flags, "--", v["dag_id"])
    return airflow(
        "tasks",
        "clear",
        "-y",
        *opt("--task-regex", v.get("task_regex")),
        *opt("--start-date", v.get("start_date")),
        *opt("--end-date", v.get("end_date")),
        *flag("--upstream", v.get("upstream")),
        *flag("--downstream", v.get("downstream")),
        *flag("--only-failed", v.get("only_failed")),
        *flag("--only-running", v.get("only_running")),
        "--",
        v["dag_id"],
    )


_RUN_REMOVED = "Airflow 3 has no `tasks run`; the gateway runs `tasks test` against the given run instead."


APIS: tuple[Api, ...] = (
    Api(
        name="list_tasks",
        summary="List the tasks within a DAG",
        runs="airflow tasks list DAG_ID (tree: airflow dags show DAG_ID)",
        args=(dag_id(), Arg("tree", ArgType.BOOL, "Graph of the DAG in DOT format (`dags show`)"), SUBDIR),
        build=build_list_tasks,
        parse=lambda v, out: no_data(v, out) if v.get("tree") else read_lines(v, out),
        fast_path=True,
        since="0.1 or greater",
    ),
    Api(
        name="render",
        summary="Render a task instance's template(s)",
        runs="airflow tasks render DAG_ID TASK_ID DATE_OR_RUN_ID",
        args=(dag_id(), TASK_ID, EXECUTION_DATE, MAP_INDEX, SUBDIR),
        build=build_render,
        parse=no_data,
        since="1.7.0 or greater",
    ),
    Api(
        name="task_state",
        summary="Get the status of a task instance",
        runs="airflow tasks state DAG_ID TASK_ID DATE_OR_RUN_ID",
        args=(dag_id(), TASK_ID, EXECUTION_DATE, MAP_INDEX, SUBDIR),
        build=build_task_state,
        parse=read_task_state,
        fast_path=True,
        since="1.0.0 or greater",
    ),
    Api(
        name="task_failed_deps",
        summary="Returns the unmet dependencies for a task instance from the perspective of the scheduler",
        runs="airflow tasks failed-deps DAG_ID TASK_ID DATE_OR_RUN_ID",
        args=(dag_id(), TASK_ID, EXECUTION_DATE, MAP_INDEX, SUBDIR),
        build=build_failed_deps,
        parse=read_failed_deps,
        fast_path=True,
        since="1.8.0 or greater",
    ),
    Api(
        name="test",
        summary="Test a task instance: run it now, without checking dependencies",
        runs="airflow tasks test DAG_ID TASK_ID [DATE_OR_RUN_ID]",
        args=(
            dag_id(),
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
            removed("dry_run", "Perform a dry run", "use api=render to see the rendered templates."),
            SUBDIR,
        ),
        build=build_test,
        parse=read_task_run,
        kind=Kind.LONG,
        split_logs=False,
        since="0.1 or greater",
        notes="Against an existing run, Airflow 3 records the task's state. A failed task answers status ERROR.",
    ),
    Api(
        name="run",
        summary="Run a single task instance (Airflow 3: `tasks test` against the given run)",
        runs="airflow tasks test DAG_ID TASK_ID DATE_OR_RUN_ID",
        args=(
            dag_id(),
            TASK_ID,
            EXECUTION_DATE,
            MAP_INDEX,
            removed("mark_success", "Mark jobs as succeeded without running them", _RUN_REMOVED),
            removed("force", "Ignore previous task instance state", _RUN_REMOVED),
            removed("pool", "Resource pool to use", "set pool= on the operator."),
            removed("local", "Run the task using the LocalExecutor", _RUN_REMOVED),
            removed("ignore_all_dependencies", "Ignore all non-critical dependencies", _RUN_REMOVED),
            removed("ignore_dependencies", "Ignore task-specific dependencies", _RUN_REMOVED),
            removed("ignore_depends_on_past", "Ignore depends_on_past dependencies", _RUN_REMOVED),
            removed("ship_dag", "Pickles the DAG and ships it to the worker", "DAG pickling was removed in Airflow 3."),
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
        build=build_test,
        parse=read_task_run,
        kind=Kind.LONG,
        split_logs=False,
        since="1.0.0 or greater",
        notes="Airflow 3 removed `tasks run`; this runs `tasks test` on the given run, which records the task's state.",
    ),
    Api(
        name="clear",
        summary="Clear a set of task instances, as if they never ran",
        runs="airflow tasks clear DAG_ID -y (run_id: airflow dags clear DAG_ID --run-id RUN -y)",
        args=(
            dag_id(),
            Arg("task_regex", ArgType.TEXT, "The regex to filter specific task_ids to clear"),
            Arg("start_date", ArgType.DATE, "Override start_date YYYY-MM-DD"),
            Arg("end_date", ArgType.DATE, "Override end_date YYYY-MM-DD"),
            Arg("run_id", ArgType.RUN_ID, "Clear this whole run (runs without a logical date need it)"),
            Arg("upstream", ArgType.BOOL, "Include upstream tasks"),
            Arg("downstream", ArgType.BOOL, "Include downstream tasks"),
            Arg("no_confirm", ArgType.BOOL, "Do not request confirmation (the gateway never prompts)"),
            Arg("only_failed", ArgType.BOOL, "Only failed jobs"),
            Arg("only_running", ArgType.BOOL, "Only running jobs"),
            removed("exclude_subdags", "Exclude subdags", "SubDAGs were removed in Airflow 3."),
            SUBDIR,
        ),
        build=build_clear,
        parse=no_data,
        since="0.1 or greater",
    ),
)

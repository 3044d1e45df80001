"""DAGs and their runs: list, pause, trigger, state, backfill, refresh, delete."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ..output import Failure, parse_json
from ..runner import Command
from .common import (
    DATA_ENV,
    EXECUTION_DATE,
    INFO_ENV,
    SUBDIR,
    WAIT_TIMEOUT,
    FieldTypes,
    airflow,
    as_bool,
    as_date,
    as_int,
    dag_id,
    flag,
    no_data,
    opt,
    read_typed,
    removed,
    typed,
)
from .model import Api, ApiError, Arg, ArgType, Kind, Outcome, Values, parse_date


def read_dag_state(values: Values, stdout: str) -> Outcome:
    text = stdout.strip().splitlines()[-1].strip() if stdout.strip() else "None"
    if text == "None":
        return Outcome(failure=Failure(404, f"DagRun not found: {values['dag_id']} {values['execution_date']}"))
    state, _, conf = text.partition(", ")
    return Outcome(data={"state": state, "conf": parse_json(conf) if conf else {}})


#: ``dags list`` (its columns and ``DAGResponse``'s others, for a caller's ``columns``) and ``dags report``.
DAG_FIELDS: FieldTypes = {
    **dict.fromkeys(("is_paused", "is_stale", "has_import_errors", "has_task_concurrency_limits"), as_bool),
    **dict.fromkeys(("timetable_partitioned", "timetable_periodic", "is_backfillable"), as_bool),
    **dict.fromkeys(("max_active_tasks", "max_active_runs", "max_consecutive_failed_dag_runs"), as_int),
    **dict.fromkeys(("dag_num", "task_num"), as_int),
    **dict.fromkeys(("last_parsed_time", "last_expired", "next_dagrun_logical_date", "next_dagrun_run_after"), as_date),
    **dict.fromkeys(("next_dagrun_data_interval_start", "next_dagrun_data_interval_end"), as_date),
}

#: The run ``dags trigger`` prints.
RUN_FIELDS: FieldTypes = dict.fromkeys(
    ("logical_date", "data_interval_start", "data_interval_end", "start_date", "end_date", "last_scheduling_decision"),
    as_date,
)


def read_trigger(values: Values, stdout: str) -> Outcome:
    """The run, typed; its ``conf`` as Airflow stored it: the JSON object sent (the CLI prints ``str()`` of each
    value, so ``true`` would read back as ``"True"``)."""
    parsed = parse_json(stdout)
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
        run = typed(parsed[0], RUN_FIELDS)
        run["run_id"] = run.get("dag_run_id")
        if "conf" in run:
            run["conf"] = values.get("conf") or {}
        return Outcome(data=run)
    return Outcome(data=parsed)


def read_pause(paused: bool) -> Callable[[Values, str], Outcome]:
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


def build_pause(sub: str) -> Callable[[Values], Command]:
    return lambda v: airflow("dags", sub, "-o", "json", "--", v["dag_id"])


def build_trigger(v: Values) -> Command:
    return airflow(
        "dags",
        "trigger",
        "-o",
        "json",
        *opt("--run-id", v.get("run_id")),
        *opt("--conf", v.get("conf")),
        *opt("--logical-date", v.get("exec_date")),
        *flag("--no-replace-microseconds", v.get("replace_microseconds") is False),
        "--",
        v["dag_id"],
    )


def build_dag_state(v: Values) -> Command:
    return airflow("dags", "state", "--", v["dag_id"], v["execution_date"])


def _utc(validated_date: str) -> datetime:
    moment = parse_date(validated_date)
    assert moment is not None  # validated before the builder runs
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def build_backfill(v: Values) -> Command:
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
            *flag("--dry-run", v.get("dry_run")),
            *flag("--run-backwards", v.get("run_backwards")),
            *opt("--reprocess-behavior", v.get("reprocess_behavior")),
            *opt("--max-active-runs", v.get("max_active_runs")),
            *opt("--dag-run-conf", v.get("dag_run_conf")),
        ),
        env=INFO_ENV,
    )


def build_list_dags(v: Values) -> Command:
    return airflow("dags", "report" if v.get("report") else "list", "-o", "json")


def build_refresh_dag(v: Values) -> Command:
    return Command(argv=("refresh-dag", v["dag_id"]), helper=True, env=DATA_ENV)


def build_refresh_all(v: Values) -> Command:
    return airflow("dags", "reserialize", env=INFO_ENV)


def build_delete_dag(v: Values) -> Command:
    return airflow("dags", "delete", "-y", "--", v["dag_id"], env=INFO_ENV)


_BACKFILL_REMOVED = "Airflow 3's `backfill create` only creates runs for the scheduler; this option is gone."


APIS: tuple[Api, ...] = (
    Api(
        name="list_dags",
        summary="List all the DAGs",
        runs="airflow dags list (report: airflow dags report)",
        args=(Arg("report", ArgType.BOOL, "Show the DagBag loading report"), SUBDIR),
        build=build_list_dags,
        parse=read_typed(DAG_FIELDS),
        fast_path=True,
        since="0.1 or greater",
    ),
    Api(
        name="pause",
        summary="Pauses a DAG",
        runs="airflow dags pause DAG_ID",
        args=(dag_id(), SUBDIR),
        build=build_pause("pause"),
        parse=read_pause(True),
        since="1.7.0 or greater",
    ),
    Api(
        name="unpause",
        summary="Resume a paused DAG",
        runs="airflow dags unpause DAG_ID",
        args=(dag_id(), SUBDIR),
        build=build_pause("unpause"),
        parse=read_pause(False),
        since="1.7.0 or greater",
    ),
    Api(
        name="trigger_dag",
        summary="Triggers a DAG to run; returns the run id and logical date",
        runs="airflow dags trigger DAG_ID",
        args=(
            dag_id("The DAG ID of the DAG you want to trigger"),
            Arg("run_id", ArgType.RUN_ID, "The RUN ID to use for the DAG run"),
            Arg("conf", ArgType.JSON_OBJECT, "Configuration to pass to the DAG run (a JSON object)"),
            Arg(
                "exec_date",
                ArgType.DATE,
                "Logical date of the run (Airflow 3 leaves it empty when not given)",
                aliases=("execution_date", "logical_date"),
            ),
            Arg("replace_microseconds", ArgType.BOOL, "false keeps the microseconds of exec_date"),
            Arg(
                "wait",
                ArgType.BOOL,
                "Answer when the run has finished: its state and every task's (with stream=true: as it goes, "
                "with the tasks' log lines)",
            ),
            WAIT_TIMEOUT,
            SUBDIR,
        ),
        build=build_trigger,
        parse=read_trigger,
        waits=True,
        needs_scheduler=True,
        since="1.6.0 or greater",
    ),
    Api(
        name="dag_state",
        summary="Get the status of a dag run",
        runs="airflow dags state DAG_ID DATE_OR_RUN_ID",
        args=(dag_id(), EXECUTION_DATE, SUBDIR),
        build=build_dag_state,
        parse=read_dag_state,
        needs_scheduler=True,
        fast_path=True,
        since="1.8.0 or greater",
    ),
    Api(
        name="watch_dag_run",
        summary="Follow a DAG run until it finishes: its state, every task's, and (stream=true) the tasks' log lines",
        runs="(gateway) read the run from Airflow's database until it finishes; tail its task logs",
        args=(
            dag_id(),
            Arg(
                "run_id",
                ArgType.DATE_OR_RUN_ID,
                "The run: its run id, or its logical date (2017-01-02T03:04:05)",
                required=True,
                aliases=("execution_date", "logical_date"),
            ),
            WAIT_TIMEOUT,
        ),
        kind=Kind.WATCH,
        since="None - Custom API",
    ),
    Api(
        name="backfill",
        summary="Create backfill runs of a DAG for a date range (Airflow 3's scheduler runs them)",
        runs="airflow backfill create --dag-id DAG_ID --from-date START --to-date END",
        args=(
            dag_id(),
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
            removed("task_regex", "Regex to filter task ids", _BACKFILL_REMOVED),
            removed("mark_success", "Mark jobs as succeeded without running them", _BACKFILL_REMOVED),
            removed("local", "Run using the LocalExecutor", _BACKFILL_REMOVED),
            removed("donot_pickle", "Do not pickle the DAG", "DAG pickling was removed in Airflow 3."),
            removed("include_adhoc", "Include adhoc tasks", _BACKFILL_REMOVED),
            removed("ignore_dependencies", "Ignore task-specific dependencies", _BACKFILL_REMOVED),
            removed("ignore_first_depends_on_past", "Ignore depends_on_past for the first runs", _BACKFILL_REMOVED),
            removed("pool", "Resource pool to use", "set pool= on the operator."),
            SUBDIR,
        ),
        build=build_backfill,
        parse=no_data,
        kind=Kind.LONG,
        since="0.1 or greater",
    ),
    Api(
        name="refresh_dag",
        summary="Refresh a DAG: parse its file again and store the result",
        runs="(gateway helper) parse the DAG's file and serialize it",
        args=(dag_id(),),
        build=build_refresh_dag,
        since="None - Custom API",
    ),
    Api(
        name="refresh_all_dags",
        summary="Refresh all DAGs: parse every file again and store the result",
        runs="airflow dags reserialize",
        build=build_refresh_all,
        parse=no_data,
        since="None - Custom API",
    ),
    Api(
        name="delete_dag",
        summary="Delete all DB records of a DAG (the file stays; delete it to stop it coming back)",
        runs="airflow dags delete DAG_ID -y",
        args=(dag_id(),),
        build=build_delete_dag,
        parse=no_data,
        since="None - Custom API",
    ),
)

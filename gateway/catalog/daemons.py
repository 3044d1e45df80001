"""Long-running Airflow services, which run only as background jobs and are disabled by default."""

from __future__ import annotations

from ..runner import Command
from .common import INFO_ENV, SUBDIR, airflow, opt, removed
from .model import Api, ApiError, Arg, ArgType, Kind, Values

DAEMON_REFUSAL = "the gateway never starts detached daemons or writes to server paths for them."


def _server_path(name: str, what: str) -> Arg:
    return Arg(name, ArgType.SERVER_PATH, f"(refused) {what}", refusal=DAEMON_REFUSAL)


DAEMON_PATH_ARGS = (
    _server_path("pid", "PID file location"),
    _server_path("stdout", "Redirect stdout to this file"),
    _server_path("stderr", "Redirect stderr to this file"),
    _server_path("log-file", "Location of the log file"),
    removed("daemon", "Daemonize instead of running in the foreground", DAEMON_REFUSAL),
)


def _celery(*argv: str) -> Command:
    import importlib.util

    if importlib.util.find_spec("airflow.providers.celery") is None:
        raise ApiError(501, "This API needs apache-airflow-providers-celery, which is not installed")
    return airflow("celery", *argv, env=INFO_ENV)


def build_scheduler(v: Values) -> Command:
    return airflow("scheduler", *opt("--num-runs", v.get("num_runs")), env=INFO_ENV)


def build_triggerer(v: Values) -> Command:
    return airflow("triggerer", *opt("--capacity", v.get("capacity")), env=INFO_ENV)


def build_dag_processor(v: Values) -> Command:
    return airflow("dag-processor", *opt("--num-runs", v.get("num_runs")), env=INFO_ENV)


def build_kerberos(v: Values) -> Command:
    return airflow("kerberos", *(("--", v["principal"]) if "principal" in v else ()), env=INFO_ENV)


def build_worker(v: Values) -> Command:
    return _celery("worker", *opt("--queues", v.get("queues")), *opt("--concurrency", v.get("concurrency")))


def build_flower(v: Values) -> Command:
    return _celery(
        "flower",
        *opt("--hostname", v.get("hostname")),
        *opt("--port", v.get("port")),
        *opt("--broker-api", v.get("broker_api")),
    )


_CELERY = "Needs apache-airflow-providers-celery (Airflow 3: `airflow celery worker|flower`)."


APIS: tuple[Api, ...] = (
    Api(
        name="scheduler",
        summary="Start a scheduler instance (daemon)",
        runs="airflow scheduler",
        args=(
            Arg("num_runs", ArgType.INT, "Set the number of runs to execute before exiting"),
            removed("dag_id", "Schedule one DAG only", "the Airflow 3 scheduler has no per-DAG mode."),
            removed("run-duration", "Seconds to execute before exiting", "use num_runs."),
            removed("do_pickle", "Attempt to pickle the DAG", "DAG pickling was removed in Airflow 3."),
            SUBDIR,
            *DAEMON_PATH_ARGS,
        ),
        build=build_scheduler,
        kind=Kind.DAEMON,
        since="1.0.0 or greater",
    ),
    Api(
        name="triggerer",
        summary="Start a triggerer (daemon): runs deferred tasks' triggers",
        runs="airflow triggerer",
        args=(Arg("capacity", ArgType.INT, "How many triggers one triggerer runs at most"),),
        build=build_triggerer,
        kind=Kind.DAEMON,
        since="None - Airflow 3",
    ),
    Api(
        name="dag_processor",
        summary="Start a DAG processor (daemon): parses DAG files into the database",
        runs="airflow dag-processor",
        args=(Arg("num_runs", ArgType.INT, "Parse this many times, then exit"),),
        build=build_dag_processor,
        kind=Kind.DAEMON,
        since="None - Airflow 3",
    ),
    Api(
        name="kerberos",
        summary="Start a kerberos ticket renewer (daemon)",
        runs="airflow kerberos [PRINCIPAL]",
        args=(
            Arg("principal", ArgType.TEXT, "kerberos principal"),
            Arg("keytab", ArgType.SERVER_PATH, "(refused) keytab", refusal=DAEMON_REFUSAL),
            *DAEMON_PATH_ARGS,
        ),
        build=build_kerberos,
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
            removed("do_pickle", "Attempt to pickle the DAG", "DAG pickling was removed in Airflow 3."),
            *DAEMON_PATH_ARGS,
        ),
        build=build_worker,
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
            Arg("port", ArgType.INT, "The port on which to run the server", max_value=65535),
            Arg("broker_api", ArgType.TEXT, "Broker api"),
            Arg("flower_conf", ArgType.SERVER_PATH, "(refused) Configuration file for flower", refusal=DAEMON_REFUSAL),
            *DAEMON_PATH_ARGS,
        ),
        build=build_flower,
        kind=Kind.DAEMON,
        since="1.0.0 or greater",
        notes=_CELERY,
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
)

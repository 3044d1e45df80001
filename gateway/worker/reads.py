"""The plugin's read-only APIs, answered inside the Airflow worker by Airflow's own CLI code, without a fork.

The gateway sends the argv it would run; Airflow's own parser reads it, and the function behind the
command (undecorated: no audit-log write, no provider loading per call) runs with those arguments,
printing into a per-thread capture. The answer is ``{"exit_code", "stdout", "stderr"}``, as if the
command had run. ``SystemExit`` is
the CLI's exit; any other exception exits 1 with its last traceback line on stderr, as Python
prints it. So the gateway reads the answer with the same readers as a forked command's, and the
two paths cannot differ in ``data``.

DAG structure comes from the serialized DAG in the database (never from DAG files). What cannot be
answered exactly that way (a DAG that was never serialized, whose file the CLI would parse) answers
``{"fallback": reason}``: the gateway then runs the CLI.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import sys
import threading
import traceback
from argparse import Namespace
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

Result = tuple[int, Any]


class ThreadStdout(io.TextIOBase):
    """``sys.stdout`` for a threaded worker: what a thread prints goes to its own capture, else to ``fallback``.

    ``contextlib.redirect_stdout`` swaps a process-wide global, so concurrent reads would mix their output.
    """

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback
        self._local = threading.local()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return False  # as the CLI's stdout, a pipe (Airflow's console then uses its fixed width)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        buffer = getattr(self._local, "buffer", None)
        return (buffer or self.fallback).write(text)

    def flush(self) -> None:
        if getattr(self._local, "buffer", None) is None:
            self.fallback.flush()

    @contextlib.contextmanager
    def capture(self) -> Iterator[io.StringIO]:
        self._local.buffer = buffer = io.StringIO()
        try:
            yield buffer
        finally:
            self._local.buffer = None


def install_stdout() -> ThreadStdout:
    """Make ``sys.stdout`` per-thread capturable (once); Python's own output otherwise goes to stderr."""
    if not isinstance(sys.stdout, ThreadStdout):
        sys.stdout = ThreadStdout(sys.stderr)
    return sys.stdout


class Fallback(Exception):
    """The read cannot be answered exactly from the database: the gateway runs the CLI instead."""


def _as_cli(command: Callable[[], Any]) -> Result:
    """Run ``command`` as the CLI would and answer what it printed and how it exited."""
    stdout = install_stdout()
    exit_code, stderr = 0, ""
    with stdout.capture() as printed:
        try:
            command()
        except Fallback as reason:
            return 200, {"fallback": str(reason)}
        except SystemExit as exc:  # the CLI's refusals: a message on stderr, exit code 1
            if isinstance(exc.code, int) or exc.code is None:
                exit_code = exc.code or 0
            else:
                exit_code, stderr = 1, f"{exc.code}\n"
        except Exception as exc:  # Airflow's traceback would end with this line
            exit_code, stderr = 1, "".join(traceback.format_exception_only(exc))
    return 200, {"exit_code": exit_code, "stdout": printed.getvalue(), "stderr": stderr}


@functools.cache
def _cli(module: str, name: str) -> Callable[..., Any]:
    """The function behind a CLI command, without its decorators (audit log entry, provider loading, logs).

    Commands that ask ``get_current_api_client()`` for Airflow's local client get one made once: making it
    builds an HTTP client (an SSL context, ~20 ms) that the local client never uses.
    """
    from importlib import import_module

    commands = import_module(f"airflow.cli.commands.{module}")
    if getattr(commands, "get_current_api_client", _api_client) is not _api_client:
        commands.get_current_api_client = _api_client
    return inspect.unwrap(getattr(commands, name))


@functools.cache
def _takes_session(function: Callable[..., Any]) -> bool:
    return "session" in inspect.signature(function).parameters


@functools.cache
def _api_client() -> Any:
    from airflow.api.client import get_current_api_client

    return get_current_api_client()


_dags: dict[str, tuple[Any, Any]] = {}
_dags_lock = threading.Lock()


def latest_dag(session: Session, dag_id: str) -> Any | None:
    """The latest serialized DAG (as ``SerializedDagModel.get_dag`` reads it), deserialized once per content:
    one small query finds the latest row and its hash (Airflow rewrites a row in place while its version has
    no task instances); only a new row or hash is read and deserialized again."""
    from airflow.models.serialized_dag import SerializedDagModel

    latest = SerializedDagModel.latest_item_select_object(dag_id).with_only_columns(
        SerializedDagModel.id, SerializedDagModel.dag_hash
    )
    found = session.execute(latest).first()
    if found is None:
        return None
    key = tuple(found)
    cached = _dags.get(dag_id)
    if cached is not None and cached[0] == key:
        return cached[1]
    row = session.get(SerializedDagModel, key[0])
    dag = row.dag if row is not None else None
    if dag is not None:
        with _dags_lock:
            _dags[dag_id] = (key, dag)
    return dag


def _serialized_dag(session: Session, dag_id: str) -> Any:
    """The DAG as the scheduler sees it; a DAG never serialized is one only its file knows: the CLI's case."""
    dag = latest_dag(session, dag_id)
    if dag is None:
        raise Fallback(f"DAG {dag_id!r} is not serialized")
    return dag


# ----------------------------------------------------------------------------------------------------


def _list_dags(args: Namespace, session: Session) -> None:
    """``dags list``: the CLI's columns of every serialized DAG, without deserializing any of them (the CLI
    deserializes them all only to sort their ids and find their rows)."""
    from airflow.cli.commands.dag_command import DAG_DETAIL_FIELDS, DAGResponse
    from airflow.cli.simple_table import AirflowConsole
    from airflow.models import DagModel
    from airflow.models.serialized_dag import SerializedDagModel

    if args.local or args.bundle_name:
        raise Fallback("dags list --local/--bundle-name")
    dag_ids = sorted(session.scalars(select(SerializedDagModel.dag_id).distinct()))
    models = {m.dag_id: m for m in session.scalars(select(DagModel).where(DagModel.dag_id.in_(dag_ids)))}
    if len(models) < len(dag_ids):  # the CLI describes those from the deserialized DAG
        raise Fallback("a serialized DAG has no row in the dag table")
    columns = [c for c in args.columns or () if c in DAG_DETAIL_FIELDS]
    details = [DAGResponse.model_validate(models[d], from_attributes=True).model_dump() for d in dag_ids]
    rows = [{c: row[c] for c in columns} if columns else row for row in details]
    AirflowConsole().print_as(data=rows, output=args.output)


def _task_list(args: Namespace, session: Session) -> None:
    """``tasks list``: from the serialized DAG (the CLI parses the DAG file and syncs it to the database)."""
    _cli("task_command", "task_list")(args, dag=_serialized_dag(session, args.dag_id))


def _task_state(args: Namespace, session: Session) -> None:
    """``tasks state``, as ``task_command.task_state`` does it, on the cached DAG and in our one session."""
    from airflow.cli.commands.task_command import _get_ti

    if not (dag := latest_dag(session, args.dag_id)):
        raise SystemExit(f"Can not find dag {args.dag_id!r}")
    task = dag.get_task(task_id=args.task_id)
    ti, _ = _get_ti(task, args.map_index, logical_date_or_run_id=args.logical_date_or_run_id, session=session)
    print(ti.state)


def _task_failed_deps(args: Namespace, session: Session) -> None:
    """``tasks failed-deps``, as ``task_command.task_failed_deps`` does it, on the cached DAG and in our session."""
    from airflow.cli.commands.task_command import _get_ti
    from airflow.exceptions import AirflowException
    from airflow.ti_deps.dep_context import DepContext
    from airflow.ti_deps.dependencies_deps import SCHEDULER_QUEUED_DEPS

    if not (dag := latest_dag(session, args.dag_id)):  # airflow.utils.cli.get_db_dag's refusal
        raise AirflowException(f"Dag {args.dag_id!r} could not be found in the database.")
    task = dag.get_task(task_id=args.task_id)
    ti, _ = _get_ti(task, args.map_index, logical_date_or_run_id=args.logical_date_or_run_id, session=session)
    dep_context = DepContext(deps=SCHEDULER_QUEUED_DEPS)
    failed_deps = list(ti.get_failed_dep_statuses(dep_context=dep_context, session=session))
    if failed_deps:
        print("Task instance dependencies not met:")
        for dep in failed_deps:
            print(f"{dep.dep_name}: {dep.reason}")
    else:
        print("Task instance dependencies are all met.")


def _plain(module: str) -> Callable[[Namespace, Session], None]:
    """A command whose own function reads only the database: called as is (with our session where it takes one)."""

    def call(args: Namespace, session: Session) -> None:
        function = _cli(module, args.func.__name__)
        if _takes_session(function):
            function(args, session=session)
        else:
            function(args)

    return call


#: The CLI commands (by their function's name) the worker answers; anything else falls back to the CLI.
COMMANDS: dict[str, Callable[[Namespace, Session], None]] = {
    "version": _plain("version_command"),
    "variables_get": _plain("variable_command"),
    "variables_list": _plain("variable_command"),
    "pool_get": _plain("pool_command"),
    "pool_list": _plain("pool_command"),
    "connections_list": _plain("connection_command"),
    "dag_list_dags": _list_dags,
    "dag_state": _plain("dag_command"),
    "task_list": _task_list,
    "task_state": _task_state,
    "task_failed_deps": _task_failed_deps,
}


_parser_lock = threading.Lock()


@functools.cache
def _parser() -> Any:
    from airflow.cli.cli_parser import get_parser

    return get_parser()


def parse(argv: list[str]) -> Namespace | None:
    """``argv`` as Airflow's CLI reads it, or None when it refuses it (argparse says why, on the worker's stderr)."""
    with _parser_lock:
        try:
            return _parser().parse_args(argv)
        except SystemExit:
            return None


def cli(session: Session, argv: list[str]) -> Result:
    """Answer ``airflow ARGV`` as the CLI would, when it is a read of :data:`COMMANDS`; else ``{"fallback"}``."""
    args = parse(argv)
    command = COMMANDS.get(getattr(getattr(args, "func", None), "__name__", ""))
    if args is None or command is None:
        return 200, {"fallback": "not a read the worker answers"}
    try:
        return _as_cli(lambda: command(args, session))
    finally:
        session.rollback()  # a read writes nothing, not even what Airflow's code touched (a TI refreshed from its task)


OPERATIONS: dict[str, Callable[..., Result]] = {"read": cli}

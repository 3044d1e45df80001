"""The experimental API's operations, run inside the Airflow worker process (Airflow imported, ORM ready).

Each operation takes JSON-able arguments and returns ``(http_status, body)`` with Airflow 2's
shapes and error texts (the project's experimental-API reference), except that the cases where
Airflow 2 crashed with an HTML 500 answer a 400/404 ``{"error"}`` here.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from airflow.models import DagModel, DagRun, Pool, TaskInstance
from airflow.utils.session import create_session
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..output import DATABASE_UNAVAILABLE
from . import reads
from . import runs as run_ops

Result = tuple[int, Any]
DATE_ERROR = (
    "Given execution date, {}, could not be identified as a date. Example date format: 2015-11-16T14:34:15+00:00"
)
POOL_KEYS = ("id", "pool", "slots", "description", "include_deferred")


def _parse_date(raw: str) -> datetime:
    from airflow._shared.timezones import timezone

    try:
        return timezone.parse(raw, strict=False)
    except (ValueError, OverflowError, TypeError):
        raise ApiError(400, DATE_ERROR.format(raw)) from None


def _dag_model(session: Session, dag_id: str) -> DagModel:
    dag = session.get(DagModel, dag_id)
    if dag is None:
        raise ApiError(404, f"Dag id {dag_id} not found in DagModel")
    return dag


def _serialized_dag(session: Session, dag_id: str) -> Any:
    from airflow.models.dagbag import DBDagBag

    dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
    if dag is None:
        raise ApiError(404, f"Dag id {dag_id} not found")
    return dag


def _find_run(session: Session, dag_id: str, execution_date: str) -> DagRun:
    """A run by logical date (Airflow 2's execution_date) or, for a value that is not a date, by run id."""
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == execution_date))
    if run is not None:
        return run
    moment = _parse_date(execution_date)
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date == moment))
    if run is None:
        raise ApiError(404, f"Dag Run for date {moment} not found in dag {dag_id}")
    return run


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _run_url(dag_id: str, run_id: str) -> str:
    return f"/dags/{dag_id}/runs/{run_id}"


def _public_attributes(obj: Any, keys: list[str]) -> dict[str, str]:
    """Airflow 2 answered ``vars(obj)`` with every value passed through ``str()``; so do we."""
    return {key: str(getattr(obj, key, None)) for key in keys if not key.startswith("_")}


# ----------------------------------------------------------------------------------------------------


def trigger(session: Session, dag_id: str, body: dict[str, Any], user: str | None = None) -> Result:
    from airflow._shared.timezones import timezone
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType

    _dag_model(session, dag_id)
    dag = _serialized_dag(session, dag_id)
    raw_date = body.get("execution_date")
    logical_date = _parse_date(raw_date) if raw_date else timezone.utcnow()
    if dag.start_date and logical_date < dag.start_date:  # Airflow 2 refused it (with an HTML 500)
        raise ApiError(
            400, f"The execution_date {logical_date.isoformat()} is before the DAG's start_date {dag.start_date}"
        )
    replace = body.get("replace_microseconds")
    if raw_date is None if replace is None else replace:
        logical_date = logical_date.replace(microsecond=0)
    # Airflow 2's run id: one run per DAG per second unless microseconds are kept.
    run_id = body.get("run_id") or f"manual__{logical_date.isoformat()}"
    try:
        run = trigger_dag(
            dag_id,
            triggered_by=DagRunTriggeredByType.REST_API,
            triggering_user_name=user,
            run_id=run_id,
            conf=body.get("conf") or None,
            logical_date=logical_date,
            replace_microseconds=False,
            session=session,
        )
    except DagNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except DagRunAlreadyExists as exc:
        raise ApiError(400, str(exc)) from None
    except IntegrityError:  # the same logical date under another run id
        raise ApiError(
            400, f"A DAG Run already exists for DAG {dag_id} at {logical_date.isoformat()} with run id {run_id}"
        ) from None
    except ValueError as exc:  # e.g. a logical date before the DAG's start_date; Airflow 2 crashed with HTML 500
        raise ApiError(400, str(exc)) from None
    assert run is not None
    return 200, {
        "execution_date": run.logical_date.isoformat() if run.logical_date else None,
        "message": f"Created {run!r}",
        "run_id": run.run_id,
    }


def list_runs(session: Session, dag_id: str, state: str | None = None) -> Result:
    from airflow.utils.state import DagRunState

    if session.get(DagModel, dag_id) is None:
        raise ApiError(400, f"Dag id {dag_id} not found in DagModel")  # Airflow 2 answered 400 here
    query = select(DagRun).where(DagRun.dag_id == dag_id)
    if state:
        try:
            query = query.where(DagRun.state == DagRunState(state.lower()))
        except ValueError:
            valid = ", ".join(s.value for s in DagRunState)
            raise ApiError(400, f"Invalid state {state!r}; expected one of {valid}") from None
    runs = session.scalars(query.order_by(DagRun.logical_date, DagRun.id)).all()
    return 200, [
        {
            "dag_id": run.dag_id,
            "dag_run_url": _run_url(run.dag_id, run.run_id),
            "execution_date": _iso(run.logical_date),
            "id": run.id,
            "run_id": run.run_id,
            "start_date": _iso(run.start_date),
            "state": run.state,
        }
        for run in runs
    ]


def run_state(session: Session, dag_id: str, execution_date: str) -> Result:
    _dag_model(session, dag_id)
    return 200, {"state": _find_run(session, dag_id, execution_date).state}


def task_instance(session: Session, dag_id: str, execution_date: str, task_id: str) -> Result:
    _dag_model(session, dag_id)
    dag = _serialized_dag(session, dag_id)
    if task_id not in dag.task_dict:
        raise ApiError(404, f"Task {task_id} not found in dag {dag_id}")
    run = _find_run(session, dag_id, execution_date)
    ti = session.scalar(
        select(TaskInstance).where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run.run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == -1,
        )
    )
    if ti is None:
        raise ApiError(404, f"Task {task_id} instance for date {run.logical_date} not found")
    columns = [column.key for column in TaskInstance.__table__.columns]
    return 200, {**_public_attributes(ti, columns), "execution_date": str(run.logical_date)}


def task_info(session: Session, dag_id: str, task_id: str) -> Result:
    _dag_model(session, dag_id)
    dag = _serialized_dag(session, dag_id)
    task = dag.task_dict.get(task_id)
    if task is None:
        raise ApiError(404, f"Task {task_id} not found in dag {dag_id}")
    keys = sorted({*vars(task), "task_id", "owner", "email", "retries", "pool", "queue", "task_type"})
    return 200, _public_attributes(task, keys)


def dag_code(session: Session, dag_id: str) -> Result:
    from airflow.models.dagcode import DagCode

    _dag_model(session, dag_id)
    try:
        return 200, DagCode.code(dag_id, session=session)
    except Exception as exc:
        raise ApiError(500, f"Error {exc} while reading Dag id {dag_id} Code") from None


def set_paused(session: Session, dag_id: str, paused: str) -> Result:
    dag = _dag_model(session, dag_id)  # Airflow 2: HTML 500 on a missing DAG
    dag.is_paused = paused == "true"
    return 200, {"response": "ok"}


def get_paused(session: Session, dag_id: str) -> Result:
    return 200, {"is_paused": bool(_dag_model(session, dag_id).is_paused)}


def delete(session: Session, dag_id: str) -> Result:
    from airflow.api.common.delete_dag import delete_dag
    from airflow.exceptions import AirflowException, DagNotFound

    try:
        count = delete_dag(dag_id, session=session)
    except DagNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except AirflowException as exc:  # "TaskInstances still running"
        raise ApiError(409, str(exc)) from None
    return 200, {"count": count, "message": f"Removed {count} record(s)"}


def latest_runs(session: Session) -> Result:
    newest = (
        select(DagRun.dag_id, func.max(DagRun.logical_date).label("logical_date"))
        .where(DagRun.logical_date.is_not(None))
        .group_by(DagRun.dag_id)
        .subquery()
    )
    runs = session.scalars(
        select(DagRun)
        .join(newest, (DagRun.dag_id == newest.c.dag_id) & (DagRun.logical_date == newest.c.logical_date))
        .order_by(DagRun.dag_id)
    ).all()
    return 200, {
        "items": [
            {
                "dag_id": run.dag_id,
                "execution_date": _iso(run.logical_date),
                "start_date": _iso(run.start_date),
                "dag_run_url": _run_url(run.dag_id, run.run_id),
            }
            for run in runs
        ]
    }


def _pool_json(pool: Pool) -> dict[str, Any]:
    data = pool.to_json()
    return {key: data[key] for key in POOL_KEYS}


def pools(session: Session) -> Result:
    return 200, [_pool_json(p) for p in session.scalars(select(Pool).order_by(Pool.id))]


def _pool_name(name: str) -> str:
    if not name or not name.strip():
        raise ApiError(400, "Pool name shouldn't be empty")
    return name


def pool(session: Session, name: str) -> Result:
    found = session.scalar(select(Pool).where(Pool.pool == _pool_name(name)))
    if found is None:
        raise ApiError(404, f"Pool '{name}' doesn't exist")
    return 200, _pool_json(found)


def create_pool(session: Session, name: str, slots: int, description: str, include_deferred: bool) -> Result:
    created = Pool.create_or_update_pool(name, slots, description, include_deferred, session=session)
    session.flush()
    return 200, _pool_json(created)


def delete_pool(session: Session, name: str) -> Result:
    if _pool_name(name) == Pool.DEFAULT_POOL_NAME:
        raise ApiError(400, "default_pool cannot be deleted")
    found = session.scalar(select(Pool).where(Pool.pool == name))
    if found is None:
        raise ApiError(404, f"Pool '{name}' doesn't exist")
    body = _pool_json(found)
    session.delete(found)
    return 200, body


def lineage(session: Session, dag_id: str, execution_date: str) -> Result:
    _dag_model(session, dag_id)
    dag = _serialized_dag(session, dag_id)
    run = _find_run(session, dag_id, execution_date)
    task_ids: dict[str, dict[str, list[Any]]] = {}
    for task_id, task in dag.task_dict.items():
        inlets = [_asset_json(a) for a in getattr(task, "inlets", None) or []]
        outlets = [_asset_json(a) for a in getattr(task, "outlets", None) or []]
        if inlets or outlets:
            task_ids[task_id] = {"inlets": inlets, "outlets": outlets}
    # ``message``: Airflow 2's json_client.get_lineage returns it (Airflow 2's server never sent it).
    message = f"Lineage of {len(task_ids)} task(s) in DAG run {run.run_id} of {dag_id}"
    return 200, {"message": message, "task_ids": task_ids}


def _asset_json(asset: Any) -> Any:
    if isinstance(asset, dict):
        return asset
    fields = {key: getattr(asset, key) for key in ("name", "uri", "group") if hasattr(asset, key)}
    return fields or str(asset)


def info(session: Session) -> Result:
    from airflow import __version__

    return 200, {"version": __version__}


def ping(session: Session) -> Result:
    """Whether the metadata database answers (asked before the gateway claims that something does not exist)."""
    session.execute(text("SELECT 1"))
    return 200, {"database": "ok"}


OPERATIONS: dict[str, Callable[..., Result]] = {
    "ping": ping,
    **run_ops.OPERATIONS,
    **reads.OPERATIONS,
    "trigger": trigger,
    "list_runs": list_runs,
    "run_state": run_state,
    "task_instance": task_instance,
    "task_info": task_info,
    "dag_code": dag_code,
    "set_paused": set_paused,
    "get_paused": get_paused,
    "delete": delete,
    "latest_runs": latest_runs,
    "pools": pools,
    "pool": pool,
    "create_pool": create_pool,
    "delete_pool": delete_pool,
    "lineage": lineage,
    "info": info,
}


#: Operations that write. SQLite allows one writer at a time and answers another "database is locked"
#: once its busy timeout passes, which a few slow writers side by side can reach: there they take turns.
WRITES = frozenset({"trigger", "set_paused", "delete", "create_pool", "delete_pool"})
_sqlite_writer = threading.Lock()


@functools.cache
def _on_sqlite() -> bool:
    from airflow import settings

    return settings.engine is not None and settings.engine.dialect.name == "sqlite"


#: A read that meets a dropped connection is tried once more after this pause (a database restarting, a pooled
#: connection cut): a write is never repeated, it may have been committed.
READ_RETRY_DELAY_S = 0.3


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (not: the query was wrong)."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError)


def run(op: str, args: dict[str, Any]) -> Result:
    """One operation in its own transaction: committed when it succeeds, rolled back when it fails. A database
    that cannot be reached is a 503 with a plain message (the driver's names the host and port)."""
    for attempt in (1, 2):
        try:
            return _run_once(op, args)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            if attempt == 1 and op not in WRITES:
                time.sleep(READ_RETRY_DELAY_S)
                continue
            return 503, {"error": DATABASE_UNAVAILABLE}
    raise AssertionError("unreachable")


def _run_once(op: str, args: dict[str, Any]) -> Result:
    from airflow import settings

    one_writer = _sqlite_writer if op in WRITES and _on_sqlite() else contextlib.nullcontext()
    try:
        with one_writer, create_session() as session:
            return OPERATIONS[op](session, **args)
    except ApiError as exc:
        return exc.status, {"error": exc.message}
    finally:
        settings.Session.remove()

"""Following DAG runs, inside the Airflow worker: a run's state, its task instances, where their logs are,
and whether a scheduler is there to move it on.

These answer the gateway's waits (``trigger_dag&wait=true``, ``watch_dag_run``); the gateway polls them
and tails the log files itself (:mod:`gateway.watch`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.models import DagModel, DagRun, TaskInstance
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ApiError

Result = tuple[int, Any]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _state(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def scheduler(session: Session) -> dict[str, Any]:
    """Is a scheduler heartbeating (within ``[scheduler] scheduler_health_check_threshold``)?"""
    from airflow.configuration import conf
    from airflow.jobs.job import most_recent_job

    job = most_recent_job("SchedulerJob", session=session)
    return {
        "alive": bool(job is not None and job.is_alive()),
        "latest_heartbeat": _iso(job.latest_heartbeat) if job is not None else None,
        "threshold_s": conf.getint("scheduler", "scheduler_health_check_threshold"),
    }


def scheduler_health(session: Session) -> Result:
    return 200, scheduler(session)


def _dag(session: Session, dag_id: str) -> DagModel:
    dag = session.get(DagModel, dag_id)
    if dag is None:
        raise ApiError(404, f"DAG '{dag_id}' not found")
    return dag


def preflight(session: Session, dag_id: str) -> Result:
    """Can a run of this DAG start now? (before triggering one and waiting for it)"""
    dag = _dag(session, dag_id)
    return 200, {"dag_id": dag_id, "is_paused": bool(dag.is_paused), "scheduler": scheduler(session)}


def find_run(session: Session, dag_id: str, run: str) -> Result:
    """A run by run id, else by logical date (both spellings the plugin accepts)."""
    from airflow._shared.timezones import timezone

    _dag(session, dag_id)
    found = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run))
    if found is None:
        try:
            moment = timezone.parse(run, strict=False)
        except (ValueError, OverflowError, TypeError):
            moment = None
        if moment is not None:
            found = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date == moment))
    if found is None:
        raise ApiError(404, f"DagRun not found: {dag_id} {run}")
    return 200, {"dag_id": dag_id, "run_id": found.run_id}


def _log_paths(session: Session, run: DagRun, tis: list[TaskInstance]) -> dict[str, str]:
    """Each started task instance's current log file, as Airflow's file task handler names it."""
    from airflow.utils.helpers import parse_template_string, render_template

    started = [ti for ti in tis if ti.try_number and ti.state is not None]
    if not started:
        return {}
    template = run.get_log_template(session=session).filename
    text_template, jinja_template = parse_template_string(template)
    date = (run.logical_date or run.run_after).isoformat()
    paths = {}
    for ti in started:
        if jinja_template is not None:
            path = render_template(jinja_template, {"ti": ti, "ts": date, "try_number": ti.try_number}, native=False)
        else:
            assert text_template is not None
            path = text_template.format(
                dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, logical_date=date, try_number=ti.try_number
            )
        paths[f"{ti.task_id}/{ti.map_index}"] = path
    return paths


def run_snapshot(session: Session, dag_id: str, run_id: str) -> Result:
    """Where a run stands: its state, every task instance, their log files, the DAG's pause and the scheduler."""
    from airflow.configuration import conf

    dag = _dag(session, dag_id)
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if run is None:
        raise ApiError(404, f"DagRun not found: {dag_id} {run_id}")
    tis = list(
        session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(TaskInstance.task_id, TaskInstance.map_index)
        )
    )
    paths = _log_paths(session, run, tis)
    return 200, {
        "dag_id": dag_id,
        "run_id": run_id,
        "state": _state(run.state),
        "logical_date": _iso(run.logical_date),
        "start_date": _iso(run.start_date),
        "end_date": _iso(run.end_date),
        "is_paused": bool(dag.is_paused),
        "tasks": [
            {
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "state": _state(ti.state),
                "try_number": ti.try_number,
                "start_date": _iso(ti.start_date),
                "end_date": _iso(ti.end_date),
                "log": paths.get(f"{ti.task_id}/{ti.map_index}"),
            }
            for ti in tis
        ],
        "log_folder": conf.get("logging", "base_log_folder"),
        "scheduler": scheduler(session),
    }


OPERATIONS = {
    "scheduler_health": scheduler_health,
    "preflight": preflight,
    "find_run": find_run,
    "run_snapshot": run_snapshot,
}

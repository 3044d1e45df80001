"""Small commands that run *inside Airflow's environment*, as a child of the gateway.

The gateway process never imports DAG code: parsing an uploaded file runs user code, and a crash,
hang or ``sys.exit`` there must cost one child process, not the server. Usage::

    python -m gateway.helpers check-dag FILE          # parse a staged file: DAG ids and import errors
    python -m gateway.helpers sync-dag FILE [--pause | --unpause]
    python -m gateway.helpers refresh-dag DAG_ID
    python -m gateway.helpers connections-list        # ids and types (Airflow 3.1's list prints passwords)

Each prints one JSON object as its last stdout line. Failures end with a one-line message on
stderr and exit code 1, like Airflow's own CLI.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any


def _emit(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


def _dags_folder_bundle() -> Any:
    """The DAG bundle whose path is the DAGs folder (``dags-folder`` unless configured otherwise)."""
    from airflow import settings
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    dags_folder = Path(settings.DAGS_FOLDER).resolve()
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        if Path(bundle.path).resolve() == dags_folder:
            return bundle
    raise SystemExit(f"No DAG bundle serves the DAGs folder {dags_folder}")


def dagbag_module() -> ModuleType:
    """Where ``DagBag``, ``BundleDagBag`` and ``sync_bag_to_db`` live: ``airflow.dag_processing.dagbag`` from
    Airflow 3.2, ``airflow.models.dagbag`` on 3.1."""
    try:
        return importlib.import_module("airflow.dag_processing.dagbag")
    except ModuleNotFoundError:  # Airflow 3.1
        return importlib.import_module("airflow.models.dagbag")


def check_dag(path: str) -> dict[str, Any]:
    """Parse one file (user code runs here, in this child) and report what it defines."""
    from airflow import settings

    DagBag = dagbag_module().DagBag

    # The file will live in the DAGs folder, so its sibling modules must be importable as they will be.
    sys.path.insert(0, str(Path(settings.DAGS_FOLDER).resolve()))
    bag = DagBag(dag_folder=path, safe_mode=False)
    return {"dag_ids": sorted(bag.dags), "import_errors": [str(e) for e in bag.import_errors.values()]}


def _bundle_version(bundle: Any) -> tuple[str | None, dict[str, Any] | None]:
    """The bundle's version and version data: Airflow 3.3 may return both, 3.2 a plain string (or None)."""
    try:
        from airflow.dag_processing.bundles.base import unpack_bundle_version
    except ImportError:  # Airflow 3.2
        return bundle.get_current_version(), None
    return unpack_bundle_version(bundle.get_current_version(), bundle)


def sync_dag(path: str, paused: bool | None) -> dict[str, Any]:
    """Parse one file of the DAGs folder and store its DAGs (and import errors) like the dag-processor."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    dagbag = dagbag_module()
    bundle = _dags_folder_bundle()
    # Airflow 3.2's bag knows its bundle's name; 3.1's takes it only when the bag is stored.
    named = {"bundle_name": bundle.name} if dagbag.__name__ == "airflow.dag_processing.dagbag" else {}
    bag = dagbag.BundleDagBag(path, bundle_path=Path(bundle.path), safe_mode=False, **named)
    version, version_data = _bundle_version(bundle)
    extra = {"version_data": version_data} if version_data is not None else {}
    with create_session() as session:
        dagbag.sync_bag_to_db(bag, bundle.name, bundle_version=version, session=session, **extra)
        if paused is not None and bag.dags:
            session.execute(update(DagModel).where(DagModel.dag_id.in_(list(bag.dags))).values(is_paused=paused))
    with create_session() as session:
        states = dict(session.query(DagModel.dag_id, DagModel.is_paused).filter(DagModel.dag_id.in_(list(bag.dags))))
    return {
        "file": str(path),
        "dag_ids": sorted(bag.dags),
        "import_errors": [str(e) for e in bag.import_errors.values()],
        "is_paused": states,
    }


def refresh_dag(dag_id: str) -> dict[str, Any]:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        fileloc = session.query(DagModel.fileloc).filter(DagModel.dag_id == dag_id).scalar()
    if fileloc is None:
        raise SystemExit(f"DagNotFound: Dag id {dag_id} not found in DagModel")
    if not Path(fileloc).is_file():
        raise SystemExit(f"DagNotFound: the file of Dag {dag_id} is gone: {fileloc}")
    return sync_dag(fileloc, paused=None)


def connections_list() -> list[dict[str, Any]]:
    """What ``airflow connections list -o json`` prints from Airflow 3.2 on: each connection's id and type.
    Airflow 3.1's prints every field, passwords and URIs included, and has no option to leave them out."""
    from airflow.models import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(Connection.conn_id, Connection.conn_type).order_by(Connection.id)).all()
    return [{"conn_id": conn_id, "conn_type": conn_type} for conn_id, conn_type in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gateway.helpers")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check-dag").add_argument("path")
    sync = sub.add_parser("sync-dag")
    sync.add_argument("path")
    group = sync.add_mutually_exclusive_group()
    group.add_argument("--pause", dest="paused", action="store_true", default=None)
    group.add_argument("--unpause", dest="paused", action="store_false")
    sub.add_parser("refresh-dag").add_argument("dag_id")
    sub.add_parser("connections-list")
    args = parser.parse_args(argv)

    if args.command == "check-dag":
        _emit(check_dag(args.path))
    elif args.command == "sync-dag":
        _emit(sync_dag(args.path, args.paused))
    elif args.command == "connections-list":
        sys.stdout.write(json.dumps(connections_list()) + "\n")
    else:
        _emit(refresh_dag(args.dag_id))


if __name__ == "__main__":
    main()

"""The gateway's own APIs, and Airflow's version."""

from __future__ import annotations

from typing import Any

from .common import airflow, no_data
from .model import Answer, Api, Arg, ArgType, Kind, Values


async def _gateway_version(app: Any, values: Values, caller: str) -> Answer:
    from .. import __version__

    return Answer(200, __version__)


async def _deploy_dag(app: Any, values: Values, caller: str) -> Answer:
    from ..dagfiles import deploy_dag  # it reads the catalog itself

    return await deploy_dag(app, values, caller)


APIS: tuple[Api, ...] = (
    Api(
        name="version",
        summary="Gets the version of Airflow currently running",
        runs="airflow version",
        build=lambda v: airflow("version"),
        parse=no_data,
        fast_path=True,
        since="1.0.0 or greater",
    ),
    Api(
        name="rest_api_plugin_version",
        summary="Displays the version of this gateway (the plugin-compatible API version)",
        runs="(answered by the gateway)",
        answer=_gateway_version,
        kind=Kind.CUSTOM,
        since="None - Custom API",
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
        answer=_deploy_dag,
        since="None - Custom API",
    ),
)

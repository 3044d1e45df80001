"""Every API, assembled from the area modules (one module per Airflow area), and the docs generated from them.

Adding an API is adding one ``Api(...)`` to the ``APIS`` of its area's module; the plugin route, the
validation, the test page and the README table all read :data:`APIS`.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import connections, daemons, dags, gateway, pools, tasks, variables
from .model import Api, ArgType

APIS: tuple[Api, ...] = (
    *gateway.APIS,
    *dags.APIS,
    *tasks.APIS,
    *variables.APIS,
    *connections.APIS,
    *pools.APIS,
    *daemons.APIS,
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
    rows = ["| API | Airflow 3.3 command | Arguments | Kind | Answered by |", "|---|---|---|---|---|"]
    for api in APIS:
        args = ", ".join(f"`{a.name}`{'*' if a.required else ''}" for a in api.args if a.accepted) or "-"
        runs = api.gone or api.runs
        rows.append(f"| `{api.name}` | {runs} | {args} | {api.kind.value} | {api.answered_by} |")
    return "\n".join(rows)

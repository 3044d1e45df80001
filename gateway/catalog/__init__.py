"""The API catalog: one declarative entry per plugin API, and the one place arguments are understood.

Each :class:`Api` names its arguments (with types, so validation happens before any process starts),
how they become an Airflow 3.3 argv (``build``), and how the command's output becomes ``data``
(``parse``). The plugin route, the HTML page and the README table are all generated from here.

Run ``python -m gateway.catalog`` to print the Markdown API table.
"""

from .apis import APIS, CATALOG, example_query, markdown_table
from .common import DATA_ENV, INFO_ENV, TASK_ENV
from .model import (
    MAX_ID_CHARS,
    RUN_ID,
    Answer,
    Api,
    ApiError,
    Arg,
    ArgType,
    Kind,
    Outcome,
    Upload,
    Values,
    checked_date,
    date_or_run_id,
    is_id,
    is_run_id,
    parse_bool,
    parse_date,
    validate,
)

__all__ = [
    "APIS",
    "CATALOG",
    "DATA_ENV",
    "INFO_ENV",
    "MAX_ID_CHARS",
    "RUN_ID",
    "TASK_ENV",
    "Answer",
    "Api",
    "ApiError",
    "Arg",
    "ArgType",
    "Kind",
    "Outcome",
    "Upload",
    "Values",
    "checked_date",
    "date_or_run_id",
    "example_query",
    "is_id",
    "is_run_id",
    "markdown_table",
    "parse_bool",
    "parse_date",
    "validate",
]

"""The OpenAPI 3.1 document, generated from the catalog and the route tables (nothing about an API is written twice).

Every plugin API gets an operation of its own at ``/admin/rest_api/api/{NAME}`` (the same handler as
``?api=NAME``, so generated clients and fuzzers get one typed operation per API); the ``?api=``
dispatcher itself is described too (GET with ``api`` and ``async``, whose 202 links to the job
operations; POST with a JSON body that is a ``oneOf`` discriminated by ``api``). Argument
schemas come from the :class:`~gateway.catalog.Arg` types: the patterns, limits and choices that
:func:`~gateway.catalog.validate` enforces. Arguments that are always refused (server paths, removed
flags) are left out. The document holds no secret: the token header's name only.
"""

from __future__ import annotations

from typing import Any

from . import __version__
from .bodies import BOOL_WORDS
from .catalog import APIS, MAX_ID_CHARS, RUN_ID, Api, Arg, ArgType, Kind
from .catalog.model import MAX_INT_DIGITS
from .config import Settings
from .job_table import DEFAULT_LIMIT, MAX_LIMIT
from .runner import RunState

PLUGIN = "/admin/rest_api/api"
#: Airflow's ``[\w.-]+`` (Python's ``\w`` takes letters and digits of every script), not starting with ``-``:
#: every ASCII character but letters, digits, ``_.-`` is refused, as are blanks and control characters.
ID_PATTERN = r"^(?!-)[^\u0000-\u002c\u002f\u003a-\u0040\u005b-\u005e\u0060\u007b-\u009f\s]+$"
RUN_ID_PATTERN = f"^(?!-){RUN_ID.pattern}$"
_YEAR = r"(1[0-9]{3}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9])"
#: An ISO 8601 date or date-time within what Airflow computes with (years 1000-9998).
DATE_PATTERN = (
    rf"^{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])?)?$"
)
#: A run id that cannot be read as a date (a date-shaped value must be a valid date).
RUN_ID_NOT_DATE_PATTERN = rf"^(?![+-]?[0-9]{{4,}}-[0-9]{{1,2}}-[0-9]{{1,2}})(?!-){RUN_ID.pattern}$"
JOB_ID_PATTERN = "^[0-9a-f]{16}$"
#: Text the gateway refuses outright: NUL; for one-line names also other control characters.
ANY_TEXT = r"^[^\u0000]*$"
ONE_LINE = r"^[^\u0000-\u001f\u007f]*$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def arg_schema(arg: Arg, settings: Settings, *, in_query: bool) -> dict[str, Any]:
    """The JSON Schema of one argument's value, as a query parameter or as a JSON body member."""
    kind = arg.type
    if kind is ArgType.ID:
        return {"type": "string", "pattern": ID_PATTERN, "minLength": 1, "maxLength": min(MAX_ID_CHARS, arg.max_chars)}
    if kind is ArgType.RUN_ID:
        return {"type": "string", "pattern": RUN_ID_PATTERN, "minLength": 1, "maxLength": MAX_ID_CHARS}
    if kind is ArgType.DATE:
        return {"type": "string", "pattern": DATE_PATTERN}
    if kind is ArgType.DATE_OR_RUN_ID:
        run_id = {"type": "string", "pattern": RUN_ID_NOT_DATE_PATTERN, "minLength": 1, "maxLength": MAX_ID_CHARS}
        return {"anyOf": [{"type": "string", "pattern": DATE_PATTERN}, run_id]}
    if kind is ArgType.BOOL:
        words = {"type": "string", "enum": list(BOOL_WORDS)}
        return words if in_query else {"anyOf": [{"type": "boolean"}, words]}
    if kind is ArgType.INT:
        maximum = arg.max_value
        if arg.name == "wait_timeout_s":
            maximum = min(maximum, int(settings.wait.max_timeout_s))
        return {"type": "integer", "minimum": 0 if arg.name != "wait_timeout_s" else 1, "maximum": maximum}
    if kind is ArgType.CHOICE:
        return {"type": "string", "enum": list(arg.choices)}
    if kind in (ArgType.JSON_OBJECT, ArgType.JSON_DOCUMENT):
        return {"type": "object"}
    if kind is ArgType.FILE:
        return {"type": "string", "contentMediaType": "application/octet-stream"}
    return {"type": "string", "maxLength": arg.max_chars, "pattern": ONE_LINE if arg.single_line else ANY_TEXT}


def _accepted(api: Api) -> list[Arg]:
    return [arg for arg in api.args if arg.accepted]


#: Argument types whose JSON body value may also be a number or boolean: the gateway reads it as its text.
_TEXT_LIKE = (ArgType.ID, ArgType.TEXT, ArgType.RUN_ID, ArgType.DATE_OR_RUN_ID)
#: An empty value: the argument is not given (an HTML form's blank field).
_EMPTY = {"type": "string", "maxLength": 0}


def _query_parameter(arg: Arg, settings: Settings) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": arg.name, "in": "query", "required": arg.required, "description": arg.help}
    schema = arg_schema(arg, settings, in_query=True)
    if arg.type in (ArgType.JSON_OBJECT, ArgType.JSON_DOCUMENT):
        parameter["content"] = {"application/json": {"schema": schema}}  # a JSON object in the query string
        return parameter
    if arg.type is not ArgType.BOOL and not arg.required:
        schema = {"anyOf": [schema, _EMPTY]}
    parameter["schema"] = schema
    return parameter


def _body_schema(api: Api, settings: Settings, with_api: bool) -> dict[str, Any]:
    """The arguments as a JSON object (or, for an upload, a multipart form, which has no null)."""
    upload = _takes_upload(api)
    properties = {
        arg.name: arg_schema(arg, settings, in_query=True) if upload else _member_schema(arg, settings)
        for arg in _accepted(api)
    }
    if with_api:
        properties = {"api": {"const": api.name}, **properties}
    required = (["api"] if with_api else []) + [arg.name for arg in _accepted(api) if arg.required]
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _member_schema(arg: Arg, settings: Settings) -> dict[str, Any]:
    """A JSON body member: what the gateway takes for it (``null`` and ``""`` mean not given when optional)."""
    schema = arg_schema(arg, settings, in_query=False)
    variants = [schema]
    if arg.type in _TEXT_LIKE:
        variants.append({"type": ["number", "boolean"]})
    elif arg.type is ArgType.INT:
        variants.append({"type": "string", "pattern": rf"^\s*[0-9]{{1,{MAX_INT_DIGITS}}}\s*$"})
    elif arg.type in (ArgType.JSON_OBJECT, ArgType.JSON_DOCUMENT):
        variants.append({"type": "string", "description": "a JSON object, as text"})
    if not arg.required:
        variants += [{"type": "null"}, _EMPTY]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def _takes_upload(api: Api) -> bool:
    return any(arg.type is ArgType.FILE for arg in api.args)


#: gateway/protocol.py answers what aiohttp's parser refuses before any route, so any family, is known.
MALFORMED_HTTP = (
    "A refusal in the plugin's envelope (status ERROR); or, for a request that is not valid HTTP (a URL or a "
    'header past the limits of the HTTP parser, broken framing), {"error": "400 Bad Request: ..."}'
)


def _envelope_responses() -> dict[str, Any]:
    return {
        "200": _json(_ref("Envelope"), "The command ran (or the gateway answered): the plugin's envelope"),
        "400": _json({"anyOf": [_ref("Envelope"), _ref("Error")]}, MALFORMED_HTTP),
        "default": _json(_ref("Envelope"), "A refusal or failure, in the same envelope (status ERROR)"),
    }


def _api_description(api: Api) -> str:
    parts = [api.summary, f"Runs: `{api.runs}`."]
    refused = [arg.name for arg in api.args if not arg.accepted]
    if refused:
        parts.append(f"Always refused (400): {', '.join(refused)}.")
    if api.gone:
        parts.append(f"Gone (410): {api.gone}")
    if api.kind is Kind.DAEMON:
        parts.append("A daemon: only with async=true on the ?api= route, and disabled unless configured.")
    if api.notes:
        parts.append(api.notes)
    return " ".join(parts)


def _plugin_api_paths(settings: Settings) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for api in APIS:
        item: dict[str, Any] = {}
        common = {"tags": ["plugin"], "summary": api.summary, "description": _api_description(api)}
        if "GET" in api.methods and not _takes_upload(api):
            item["get"] = {
                **common,
                "operationId": f"{api.name}",
                "parameters": [_query_parameter(arg, settings) for arg in _accepted(api)],
                "responses": _envelope_responses(),
            }
        if "POST" in api.methods:
            media = "multipart/form-data" if _takes_upload(api) else "application/json"
            item["post"] = {
                **common,
                "operationId": f"{api.name}_post",
                "requestBody": {"required": True, "content": {media: {"schema": _body_schema(api, settings, False)}}},
                "responses": _envelope_responses(),
            }
        paths[f"{PLUGIN}/{api.name}"] = item
    return paths


def _dispatcher_path(settings: Settings) -> dict[str, Any]:
    names = [api.name for api in APIS if "GET" in api.methods and not _takes_upload(api)]
    branches = [_body_schema(api, settings, True) for api in APIS if not _takes_upload(api)]
    description = (
        "The REST API plugin's dispatcher: `api` names the API, the other arguments are that API's "
        f"(see `{PLUGIN}/{{NAME}}`), in the query string, a form or a JSON body (the query string wins). "
        "Gateway options: `stream=true|text` (or `Accept: text/event-stream`) streams output lines; "
        "`async=true` starts a background job (202, with its URLs; see /api/jobs; 507 when the gateway's state "
        "directory is full: nothing started)."
    )
    api_parameter = {"name": "api", "in": "query", "required": True, "schema": {"type": "string", "enum": names}}
    async_parameter = {
        "name": "async",
        "in": "query",
        "required": False,
        "description": "true: run as a background job (202, with the job's URLs and a Location header; 507 when "
        "the state directory is full)",
        "schema": {"type": "string", "enum": list(BOOL_WORDS)},
    }
    return {
        PLUGIN: {
            "get": {
                "tags": ["plugin"],
                "operationId": "plugin_api",
                "summary": "Call an API by name",
                "description": description,
                "parameters": [api_parameter, async_parameter],
                "responses": {**_envelope_responses(), "202": _job_started()},
            },
            "post": {
                "tags": ["plugin"],
                "operationId": "plugin_api_post",
                "summary": "Call an API by name, arguments in a JSON body",
                "description": description,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"oneOf": branches, "discriminator": {"propertyName": "api"}},
                        }
                    },
                },
                "responses": _envelope_responses(),
            },
        }
    }


def _job_started() -> dict[str, Any]:
    """The 202 of ``async=true``: the envelope with the job, linked to the job operations (stateful testing)."""
    job_id = {"job_id": "$response.body#/job_id"}
    return {
        **_json(_ref("Envelope"), "A background job started: job_id, status_url, log_url, cancel_url"),
        "headers": {"Location": {"description": "The job's status URL", "schema": {"type": "string"}}},
        "links": {
            "JobStatus": {"operationId": "job_status", "parameters": job_id},
            "JobLog": {"operationId": "job_log", "parameters": job_id},
            "CancelJob": {"operationId": "cancel_job", "parameters": job_id},
        },
    }


def _error_responses(ok: dict[str, Any]) -> dict[str, Any]:
    return {"200": ok, "default": _json(_ref("Error"), 'A refusal or failure: {"error": "..."}')}


def _path_parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _experimental_paths() -> dict[str, Any]:
    prefix = "/api/experimental"
    dag = _path_parameter("dag_id", {"type": "string", "pattern": ID_PATTERN, "maxLength": MAX_ID_CHARS})
    task = _path_parameter("task_id", {"type": "string", "pattern": ID_PATTERN, "maxLength": MAX_ID_CHARS})
    when = _path_parameter(
        "execution_date", {"anyOf": [{"type": "string", "pattern": DATE_PATTERN}, {"type": "string", **_RUN_ID}]}
    )
    pool = _path_parameter("name", {"type": "string", "minLength": 1, "maxLength": 256, "pattern": r"^[^\s/]+$"})

    def op(name: str, summary: str, ok: dict[str, Any], *parameters: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "tags": ["experimental"],
            "operationId": f"experimental_{name}",
            "summary": summary,
            "parameters": list(parameters),
            "responses": _error_responses(ok),
            **extra,
        }

    trigger_body = {
        "required": False,
        "content": {"application/json": {"schema": _ref("TriggerRequest")}},
    }
    pool_body = {"required": True, "content": {"application/json": {"schema": _ref("PoolRequest")}}}
    state = {"name": "state", "in": "query", "required": False, "schema": {"type": "string", "enum": _RUN_STATES}}
    lineage = op("lineage", "Lineage (inlets/outlets) of a DAG run", _json(_ref("Lineage"), "Lineage"), dag, when)
    return {
        f"{prefix}/test": {"get": op("test", "Auth probe", _json(_ref("Ok"), "OK"))},
        f"{prefix}/info": {"get": op("info", "Airflow's version", _json(_ref("Info"), "The version"))},
        f"{prefix}/latest_runs": {
            "get": op("latest_runs", "Each DAG's latest run", _json(_ref("LatestRuns"), "Latest runs"))
        },
        f"{prefix}/dags/{{dag_id}}/dag_runs": {
            "post": op(
                "trigger", "Trigger a DAG run", _json(_ref("Triggered"), "The run"), dag, requestBody=trigger_body
            ),
            "get": op(
                "list_runs", "A DAG's runs", _json({"type": "array", "items": _ref("DagRun")}, "Runs"), dag, state
            ),
        },
        f"{prefix}/dags/{{dag_id}}/dag_runs/{{execution_date}}": {
            "get": op("run_state", "A run's state", _json(_ref("RunState"), "The state"), dag, when)
        },
        f"{prefix}/dags/{{dag_id}}/dag_runs/{{execution_date}}/tasks/{{task_id}}": {
            "get": op("task_instance", "A task instance", _json({"type": "object"}, "Its columns"), dag, when, task)
        },
        f"{prefix}/dags/{{dag_id}}/tasks/{{task_id}}": {
            "get": op("task_info", "A task's attributes", _json({"type": "object"}, "Its attributes"), dag, task)
        },
        f"{prefix}/dags/{{dag_id}}/code": {
            "get": op(
                "dag_code",
                "The DAG's source",
                {"description": "The source", "content": {"text/plain": {"schema": {"type": "string"}}}},
                dag,
            )
        },
        f"{prefix}/dags/{{dag_id}}/paused": {
            "get": op("get_paused", "Whether the DAG is paused", _json(_ref("Paused"), "Paused or not"), dag)
        },
        f"{prefix}/dags/{{dag_id}}/paused/{{paused}}": {
            "get": op(
                "set_paused",
                "Pause (true) or unpause (false)",
                _json(_ref("Response"), "Done"),
                dag,
                _path_parameter("paused", {"type": "string", "enum": ["true", "false"]}),
            )
        },
        f"{prefix}/dags/{{dag_id}}": {
            "delete": op("delete", "Delete a DAG's records", _json(_ref("Deleted"), "Records removed"), dag)
        },
        f"{prefix}/dags/{{dag_id}}/delete_dag": {
            "delete": op(
                "delete_dag", "Same, at the URL Airflow 2's json_client uses", _json(_ref("Deleted"), "Removed"), dag
            )
        },
        f"{prefix}/pools": {
            "get": op("pools", "Every pool", _json({"type": "array", "items": _ref("Pool")}, "Pools")),
            "post": op(
                "create_pool", "Create or update a pool", _json(_ref("Pool"), "The pool"), requestBody=pool_body
            ),
        },
        f"{prefix}/pools/{{name}}": {
            "get": op("pool", "A pool", _json(_ref("Pool"), "The pool"), pool),
            "delete": op("delete_pool", "Delete a pool", _json(_ref("Pool"), "The deleted pool"), pool),
        },
        f"{prefix}/lineage/{{dag_id}}/{{execution_date}}": {"get": lineage},
        f"{prefix}/lineage/{{dag_id}}/{{execution_date}}/": {
            "get": {**lineage, "operationId": "experimental_lineage_"}
        },
    }


_RUN_ID = {"pattern": RUN_ID_NOT_DATE_PATTERN, "minLength": 1, "maxLength": MAX_ID_CHARS}
_RUN_STATES = ["queued", "running", "success", "failed"]


def _jobs_paths() -> dict[str, Any]:
    job_id = _path_parameter("job_id", {"type": "string", "pattern": JOB_ID_PATTERN})
    offset = {
        "name": "offset",
        "in": "query",
        "required": False,
        "description": "A byte offset into the job's log (0, or a next_offset from an earlier read)",
        "schema": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
    }
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": f"Jobs per page (default {DEFAULT_LIMIT})",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    }
    before = {
        "name": "before",
        "in": "query",
        "required": False,
        "description": "Where the previous page ended: an opaque cursor, as in its `next` link",
        "schema": {"type": "string", "minLength": 1},
    }
    return {
        "/api/jobs": {
            "get": {
                "tags": ["jobs"],
                "operationId": "list_jobs",
                "summary": "Jobs this token may see, newest first, a page at a time (`next` links the next page)",
                "parameters": [limit, before],
                "responses": _error_responses(_json(_ref("JobList"), "A page of the jobs")),
            }
        },
        "/api/jobs/{job_id}": {
            "get": {
                "tags": ["jobs"],
                "operationId": "job_status",
                "summary": "A job's record",
                "parameters": [job_id],
                "responses": _error_responses(_json(_ref("Job"), "The job")),
            },
            "delete": {
                "tags": ["jobs"],
                "operationId": "cancel_job",
                "summary": "Cancel a running job (409 when it already ended)",
                "parameters": [job_id],
                "responses": _error_responses(_json(_ref("Job"), "The job, cancelled")),
            },
        },
        "/api/jobs/{job_id}/log": {
            "get": {
                "tags": ["jobs"],
                "operationId": "job_log",
                "summary": "The job's output from a byte offset; stream=true (or SSE) follows it",
                "parameters": [job_id, offset],
                "responses": _error_responses(_json(_ref("JobLog"), "Output events")),
            }
        },
    }


def _gateway_paths(settings: Settings) -> dict[str, Any]:
    public: list[dict[str, Any]] = []
    metrics_security = None if settings.metrics.require_token else public
    return {
        "/health": {
            "get": {
                "tags": ["gateway"],
                "operationId": "health",
                "summary": "Liveness and the runner's state (no token)",
                "security": public,
                "responses": {"200": _json(_ref("Health"), "Healthy")},
            }
        },
        "/metrics": {
            "get": {
                "tags": ["gateway"],
                "operationId": "metrics",
                "summary": "Prometheus metrics (text format); a token only with metrics.require_token",
                **({"security": metrics_security} if metrics_security is not None else {}),
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "default": _json(_ref("Error"), "Refused"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["gateway"],
                "operationId": "openapi",
                "summary": "This document (no token)",
                "security": public,
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document")},
            }
        },
    }


def _schemas() -> dict[str, Any]:
    text = {"type": "string"}
    nullable_text = {"type": ["string", "null"]}
    job_state = {"type": "string", "enum": [state.value for state in RunState]}
    pool = {
        "type": "object",
        "required": ["id", "pool", "slots", "description", "include_deferred"],
        "properties": {
            "id": {"type": "integer"},
            "pool": text,
            "slots": {"type": "integer"},
            "description": nullable_text,
            "include_deferred": {"type": "boolean"},
        },
    }
    return {
        "Envelope": {
            "type": "object",
            "description": "The REST API plugin's envelope; fields that have no value are left out",
            "required": ["call_time", "http_response_code", "output", "response_time", "status"],
            "properties": {
                "status": {"type": "string", "enum": ["OK", "ERROR"]},
                "http_response_code": {"type": "integer"},
                "call_time": text,
                "response_time": text,
                "output": {
                    "description": "The command's output, or the gateway's message",
                    "anyOf": [text, {"type": "object", "additionalProperties": {"type": "string"}}],
                },
                "arguments": {"type": "object"},
                "post_arguments": {"type": ["object", "null"]},
                "airflow_cmd": text,
                "exit_code": {"type": ["integer", "null"]},
                "duration_s": {"type": "number"},
                "truncated": {"type": "boolean"},
                "data": {"description": "The output, parsed (JSON output as JSON)"},
                "error": text,
                "warning": text,
                "job_id": text,
                "status_url": text,
                "log_url": text,
                "cancel_url": text,
            },
        },
        "Error": {"type": "object", "required": ["error"], "properties": {"error": text}},
        "Job": {
            "type": "object",
            "required": ["id", "api", "command", "owner", "state", "created_at"],
            "properties": {
                "id": {"type": "string", "pattern": JOB_ID_PATTERN},
                "api": text,
                "command": text,
                "owner": text,
                "state": job_state,
                "created_at": text,
                "started_at": nullable_text,
                "finished_at": nullable_text,
                "exit_code": {"type": ["integer", "null"]},
                "error": nullable_text,
                "daemon": {"type": "boolean"},
                "duration_s": {"type": ["number", "null"]},
                "status_url": text,
                "log_url": text,
                "cancel_url": text,
            },
        },
        "JobList": {
            "type": "object",
            "required": ["jobs"],
            "properties": {
                "jobs": {"type": "array", "items": _ref("Job")},
                "next": {**nullable_text, "description": "The next page's URL; null on the last page"},
            },
        },
        "JobLog": {
            "type": "object",
            "required": ["job_id", "state", "offset", "next_offset", "events"],
            "properties": {
                "job_id": text,
                "state": job_state,
                "offset": {"type": "integer"},
                "next_offset": {"type": "integer"},
                "events": {"type": "array", "items": {"type": "object"}},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "version", "runner"],
            "properties": {
                "status": {
                    "enum": ["ok", "degraded"],
                    "description": "degraded: the Airflow worker is down (reads run the CLI, experimental calls 503)",
                },
                "version": text,
                "runner": {"type": "object"},
                "worker": {
                    "type": "object",
                    "properties": {
                        "ready": {"type": "boolean"},
                        "restarts": {"type": "integer"},
                        "last_error": {"type": ["string", "null"]},
                    },
                },
            },
        },
        "TriggerRequest": {
            "type": "object",
            "description": "Airflow 2's trigger body; null means not given",
            "properties": {
                "run_id": {
                    "anyOf": [
                        {"type": "string", "pattern": RUN_ID_PATTERN, "maxLength": MAX_ID_CHARS},
                        {"type": "null"},
                    ]
                },
                "conf": {"type": ["object", "null"]},
                "execution_date": {"anyOf": [{"type": "string", "pattern": DATE_PATTERN}, {"type": "null"}]},
                "replace_microseconds": {
                    "anyOf": [{"type": "boolean"}, {"type": "string", "enum": list(BOOL_WORDS)}, {"type": "null"}]
                },
            },
        },
        "Triggered": {
            "type": "object",
            "required": ["execution_date", "message", "run_id"],
            "properties": {"execution_date": text, "message": text, "run_id": text},
        },
        "DagRun": {
            "type": "object",
            "required": ["dag_id", "dag_run_url", "execution_date", "id", "run_id", "start_date", "state"],
            "properties": {
                "dag_id": text,
                "dag_run_url": text,
                "execution_date": text,
                "id": {"type": "integer"},
                "run_id": text,
                "start_date": text,
                "state": text,
            },
        },
        "RunState": {"type": "object", "required": ["state"], "properties": {"state": text}},
        "Paused": {"type": "object", "required": ["is_paused"], "properties": {"is_paused": {"type": "boolean"}}},
        "Response": {"type": "object", "required": ["response"], "properties": {"response": {"const": "ok"}}},
        "Deleted": {
            "type": "object",
            "required": ["count", "message"],
            "properties": {"count": {"type": "integer"}, "message": text},
        },
        "Ok": {"type": "object", "required": ["status"], "properties": {"status": {"const": "OK"}}},
        "Info": {"type": "object", "required": ["version"], "properties": {"version": text}},
        "LatestRuns": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": {"type": "object"}}},
        },
        "Pool": pool,
        "PoolRequest": {
            "type": "object",
            "required": ["name", "slots"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": r"^\S[^\u0000-\u001f\u007f]*$"},
                "slots": {"type": "integer", "minimum": -1, "maximum": 2**31 - 1},
                "description": {"type": ["string", "null"], "maxLength": 65536, "pattern": ANY_TEXT},
                "include_deferred": {"type": "boolean"},
            },
        },
        "Lineage": {
            "type": "object",
            "required": ["message", "task_ids"],
            "properties": {"message": text, "task_ids": {"type": "object"}},
        },
    }


def document(settings: Settings, root: str | None = None) -> dict[str, Any]:
    """The gateway's OpenAPI 3.1 document for ``settings`` (token header, wait limits); its server is ``root``
    (where the client reaches the gateway: a trusted proxy's prefix and ``base_path``), by default ``base_path``."""
    paths = {
        **_gateway_paths(settings),
        **_dispatcher_path(settings),
        **_plugin_api_paths(settings),
        **_jobs_paths(),
        **_experimental_paths(),
    }
    base = settings.server.base_path if root is None else root
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "airflow-rest-gateway",
            "version": __version__,
            "description": (
                "Apache Airflow 3's CLI behind the REST API plugin's contract (`/admin/rest_api/api?api=NAME`), "
                "Airflow 2's experimental REST API, background jobs, health and metrics."
            ),
        },
        "servers": [{"url": base or "/"}],
        "security": [{"token": []}, {"bearer": []}],
        "tags": [{"name": name} for name in ("plugin", "experimental", "jobs", "gateway")],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": settings.header_name},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": _schemas(),
        },
    }

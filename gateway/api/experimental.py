"""``/api/experimental/...``: Airflow 2's experimental REST API, on Airflow 3, with Airflow 2's JSON shapes.

Requests are checked here (400 before anything runs) and answered by the persistent Airflow worker
(:mod:`gateway.experimental.ops`). Errors are always ``{"error": "..."}``. For a token's ``allow``
list each endpoint is named ``experimental.<operation>`` (``experimental.*`` allows them all).
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from ..envelope import error_response
from ..keys import AIRFLOW_WORKER, PRINCIPAL
from ..runner import RunnerUnavailable

routes = web.RouteTableDef()
PREFIX = "/api/experimental"
_RUN_ID = re.compile(r"^[A-Za-z0-9_.~:+-]+$")
_TRUE = {"true", "t", "y", "yes", "1", "on"}
MAX_POOL_NAME = 256


def BadRequest(message: str) -> web.HTTPBadRequest:
    """A 400; the errors middleware answers it as ``{"error": message}``."""
    return web.HTTPBadRequest(text=message)


async def _answer(request: web.Request, op: str, **args: Any) -> web.Response:
    principal = request[PRINCIPAL]
    if not principal.may_call(f"experimental.{op}"):
        return error_response(403, f"Token '{principal.name}' is not allowed to call experimental.{op}")
    try:
        status, body = await request.app[AIRFLOW_WORKER].call(op, **args)
    except RunnerUnavailable as exc:
        return error_response(503, str(exc), {"Retry-After": "2"})
    if op == "dag_code" and status == 200:
        return web.Response(text=body, content_type="text/plain")
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type says (as Airflow 2 read it); empty means {}."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object")
    return body


def _trigger_body(body: dict[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    if "conf" in body:
        conf = body["conf"]
        if isinstance(conf, str):  # the seed's own curl example sends conf as a JSON string
            try:
                conf = json.loads(conf) if conf.strip() else {}
            except ValueError:
                conf = None
        if not isinstance(conf, dict):
            raise BadRequest("Dag Run conf must be a dictionary object, other types are not supported")
        checked["conf"] = conf
    run_id = body.get("run_id")
    if run_id not in (None, ""):
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or len(run_id) > 250:
            raise BadRequest(f"The run_id provided {run_id!r} does not match regex pattern '{_RUN_ID.pattern}'")
        checked["run_id"] = run_id
    date = body.get("execution_date")
    if date is not None:
        if not isinstance(date, str):
            raise BadRequest(
                f"Given execution date, {date}, could not be identified as a date. "
                "Example date format: 2015-11-16T14:34:15+00:00"
            )
        checked["execution_date"] = date
    replace = body.get("replace_microseconds")
    if isinstance(replace, bool):
        checked["replace_microseconds"] = replace
    elif isinstance(replace, str):
        checked["replace_microseconds"] = replace.strip().lower() in _TRUE
    elif replace is not None:
        raise BadRequest('replace_microseconds must be a boolean or a string like "true"/"false"')
    return checked


def _pool_body(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - {"name", "slots", "description", "include_deferred"})
    if unknown:
        raise BadRequest(f"Unknown key(s) for a pool: {', '.join(unknown)} (expected name, slots, description)")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("Pool name shouldn't be empty")
    if len(name) > MAX_POOL_NAME:
        raise BadRequest(f"Pool name can't be more than {MAX_POOL_NAME} characters")
    slots = body.get("slots")
    try:
        if isinstance(slots, bool) or slots is None:
            raise ValueError
        slots = int(slots)
    except (TypeError, ValueError):
        raise BadRequest(f"Bad value for `slots`: {slots}") from None
    description = body.get("description", "")
    if description is not None and not isinstance(description, str):
        raise BadRequest("Pool description must be a string")
    include_deferred = body.get("include_deferred", False)
    if not isinstance(include_deferred, bool):
        raise BadRequest("include_deferred must be a boolean")
    return {"name": name, "slots": slots, "description": description or "", "include_deferred": include_deferred}


@routes.post(PREFIX + "/dags/{dag_id}/dag_runs")
async def trigger(request: web.Request) -> web.Response:
    body = _trigger_body(await _json_object(request))
    return await _answer(request, "trigger", dag_id=request.match_info["dag_id"], body=body)


@routes.get(PREFIX + "/dags/{dag_id}/dag_runs")
async def list_runs(request: web.Request) -> web.Response:
    return await _answer(request, "list_runs", dag_id=request.match_info["dag_id"], state=request.query.get("state"))


@routes.get(PREFIX + "/dags/{dag_id}/dag_runs/{execution_date}")
async def run_state(request: web.Request) -> web.Response:
    info = request.match_info
    return await _answer(request, "run_state", dag_id=info["dag_id"], execution_date=info["execution_date"])


@routes.get(PREFIX + "/dags/{dag_id}/dag_runs/{execution_date}/tasks/{task_id}")
async def task_instance(request: web.Request) -> web.Response:
    info = request.match_info
    return await _answer(
        request, "task_instance", dag_id=info["dag_id"], execution_date=info["execution_date"], task_id=info["task_id"]
    )


@routes.get(PREFIX + "/dags/{dag_id}/tasks/{task_id}")
async def task_info(request: web.Request) -> web.Response:
    info = request.match_info
    return await _answer(request, "task_info", dag_id=info["dag_id"], task_id=info["task_id"])


@routes.get(PREFIX + "/dags/{dag_id}/code")
async def dag_code(request: web.Request) -> web.Response:
    return await _answer(request, "dag_code", dag_id=request.match_info["dag_id"])


@routes.get(PREFIX + "/dags/{dag_id}/paused/{paused}")
async def set_paused(request: web.Request) -> web.Response:
    paused = request.match_info["paused"]
    if paused not in ("true", "false"):
        raise BadRequest(f"'paused' must be 'true' or 'false', got {paused!r}")
    return await _answer(request, "set_paused", dag_id=request.match_info["dag_id"], paused=paused)


@routes.get(PREFIX + "/dags/{dag_id}/paused")
async def get_paused(request: web.Request) -> web.Response:
    return await _answer(request, "get_paused", dag_id=request.match_info["dag_id"])


@routes.delete(PREFIX + "/dags/{dag_id}")
async def delete_dag(request: web.Request) -> web.Response:
    return await _answer(request, "delete", dag_id=request.match_info["dag_id"])


@routes.get(PREFIX + "/test")
async def test(request: web.Request) -> web.Response:
    return web.json_response({"status": "OK"})


@routes.get(PREFIX + "/info")
async def info(request: web.Request) -> web.Response:
    return await _answer(request, "info")


@routes.get(PREFIX + "/latest_runs")
async def latest_runs(request: web.Request) -> web.Response:
    return await _answer(request, "latest_runs")


@routes.get(PREFIX + "/pools")
async def pools(request: web.Request) -> web.Response:
    return await _answer(request, "pools")


@routes.post(PREFIX + "/pools")
async def create_pool(request: web.Request) -> web.Response:
    return await _answer(request, "create_pool", **_pool_body(await _json_object(request)))


@routes.get(PREFIX + "/pools/{name}")
async def pool(request: web.Request) -> web.Response:
    return await _answer(request, "pool", name=request.match_info["name"])


@routes.delete(PREFIX + "/pools/{name}")
async def delete_pool(request: web.Request) -> web.Response:
    return await _answer(request, "delete_pool", name=request.match_info["name"])


@routes.get(PREFIX + "/lineage/{dag_id}/{execution_date}")
async def lineage(request: web.Request) -> web.Response:
    info = request.match_info
    return await _answer(request, "lineage", dag_id=info["dag_id"], execution_date=info["execution_date"])

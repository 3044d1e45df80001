"""``/api/experimental/...``: Airflow 2's experimental REST API, on Airflow 3, with Airflow 2's JSON shapes.

Requests are checked here (400 before anything runs) and answered by the persistent Airflow worker
(:mod:`gateway.worker.operations`). Errors are always ``{"error": "..."}``. For a token's ``allow``
list each endpoint is named ``experimental.<operation>`` (``experimental.*`` allows them all), as its handler
declares with :func:`operation`, which checks it before anything else.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial, wraps
from typing import Any

from aiohttp import web

from ..aio import off_loop
from ..bodies import loads, parse_bool, read_bytes
from ..catalog import MAX_ID_CHARS, RUN_ID, checked_date, date_or_run_id, is_id, is_run_id
from ..catalog.model import MAX_INT_DIGITS, whole_number
from ..config import WaitSettings
from ..errors import ApiError
from ..keys import AIRFLOW_WORKER, AUDIT, MASKER, PRINCIPAL, SETTINGS
from ..masking import MAX_REQUEST_SECRETS, sensitive_values
from ..streaming import stream_events, stream_format
from ..watch import RunWatch, check_can_run

routes = web.RouteTableDef()
MAX_POOL_NAME = 256
MAX_DESCRIPTION = 65536
#: Airflow 2's ``int(slots)``, within the column: -1 (unlimited) to a 32-bit integer's largest.
MAX_SLOTS = 2**31 - 1
DATE_ERROR = (
    "Given execution date, {}, could not be identified as a date. Example date format: 2015-11-16T14:34:15+00:00"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def operation(op: str) -> Callable[[Handler], Handler]:
    """The handler answers ``experimental.<op>``: the audit record names it, and a token not allowed it is refused
    (403) before anything else — the body, the path, the worker — so a refusal tells nothing of what exists."""

    def declare(handler: Handler) -> Handler:
        @wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            principal = request[PRINCIPAL]
            request[AUDIT].api = f"experimental.{op}"
            if not principal.may_call(f"experimental.{op}"):
                raise ApiError(403, f"Token '{principal.name}' is not allowed to call experimental.{op}")
            return await handler(request)

        checked.operation = op  # type: ignore[attr-defined]
        return checked

    return declare


async def _answer(request: web.Request, **args: Any) -> web.Response:
    """The worker's answer to the handler's operation (checked by :func:`operation`) with ``args``."""
    op = request.match_info.handler.operation  # type: ignore[attr-defined]
    request[AUDIT].args = sorted(args)
    status, body = await request.config_dict[AIRFLOW_WORKER].call(op, **args)  # RunnerUnavailable: a 503
    # A run list or a DAG's code can be large: masked (linear) and serialized in a thread then.
    size = len(body) * 256 if isinstance(body, list | dict) else len(str(body))
    if op == "dag_code" and status == 200:
        return web.Response(text=await off_loop(size, request[MASKER].text, body), content_type="text/plain")
    text = await off_loop(size, lambda: json.dumps(request[MASKER].value(body)))
    return web.Response(status=status, text=text, content_type="application/json")


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type says (as Airflow 2 read it); empty means {}."""
    raw = await read_bytes(request)
    if not raw.strip():
        return {}
    body = await off_loop(len(raw), loads, raw)
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object")
    return body


def _path(request: web.Request) -> dict[str, str]:
    """The path's parameters, checked: ids as Airflow allows them, dates Airflow can compute with."""
    info = dict(request.match_info)
    for key in ("dag_id", "task_id"):
        if key in info and not is_id(info[key]):
            what = "Dag id {} not found in DagModel" if key == "dag_id" else "Task {} not found"
            raise ApiError(404, what.format(info[key][:MAX_ID_CHARS]))
    if "execution_date" in info:
        info["execution_date"] = _date_or_run_id(info["execution_date"])
    if "name" in info and (len(info["name"]) > MAX_POOL_NAME or not info["name"].isprintable()):
        raise ApiError(404, f"Pool {info['name'][:MAX_POOL_NAME]!r} doesn't exist")
    return info


def _date_or_run_id(value: str) -> str:
    """The value as sent (the worker reads it as Airflow 2 did), once it is known to be a sane date or run id."""
    try:
        date_or_run_id("execution_date", value)
    except ApiError:
        raise ApiError(400, DATE_ERROR.format(value[:100])) from None
    return value


def _trigger_body(body: dict[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    if body.get("conf") is not None:  # null means no conf: Airflow 2's json_client always sends the key
        conf = body["conf"]
        if isinstance(conf, str):  # the seed's own curl example sends conf as a JSON string
            try:
                conf = loads(conf, "'conf'") if conf.strip() else {}
            except ApiError:
                conf = None
        if not isinstance(conf, dict):
            raise ApiError(400, "Dag Run conf must be a dictionary object, other types are not supported")
        checked["conf"] = conf
    run_id = body.get("run_id")
    if run_id not in (None, ""):
        if not isinstance(run_id, str) or not is_run_id(run_id):
            pattern = f"^{RUN_ID.pattern}$"
            raise ApiError(400, f"The run_id provided {str(run_id)[:100]!r} does not match regex pattern '{pattern}'")
        checked["run_id"] = run_id
    date = body.get("execution_date")
    if date is not None:
        if not isinstance(date, str) or checked_date("execution_date", date) is None:
            raise ApiError(400, DATE_ERROR.format(str(date)[:100]))
        checked["execution_date"] = date
    replace = body.get("replace_microseconds")
    if isinstance(replace, bool):
        checked["replace_microseconds"] = replace
    elif isinstance(replace, str):
        checked["replace_microseconds"] = parse_bool("replace_microseconds", replace)
    elif replace is not None:
        raise ApiError(400, 'replace_microseconds must be a boolean or a string like "true"/"false"')
    return checked


def _pool_body(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - {"name", "slots", "description", "include_deferred"})
    if unknown:
        raise ApiError(400, f"Unknown key(s) for a pool: {', '.join(unknown)} (expected name, slots, description)")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "Pool name shouldn't be empty")
    if len(name) > MAX_POOL_NAME:
        raise ApiError(400, f"Pool name can't be more than {MAX_POOL_NAME} characters")
    if not name.isprintable():
        raise ApiError(400, "Pool name must be printable text")
    slots = _slots(body.get("slots"))
    description = body.get("description", "")
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION):
        raise ApiError(400, f"Pool description must be a string of at most {MAX_DESCRIPTION} characters")
    if description and "\x00" in description:
        raise ApiError(400, "Pool description contains a NUL character")
    include_deferred = body.get("include_deferred", False)
    if not isinstance(include_deferred, bool):
        raise ApiError(400, "include_deferred must be a boolean")
    return {"name": name, "slots": slots, "description": description or "", "include_deferred": include_deferred}


def _slots(value: Any) -> int:
    """Airflow 2 took ``int(slots)``: whole numbers (or strings of them), -1 meaning unlimited; no booleans."""
    number: int | None = None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        number = value  # compared, never converted: its size does not matter
    elif isinstance(value, str):
        number = whole_number(value.strip(), len(str(MAX_SLOTS)), signed=True)
    if number is None or not -1 <= number <= MAX_SLOTS:
        small = not isinstance(value, int) or abs(value) < 10**MAX_INT_DIGITS  # str() of a huge one may fail
        given = str(value)[:100] if small else "a number out of range"
        raise ApiError(400, f"Bad value for `slots`: {given}")
    return number


@routes.post("/dags/{dag_id}/dag_runs")
@operation("trigger")
async def trigger(request: web.Request) -> web.StreamResponse:
    """Airflow 2's trigger; ``?wait=true`` (gateway addition) answers once the run has finished."""
    body = _trigger_body(await _json_object(request))
    # The conf's secrets are masked in what follows (a wait's task logs), and bounded like the plugin's.
    conf_secrets = sensitive_values(body.get("conf"))
    await off_loop(request.content_length or 0, request[MASKER].add_all, conf_secrets, MAX_REQUEST_SECRETS)
    user = request[PRINCIPAL].name  # the run's triggering_user_name: who asked, not the OS user
    dag_id = _path(request)["dag_id"]
    wait = request.query.get("wait")
    if wait is None or not parse_bool("wait", wait):
        return await _answer(request, dag_id=dag_id, body=body, user=user)
    settings = request.config_dict[SETTINGS]
    timeout_s = _wait_timeout_s(request, settings.wait)
    fmt = stream_format(request.query.get("stream"), request.headers.get("Accept", ""))
    worker = request.config_dict[AIRFLOW_WORKER]
    await check_can_run(worker, dag_id)
    triggered = await _answer(request, dag_id=dag_id, body=body, user=user)
    if triggered.status != 200:
        return triggered
    created = json.loads(triggered.text or "{}")
    watch = RunWatch(worker, dag_id, created["run_id"], poll_s=settings.wait.poll_s, timeout_s=timeout_s)
    if fmt is not None:
        heartbeat_s = settings.streaming.heartbeat_s
        result = partial(_waited, created, watch)
        return await stream_events(request, fmt, request[MASKER], watch.events(), heartbeat_s, result)
    error = await watch.run_to_end()
    answer = _waited(created, watch, error)
    status = error.status if error else 422 if "error" in answer else 200
    return _json(status, answer, error.headers if error else None)


def _wait_timeout_s(request: web.Request, wait: WaitSettings) -> float:
    raw = request.query.get("wait_timeout_s")
    if raw is None:
        return wait.timeout_s
    seconds = whole_number(raw, MAX_INT_DIGITS)
    if seconds is None or not 0 < seconds <= wait.max_timeout_s:
        raise ApiError(400, f"'wait_timeout_s' must be a whole number of seconds from 1 to {wait.max_timeout_s:g}")
    return float(seconds)


def _waited(created: dict[str, Any], watch: RunWatch, error: ApiError | None) -> dict[str, Any]:
    """The trigger's answer with the run's final state and tasks; ``error`` when it failed or the wait ended."""
    answer = {
        **created,
        **({"state": watch.snapshot["state"], "tasks": watch.result()["tasks"]} if watch.snapshot else {}),
    }
    message = error.message if error else watch.failure()
    if message:
        answer["error"] = message
    return answer


def _json(status: int, body: Any, headers: Any = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=headers)


@routes.get("/dags/{dag_id}/dag_runs")
@operation("list_runs")
async def list_runs(request: web.Request) -> web.Response:
    return await _answer(request, dag_id=_path(request)["dag_id"], state=request.query.get("state"))


@routes.get("/dags/{dag_id}/dag_runs/{execution_date}")
@operation("run_state")
async def run_state(request: web.Request) -> web.Response:
    info = _path(request)
    return await _answer(request, dag_id=info["dag_id"], execution_date=info["execution_date"])


@routes.get("/dags/{dag_id}/dag_runs/{execution_date}/tasks/{task_id}")
@operation("task_instance")
async def task_instance(request: web.Request) -> web.Response:
    info = _path(request)
    return await _answer(request, dag_id=info["dag_id"], execution_date=info["execution_date"], task_id=info["task_id"])


@routes.get("/dags/{dag_id}/tasks/{task_id}")
@operation("task_info")
async def task_info(request: web.Request) -> web.Response:
    info = _path(request)
    return await _answer(request, dag_id=info["dag_id"], task_id=info["task_id"])


@routes.get("/dags/{dag_id}/code")
@operation("dag_code")
async def dag_code(request: web.Request) -> web.Response:
    return await _answer(request, dag_id=_path(request)["dag_id"])


@routes.get("/dags/{dag_id}/paused/{paused}")
@operation("set_paused")
async def set_paused(request: web.Request) -> web.Response:
    paused = _path(request)["paused"]
    if paused not in ("true", "false"):
        raise ApiError(400, f"'paused' must be 'true' or 'false', got {paused!r}")
    return await _answer(request, dag_id=_path(request)["dag_id"], paused=paused)


@routes.get("/dags/{dag_id}/paused")
@operation("get_paused")
async def get_paused(request: web.Request) -> web.Response:
    return await _answer(request, dag_id=_path(request)["dag_id"])


@routes.delete("/dags/{dag_id}/delete_dag")  # the URL Airflow 2's json_client sends (Airflow's own bug #14373)
@routes.delete("/dags/{dag_id}")
@operation("delete")
async def delete_dag(request: web.Request) -> web.Response:
    return await _answer(request, dag_id=_path(request)["dag_id"])


@routes.get("/test")
async def test(request: web.Request) -> web.Response:
    return web.json_response({"status": "OK"})


@routes.get("/info")
@operation("info")
async def info(request: web.Request) -> web.Response:
    return await _answer(request)


@routes.get("/latest_runs")
@operation("latest_runs")
async def latest_runs(request: web.Request) -> web.Response:
    return await _answer(request)


@routes.get("/pools")
@operation("pools")
async def pools(request: web.Request) -> web.Response:
    return await _answer(request)


@routes.post("/pools")
@operation("create_pool")
async def create_pool(request: web.Request) -> web.Response:
    return await _answer(request, **_pool_body(await _json_object(request)))


@routes.get("/pools/{name}")
@operation("pool")
async def pool(request: web.Request) -> web.Response:
    return await _answer(request, name=_path(request)["name"])


@routes.delete("/pools/{name}")
@operation("delete_pool")
async def delete_pool(request: web.Request) -> web.Response:
    return await _answer(request, name=_path(request)["name"])


@routes.get("/lineage/{dag_id}/{execution_date}/")  # as the experimental API's reference writes it
@routes.get("/lineage/{dag_id}/{execution_date}")
@operation("lineage")
async def lineage(request: web.Request) -> web.Response:
    info = _path(request)
    return await _answer(request, dag_id=info["dag_id"], execution_date=info["execution_date"])

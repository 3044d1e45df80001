"""``GET|POST /admin/rest_api/api?api=NAME``: the REST API plugin's contract, every API from the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from .. import __version__
from ..catalog import CATALOG, Api, ApiError, Kind, Outcome, Upload, validate
from ..dagfiles import deploy_dag
from ..envelope import plugin_response
from ..keys import CALL_TIME, PRINCIPAL, RUNNER, SETTINGS
from ..output import Failure, classify_failure, split_log_lines
from ..runner import Overloaded, RunnerUnavailable, RunResult, RunState

routes = web.RouteTableDef()


@dataclass(frozen=True)
class Params:
    """A request's arguments: the query string wins over the body, as in the plugin."""

    query: dict[str, str]
    body: dict[str, Any]

    @property
    def merged(self) -> dict[str, Any]:
        return {**self.body, **self.query}


async def read_params(request: web.Request, max_upload_bytes: int) -> Params:
    query = {key: request.query[key] for key in request.query}
    body: dict[str, Any] = {}
    if request.body_exists:
        if request.content_type == "application/json":
            try:
                document = await request.json()
            except ValueError as exc:
                raise ApiError(400, f"The body is not valid JSON: {exc}") from None
            if not isinstance(document, dict):
                raise ApiError(400, "A JSON body must be an object of arguments")
            body = document
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key in form:
                value = form[key]
                if isinstance(value, web.FileField):
                    content = value.file.read(max_upload_bytes + 1)
                    if len(content) > max_upload_bytes:
                        raise ApiError(413, f"'{key}' is larger than {max_upload_bytes} bytes (deploy.max_bytes)")
                    body[key] = Upload(value.filename, content)
                else:
                    body[key] = value
    return Params(query=query, body=body)


def _masked(api: Api | None, values: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for key, value in values.items():
        arg = api.arg(key) if api else None
        if isinstance(value, Upload):
            shown[key] = value.filename
        elif arg is not None and arg.secret and value not in (None, ""):
            shown[key] = _mask_secret(value)
        else:
            shown[key] = value
    return shown


def _mask_secret(value: Any) -> str:
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
        return value
    return "***"


class Reply:
    """Builds the envelope for one request; every answer on this route goes through it."""

    def __init__(self, request: web.Request, params: Params, api: Api | None) -> None:
        self.request = request
        self.fields = {"arguments": _masked(api, params.query), "post_arguments": _masked(api, params.body) or None}

    def __call__(
        self, http_status: int, output: Any, headers: dict[str, str] | None = None, **fields: Any
    ) -> web.Response:
        return plugin_response(self.request[CALL_TIME], http_status, output, headers=headers, **self.fields, **fields)

    def result(
        self, api: Api, values: dict[str, Any], command_display: str, result: RunResult, split_logs: bool
    ) -> web.Response:
        stdout, log = split_log_lines(result.stdout) if split_logs and api.split_logs else (result.stdout, "")
        output = {"stdout": stdout, "stderr": result.stderr, **({"log": log} if log else {})}
        if result.state is RunState.TIMED_OUT:
            outcome = Outcome(failure=Failure(504, "The command ran past runner.timeout_s and was killed"))
        elif result.exit_code != 0:
            outcome = Outcome(failure=classify_failure(result.exit_code, stdout, result.stderr))
        else:
            outcome = api.parse(values, stdout)
        status = outcome.failure.http_status if outcome.failure else 200
        error = outcome.failure.message if outcome.failure else None
        return self(
            status,
            output,
            airflow_cmd=command_display,
            exit_code=result.exit_code,
            duration_s=round(result.duration_s, 3),
            truncated=result.truncated,
            data=outcome.data,
            error=error,
            warning=outcome.warning,
        )


@routes.route("*", "/admin/rest_api/api")
async def plugin_api(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    try:
        params = await read_params(request, settings.deploy.max_bytes)
    except ApiError as exc:
        return Reply(request, Params(dict(request.query), {}), None)(exc.status, exc.message)
    merged = params.merged
    name = str(merged.pop("api", "") or "").strip().lower()
    api = CATALOG.get(name)
    reply = Reply(request, params, api)
    if not name:
        return reply(400, "API should be provided")
    if api is None:
        return reply(400, f"API '{name}' was not found")
    try:
        return await _call(request, reply, api, merged)
    except ApiError as exc:
        return reply(exc.status, exc.message)
    except Overloaded as exc:
        return reply(503, str(exc), headers={"Retry-After": str(exc.retry_after_s)})
    except RunnerUnavailable as exc:
        return reply(503, str(exc))


async def _call(request: web.Request, reply: Reply, api: Api, raw: dict[str, Any]) -> web.Response:
    settings = request.app[SETTINGS]
    principal = request[PRINCIPAL]
    if not principal.may_call(api.name):
        raise ApiError(403, f"Token '{principal.name}' is not allowed to call API '{api.name}'")
    if api.gone:
        raise ApiError(410, f"API '{api.name}' has no Airflow 3 equivalent: {api.gone}")
    if request.method not in api.methods:
        raise ApiError(405, f"API '{api.name}' takes {' or '.join(api.methods)}")
    if api.name in settings.disabled_apis:
        raise ApiError(
            403,
            f"API '{api.name}' is disabled on this gateway. It starts a long-running daemon; to allow it, "
            f"remove '{api.name}' from apis.disabled in the gateway config.",
        )
    if api.kind is Kind.DAEMON:
        raise ApiError(
            501,
            f"API '{api.name}' starts a daemon, which the gateway runs only as a managed background job; "
            "this version has no job support yet.",
        )
    values = validate(api, raw)
    if api.name == "rest_api_plugin_version":
        return reply(200, __version__)
    runner = request.app[RUNNER]
    if api.name == "deploy_dag":
        deployed = await deploy_dag(request.app, values)
        return reply(deployed.http_status, deployed.message, data=deployed.data, warning=deployed.warning)
    assert api.build is not None
    command = api.build(values)
    result = await runner.run(command)
    return reply.result(api, values, command.display(), result, settings.filter_loading_messages)

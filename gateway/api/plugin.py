"""``GET|POST /admin/rest_api/api?api=NAME``: the REST API plugin's contract, every API from the catalog.

Besides the API's own arguments, two gateway options: ``stream=true|text`` (or ``Accept:
text/event-stream``) streams the output as it is printed; ``async=true`` starts a background job
and answers 202 with its URLs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from ..aio import off_loop
from ..auth import Principal
from ..bodies import loads, read_form, read_json_object
from ..catalog import CATALOG, Api, ApiError, Kind, Outcome, Upload, Values, parse_bool, validate
from ..config import Settings
from ..envelope import dumps, http_date, masked, plugin_body, utc_now
from ..keys import AIRFLOW_WORKER, AUDIT, CALL_TIME, DAEMONS, JOBS, MASKER, PRINCIPAL, RUNNER, SETTINGS, TOKEN_DIGESTS
from ..masking import MAX_REQUEST_SECRETS, Masker, is_sensitive_key, sensitive_values, token_digest, uri_secrets
from ..outflow import MaskedOutput
from ..output import DATABASE_UNAVAILABLE, Failure, classify_failure, split_log_lines
from ..runner import Collector, Command, CommandRunner, RunResult, RunState
from ..streaming import ClientGone, EventWriter, Format, stream_events, stream_format, with_heartbeats
from ..watch import RunWatch, ask, check_can_run, scheduler_warning
from .jobs import job_urls

routes = web.RouteTableDef()
#: Request keys that are options of the gateway, not arguments of the API.
OPTIONS = ("stream", "async")
#: Linux's MAX_ARG_STRLEN (32 pages) less the terminating NUL: the longest single argv element.
MAX_ARG_BYTES = 128 * 1024 - 1
#: All of argv together, well under ARG_MAX (which the environment shares).
MAX_ARGV_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Params:
    """A request's arguments: the query string wins over the body, as in the plugin."""

    query: dict[str, str]
    body: dict[str, Any]

    @property
    def merged(self) -> dict[str, Any]:
        return {**self.body, **self.query}


def _once(pairs: Any) -> None:
    """An argument given twice is ambiguous (which one ran?): refused rather than guessed."""
    seen = set()
    for key, _ in pairs.items():  # every pair, repeated keys included
        if key in seen:
            raise ApiError(400, f"'{key}' was given more than once")
        seen.add(key)


async def read_params(request: web.Request, max_upload_bytes: int) -> Params:
    _once(request.query)
    query = {key: request.query[key] for key in request.query}
    body: dict[str, Any] = {}
    if request.body_exists:
        if request.content_type == "application/json":
            body = await read_json_object(request, "arguments") or {}
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await read_form(request)
            _once(form)
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


def request_secrets(api: Api, params: Params, token_digests: frozenset[bytes]) -> Iterator[str]:
    """Everything secret the request carries: secret arguments, values under password-like names and keys
    (at any depth of JSON), URI passwords, values equal to a configured token."""
    for key, value in [*params.query.items(), *params.body.items()]:
        if isinstance(value, Upload):
            continue
        arg = api.arg(key) if isinstance(key, str) else None
        if isinstance(value, str):
            secret_arg = arg is not None and arg.secret and "://" not in value
            if secret_arg or is_sensitive_key(key) or token_digest(value) in token_digests:
                yield value
            yield from uri_secrets(value)
            if value.lstrip().startswith("{"):
                yield from sensitive_values(_json_or_none(value))
        elif isinstance(value, dict | list):
            yield from sensitive_values({key: value} if is_sensitive_key(key) else value)


def _json_or_none(text: str) -> Any:
    try:
        return loads(text)
    except ApiError:
        return None


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value.filename if isinstance(value, Upload) else value for key, value in values.items()}


def teach(masker: Masker, outcome: Outcome) -> None:
    """What a command's parsed output says is secret: values it names (a secret-named variable) and every
    value under a password-like key of its data (as Airflow's own API redacts them)."""
    for secret in outcome.secrets:
        masker.add(secret)
    masker.add_sensitive_values(outcome.data)


def output_teacher(masker: Masker, api: Api, values: Values) -> Callable[[str], None]:
    """For a data command run as a job: parse its whole stdout as the buffered answer would, and learn from it."""

    def learn(stdout: str) -> None:
        try:
            teach(masker, api.parse(values, stdout))
        except Exception:  # output that is no document (a failed command): its lines taught what they show
            return

    return learn


class Reply:
    """Builds the envelope for one request; every answer on this route goes through it. Values are masked
    when the answer is sent (:func:`~gateway.envelope.masked`: content fields only), never before the
    request's permission was checked."""

    def __init__(self, request: web.Request, params: Params) -> None:
        self.request = request
        self.masker = request[MASKER]
        self.fields = {"arguments": params.query, "post_arguments": _shown(params.body) or None}
        #: How much text this answer carries (the request's body, the command's output): above
        #: ``aio.OFF_LOOP_SIZE``, it is parsed and masked in a thread.
        self.size = request.content_length or 0

    def body(self, http_status: int, output: Any, **fields: Any) -> dict[str, Any]:
        return plugin_body(self.request[CALL_TIME], http_status, output, **self.fields, **fields)

    async def __call__(
        self, http_status: int, output: Any, headers: dict[str, str] | None = None, **fields: Any
    ) -> web.Response:
        return await self.json(self.body(http_status, output, **fields), headers)

    async def json(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
        text = await off_loop(self.size, lambda: dumps(masked(body, self.masker)))
        return web.Response(
            status=body["http_response_code"], text=text, content_type="application/json", headers=headers
        )

    async def result(self, api: Api, values: Values, command: Command, result: RunResult) -> dict[str, Any]:
        """:meth:`result_body`, off the event loop for a large output."""
        self.size += len(result.stdout) + len(result.stderr)
        return await off_loop(self.size, self.result_body, api, values, command.display(self.masker), result)

    def result_body(self, api: Api, values: Values, command_display: str, result: RunResult) -> dict[str, Any]:
        """The envelope of a finished command (the buffered answer, or a stream's last event); what its output
        says is secret is learned here, before anything of it is sent."""
        split = self.request.config_dict[SETTINGS].filter_loading_messages and api.split_logs
        stdout, log = split_log_lines(result.stdout) if split else (result.stdout, "")
        output = {"stdout": stdout, "stderr": result.stderr, **({"log": log} if log else {})}
        if result.state is RunState.TIMED_OUT:
            outcome = Outcome(failure=Failure(504, "The command ran past runner.timeout_s and was killed"))
        elif result.exit_code != 0:
            failure = classify_failure(result.exit_code, stdout, result.stderr, runs_task_code=not holds_output(api))
            outcome = Outcome(failure=failure)
            if failure.hide_output:
                output = {"stdout": "", "stderr": failure.message}
        else:
            outcome = api.parse(values, stdout)
        teach(self.masker, outcome)
        return self.body(
            outcome.failure.http_status if outcome.failure else 200,
            output,
            airflow_cmd=command_display,
            exit_code=result.exit_code,
            duration_s=round(result.duration_s, 3),
            truncated=result.truncated,
            data=outcome.data,
            error=outcome.failure.message if outcome.failure else None,
            warning=outcome.warning,
        )


def permit(principal: Principal, api: str) -> None:
    """The first check of every call, before anything is learned, validated or looked up."""
    if not principal.may_call(api):
        raise ApiError(403, f"Token '{principal.name}' is not allowed to call API '{api}'")


@routes.route("*", "/api/{api}")  # one URL per API (the OpenAPI document's operations), same contract
@routes.route("*", "/api")
async def plugin_api(request: web.Request) -> web.StreamResponse:
    settings = request.config_dict[SETTINGS]
    in_path = request.match_info.get("api", "").strip().lower()
    try:
        if in_path in CATALOG:  # the API is known from the URL: refused before the body is even read
            request[AUDIT].api = in_path
            permit(request[PRINCIPAL], in_path)
        params = await read_params(request, settings.deploy.max_bytes)
    except ApiError as exc:
        return await Reply(request, Params(dict(request.query), {}))(exc.status, exc.message)
    merged = params.merged
    name = str(merged.pop("api", "") or "").strip().lower()
    if in_path and name and name != in_path:
        return await Reply(request, params)(400, f"The URL names API '{in_path[:100]}' but 'api' says '{name[:100]}'")
    name = in_path or name
    options = {key: merged.pop(key) for key in OPTIONS if key in merged}
    api = CATALOG.get(name)
    audit = request[AUDIT]
    audit.api, audit.args = (name if api else None), sorted(str(key) for key in merged)
    reply = Reply(request, params)
    if not name:
        return await reply(400, "API should be provided")
    if api is None:
        return await reply(400, f"API '{name[:100]}' was not found")
    try:
        return await _call(request, reply, api, params, merged, options)
    except ApiError as exc:  # a refusal, an overload or a runner that is down: all carry their status
        return await reply(exc.status, exc.message, headers=exc.headers)


async def _call(
    request: web.Request, reply: Reply, api: Api, params: Params, raw: dict[str, Any], options: dict[str, Any]
) -> web.StreamResponse:
    settings = request.config_dict[SETTINGS]
    principal = request[PRINCIPAL]
    permit(principal, api.name)
    if api.gone:
        raise ApiError(410, f"API '{api.name}' has no Airflow 3 equivalent: {api.gone}")
    if request.method not in api.methods:
        raise ApiError(405, f"API '{api.name}' takes {' or '.join(api.methods)}", {"Allow": ", ".join(api.methods)})
    if api.name in settings.disabled_apis:
        raise ApiError(
            403,
            f"API '{api.name}' is disabled on this gateway. It starts a long-running daemon; to allow it, "
            f"remove '{api.name}' from apis.disabled in the gateway config.",
        )
    run_async = "async" in options and parse_bool("async", options["async"])
    fmt = stream_format(options.get("stream"), request.headers.get("Accept", ""))
    if api.kind is Kind.DAEMON and not run_async:
        raise ApiError(400, f"API '{api.name}' starts a daemon, which runs only as a background job: add async=true")
    # Permitted: now what the request carries is learned (at most MAX_REQUEST_SECRETS secrets) and checked.
    masker = request[MASKER]
    secrets = request_secrets(api, params, request.config_dict[TOKEN_DIGESTS])
    await off_loop(reply.size, masker.add_all, secrets, MAX_REQUEST_SECRETS)
    values = await off_loop(reply.size, validate, api, raw)
    for secret in api.secrets(values):
        masker.add(secret)
    if api.answer is not None:
        answer = await api.answer(request.config_dict, values, principal.name)
        return await reply(answer.http_status, answer.message, data=answer.data, warning=answer.warning)
    worker = request.config_dict[AIRFLOW_WORKER]
    if api.kind is Kind.WATCH:
        if run_async:
            raise ApiError(400, f"API '{api.name}' answers when the run finishes; it cannot run as a job")
        run = await ask(worker, "find_run", dag_id=values["dag_id"], run=values["run_id"])
        body = reply.body(200, f"Watched run {run['run_id']}")
        return await follow_run(request, reply, values, run["run_id"], fmt, body)
    assert api.build is not None
    command = fits_argv(api.build(values)).run_as(principal.name)
    waiting = api.waits and values.get("wait")
    if run_async:
        if waiting:
            raise ApiError(400, "'wait' and 'async' exclude each other: a job's status is the wait")
        return await _start_job(request, reply, api, values, command)
    if waiting:
        _wait_timeout_s(settings, values)  # refused before anything is created
        await check_can_run(worker, values["dag_id"])
    elif fmt is not None:
        return await stream_command(request, reply, api, values, command, fmt)
    runner = request.config_dict[RUNNER]
    result = await worker.read(command, runner.max_output_bytes) if api.fast_path and settings.fast_reads else None
    if result is None:
        async with _hang_up_counted(runner):  # a fast read kills no process when its client hangs up
            result = await runner.run(command)
    body = await reply.result(api, values, command, result)
    if body["http_response_code"] == 404 and not await worker.database_answers():  # "not found", or no database?
        body = _without_database(body)
    if body["http_response_code"] == 200 and isinstance(body.get("data"), dict):
        if waiting:
            return await follow_run(request, reply, values, body["data"]["run_id"], fmt, body)
        if api.needs_scheduler and (warning := await scheduler_warning(worker, body["data"].get("state"))):
            body["warning"] = f"{body['warning']}; {warning}" if body.get("warning") else warning
    return await reply.json(body)


def _without_database(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as the 503 it is when the database did not answer: what the command concluded is not said."""
    body = {key: value for key, value in body.items() if key not in ("data", "warning")}
    output = {"stdout": "", "stderr": DATABASE_UNAVAILABLE}
    return {**body, "http_response_code": 503, "status": "ERROR", "error": DATABASE_UNAVAILABLE, "output": output}


def _wait_timeout_s(settings: Settings, values: Values) -> float:
    timeout_s = float(values.get("wait_timeout_s", settings.wait.timeout_s))
    if timeout_s > settings.wait.max_timeout_s:
        raise ApiError(400, f"'wait_timeout_s' must be at most {settings.wait.max_timeout_s:g} (wait.max_timeout_s)")
    return timeout_s


async def follow_run(
    request: web.Request, reply: Reply, values: Values, run_id: str, fmt: Format | None, body: dict[str, Any]
) -> web.StreamResponse:
    """Follow the run to its end; the answer is ``body`` with the run's final state (streamed: events first)."""
    settings = request.config_dict[SETTINGS]
    watch = RunWatch(
        request.config_dict[AIRFLOW_WORKER],
        values["dag_id"],
        run_id,
        poll_s=settings.wait.poll_s,
        timeout_s=_wait_timeout_s(settings, values),
    )
    if fmt is not None:
        result = partial(_finished, body, watch)
        return await stream_events(
            request, fmt, request[MASKER], watch.events(), settings.streaming.heartbeat_s, result
        )
    error = await watch.run_to_end()
    return await reply.json(_finished(body, watch, error), error.headers if error else None)


def _finished(body: dict[str, Any], watch: RunWatch, error: ApiError | None) -> dict[str, Any]:
    """``body`` (the trigger's envelope, or the watch's) with the run's state: 200, 422 failed, or the refusal."""
    status, message = (error.status, error.message) if error else (200, None)
    if error is None and (failure := watch.failure()):
        status, message = 422, failure
    data = {**(body.get("data") or {}), **watch.result()} if watch.snapshot else body.get("data")
    finished = {**body, "http_response_code": status, "status": "OK" if status < 400 else "ERROR", "data": data}
    if message:
        finished["error"] = message
    finished["response_time"] = http_date(utc_now())
    return finished


def fits_argv(command: Command) -> Command:
    """Refuse up front what no process could be started with (Linux: 128 KiB per argument)."""
    for arg in command.argv:
        if len(arg.encode("utf-8", "surrogateescape")) > MAX_ARG_BYTES:
            raise ApiError(
                413,
                f"An argument is longer than {MAX_ARG_BYTES} bytes, the most a command line argument can hold "
                "(Linux's MAX_ARG_STRLEN); pass less data (large variables: use variables import with a file)",
            )
    if sum(len(arg.encode("utf-8", "surrogateescape")) + 1 for arg in command.argv) > MAX_ARGV_BYTES:
        raise ApiError(413, f"The command line would be longer than {MAX_ARGV_BYTES} bytes in all; pass less data")
    return command


def holds_output(api: Api) -> bool:
    """A data command's output is released only once it is whole (see :mod:`gateway.outflow`); task runs,
    backfills and daemons stream live."""
    return api.kind is Kind.QUICK


async def _start_job(request: web.Request, reply: Reply, api: Api, values: Values, command: Command) -> web.Response:
    jobs = request.config_dict[JOBS]
    owner = request[PRINCIPAL].name
    masker = request[MASKER]
    if api.kind is Kind.DAEMON:
        # Daemons never take an admission slot (they would hold it forever) and always run exec'd.
        job = await jobs.submit(api.name, command, owner, request.config_dict[DAEMONS].start, masker, daemon=True)
    else:
        runner = request.config_dict[RUNNER]
        runner.admission.check()
        learn = output_teacher(masker, api, values) if holds_output(api) else None
        job = await jobs.submit(api.name, command, owner, runner.start, masker, learn=learn)
    request[AUDIT].job_id = job.id
    urls = job_urls(request, job)
    return await reply(
        202,
        f"Job {job.id} started",
        headers={"Location": urls["status_url"]},
        airflow_cmd=job.command,
        job_id=job.id,
        data=job.public(),
        **urls,
    )


@asynccontextmanager
async def _hang_up_counted(runner: CommandRunner) -> AsyncIterator[CommandRunner]:
    """Counts a run killed because its client hung up (``handler_cancellation`` cancels the handler)."""
    try:
        yield runner
    except asyncio.CancelledError:
        runner.killed_on_disconnect += 1
        raise


async def stream_command(
    request: web.Request, reply: Reply, api: Api, values: Values, command: Command, fmt: Format
) -> web.StreamResponse:
    """Output lines as they are printed (a data command's once it has ended and its secrets are known), then the
    envelope as the last event. Admission errors come first, as JSON."""
    settings = request.config_dict[SETTINGS]
    runner = request.config_dict[RUNNER]
    masker = request[MASKER]
    async with _hang_up_counted(runner), runner.start(command) as run:
        writer = await EventWriter.open(request, fmt, masker)
        output = MaskedOutput(masker, hold=holds_output(api), max_held_bytes=runner.max_output_bytes)
        kept = Collector(runner.max_output_bytes)
        try:
            async for chunk in with_heartbeats(request, run.output(), settings.streaming.heartbeat_s, writer.heartbeat):
                kept.add(chunk)
                for stream, text in output.feed(chunk):
                    await writer.event("output", {"stream": stream, "text": text}, premasked=True)
        except (ClientGone, ConnectionError):
            runner.killed_on_disconnect += 1
            return writer.response  # leaving the block kills the run's process group
    if run.lost:
        body = reply.body(503, run.lost)
    else:
        body = await reply.result(api, values, command, kept.result(run))  # learns what the output holds
        body.pop("output", None)  # streamed
    released = await off_loop(reply.size, output.finish)
    if body.get("error") != DATABASE_UNAVAILABLE:  # the driver's traceback (naming the host) is not shown
        for stream, text in released:
            await writer.event("output", {"stream": stream, "text": text}, premasked=True)
    await writer.event("result", body)
    await writer.response.write_eof()
    return writer.response

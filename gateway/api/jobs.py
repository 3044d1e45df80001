"""``/api/jobs``: background runs started with ``async=true`` — list, status, log replay/follow, cancel.

A token sees and cancels only the jobs of APIs its ``allow`` list lets it call.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..envelope import error_response
from ..jobs import Job
from ..keys import JOBS, PRINCIPAL
from ..middlewares import link
from ..streaming import ClientGone, EventWriter, Format, stream_format

routes = web.RouteTableDef()


def job_urls(request: web.Request, job: Job) -> dict[str, str]:
    base = link(request, f"/api/jobs/{job.id}")
    return {"status_url": base, "log_url": f"{base}/log", "cancel_url": base}


def _described(request: web.Request, job: Job) -> dict[str, Any]:
    return {**job.public(), **job_urls(request, job)}


def _visible_job(request: web.Request) -> Job:
    job = request.app[JOBS].get(request.match_info["job_id"])
    if job is None or not request[PRINCIPAL].may_call(job.api):
        raise web.HTTPNotFound(text=f"No job {request.match_info['job_id']!r}")
    return job


@routes.get("/api/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    jobs = [_described(request, job) for job in request.app[JOBS].newest_first() if principal.may_call(job.api)]
    return web.json_response({"jobs": jobs})


@routes.get("/api/jobs/{job_id}")
async def job_status(request: web.Request) -> web.Response:
    return web.json_response(_described(request, _visible_job(request)))


@routes.delete("/api/jobs/{job_id}")
async def cancel_job(request: web.Request) -> web.Response:
    job = _visible_job(request)
    if job.finished:
        return error_response(409, f"Job {job.id} already ended ({job.state.value})")
    await request.app[JOBS].cancel(job)
    return web.json_response(_described(request, job))


@routes.get("/api/jobs/{job_id}/log")
async def job_log(request: web.Request) -> web.StreamResponse:
    jobs = request.app[JOBS]
    job = _visible_job(request)
    try:
        offset = int(request.query.get("offset", "0"))
        if offset < 0:
            raise ValueError
    except ValueError:
        return error_response(400, "'offset' must be a non-negative whole number (a byte offset from next_offset)")
    fmt = stream_format(request.query.get("stream"), request.headers.get("Accept", ""))
    if fmt is None:
        events, next_offset = jobs.read(job, offset)
        return web.json_response(
            {"job_id": job.id, "state": job.state.value, "offset": offset, "next_offset": next_offset, "events": events}
        )
    writer = await EventWriter.open(request, Format.NDJSON if fmt is Format.TEXT else fmt)
    try:
        async for event in jobs.follow(job, offset):
            if request.transport is None or request.transport.is_closing():
                raise ClientGone
            await writer.event("output", event)
        await writer.event("result", _described(request, job))
        await writer.response.write_eof()
    except (ClientGone, ConnectionError):
        pass  # following is read-only: the job goes on
    return writer.response

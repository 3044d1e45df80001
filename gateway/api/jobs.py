"""``/api/jobs``: background runs started with ``async=true`` — list, status, log replay/follow, cancel.

A job belongs to the token that started it: only that token sees, follows and cancels it — and tokens
allowed ``*`` (administrators), which see every job. The list comes a page at a time, newest first: the
store picks the page (of the jobs the token sees, so a page is full), and ``next`` links the one after it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ..auth import Principal
from ..catalog.model import whole_number
from ..envelope import error_response
from ..errors import ApiError
from ..job_store.base import Cursor
from ..job_table import DEFAULT_LIMIT, MAX_LIMIT, Job
from ..keys import JOBS, MASKER, PRINCIPAL
from ..middlewares import link
from ..streaming import ClientGone, EventWriter, Format, stream_format

routes = web.RouteTableDef()
JOB_ID = re.compile(r"[0-9a-f]{16}")
#: A log offset is a byte count or an event's sequence number: 18 digits always fit a 64-bit integer.
MAX_OFFSET_DIGITS = 18


def job_urls(request: web.Request, job: Job) -> dict[str, str]:
    base = link(request, f"/api/jobs/{job.id}")
    return {"status_url": base, "log_url": f"{base}/log", "cancel_url": base}


def _described(request: web.Request, job: Job) -> dict[str, Any]:
    return {**job.public(), **job_urls(request, job)}


def _sees(principal: Principal, job: Job) -> bool:
    return principal.sees_everything or job.owner == principal.name


async def _visible_job(request: web.Request) -> Job:
    job_id = request.match_info["job_id"]
    job = await request.config_dict[JOBS].get(job_id) if JOB_ID.fullmatch(job_id) else None
    if job is None or not _sees(request[PRINCIPAL], job):
        raise ApiError(404, "No such job (or it belongs to another token)")
    return job


def _page_query(request: web.Request) -> tuple[int, Cursor | None]:
    """``limit`` and ``before`` as given (400 for anything else)."""
    raw_limit = request.query.get("limit")
    limit = DEFAULT_LIMIT if raw_limit is None else whole_number(raw_limit, len(str(MAX_LIMIT)))
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"'limit' must be a whole number from 1 to {MAX_LIMIT}")
    raw_before = request.query.get("before")
    before = None if raw_before is None else Cursor.parse(raw_before)
    if raw_before is not None and before is None:
        raise ApiError(400, "'before' must be a cursor from a list's 'next' link")
    return limit, before


@routes.get("/")
async def list_jobs(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    limit, before = _page_query(request)
    owner = None if principal.sees_everything else principal.name
    jobs = await request.config_dict[JOBS].page(limit + 1, before, owner)  # one more: is there a next page?
    more = len(jobs) > limit
    jobs = jobs[:limit]
    query = {"limit": str(limit), "before": Cursor.after(jobs[-1]).token()} if more else None
    next_url = f"{link(request, '/api/jobs')}?{urlencode(query)}" if query else None
    return web.json_response({"jobs": [_described(request, job) for job in jobs], "next": next_url})


@routes.get("/{job_id}")
async def job_status(request: web.Request) -> web.Response:
    return web.json_response(_described(request, await _visible_job(request)))


@routes.delete("/{job_id}")
async def cancel_job(request: web.Request) -> web.Response:
    job = await _visible_job(request)
    if job.finished:
        return error_response(409, f"Job {job.id} already ended ({job.state.value})")
    return web.json_response(_described(request, await request.config_dict[JOBS].cancel(job)))


@routes.get("/{job_id}/log")
async def job_log(request: web.Request) -> web.StreamResponse:
    jobs = request.config_dict[JOBS]
    job = await _visible_job(request)
    fmt = stream_format(request.query.get("stream"), request.headers.get("Accept", ""))
    # A reconnecting EventSource repeats its URL and says where it got to: that wins over ?offset=.
    resumed = request.headers.get("Last-Event-ID") if fmt is Format.SSE else None
    raw_offset = resumed if resumed is not None else request.query.get("offset", "0")
    offset = whole_number(raw_offset, MAX_OFFSET_DIGITS)
    if offset is None:
        what = "Last-Event-ID" if resumed is not None else "offset"
        digits = f"of at most {MAX_OFFSET_DIGITS} digits"
        raise ApiError(400, f"'{what}' must be a non-negative whole number {digits} (a next_offset value)")
    await jobs.check_offset(job, offset)
    if fmt is None:
        events, next_offset = await jobs.read(job, offset)
        return web.json_response(
            {"job_id": job.id, "state": job.state.value, "offset": offset, "next_offset": next_offset, "events": events}
        )
    writer = await EventWriter.open(request, Format.NDJSON if fmt is Format.TEXT else fmt, request[MASKER])
    try:
        async for after, event in jobs.follow(job, offset):
            if request.transport is None or request.transport.is_closing():
                raise ClientGone
            await writer.event("output", event, event_id=after)
        await writer.event("result", _described(request, await jobs.get(job.id) or job))
        await writer.response.write_eof()
    except (ClientGone, ConnectionError):
        pass  # following is read-only: the job goes on
    return writer.response

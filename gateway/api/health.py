"""Operational endpoints: ``/health`` (no auth, no secrets, no paths)."""

from __future__ import annotations

from aiohttp import web

from .. import __version__
from ..families import public, unaudited
from ..keys import AIRFLOW_WORKER, JOBS, RUNNER, SERVICES

routes = web.RouteTableDef()


@public
@unaudited
@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    runner = request.config_dict[RUNNER]
    admission = runner.admission
    worker = request.config_dict[AIRFLOW_WORKER]
    return web.json_response(
        {
            # Degraded, not down: with the worker gone, reads take the CLI and only the experimental API refuses.
            "status": "degraded" if worker.down else "ok",
            "version": __version__,
            "runner": {
                "mode": runner.mode,
                "ready": runner.ready,
                "restarts": runner.restarts,
                "running": admission.running,
                "waiting": admission.waiting,
                "started": runner.started,
                "max_concurrency": admission.max_concurrency,
                "max_queue": admission.max_queue,
            },
            "worker": worker.state(),
            "services": request.config_dict[SERVICES].public(),
            # Which kind only: the PostgreSQL URL is a secret.
            "jobs": {"store": request.config_dict[JOBS].store.kind},
        }
    )

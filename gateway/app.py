"""The application factory, shared by ``python -m gateway`` and the tests."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .api import FAMILIES, page
from .audit import AuditLog
from .auth import TokenAuth
from .catalog import DATA_ENV
from .config import Settings
from .families import mount
from .job_store import make_store
from .job_table import Jobs
from .keys import (
    AIRFLOW_WORKER,
    DAEMONS,
    DEPLOY_LOCK,
    JOBS,
    OWNER,
    RUNNER,
    SERVICES,
    SETTINGS,
    SHARED_AIRFLOW_WORKER,
    SHARED_BACKEND,
    TOKEN_DIGESTS,
)
from .metrics import METRICS, Metrics, metrics_middleware
from .middlewares import (
    audit_middleware,
    auth_middleware,
    errors_middleware,
    expect_handler,
    forwarded_middleware,
    secrets_middleware,
)
from .runner import Admission, Backend, CommandRunner, ExecRunner, WarmRunner
from .services import AirflowServices
from .worker.client import AirflowWorker

#: Daemons run until stopped: their "timeout" is a year.
DAEMON_TIMEOUT_S = 365 * 24 * 3600.0


def build_backend(settings: Settings, owner: str) -> Backend:
    """The runner backend for ``runner.mode`` (a warm one is opened and closed by the app's cleanup context)."""
    env = settings.child_env(os.environ)
    if settings.runner_mode == "warm":
        return WarmRunner(
            python=settings.airflow_python,
            # The zygote's own logging: the data commands' (most runs); others reconfigure in their child.
            env={**env, **DATA_ENV},
            timeout_s=settings.runner.timeout_s,
            kill_grace_s=settings.runner.kill_grace_s,
            owner=owner,
            airflow_cfg=settings.airflow_home / "airflow.cfg",
            max_runs_per_zygote=settings.runner.max_runs_per_zygote,
            startup_timeout_s=settings.runner.startup_timeout_s,
        )
    return exec_backend(settings, owner, settings.runner.timeout_s)


def exec_backend(settings: Settings, owner: str, timeout_s: float) -> ExecRunner:
    return ExecRunner(
        executable=settings.airflow_executable,
        python=settings.airflow_python,
        env=settings.child_env(os.environ),
        timeout_s=timeout_s,
        kill_grace_s=settings.runner.kill_grace_s,
        owner=owner,
    )


async def _runner_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    shared = app.get(SHARED_BACKEND)
    backend = shared or build_backend(settings, app[OWNER])
    owned = shared is None and isinstance(backend, WarmRunner)
    if owned:
        backend.open()
    app[RUNNER] = CommandRunner(
        backend, Admission(settings.runner.max_concurrency, settings.runner.max_queue), settings.runner.max_output_bytes
    )
    app[DAEMONS] = exec_backend(settings, app[OWNER], DAEMON_TIMEOUT_S)
    app[SERVICES] = AirflowServices(
        app[DAEMONS], settings.services.run, settings.state_dir / "services", settings.services.restart_delay_s
    )
    app[SERVICES].start()
    worker = app.get(SHARED_AIRFLOW_WORKER) or AirflowWorker(
        python=settings.airflow_python,
        env=settings.child_env(os.environ),
        owner=app[OWNER],
        startup_timeout_s=settings.runner.startup_timeout_s,
        threads=settings.experimental.threads,
        max_reply_bytes=settings.experimental.max_reply_bytes,
    )
    app[AIRFLOW_WORKER] = worker
    if settings.experimental.warm_at_start:
        worker.warm()
    app[METRICS].watch(app)
    yield
    await app[SERVICES].close()
    if SHARED_AIRFLOW_WORKER not in app:
        await worker.close()
    if owned:
        await backend.close()


async def _jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    """The job store (files, or PostgreSQL connections and this replica's lease) and this gateway's running jobs."""
    settings = app[SETTINGS]
    jobs = Jobs(make_store(settings, app[OWNER]), settings.jobs.retention_s, settings.jobs.poll_s)
    await jobs.open()
    app[JOBS] = jobs
    yield
    await jobs.close()


async def _close(audit: AuditLog) -> None:
    audit.close()


def create_app(
    settings: Settings, backend: Backend | None = None, airflow_worker: AirflowWorker | None = None
) -> web.Application:
    """The gateway. ``backend``, ``airflow_worker``: use these instead of starting new ones (the caller owns them)."""
    auth = TokenAuth(settings.header_name, settings.tokens, disabled=settings.auth_disabled)
    audit = AuditLog(settings.audit.destination)
    metrics = Metrics()
    app = web.Application(
        middlewares=[
            metrics_middleware(metrics),
            secrets_middleware(auth),
            audit_middleware(audit),
            errors_middleware(),
            forwarded_middleware(settings.server.trusted_proxies),
            auth_middleware(auth),
        ],
        # Room for a DAG upload at its size limit plus the multipart framing.
        client_max_size=settings.deploy.max_bytes * 2 + 64 * 1024,
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[TOKEN_DIGESTS] = auth.digests
    if backend is not None:
        app[SHARED_BACKEND] = backend
    if airflow_worker is not None:
        app[SHARED_AIRFLOW_WORKER] = airflow_worker
    app[OWNER] = f"gw-{os.getpid()}-{secrets.token_hex(4)}"
    app[DEPLOY_LOCK] = asyncio.Lock()
    app.cleanup_ctx.append(_runner_ctx)
    # After the runner: closed first, so running jobs are cancelled while their runner is still there.
    app.cleanup_ctx.append(_jobs_ctx)
    app.on_cleanup.append(lambda _: _close(audit))
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(page.template_dir()), autoescape=True)

    expect = expect_handler()
    for family in FAMILIES:
        mount(app, family, settings.server.base_path, expect)
    return app

"""The application factory, shared by ``python -m gateway`` and the tests."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .api import ops, page, plugin
from .auth import TokenAuth
from .config import Settings
from .keys import DEPLOY_LOCK, OWNER, RUNNER, SETTINGS
from .middlewares import Routes, auth_middleware, errors_middleware
from .runner import Admission, CommandRunner, ExecRunner


def template_dir() -> Path:
    """Installed: ``gateway/templates``; in a source checkout: the repo's top-level ``templates/``."""
    here = Path(__file__).parent
    installed = here / "templates"
    return installed if installed.is_dir() else here.parent / "templates"


def build_runner(settings: Settings, owner: str) -> CommandRunner:
    backend = ExecRunner(
        executable=settings.airflow_executable,
        python=settings.airflow_python,
        env=settings.child_env(os.environ),
        timeout_s=settings.runner.timeout_s,
        kill_grace_s=settings.runner.kill_grace_s,
        owner=owner,
    )
    admission = Admission(settings.runner.max_concurrency, settings.runner.max_queue)
    return CommandRunner(backend, admission, settings.runner.max_output_bytes)


async def _runner_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    app[RUNNER] = build_runner(settings, app[OWNER])
    yield


def create_app(settings: Settings) -> web.Application:
    routes = Routes(settings.server.base_path)
    auth = TokenAuth(settings.header_name, settings.tokens, disabled=settings.auth_disabled)
    app = web.Application(
        middlewares=[errors_middleware(routes), auth_middleware(routes, auth)],
        # Room for a DAG upload at its size limit plus the multipart framing.
        client_max_size=settings.deploy.max_bytes * 2 + 64 * 1024,
    )
    app[SETTINGS] = settings
    app[OWNER] = f"gw-{os.getpid()}-{secrets.token_hex(4)}"
    app[DEPLOY_LOCK] = asyncio.Lock()
    app.cleanup_ctx.append(_runner_ctx)
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(template_dir()), autoescape=True)

    base = settings.server.base_path
    for table in (ops.routes, plugin.routes, page.routes):
        for route in table:
            assert isinstance(route, web.RouteDef)
            app.router.add_route(route.method, base + route.path, route.handler, **route.kwargs)
    return app

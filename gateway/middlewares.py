"""Middlewares: every error is JSON in its route family's shape, and every non-public route needs a token."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from .auth import TokenAuth
from .envelope import error_response, plugin_response, utc_now
from .keys import CALL_TIME, FORWARDED_PREFIX, PRINCIPAL, SETTINGS

log = logging.getLogger(__name__)

PLUGIN_PREFIX = "/admin/rest_api"


class Routes:
    """Which family a path belongs to, under the configured base path."""

    def __init__(self, base_path: str) -> None:
        self.base_path = base_path

    def local(self, path: str) -> str:
        if self.base_path and path.startswith(self.base_path):
            return path[len(self.base_path) :] or "/"
        return path

    def is_plugin(self, path: str) -> bool:
        return self.local(path).startswith(PLUGIN_PREFIX)

    def is_public(self, path: str) -> bool:
        local = self.local(path)
        return local in ("/health", f"{PLUGIN_PREFIX}/", PLUGIN_PREFIX) or local.startswith(f"{PLUGIN_PREFIX}/static/")


def link(request: web.Request, path: str) -> str:
    """An absolute path for a link the gateway emits, right behind a (trusted) proxy and under base_path."""
    return request.get(FORWARDED_PREFIX, "") + request.app[SETTINGS].server.base_path + path


def forwarded_middleware(trusted_proxies: frozenset[str]) -> Callable[[web.Request, Handler], object]:
    """Honour ``X-Forwarded-For/Proto/Host/Prefix`` only from ``server.trusted_proxies`` (others could lie)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.remote not in trusted_proxies:
            return await handler(request)
        changes: dict[str, str] = {}
        forwarded_for = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if forwarded_for:
            changes["remote"] = forwarded_for
        if request.headers.get("X-Forwarded-Proto") in ("http", "https"):
            changes["scheme"] = request.headers["X-Forwarded-Proto"]
        if request.headers.get("X-Forwarded-Host"):
            changes["host"] = request.headers["X-Forwarded-Host"]
        cloned = request.clone(**changes) if changes else request
        prefix = request.headers.get("X-Forwarded-Prefix", "").rstrip("/")
        if prefix.startswith("/"):
            cloned[FORWARDED_PREFIX] = prefix
        return await handler(cloned)

    return middleware


def family_error(
    routes: Routes, request: web.Request, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    if routes.is_plugin(request.path):
        return plugin_response(
            request.get(CALL_TIME) or utc_now(), status, message, headers=headers, arguments=dict(request.query)
        )
    return error_response(status, message, headers)


def errors_middleware(routes: Routes) -> Callable[[web.Request, Handler], object]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[CALL_TIME] = utc_now()
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
            return family_error(routes, request, exc.status, message)
        except Exception:
            log.exception("Unhandled error on %s %s", request.method, request.path)
            return family_error(routes, request, 500, "Internal error; see the gateway's log")

    return middleware


def auth_middleware(routes: Routes, auth: TokenAuth) -> Callable[[web.Request, Handler], object]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if routes.is_public(request.path):
            return await handler(request)
        principal = auth.authenticate(request)
        if principal is None:
            if routes.is_plugin(request.path):
                # Exactly the plugin's body: no arguments echoed.
                return plugin_response(request[CALL_TIME], 403, "Token Authentication Failed")
            return error_response(403, "Token Authentication Failed")
        request[PRINCIPAL] = principal
        return await handler(request)

    return middleware

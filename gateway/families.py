"""Route families, declared: where each is mounted, its routes, the shape its errors take.

Each family under a prefix is a sub-application (the aiohttp way to mount under ``base_path``) that
carries its :class:`Family`; the middlewares read it from the matched application instead of guessing
from the URL. Which routes need no token is said on the handler (:func:`public`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import ApiError

Handler = Callable[[web.Request], Any]
#: The order ``Allow`` lists methods in (RFC 9110's), whatever order the routes were declared in.
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class Family:
    name: str
    #: Mounted at ``base_path + prefix`` ("" for routes of the root application).
    prefix: str
    routes: tuple[web.RouteTableDef, ...]
    #: True: errors are the REST API plugin's envelope; False: ``{"error": "..."}``.
    envelope: bool = False


FAMILY = web.AppKey("family", Family)


def public(handler: Handler) -> Handler:
    """No token needed (the page, its static files, /health)."""
    handler.public = True  # type: ignore[attr-defined]
    return handler


def public_when(condition: Callable[[web.Request], bool]) -> Callable[[Handler], Handler]:
    """No token needed when ``condition(request)`` holds (a route whose openness is configured)."""

    def mark(handler: Handler) -> Handler:
        handler.public = condition  # type: ignore[attr-defined]
        return handler

    return mark


def unaudited(handler: Handler) -> Handler:
    """Left out of the audit log (/health, which load balancers poll)."""
    handler.unaudited = True  # type: ignore[attr-defined]
    return handler


def is_public(request: web.Request) -> bool:
    public = getattr(request.match_info.handler, "public", False)
    return bool(public(request)) if callable(public) else bool(public)


def is_audited(request: web.Request) -> bool:
    return not getattr(request.match_info.handler, "unaudited", False)


def family_of(request: web.Request) -> Family | None:
    """The family of the application that matched the request (the deepest one that declares one)."""
    for app in reversed(request.match_info.apps):
        if FAMILY in app:
            return app[FAMILY]
    return None


def family_name(request: web.Request) -> str:
    """The name of the family that serves the request's route ("none" when no route matched)."""
    family = family_of(request)
    if family is not None:
        return family.name
    return getattr(request.match_info.handler, "family_name", "none")


def mount(root: web.Application, family: Family, base_path: str, expect_handler: Any) -> None:
    """Add ``family`` under ``base_path``; a family's own root route also answers at the bare prefix
    (``/api/jobs`` as well as ``/api/jobs/``), as it always has. Both are the sub-application's, so a method
    the route does not take is a 405 naming those it does, at either spelling."""
    for table in family.routes:
        for route in table:
            if isinstance(route, web.RouteDef):
                route.handler.family_name = family.name  # type: ignore[attr-defined]
    if not family.prefix:
        _add_routes(root, family.routes, base_path, expect_handler)
        return
    sub = web.Application(middlewares=[_allow_header])
    sub[FAMILY] = family
    _add_routes(sub, family.routes, "", expect_handler)
    for table in family.routes:  # "" becomes the bare prefix once the sub-application is added
        for route in table:
            if isinstance(route, web.RouteDef) and route.path == "/":
                sub.router.add_route(route.method, "", route.handler, expect_handler=expect_handler)
    root.add_subapp(base_path + family.prefix, sub)


@web.middleware
async def _allow_header(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's 405 as the one refusal, keeping its ``Allow`` header (the methods the path takes)."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        allow = ", ".join(sorted(exc.allowed_methods, key=_method_rank))
        raise ApiError(405, f"Method Not Allowed: this path takes {allow}", {"Allow": allow}) from None


def _method_rank(method: str) -> tuple[int, str]:
    return (_METHOD_ORDER.index(method) if method in _METHOD_ORDER else len(_METHOD_ORDER), method)


def _add_routes(app: web.Application, tables: tuple[web.RouteTableDef, ...], base_path: str, expect: Any) -> None:
    for table in tables:
        for route in table:
            assert isinstance(route, web.RouteDef)
            path = base_path + route.path
            app.router.add_route(route.method, path, route.handler, expect_handler=expect, **route.kwargs)

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

Handler = Callable[[web.Request], Any]


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
    (``/api/jobs`` as well as ``/api/jobs/``), as it always has."""
    for table in family.routes:
        for route in table:
            if isinstance(route, web.RouteDef):
                route.handler.family_name = family.name  # type: ignore[attr-defined]
    if not family.prefix:
        _add_routes(root, family.routes, base_path, expect_handler)
        return
    prefix = base_path + family.prefix
    for table in family.routes:  # before the sub-application, which would claim the bare prefix as a 404
        for route in table:
            if isinstance(route, web.RouteDef) and route.path == "/":
                root.router.add_route(route.method, prefix, route.handler, expect_handler=expect_handler)
    sub = web.Application()
    sub[FAMILY] = family
    _add_routes(sub, family.routes, "", expect_handler)
    root.add_subapp(prefix, sub)


def _add_routes(app: web.Application, tables: tuple[web.RouteTableDef, ...], base_path: str, expect: Any) -> None:
    for table in tables:
        for route in table:
            assert isinstance(route, web.RouteDef)
            path = base_path + route.path
            app.router.add_route(route.method, path, route.handler, expect_handler=expect, **route.kwargs)

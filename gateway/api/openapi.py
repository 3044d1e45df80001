"""``GET /openapi.json`` (the document, :mod:`gateway.openapi`) and ``GET /docs/``, a Swagger UI page for it.

Both need no token: the document describes the API and holds no secret. The page's assets come from
the swagger-ui-py package (no CDN); its own script is a file, so the page runs under a CSP that
allows no inline script.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web

from ..families import public
from ..keys import SETTINGS
from ..middlewares import link
from ..openapi import document
from .page import static_file, template_dir

routes = web.RouteTableDef()
#: Served from the swagger-ui-py package, and the page's own initializer.
ASSETS = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "openapi.js": "application/javascript",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def swagger_ui_dir() -> Path:
    spec = find_spec("swagger_ui")
    assert spec is not None and spec.origin is not None, "swagger-ui-py is not installed"
    return Path(spec.origin).parent / "static"


@public
@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(request.config_dict[SETTINGS], root=link(request, "")))


@public
@routes.get("/docs")
@routes.get("/docs/")
async def docs(request: web.Request) -> web.Response:
    context = {"spec_url": link(request, "/openapi.json"), "static": link(request, "/docs/static")}
    response = aiohttp_jinja2.render_template("openapi.html", request, context)
    response.headers.update(SECURITY_HEADERS)
    return response


@public
@routes.get("/docs/static/{name}")
async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    return static_file(template_dir() if name == "openapi.js" else swagger_ui_dir(), name, ASSETS, SECURITY_HEADERS)

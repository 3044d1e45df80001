"""``GET /admin/rest_api/``: the test page, generated from the catalog (no token needed to load it).

The page holds no Airflow data: everything it shows comes from calls made with the token the user
types in. Its script and style are files (``/admin/rest_api/static/``), so a strict
Content-Security-Policy forbids every inline script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from .. import __version__
from ..catalog import APIS, ArgType, example_query
from ..families import public
from ..keys import FORWARDED_PREFIX, SETTINGS
from ..middlewares import link

routes = web.RouteTableDef()


def template_dir() -> Path:
    """Installed: ``gateway/templates``; in a source checkout: the repo's top-level ``templates/``."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


INPUT_TYPES = {
    ArgType.BOOL: "checkbox",
    ArgType.FILE: "file",
    ArgType.JSON_OBJECT: "textarea",
    ArgType.JSON_DOCUMENT: "textarea",
    ArgType.CHOICE: "select",
}
STATIC_FILES = {"page.js": "application/javascript", "page.css": "text/css"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@public
@routes.get("/")
async def index(request: web.Request) -> web.Response:
    settings = request.config_dict[SETTINGS]
    context: dict[str, Any] = {
        "apis": APIS,
        "endpoint": link(request, "/admin/rest_api/api"),
        "jobs_url": link(request, "/api/jobs"),
        "static": link(request, "/admin/rest_api/static"),
        "prefix": request.get(FORWARDED_PREFIX, "") + settings.server.base_path,
        "example_query": example_query,
        "input_types": INPUT_TYPES,
        "header_name": settings.header_name,
        "version": __version__,
    }
    response = aiohttp_jinja2.render_template("index.html", request, context)
    response.headers.update(SECURITY_HEADERS)
    return response


def static_file(
    directory: Path, name: str, content_types: dict[str, str], security_headers: dict[str, str] = SECURITY_HEADERS
) -> web.FileResponse:
    """One of the files a page is allowed to load (``content_types`` names them all), with the page's headers."""
    if name not in content_types:
        raise web.HTTPNotFound(text=f"No static file {name!r}")
    headers = {"Content-Type": content_types[name], **security_headers, "Cache-Control": "no-cache"}
    return web.FileResponse(directory / name, headers=headers)


@public
@routes.get("/static/{name}")
async def static(request: web.Request) -> web.StreamResponse:
    return static_file(template_dir(), request.match_info["name"], STATIC_FILES)

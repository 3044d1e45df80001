"""``GET /admin/rest_api/``: the test page, generated from the catalog (no token needed to load it)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from .. import __version__
from ..catalog import APIS, ArgType, example_query
from ..keys import SETTINGS

routes = web.RouteTableDef()

INPUT_TYPES = {
    ArgType.BOOL: "checkbox",
    ArgType.FILE: "file",
    ArgType.JSON_OBJECT: "textarea",
    ArgType.JSON_DOCUMENT: "textarea",
}


@routes.get("/admin/rest_api/")
@routes.get("/admin/rest_api")
@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    base = settings.server.base_path
    return {
        "apis": APIS,
        "endpoint": f"{base}/admin/rest_api/api",
        "example_query": example_query,
        "input_types": INPUT_TYPES,
        "header_name": settings.header_name,
        "version": __version__,
    }

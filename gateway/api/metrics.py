"""``GET /metrics``: the app's Prometheus metrics (:mod:`gateway.metrics`), token-free unless configured."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ..families import public_when, unaudited
from ..keys import SETTINGS
from ..metrics import METRICS

routes = web.RouteTableDef()


@public_when(lambda request: not request.config_dict[SETTINGS].metrics.require_token)
@unaudited
@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = await request.config_dict[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

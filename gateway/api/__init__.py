"""The HTTP layer: the route families the gateway serves."""

from ..families import Family
from . import experimental, health, jobs, metrics, openapi, page, plugin

FAMILIES = (
    Family("gateway", "", (health.routes, metrics.routes, openapi.routes)),
    Family("plugin", "/admin/rest_api", (plugin.routes, page.routes), envelope=True),
    Family("jobs", "/api/jobs", (jobs.routes,)),
    Family("experimental", "/api/experimental", (experimental.routes,)),
)

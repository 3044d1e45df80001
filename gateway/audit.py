"""The audit log: one JSON line per call — who, what, how it ended — and never a value, only argument names.

The destination is ``audit.destination``: ``log`` (the gateway's log, logger ``gateway.audit``), ``off``,
or a file the lines are appended to.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

#: Longest path written to the access log (the rest is cut; paths can be long and are not secret-free).
MAX_LOGGED_PATH = 200


@dataclass
class AuditRecord:
    route: str
    remote: str | None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    #: The token's name (never the token); None when no valid token was presented.
    token: str | None = None
    #: The plugin API or the experimental operation called.
    api: str | None = None
    #: Names of the arguments given, never their values.
    args: list[str] = field(default_factory=list)
    status: int = 0
    duration_s: float = 0.0
    job_id: str | None = None


class AuditLog:
    def __init__(self, destination: str) -> None:
        self.enabled = destination != "off"
        self._logger = logging.getLogger("gateway.audit")
        if destination not in ("log", "off"):
            self._logger = logging.getLogger(f"gateway.audit.{id(self)}")
            self._logger.propagate = False
            self._logger.setLevel(logging.INFO)
            self._handler = logging.FileHandler(destination, encoding="utf-8")
            self._handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(self._handler)

    def write(self, record: AuditRecord) -> None:
        if self.enabled:
            self._logger.info("%s", json.dumps({k: v for k, v in asdict(record).items() if v is not None}))

    def close(self) -> None:
        handler = getattr(self, "_handler", None)
        if handler is not None:
            self._logger.removeHandler(handler)
            handler.close()


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log without the query string (it carries passwords and tokens) or any header."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        from .keys import MASKER  # keys names AuditRecord: imported here, not at the top

        path = request.path[:MAX_LOGGED_PATH]
        masker = request.get(MASKER)
        if masker is not None:
            path = masker.text(path)
        self.logger.info(
            '%s "%s %s" %s %s %.3fs', request.remote, request.method, path, response.status, response.body_length, time
        )

"""The audit log: one JSON line per call — who, what, how it ended — and never a value, only argument names.

The destination is ``audit.destination``: ``log`` (the gateway's log, logger ``gateway.audit``), ``off``,
or a file the lines are appended to. Records are built from masked values and then serialized (never the
other way round), so a secret — however short — can never change the record's own fields, and a name
holding a newline or an escape sequence stays inside its JSON string.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .logs import PREPARED, dumps_line, escape
from .masking import Masker

#: Longest path written to the access log (the rest is cut; paths can be long and are not secret-free).
MAX_LOGGED_PATH = 200
#: Argument names kept in one record (a request may send thousands); the rest are counted.
MAX_LOGGED_ARGS = 64
#: Longest argument name kept.
MAX_ARG_NAME = 100


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

    def masked(self, masker: Masker) -> dict[str, object]:
        """The record as written: argument names masked (a name can be a secret) and bounded."""
        fields = {k: v for k, v in asdict(self).items() if v is not None}
        names = [masker.key(name[:MAX_ARG_NAME]) for name in self.args[:MAX_LOGGED_ARGS]]
        if len(self.args) > MAX_LOGGED_ARGS:
            names.append(f"(and {len(self.args) - MAX_LOGGED_ARGS} more)")
        fields["args"] = names
        return fields


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

    def write(self, record: AuditRecord, masker: Masker) -> None:
        if self.enabled:
            fields = record.masked(masker)
            self._logger.info(dumps_line(fields), extra={**PREPARED, "gateway_fields": fields})

    def close(self) -> None:
        handler = getattr(self, "_handler", None)
        if handler is not None:
            self._logger.removeHandler(handler)
            handler.close()


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log without the query string (it carries passwords and tokens) or any header; the
    path masked, and every value escaped onto one line."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        from .keys import MASKER  # keys names AuditRecord: imported here, not at the top

        masker = request.get(MASKER) or Masker()
        fields = {
            "remote": escape(str(request.remote)),
            "method": escape(request.method),
            "path": escape(masker.key(request.path[:MAX_LOGGED_PATH])).replace('"', "\\x22"),
            "status": response.status,
            "bytes": response.body_length,
            "duration_s": round(time, 3),
        }
        self.logger.info(
            '%s "%s %s" %s %s %.3fs',
            *(fields[name] for name in ("remote", "method", "path", "status", "bytes", "duration_s")),
            extra={**PREPARED, "gateway_fields": fields},
        )

"""The REST API plugin's JSON envelope, and timestamps as it printed them (RFC 1123, GMT)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from .masking import Masker

#: The fields of an answer that carry what the client or Airflow said; the rest (times, codes, states, ids,
#: links) are the gateway's own and are never masked, so no secret, however short, can change them.
CONTENT_FIELDS = frozenset(
    {"output", "arguments", "post_arguments", "airflow_cmd", "command", "data", "error", "warning", "text"}
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def http_date(moment: datetime) -> str:
    """``Tue, 29 Nov 2016 14:22:26 GMT``, from a real UTC time (the plugin labelled local time GMT)."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def dumps(body: Any) -> str:
    # Sorted keys, as Flask's jsonify produced them for the plugin.
    return json.dumps(body, sort_keys=True, default=str)


def masked(body: dict[str, Any], masker: Masker) -> dict[str, Any]:
    """``body`` (an envelope, a job, a stream event) with its content fields masked, its own fields as they are."""
    return {key: masker.value(value) if key in CONTENT_FIELDS else value for key, value in body.items()}


def plugin_body(call_time: datetime, http_status: int, output: Any, **fields: Any) -> dict[str, Any]:
    """One envelope: ``status`` follows the HTTP code; fields that are None are left out."""
    return {
        "call_time": http_date(call_time),
        "http_response_code": http_status,
        "output": output,
        "status": "OK" if http_status < 400 else "ERROR",
        **{k: v for k, v in fields.items() if v is not None},
        "response_time": http_date(utc_now()),
    }


def plugin_response(
    call_time: datetime, http_status: int, output: Any, *, headers: dict[str, str] | None = None, **fields: Any
) -> web.Response:
    body = plugin_body(call_time, http_status, output, **fields)
    return web.Response(status=http_status, text=dumps(body), content_type="application/json", headers=headers)


def error_response(http_status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """Errors outside the plugin route: ``{"error": "..."}``."""
    return web.Response(
        status=http_status, text=dumps({"error": message}), content_type="application/json", headers=headers
    )

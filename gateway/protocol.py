"""Malformed HTTP answered as JSON that echoes nothing.

aiohttp answers what its parser rejects (an invalid method, an over-long line, broken chunking, bare-LF
line ends) before any application code runs, as ``text/plain`` holding the exception's text — which
quotes the raw request, headers and tokens included. aiohttp has no supported hook for this answer, so
the production server (``python -m gateway``) replaces ``RequestHandler.handle_error``'s response with
``{"error": "400 Bad Request: ..."}``, keeping its logging and its closing of the connection.
``tests/hostile`` pins the behaviour against the installed aiohttp.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

_aiohttp_handle_error = RequestHandler.handle_error


def _handle_error(self: RequestHandler, request: Any, status: int = 500, exc: Any = None, message: Any = None) -> Any:
    _aiohttp_handle_error(self, request, status, exc, message)  # logs (masked by our filter); the text is dropped
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    reason = "the request is not valid HTTP" if status == 400 else "the request could not be handled"
    response = web.Response(
        status=status, text=json.dumps({"error": f"{status} {phrase}: {reason}"}), content_type="application/json"
    )
    response.force_close()
    return response


def answer_protocol_errors_as_json() -> None:
    RequestHandler.handle_error = _handle_error  # type: ignore[method-assign]

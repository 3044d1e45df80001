"""Middlewares, outermost first: secrets → audit → errors → forwarded headers → authentication.

- secrets: the request's :class:`~gateway.masking.Masker`, current for everything the request logs;
- audit: one JSON record per call (:mod:`gateway.audit`);
- errors: every failure is JSON in its route family's shape, and never echoes a secret;
- forwarded: ``X-Forwarded-*`` believed only from ``server.trusted_proxies``, right-most untrusted hop;
- auth: every non-public route needs a token.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import HttpVersion11, web
from aiohttp.typedefs import Handler
from aiohttp_remotes import XForwardedFiltered

from .audit import AuditLog, AuditRecord
from .auth import TokenAuth
from .envelope import error_response, plugin_response, utc_now
from .errors import ApiError
from .families import family_of, is_audited, is_public
from .keys import AUDIT, CALL_TIME, FORWARDED_PREFIX, MASKER, PRINCIPAL, SETTINGS
from .masking import CURRENT, SENSITIVE_KEY, Masker, token_digest
from .metrics import CLIENT_CLOSED

log = logging.getLogger(__name__)
#: A 503 that did not say when to retry (a database that did not answer) says this.
RETRY_AFTER_S = 2
#: What an ``X-Forwarded-Prefix`` may be: path segments of plain characters (it lands in links and the page).
_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")


def link(request: web.Request, path: str) -> str:
    """An absolute path for a link the gateway emits, right behind a (trusted) proxy and under base_path."""
    return request.get(FORWARDED_PREFIX, "") + request.config_dict[SETTINGS].server.base_path + path


def masked_arguments(values: Iterable[tuple[str, Any]], masker: Masker) -> dict[str, Any]:
    """Echoed arguments: values under password-like names hidden whole, every known secret masked."""
    return masker.value(dict(values))


def secrets_middleware(auth: TokenAuth) -> Callable[[web.Request, Handler], Any]:
    """Start the request's masker with what is secret before any handler looks: the presented token,
    query values under password-like names, and any query value that *is* a configured token."""
    known = auth.digests

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        masker = Masker(auth.credentials(request), known)
        for key, value in request.query.items():
            if SENSITIVE_KEY.search(key) or token_digest(value) in known:
                masker.add(value)
            masker.add_uri(value)
        request[MASKER] = masker
        reset = CURRENT.set(masker)
        try:
            return await handler(request)
        finally:
            CURRENT.reset(reset)

    return middleware


def audit_middleware(audit: AuditLog) -> Callable[[web.Request, Handler], Any]:
    """One audit record per call (``/health``, which load balancers poll, is left out)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_audited(request):
            return await handler(request)
        resource = request.match_info.route.resource
        record = AuditRecord(route=resource.canonical if resource is not None else "(no route)", remote=request.remote)
        request[AUDIT] = record
        started = time.monotonic()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except asyncio.CancelledError:  # the client hung up: recorded as /metrics counts it
            status = CLIENT_CLOSED
            raise
        finally:
            record.status = status
            record.duration_s = round(time.monotonic() - started, 4)
            audit.write(record, request.get(MASKER) or Masker())

    return middleware


def family_error(
    request: web.Request, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """An error in the shape of the request's route family: the plugin's envelope, or ``{"error"}``."""
    masker = request.get(MASKER) or Masker()
    message = masker.text(message)
    family = family_of(request)
    if family is not None and family.envelope:
        arguments = masked_arguments(request.query.items(), masker)
        return plugin_response(
            request.get(CALL_TIME) or utc_now(), status, message, headers=headers, arguments=arguments
        )
    return error_response(status, message, headers)


def expect_handler() -> Callable[[web.Request], Any]:
    """``Expect: 100-continue`` as aiohttp does it; any other expectation a 417 in the family's JSON shape
    (aiohttp's own answer to it is text/plain, before any middleware runs)."""

    async def handler(request: web.Request) -> web.StreamResponse | None:
        expect = request.headers.get("Expect", "")
        if request.version != HttpVersion11 or not expect:
            return None
        if expect.lower() != "100-continue":
            request[CALL_TIME] = utc_now()
            request[MASKER] = Masker()
            return family_error(request, 417, "Only 'Expect: 100-continue' is supported")
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper has not started
        return None

    return handler


def errors_middleware() -> Callable[[web.Request, Handler], Any]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[CALL_TIME] = utc_now()
        try:
            response = await handler(request)
            if response.status == 503 and "Retry-After" not in response.headers and not response.prepared:
                response.headers["Retry-After"] = str(RETRY_AFTER_S)  # every 503 says when to try again
            return response
        except ApiError as exc:
            return family_error(request, exc.status, exc.message, exc.headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            return family_error(request, exc.status, message, allow)
        except Exception:
            log.exception("Unhandled error on %s %s", request.method, request.path)
            return family_error(request, 500, "Internal error; see the gateway's log")

    return middleware


def forwarded_middleware(trusted_proxies: Iterable[str]) -> Callable[[web.Request, Handler], Any]:
    """``X-Forwarded-For/Proto/Host`` (aiohttp-remotes: the right-most hop that is not a trusted proxy) and
    ``X-Forwarded-Prefix``, only when the connection itself comes from a trusted proxy (others could lie)."""
    networks = [ipaddress.ip_network(item, strict=False) for item in trusted_proxies]
    filtered = XForwardedFiltered(networks) if networks else None

    def trusted(remote: str | None) -> bool:
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            return False
        return any(address in network for network in networks)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if filtered is None or not trusted(request.remote):
            return await handler(request)
        prefix = request.headers.get("X-Forwarded-Prefix", "").rstrip("/")
        if _PREFIX.fullmatch(prefix):
            request[FORWARDED_PREFIX] = prefix

        async def forwarded(cloned: web.Request) -> web.StreamResponse:
            if AUDIT in cloned:
                cloned[AUDIT].remote = cloned.remote
            return await handler(cloned)

        return await filtered.middleware(request, forwarded)

    return middleware


def auth_middleware(auth: TokenAuth) -> Callable[[web.Request, Handler], Any]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_public(request):
            return await handler(request)
        principal = auth.authenticate(auth.presented(request))
        if principal is None:
            family = family_of(request)
            if family is not None and family.envelope:
                # Exactly the plugin's body: no arguments echoed.
                return plugin_response(request[CALL_TIME], 403, "Token Authentication Failed")
            return error_response(403, "Token Authentication Failed")
        request[PRINCIPAL] = principal
        if AUDIT in request:
            request[AUDIT].token = principal.name
        return await handler(request)

    return middleware

"""Token authentication: the plugin's header, or ``Authorization: Bearer``; per-token allow lists."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from aiohttp import web

from .config import Token


@dataclass(frozen=True)
class Principal:
    """Who is calling: a configured token's name and what it may call."""

    name: str
    allow: tuple[str, ...]

    def may_call(self, api: str) -> bool:
        return any(fnmatchcase(api, pattern) for pattern in self.allow)


ANONYMOUS = Principal("anonymous", ("*",))


class TokenAuth:
    """Checks a presented token against every configured one in constant time.

    Tokens are compared as SHA-256 digests with :func:`hmac.compare_digest`, and every known token is
    compared (no early exit), so timing reveals neither a prefix nor which token matched.
    """

    def __init__(self, header_name: str, tokens: Iterable[Token], disabled: bool = False) -> None:
        self.header_name = header_name
        self.disabled = disabled
        self._known = [(_digest(t.secret), Principal(t.name, t.allow)) for t in tokens]

    def presented(self, request: web.Request) -> str | None:
        value = request.headers.get(self.header_name)
        if value:
            return value
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
        return None

    def authenticate(self, request: web.Request) -> Principal | None:
        if self.disabled:
            return ANONYMOUS
        token = self.presented(request)
        if token is None:
            return None
        digest = _digest(token)
        match = None
        for known, principal in self._known:
            if hmac.compare_digest(digest, known):
                match = principal
        return match


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()

"""Token authentication: the plugin's header, or ``Authorization: Bearer``; per-token allow lists."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from aiohttp import web

from .config import Token
from .masking import token_digest


@dataclass(frozen=True)
class Principal:
    """Who is calling: a configured token's name and what it may call."""

    name: str
    allow: tuple[str, ...]

    def may_call(self, api: str) -> bool:
        return any(fnmatchcase(api, pattern) for pattern in self.allow)

    @property
    def sees_everything(self) -> bool:
        """A token allowed ``*`` administers the gateway: it sees and cancels every token's jobs."""
        return "*" in self.allow


ANONYMOUS = Principal("anonymous", ("*",))


class TokenAuth:
    """Checks a presented token against every configured one in constant time.

    Only SHA-256 digests are kept. The presented token's digest is compared with
    :func:`hmac.compare_digest` against every known digest (no early exit), so timing reveals neither
    a prefix nor which token matched.
    """

    def __init__(self, header_name: str, tokens: Iterable[Token], disabled: bool = False) -> None:
        self.header_name = header_name
        self.disabled = disabled
        self._known = [(t.sha256, Principal(t.name, t.allow)) for t in tokens]

    @property
    def digests(self) -> frozenset[bytes]:
        return frozenset(digest for digest, _ in self._known)

    def credentials(self, request: web.Request) -> list[str]:
        """Every token the request presents: the configured header's, then a Bearer token."""
        found = []
        value = request.headers.get(self.header_name)
        if value:
            found.append(value)
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            found.append(credentials.strip())
        return found

    def presented(self, request: web.Request) -> str | None:
        """The request's token; None when it presents none, or two that differ (which one was meant?)."""
        found = set(self.credentials(request))
        return found.pop() if len(found) == 1 else None

    def authenticate(self, token: str | None) -> Principal | None:
        if self.disabled:
            return ANONYMOUS
        if token is None:
            return None
        digest = token_digest(token)
        match = None
        for known, principal in self._known:
            if hmac.compare_digest(digest, known):
                match = principal
        return match

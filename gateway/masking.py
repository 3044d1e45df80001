"""One way secrets are kept in: every answer, stream event, job log line and log record goes through a Masker.

A request's :class:`Masker` knows the secret values that request carried — the token it presented,
passwords, the password part of connection URIs, ``password``-like keys inside JSON, any value equal to
a configured token — and replaces them, in every spelling a program is likely to print them in, with
``***``. The middleware puts it in a context variable, so log records written while the request (or a
job it started) runs are masked too (:class:`LogFilter`). Masking never raises: a value it cannot
read is replaced whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, unquote_plus

MASK = "***"
#: Secrets at least this long are masked wherever they appear; shorter ones only where they stand alone
#: (Airflow's own masker skips secrets under 5 characters altogether).
MIN_SUBSTRING_CHARS = 5
#: Key names whose values are secret wherever they appear (Airflow's own list, plus a few).
SENSITIVE_KEY = re.compile(
    r"(?i)(password|passwd|secret|token|api[_-]?key|apikey|private[_-]?key|credential|authorization|"
    r"keyfile_dict|service_account|access[_-]?key)"
)
#: ``scheme://user:PASSWORD@host``: the password is everything between the first ``:`` after ``//`` and the last ``@``.
#: Words that could be a token (``secrets.token_urlsafe``, hex, base64): checked against the configured digests.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_~+/.-]{12,}")
_URI_USERINFO = re.compile(r"^[^:/?#]*://(?P<userinfo>[^/?#]*)@", re.DOTALL)


_SPELLINGS = (str, unquote, unquote_plus, lambda text: quote(text, safe=""), quote_plus)


def token_digest(token: str) -> bytes:
    """SHA-256 of a token as presented (header bytes that are not UTF-8 still hash, they just never match)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def uri_password(uri: str) -> str | None:
    """The password in a connection URI, also when the URI is malformed (then as much as could be a password)."""
    found = _URI_USERINFO.match(uri)
    if found is None:
        return None
    _, sep, password = found.group("userinfo").partition(":")
    return password if sep and password else None


class Masker:
    """The secrets of one request, and the one function that removes them from what leaves the process.

    Besides the values it was given, it finds any *configured* token in the text by its digest
    (``token_digests``): a token that DAG code read from a file or an environment, or that a client put
    in an argument, comes back as ``***`` although the gateway never knew it in plaintext.
    """

    def __init__(self, secrets: Iterable[str] = (), token_digests: frozenset[bytes] = frozenset()) -> None:
        self._secrets: set[str] = set()
        self._token_digests = token_digests
        #: Built on first use after a change: every answer masks dozens of strings with the same secrets.
        self._plan: tuple[list[str], re.Pattern[str] | None] | None = None
        for secret in secrets:
            self.add(secret)

    def __bool__(self) -> bool:
        return bool(self._secrets or self._token_digests)

    def add(self, secret: Any) -> None:
        """Remember a secret, in the spellings it may come back in (URL-quoted or not, JSON-escaped, repr)."""
        if secret is None or isinstance(secret, bool):
            return
        text = secret if isinstance(secret, str) else str(secret)
        if not text:
            return
        for spell in _SPELLINGS:
            try:
                variant = spell(text)
            except (UnicodeError, ValueError):  # a value that is not valid Unicode has fewer spellings
                continue
            self._secrets.add(variant)
            self._secrets.add(json.dumps(variant)[1:-1])
            self._secrets.add(repr(variant)[1:-1])
        self._secrets.discard("")
        self._plan = None

    def add_uri(self, uri: Any) -> None:
        """A connection URI's secrets: its password, password-like query parameters, and — in a URI without
        ``@`` — a non-numeric "port", which is a password that lost its host (``postgres://u:PW``)."""
        if not isinstance(uri, str) or "://" not in uri:
            return
        self.add(uri_password(uri))
        rest = uri.split("://", 1)[1]
        authority, _, query = rest.partition("?")
        authority = authority.split("/", 1)[0]
        if "@" not in authority:
            for piece in authority.split(":")[1:]:
                if piece and not piece.isdigit():
                    self.add(piece)
        for key, value in parse_qsl(query.split("#", 1)[0], keep_blank_values=True):
            if SENSITIVE_KEY.search(key):
                self.add(value)

    def add_sensitive_values(self, document: Any) -> None:
        """Every value under a password-like key, at any depth (connection JSON, ``extra``)."""
        if isinstance(document, dict):
            for key, value in document.items():
                if isinstance(key, str) and SENSITIVE_KEY.search(key) and not isinstance(value, dict | list):
                    self.add(value)
                elif isinstance(value, str) and value.lstrip().startswith("{"):
                    self.add_sensitive_values(_loads(value))
                else:
                    self.add_sensitive_values(value)
                if isinstance(value, str) and "://" in value:
                    self.add_uri(value)
        elif isinstance(document, list):
            for item in document:
                self.add_sensitive_values(item)

    def text(self, text: str) -> str:
        try:
            long, short = self._masking_plan()
            for secret in long:
                if secret in text:
                    text = text.replace(secret, MASK)
            if short is not None:
                text = short.sub(MASK, text)
            if self._token_digests:
                text = _TOKEN_LIKE.sub(self._hide_token, text)
            return text
        except Exception:
            return MASK

    def _masking_plan(self) -> tuple[list[str], re.Pattern[str] | None]:
        """Long secrets, longest first, replaced wherever they appear; short ones (``p`` in ``http``) in one
        pattern that replaces them only where they stand alone."""
        if self._plan is None:
            ordered = sorted(self._secrets, key=len, reverse=True)
            short = [s for s in ordered if len(s) < MIN_SUBSTRING_CHARS]
            pattern = None
            if short:
                alternatives = "|".join(re.escape(secret) for secret in short)
                pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")
            self._plan = ([s for s in ordered if len(s) >= MIN_SUBSTRING_CHARS], pattern)
        return self._plan

    def _hide_token(self, found: re.Match[str]) -> str:
        word = found.group()
        return MASK if token_digest(word) in self._token_digests else word

    def value(self, value: Any) -> Any:
        """``value`` with every string in it masked (dicts, lists, tuples; other values as they are)."""
        if not self:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


#: The masker of the request (or job) this code runs for; read by :class:`LogFilter`.
CURRENT: ContextVar[Masker | None] = ContextVar("gateway_masker", default=None)


#: A query string in a log line (aiohttp's protocol errors quote the raw request line): it may hold passwords.
_QUERY = re.compile(r"\?[^\s'\"\\]+")


class LogFilter(logging.Filter):
    """Masks every log record: the current request's secrets (else ``fallback``'s: the configured tokens),
    and any query string, in the message, its arguments and its traceback."""

    def __init__(self, fallback: Masker | None = None) -> None:
        super().__init__()
        self.fallback = fallback or Masker()

    def filter(self, record: logging.LogRecord) -> bool:
        masker = CURRENT.get() or self.fallback
        try:
            record.msg = _QUERY.sub("?(query hidden)", masker.text(record.getMessage()))
            record.args = None
            if record.exc_info:
                trace = logging.Formatter().formatException(record.exc_info)
                record.exc_text = _QUERY.sub("?(query hidden)", masker.text(trace))
                record.exc_info = None
        except Exception:
            record.msg = "(a log record was dropped: it could not be masked)"
            record.args, record.exc_info = None, None
        return True

"""One way secrets are kept in: every answer, stream event, job log line and log record goes through a Masker.

A request's :class:`Masker` knows the secret values that request carried — the token it presented,
passwords, the password part of connection URIs, values under ``password``-like keys inside JSON, any
value equal to a configured token — and what its command's output revealed (a secret-named variable, a
run's ``conf`` password), and replaces them, in every spelling a program is likely to print them in,
with ``***``. What it guarantees:

- **Linear.** Known secrets are found by Aho-Corasick automata (``ahocorasick_rs``; a few per masker), so
  masking costs O(text) whatever the number of secrets, and building it O(total secret length). A request
  may carry at most :data:`MAX_REQUEST_SECRETS` secrets (:class:`TooManySecrets`, a 413, above it).
- **Structure is never touched by short secrets.** A secret shorter than :data:`MIN_SUBSTRING_CHARS` is
  masked only where it *is* the whole value (a string of its own, an option's value, a line), never inside
  words, numbers, timestamps or addresses; :meth:`Masker.value` masks the values of a document, never its
  key names with short secrets, and never numbers that are not known secrets.
- **Values under password-like keys are masked whatever they hold** (string, number, list, object), in
  documents (:meth:`Masker.value`) and in printed text (``"password": [...]``, ``password=...``), known
  or not; so is the password of any ``scheme://user:PASSWORD@host`` in text.
- **Output leaves masked, in order.** :class:`MaskedOutput` turns a run's chunks into lines and masks each
  line before it leaves; lines of a data command are held until the command has ended and its whole output
  has taught the masker what is secret in it.

The middleware puts the request's masker in a context variable, so log records written while the
request (or a job it started) runs are masked too (:mod:`gateway.logs`). Masking never raises: a value it
cannot read is replaced whole.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, unquote_plus

import ahocorasick_rs

from .errors import ApiError

MASK = "***"
#: Secrets at least this long are masked wherever they appear; shorter ones only where they are the whole
#: value (Airflow's own masker skips secrets under 5 characters altogether).
MIN_SUBSTRING_CHARS = 5
#: The most secret values one request may carry (its arguments, JSON bodies, URIs); more is a 413.
MAX_REQUEST_SECRETS = 1000
#: The most secrets a masker learns from output (a huge export); past it, values under password-like keys
#: are still masked where they are printed, but not learned for other places.
MAX_LEARNED_SECRETS = 20_000
#: Words that make a key name secret wherever they appear (Airflow's own list, plus a few), lower case.
SENSITIVE_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "private_key",
    "private-key",
    "privatekey",
    "credential",
    "authorization",
    "keyfile_dict",
    "service_account",
    "access_key",
    "access-key",
    "accesskey",
)
#: Key names whose values are secret wherever they appear.
SENSITIVE_KEY = re.compile("(?i)(" + "|".join(re.escape(word) for word in SENSITIVE_WORDS) + ")")
_SENSITIVE_WORDS_FOUND = ahocorasick_rs.AhoCorasick(SENSITIVE_WORDS)
#: Words that could be a token (``secrets.token_urlsafe``, hex, base64): checked against the configured digests.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_~+/.-]{12,}")
#: ``scheme://user:PASSWORD@host``: the password is everything between the first ``:`` after ``//`` and the last ``@``.
_URI_USERINFO = re.compile(r"^[^:/?#]*://(?P<userinfo>[^/?#]*)@", re.DOTALL)
#: The same, anywhere in text (the password part is group ``pw``).
_URI_IN_TEXT = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s:/?#@\"'<>]{0,256}:)(?P<pw>[^\s/?#\"'<>]*)@")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
#: How far a key name is followed around a sensitive word (keys are short; this keeps the scan linear).
_MAX_KEY_CHARS = 128
_AFTER_KEY = re.compile(r"""["']?[ \t]*(?P<sep>[:=])[ \t]*""")
#: A value after a sensitive key: a quoted string, a flat list or object, or a bare word. Bounded, and a
#: string is one line: the scan of one value never runs past :data:`_MAX_VALUE_CHARS`.
_MAX_VALUE_CHARS = 4096
_VALUE = re.compile(
    r""""(?:[^"\\\n]|\\.){0,4096}"|'(?:[^'\\\n]|\\.){0,4096}'|\[[^\[\]{}\n]{0,4096}\]|\{[^\[\]{}\n]{0,4096}\}"""
    r"""|[^\s,;&}\]"'\[{]{1,4096}"""
)
Span = tuple[int, int, str]
#: A secret that is a JSON document (a secret-named variable holding one) has its values learned too, up to this size.
_MAX_JSON_SECRET_CHARS = 1 << 20
_SPELLINGS = (str, unquote, unquote_plus, lambda text: quote(text, safe=""), quote_plus)


class TooManySecrets(ApiError):
    """A request carries more secret values than :data:`MAX_REQUEST_SECRETS` (masking stays cheap)."""

    def __init__(self, found: int) -> None:
        super().__init__(
            413, f"The request carries {found} or more secret values; at most {MAX_REQUEST_SECRETS} are accepted"
        )


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


def is_sensitive_key(key: Any) -> bool:
    return isinstance(key, str) and SENSITIVE_KEY.search(key) is not None


def uri_secrets(uri: Any) -> Iterator[str]:
    """A connection URI's secrets: its password, password-like query parameters, and — in a URI without
    ``@`` — a non-numeric "port", which is a password that lost its host (``postgres://u:PW``)."""
    if not isinstance(uri, str) or "://" not in uri:
        return
    password = uri_password(uri)
    if password:
        yield password
    rest = uri.split("://", 1)[1]
    authority, _, query = rest.partition("?")
    authority = authority.split("/", 1)[0]
    if "@" not in authority:
        yield from (piece for piece in authority.split(":")[1:] if piece and not piece.isdigit())
    for key, value in parse_qsl(query.split("#", 1)[0], keep_blank_values=True):
        if SENSITIVE_KEY.search(key) and value:
            yield value


def sensitive_values(document: Any) -> Iterator[str]:
    """Every secret in a JSON document: each leaf under a password-like key (at any depth, lists and objects
    included), the secrets of every URI in it, and the same inside strings that hold JSON objects."""
    stack: list[tuple[Any, bool]] = [(document, False)]
    while stack:
        value, secret = stack.pop()
        if isinstance(value, dict):
            stack.extend((item, secret or is_sensitive_key(key)) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, secret) for item in value)
        elif isinstance(value, str):
            if secret:
                yield value
            if "://" in value:
                yield from uri_secrets(value)
            if value.lstrip().startswith("{"):
                stack.append((_loads(value), secret))
        elif secret and value is not None and not isinstance(value, bool):
            yield str(value)


class Masker:
    """The secrets of one request, and the one function that removes them from what leaves the process.

    Besides the values it was given, it finds any *configured* token in the text by its digest
    (``token_digests``): a token that DAG code read from a file or an environment, or that a client put
    in an argument, comes back as ``***`` although the gateway never knew it in plaintext.
    """

    def __init__(self, secrets: Iterable[str] = (), token_digests: frozenset[bytes] = frozenset()) -> None:
        self._token_digests = token_digests
        #: Secret spellings masked wherever they appear, in automata of decreasing size (a binary counter:
        #: learning N secrets one by one builds O(N log N), masking runs O(log N) automata), and those
        #: remembered since the last mask.
        self._long: set[str] = set()
        self._levels: list[tuple[list[str], ahocorasick_rs.AhoCorasick]] = []
        self._pending: list[str] = []
        #: Short secrets, masked only as whole values.
        self._short: set[str] = set()
        self._learned = 0
        self.longest = 0
        for secret in secrets:
            self.add(secret)

    # -- learning ------------------------------------------------------------------------------------

    def add(self, secret: Any) -> None:
        """Remember a secret, in the spellings it may come back in (URL-quoted or not, JSON-escaped, repr); a
        secret of several lines also line by line (a program may print it across lines), a JSON document also
        value by value (it may be printed parsed)."""
        if secret is None or isinstance(secret, bool):
            return
        text = secret if isinstance(secret, str) else str(secret)
        if not text:
            return
        if text[:1] in "{[" and len(text) <= _MAX_JSON_SECRET_CHARS:  # a secret document: each of its values too
            for leaf in sensitive_values({"secret": _loads(text)}):
                if leaf != text:
                    self.add(leaf)
        pieces = [text]
        if "\n" in text or "\r" in text:
            pieces += [line for line in re.split(r"[\r\n]+", text) if len(line.strip()) >= MIN_SUBSTRING_CHARS]
        for piece in pieces:
            for spell in _SPELLINGS:
                try:
                    variant = spell(piece)
                except (UnicodeError, ValueError):  # a value that is not valid Unicode has fewer spellings
                    continue
                for spelled in (variant, json.dumps(variant)[1:-1], repr(variant)[1:-1]):
                    self._remember(spelled)

    def _remember(self, spelled: str) -> None:
        if len(spelled) < MIN_SUBSTRING_CHARS:
            if spelled.strip():
                self._short.add(spelled.strip())
            return
        if spelled in self._long:
            return
        self._long.add(spelled)
        self._pending.append(spelled)
        self.longest = max(self.longest, len(spelled))

    def add_all(self, secrets: Iterable[str], limit: int | None = None) -> None:
        """Remember each of ``secrets``; more than ``limit`` of them is :class:`TooManySecrets` (nothing is
        remembered then: the request is refused)."""
        found = list(itertools.islice(secrets, limit + 1 if limit is not None else None))
        if limit is not None and len(found) > limit:
            raise TooManySecrets(len(found))
        for secret in found:
            self.add(secret)

    def add_uri(self, uri: Any) -> None:
        for secret in uri_secrets(uri):
            self.add(secret)

    def add_sensitive_values(self, document: Any) -> None:
        """Every secret of a document of the command's output (connection JSON, ``extra``, a run's ``conf``)."""
        for secret in sensitive_values(document):
            if self._learned >= MAX_LEARNED_SECRETS:
                return
            self._learned += 1
            self.add(secret)

    def learn_line(self, line: str) -> None:
        """What a printed line reveals: values under password-like keys and URI passwords (masked in later
        lines too, wherever they are printed again)."""
        self._learn_printed(line, _printed_secrets(line))

    def line(self, line: str) -> str:
        """A line of output on its way out: what it shows is learned (for the lines after it), then it is masked."""
        try:
            printed = _printed_secrets(line)
            self._learn_printed(line, printed)
            return self._masked(line, printed)
        except Exception:
            return MASK

    def _learn_printed(self, line: str, printed: list[Span]) -> None:
        for start, end, _ in printed:
            if self._learned >= MAX_LEARNED_SECRETS:
                return
            value = line[start:end]
            found = list(sensitive_values({"secret": _loads(value)})) if value[:1] in "[{" else [value]
            for secret in found:
                if len(secret) >= MIN_SUBSTRING_CHARS and secret != MASK:
                    self._learned += 1
                    self.add(secret)

    # -- masking -------------------------------------------------------------------------------------

    def text(self, text: str) -> str:
        """``text`` without any known secret, configured token, URI password or value under a password-like key."""
        try:
            return self._masked(text, _printed_secrets(text)) if text else text
        except Exception:
            return MASK

    def _masked(self, text: str, printed: list[Span]) -> str:
        if text.strip() in self._short:
            return MASK
        spans = self._known_spans(text) + printed
        if self._token_digests:
            spans += self._token_spans(text)
        return _replace(text, spans) if spans else text

    def key(self, key: str) -> str:
        """A key name or any other name the gateway shows (argument names): only long secrets and tokens are
        masked in it, never a short secret, so names keep their shape."""
        try:
            spans = self._known_spans(key)
            if self._token_digests:
                spans += self._token_spans(key)
            return _replace(key, spans) if spans else key
        except Exception:
            return MASK

    def _token_spans(self, text: str) -> list[Span]:
        return [(*m.span(), MASK) for m in _TOKEN_LIKE.finditer(text) if token_digest(m.group()) in self._token_digests]

    def value(self, value: Any) -> Any:
        """``value`` with every string in it masked (dicts, lists, tuples), values under password-like keys
        masked whole, numbers masked only when they are a known secret; key names keep their shape."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                (self.key(k) if isinstance(k, str) else k): (
                    MASK if is_sensitive_key(k) and v not in (None, "") else self.value(v)
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in self._long:
            return MASK
        return value

    def masked_prefix(self, text: str, keep_chars: int) -> tuple[str, str]:
        """Split ``text`` for a stream that goes on: the masked part that may leave now, and the raw rest to
        hold until more arrives. The rest is at least ``keep_chars`` long and never starts inside a known secret,
        so a secret cut by the split is still found whole later."""
        cut = max(0, len(text) - max(keep_chars, self.longest))
        for start, end, _ in self._known_spans(text):
            if start < cut < end:
                cut = start
        return self.text(text[:cut]), text[cut:]

    def _known_spans(self, text: str) -> list[Span]:
        if self._pending:
            patterns, self._pending = self._pending, []
            while self._levels and len(self._levels[-1][0]) <= len(patterns):
                patterns = self._levels.pop()[0] + patterns
            self._levels.append((patterns, _automaton(patterns)))
        return [
            (start, end, MASK)
            for _, automaton in self._levels
            for _, start, end in automaton.find_matches_as_indexes(text)
        ]


def _automaton(patterns: list[str]) -> ahocorasick_rs.AhoCorasick:
    return ahocorasick_rs.AhoCorasick(
        patterns,
        matchkind=ahocorasick_rs.MatchKind.LeftmostLongest,
        implementation=ahocorasick_rs.Implementation.ContiguousNFA,
    )


def _replace(text: str, spans: list[Span]) -> str:
    """``text`` with every span replaced by its mask; overlapping spans become one."""
    out, position = [], 0
    for start, end, mask in sorted(spans):
        if end <= position:
            continue
        if start < position:  # overlaps the span before: that mask now hides this one too
            position = end
            continue
        out += (text[position:start], mask)
        position = end
    out.append(text[position:])
    return "".join(out)


def _printed_secrets(text: str) -> list[Span]:
    """Spans of what printed text shows as secret, known or not: the value after a password-like key
    (``"password": "x"``, ``'api_key': [...]``, ``token=x``) and the password of a URI. Linear: each
    sensitive word is looked at within :data:`_MAX_KEY_CHARS` around it, each value scanned once."""
    spans: list[Span] = []
    if "://" in text:
        spans += [(*match.span("pw"), MASK) for match in _URI_IN_TEXT.finditer(text) if match.group("pw")]
    if not _SENSITIVE_WORDS_FOUND.find_matches_as_indexes(text.lower()):  # most text: one scan, no regex
        return spans
    position = 0
    while (found := SENSITIVE_KEY.search(text, position)) is not None:
        end = found.end()
        limit = min(len(text), end + _MAX_KEY_CHARS)
        while end < limit and text[end] in _KEY_CHARS:
            end += 1
        position = end
        after = _AFTER_KEY.match(text, end)
        if after is None:
            continue
        start = after.end()
        value = _VALUE.match(text, start)
        if value is None:
            position = max(position, min(len(text), start + _MAX_VALUE_CHARS))  # an unclosed value: scanned once
            continue
        shown, stop = value.group(), value.end()
        position = max(position, stop)
        if shown in (MASK, f'"{MASK}"', f"'{MASK}'"):
            continue
        if shown[0] in "\"'":
            spans.append((start + 1, stop - 1, MASK))  # the quotes stay: the text stays the same kind of text
        else:
            spans.append((start, stop, f'"{MASK}"' if after.group("sep") == ":" else MASK))
    return spans


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


#: The masker of the request (or job) this code runs for; read by the log filter (:mod:`gateway.logs`).
CURRENT: ContextVar[Masker | None] = ContextVar("gateway_masker", default=None)

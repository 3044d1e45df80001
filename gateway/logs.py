"""The gateway's log: one record per line, masked, and nothing a client sent can start a line of its own.

Clients choose much of what is logged (paths, argument names, header values, the text of an exception
about their input). Two guarantees hold for every record:

- **masked**: the current request's secrets (else the configured tokens) are removed from the message and
  its traceback (:class:`LogFilter`); records the gateway builds itself from masked values (the access log,
  the audit record) are marked :data:`PREPARED` and not masked again, so masking never touches their
  structure;
- **one record per line**: control characters (C0, DEL, C1, Unicode line and paragraph separators) are
  written as visible escapes (:func:`escape`), and a traceback's lines are indented, so no line of it can
  pass for a record.

``log.format: json`` writes each record as one JSON object instead (:class:`JsonFormatter`).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from .masking import CURRENT, Masker

#: ``extra=`` of a record whose message the gateway built from masked, escaped values (access, audit).
PREPARED = {"gateway_prepared": True}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Everything that could end a line or drive a terminal: C0 but tab, DEL, C1, and Unicode's line breaks.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
#: A query string in a log line (aiohttp's protocol errors quote the raw request line): it may hold passwords.
_QUERY = re.compile(r"\?[^\s'\"\\]+")
_INDENT = "    "


def escape(text: str) -> str:
    """``text`` on one line: each unsafe character as ``\\xNN`` or ``\\uNNNN``."""
    return _UNSAFE.sub(_escaped, text)


def _escaped(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def fields_of(record: logging.LogRecord) -> dict[str, Any] | None:
    """The structured fields of a prepared record (the JSON format writes them as they are)."""
    return getattr(record, "gateway_fields", None)


class LogFilter(logging.Filter):
    """Masks and escapes every record: the current request's secrets (else ``fallback``'s: the configured
    tokens) and any query string, in the message, its arguments and its traceback."""

    def __init__(self, fallback: Masker | None = None) -> None:
        super().__init__()
        self.fallback = fallback or Masker()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "gateway_prepared", False):
            # Built from masked, escaped values: only configured tokens are looked for, which cannot be
            # mistaken for the record's own fields.
            record.msg, record.args = self.fallback.key(record.getMessage()), None
            return True
        masker = CURRENT.get() or self.fallback
        try:
            record.msg = escape(_QUERY.sub("?(query hidden)", masker.text(record.getMessage())))
            record.args = None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
            if record.exc_text:
                record.exc_text = _indented(_QUERY.sub("?(query hidden)", masker.text(record.exc_text)))
            if record.stack_info:
                record.stack_info = _indented(masker.text(record.stack_info))
        except Exception:
            record.msg = "(a log record was dropped: it could not be masked)"
            record.args, record.exc_info, record.exc_text, record.stack_info = None, None, None, None
        return True


def _indented(trace: str) -> str:
    """A traceback's lines, escaped and indented: none of them can pass for a record of its own."""
    return "\n".join(_INDENT + escape(line) for line in trace.splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``at``, ``level``, ``logger``, then the record's fields (prepared
    records) or its ``message`` (and ``exc``, the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        fields = fields_of(record)
        if fields is not None:
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        return dumps_line(line)


def dumps_line(document: Any) -> str:
    """JSON on one line whatever it holds: non-ASCII and every control character escaped (DEL too)."""
    return json.dumps(document, default=str).replace("\x7f", "\\u007f")


def configure(log_format: str, fallback: Masker) -> None:
    """The root logger's handler: text or JSON lines, every record through :class:`LogFilter`."""
    logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)
    # Libraries' warnings (aiohttp's about a malformed header quotes it) go through the log, not raw to stderr.
    logging.captureWarnings(True)
    log_filter = LogFilter(fallback)
    for handler in logging.getLogger().handlers:
        handler.addFilter(log_filter)
        if log_format == "json":
            handler.setFormatter(JsonFormatter())

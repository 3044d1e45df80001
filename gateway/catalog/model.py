"""The catalog's vocabulary: arguments and their types, API entries, and validation of request values."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..bodies import loads, parse_bool
from ..errors import ApiError
from ..output import Failure, parse_json
from ..runner import Command

# Airflow's own patterns (airflow.utils.helpers.KEY_REGEX, [scheduler] allowed_run_id_pattern), always
# applied with fullmatch: ``$`` would let a trailing newline through.
KEY = re.compile(r"[\w.-]+")
RUN_ID = re.compile(r"[A-Za-z0-9_.~:+-]+")
#: Looks like a date (``10000-01-01`` too): a value that does is never taken for a run id.
_DATE_SHAPED = re.compile(r"[+-]?\d{4,}-\d{1,2}-\d{1,2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Python's ``int()`` refuses text of more than 4,300 digits (a ValueError: a 500 where a 400 is due), ``str()``
#: such a number, and both take quadratic time below that: a client's number has its digits counted first.
MAX_INT_DIGITS = 19  # as many as a 64-bit integer has; every INT argument's own bound is lower
#: A JSON number given for a text argument (a DAG id of digits) is read as its text: at most this many digits.
MAX_NUMBER_DIGITS = 100
_NUMBER_LIMIT = 10**MAX_NUMBER_DIGITS
_DIGITS = re.compile(r"(-?)([0-9]+)")
MAX_ID_CHARS = 250
_MAX_TEXT_CHARS = 65536
#: Logical dates the gateway passes on: Airflow adds and subtracts schedule intervals, which overflow near
#: Python's year 1 and 9999.
EARLIEST_DATE = datetime(1000, 1, 1)
LATEST_DATE = datetime(9998, 12, 31, 23, 59, 59)


class ArgType(enum.Enum):
    ID = "id"
    TEXT = "text"
    RUN_ID = "run_id"
    DATE = "date"
    DATE_OR_RUN_ID = "date_or_run_id"
    BOOL = "bool"
    INT = "int"
    JSON_OBJECT = "json_object"
    CHOICE = "choice"
    FILE = "file"
    #: A file upload, a JSON object, or a string holding one.
    JSON_DOCUMENT = "json_document"
    #: Names a path on the server: always refused.
    SERVER_PATH = "server_path"
    #: An old flag with no Airflow 3 equivalent: always refused, naming what to use instead.
    REMOVED = "removed"


class Kind(enum.Enum):
    #: A short command: run and answer.
    QUICK = "quick"
    #: Runs task code or creates many runs; may take minutes.
    LONG = "long"
    #: Starts a server that never returns.
    DAEMON = "daemon"
    #: Answered by the gateway itself (no CLI equivalent).
    CUSTOM = "custom"
    #: Follows an existing DAG run to its end (answered by the gateway and its Airflow worker).
    WATCH = "watch"


@dataclass(frozen=True)
class Upload:
    """A file sent with the request (multipart) or a JSON document standing in for one."""

    filename: str
    content: bytes


@dataclass(frozen=True)
class Arg:
    name: str
    type: ArgType
    help: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    #: For SERVER_PATH and REMOVED: why it is refused and what to do instead.
    refusal: str = ""
    #: Masked in echoed arguments and in ``airflow_cmd``.
    secret: bool = False
    #: TEXT: the longest value accepted (Airflow's column sizes); INT: the largest.
    max_chars: int = _MAX_TEXT_CHARS
    #: TEXT that names something (a variable key, a pool): no newlines or other control characters.
    single_line: bool = False
    #: INT: the smallest value accepted.
    min_value: int = 0
    max_value: int = 2**31 - 1

    @property
    def accepted(self) -> bool:
        return self.type not in (ArgType.SERVER_PATH, ArgType.REMOVED)


Values = dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What a finished command means: parsed ``data``, or a failure despite exit code 0, or a warning."""

    data: Any = None
    failure: Failure | None = None
    warning: str | None = None
    #: Values in the output that are secret (a variable whose name says it holds one): masked everywhere.
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """What an API the gateway answers itself (no CLI command) returns."""

    http_status: int
    message: str
    data: Any = None
    warning: str | None = None


#: ``await answer(app, values, caller)``: how a gateway-answered API (``Kind.CUSTOM``) answers.
Answerer = Callable[[Any, Values, str], Awaitable[Answer]]


def _parse_json_output(values: Values, stdout: str) -> Outcome:
    return Outcome(data=parse_json(stdout))


@dataclass(frozen=True)
class Api:
    name: str
    summary: str
    #: The Airflow 3.3 command(s) it maps to, for people.
    runs: str
    args: tuple[Arg, ...] = ()
    build: Callable[[Values], Command] | None = None
    parse: Callable[[Values, str], Outcome] = _parse_json_output
    #: For the gateway's own APIs (``Kind.CUSTOM``): what answers instead of a command.
    answer: Answerer | None = None
    #: Read-only: the Airflow worker answers its command in-process (``gateway.worker.reads``: the same function
    #: and output as the CLI, without a fork); a command it does not answer exactly (a report, a DAG never
    #: serialized) runs as a CLI process, as do streamed and background calls.
    fast_path: bool = False
    #: Values of a request that are secret beyond its ``secret`` arguments (a variable named like a password).
    secrets: Callable[[Values], tuple[str, ...]] = lambda values: ()
    kind: Kind = Kind.QUICK
    methods: tuple[str, ...] = ("GET", "POST")
    #: The old plugin's "Available in Airflow Version" text.
    since: str = ""
    #: Set when Airflow 3 has no equivalent: the message, naming the replacement.
    gone: str = ""
    #: False when the log lines are the output (task runs): keep them in stdout.
    split_logs: bool = True
    #: Takes ``wait``/``wait_timeout_s``: with ``wait=true`` it answers once the run it started has finished.
    waits: bool = False
    #: Its answer is about a run that only a scheduler moves on: a queued or running run, with no scheduler
    #: heartbeating, gets a ``warning`` saying so.
    needs_scheduler: bool = False
    notes: str = ""

    @property
    def answered_by(self) -> str:
        """Who answers a call, for people (the README table)."""
        if self.answer is not None or self.kind is Kind.WATCH:
            return "gateway"
        return "Airflow worker, else CLI" if self.fast_path else "CLI"

    def arg(self, name: str) -> Arg | None:
        for arg in self.args:
            if name == arg.name or name in arg.aliases:
                return arg
        return None


def parse_date(value: str) -> datetime | None:
    """ISO 8601 as Airflow accepts it; a ``+`` turned into a space by URL decoding is put back."""
    text = value.strip()
    for candidate in (text, text.replace(" ", "+")):
        try:
            return datetime.fromisoformat(candidate.replace("Z", "+00:00"))
        except ValueError:
            continue
    return None


def checked_date(name: str, value: str) -> datetime | None:
    """A date within what Airflow can compute with (in UTC), None when ``value`` is no date, else a 400."""
    parsed = parse_date(value)
    if parsed is None:
        return None
    try:
        moment = parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    except (OverflowError, ValueError):
        moment = None
    if moment is None or not EARLIEST_DATE <= moment <= LATEST_DATE:
        raise ApiError(
            400, f"'{name}' must lie between {EARLIEST_DATE:%Y-%m-%d} and {LATEST_DATE:%Y-%m-%d} (UTC), got {value!r}"
        )
    return parsed


def shown(value: str, limit: int = 80) -> str:
    """A value quoted for an error message, cut short (errors echo what was sent, not 70 KB of it)."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def whole_number(text: str, max_digits: int = MAX_INT_DIGITS, *, signed: bool = False) -> int | None:
    """``text`` as a whole number (ASCII digits, after a ``-`` only when ``signed``), or None — also when it has
    more than ``max_digits`` digits, counted before ``int()`` sees them. Callers say what they expected (400)."""
    if len(text) > max_digits + 1:
        return None
    match = _DIGITS.fullmatch(text)
    if match is None or len(match[2]) > max_digits or (match[1] and not signed):
        return None
    return int(text)


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise ApiError(400, f"'{name}' must be a string")
    if "\x00" in value:
        raise ApiError(400, f"'{name}' contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"'{name}' is not valid Unicode text (it holds a lone surrogate)") from None
    if len(value) > _MAX_TEXT_CHARS:
        raise ApiError(400, f"'{name}' is longer than {_MAX_TEXT_CHARS} characters")
    return value


def _json_object(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = loads(value, f"'{name}'")
    if isinstance(value, dict):
        return value
    raise ApiError(400, f'\'{name}\' must be a JSON object, like {{"key": "value"}}')


def _convert(arg: Arg, value: Any) -> Any:
    name = arg.name
    if isinstance(value, int) and not -_NUMBER_LIMIT < value < _NUMBER_LIMIT:  # str() or repr() of it may fail
        raise ApiError(400, f"'{name}' is a number of more than {MAX_NUMBER_DIGITS} digits")
    if arg.type is ArgType.BOOL:
        return parse_bool(name, value)
    if arg.type is ArgType.JSON_OBJECT:
        return _json_object(name, value)
    if arg.type is ArgType.FILE:
        if not isinstance(value, Upload):
            raise ApiError(400, f"'{name}' must be a file upload (multipart/form-data)")
        return value
    if arg.type is ArgType.JSON_DOCUMENT:
        if isinstance(value, Upload):
            _json_object(name, value.content.decode("utf-8", "replace"))  # what Airflow would fail on later
            return value
        document = _json_object(name, value) if not isinstance(value, str) or value.lstrip().startswith("{") else None
        if document is None:
            raise ApiError(400, f"'{name}' takes an uploaded file or a JSON object, not a path on the server")
        return Upload(f"{name}.json", json.dumps(document).encode())
    text = _as_text(name, value)
    if arg.type is ArgType.ID:
        if not is_id(text):
            raise ApiError(
                400,
                f"'{name}' must be letters, digits, '_', '.', '-' (at most {MAX_ID_CHARS}), "
                f"not starting with '-': {shown(text)}",
            )
        if len(text) > arg.max_chars:
            raise ApiError(400, f"'{name}' is longer than {arg.max_chars} characters")
        return text
    if arg.type is ArgType.RUN_ID:
        if not is_run_id(text):
            raise ApiError(400, f"'{name}' is not a valid run id: {shown(text)}")
        return text
    if arg.type is ArgType.DATE:
        parsed = checked_date(name, text)
        if parsed is None:
            raise ApiError(400, f"'{name}' is not a date: {shown(text)} (expected for example 2017-01-02T03:04:05)")
        return parsed.isoformat()
    if arg.type is ArgType.DATE_OR_RUN_ID:
        return date_or_run_id(name, text)
    if arg.type is ArgType.INT:
        stripped = text.strip()
        number = whole_number(stripped)
        if number is None:
            if whole_number(stripped, signed=True) is not None:
                raise ApiError(400, f"'{name}' must not be negative")
            raise ApiError(
                400, f"'{name}' must be a whole number of at most {MAX_INT_DIGITS} digits, got {shown(text)}"
            )
        if number > arg.max_value:
            raise ApiError(400, f"'{name}' must be at most {arg.max_value}, got {number}")
        if number < arg.min_value:
            raise ApiError(400, f"'{name}' must be at least {arg.min_value}, got {number}")
        return number
    if arg.type is ArgType.CHOICE:
        if text not in arg.choices:
            raise ApiError(400, f"'{name}' must be one of {', '.join(arg.choices)}; got {shown(text)}")
        return text
    if len(text) > arg.max_chars:
        raise ApiError(400, f"'{name}' is longer than {arg.max_chars} characters")
    if arg.single_line and _CONTROL.search(text):
        raise ApiError(400, f"'{name}' must not contain newlines or other control characters")
    return text


def date_or_run_id(name: str, text: str) -> str:
    """A logical date (normalised to ISO 8601) or a run id; anything date-shaped must be a valid date."""
    parsed = checked_date(name, text)
    if parsed is not None:
        return parsed.isoformat()
    if _DATE_SHAPED.match(text.strip()):
        raise ApiError(
            400, f"'{name}' must be a date (2017-01-02T03:04:05) or a run id; {shown(text)} is not a valid date"
        )
    if is_run_id(text):
        return text
    raise ApiError(400, f"'{name}' must be a date (2017-01-02T03:04:05) or a run id, got {shown(text)}")


def is_id(text: str) -> bool:
    """A DAG, task or connection id as Airflow allows it (and never one that reads as an option)."""
    return len(text) <= MAX_ID_CHARS and KEY.fullmatch(text) is not None and not text.startswith("-")


def is_run_id(text: str) -> bool:
    return len(text) <= MAX_ID_CHARS and RUN_ID.fullmatch(text) is not None and not text.startswith("-")


def validate(api: Api, raw: Mapping[str, Any]) -> Values:
    """Turn request values into typed ones, or raise :class:`ApiError` (400) before anything runs.

    ``raw`` maps argument names (or aliases) to strings from a query/form, JSON values, or
    :class:`Upload`\\ s. An empty string means "present without a value": true for booleans, absent otherwise.
    """
    values: Values = {}
    unknown = []
    for key, value in raw.items():
        arg = api.arg(key)
        if arg is None:
            unknown.append(key)
            continue
        if arg.type is ArgType.REMOVED:
            raise ApiError(400, f"'{key}' has no Airflow 3 equivalent: {arg.refusal}")
        if arg.type is ArgType.SERVER_PATH:
            raise ApiError(400, f"'{key}' names a path on the server, which the gateway never accepts: {arg.refusal}")
        if value is None or (value == "" and arg.type is not ArgType.BOOL):
            continue
        if arg.name in values:
            raise ApiError(400, f"'{arg.name}' was given twice (as {key!r} and another spelling)")
        values[arg.name] = _convert(arg, value)
    if unknown:
        known = ", ".join(a.name for a in api.args if a.accepted) or "none"
        raise ApiError(400, f"Unknown argument(s) for API '{api.name}': {', '.join(sorted(unknown))}. Known: {known}")
    missing = [a.name for a in api.args if a.required and a.name not in values]
    if missing:
        raise ApiError(400, f"The argument(s) {missing} are required")
    return values

"""Reading request bodies and JSON values: anything malformed is a 400 that says why, never a 5xx.

Hostile bodies fail in many ways (bad multipart framing, unknown charsets, invalid UTF-8, garbage
under ``Content-Encoding``, JSON nested past the interpreter's stack, ``1e400``); each is the client's
error, so every failure to parse becomes an :class:`~gateway.errors.ApiError` here.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from aiohttp import web

from .errors import ApiError

#: Deepest JSON nesting accepted (a DAG run's conf is rarely more than a few levels deep).
MAX_JSON_DEPTH = 32
#: A body larger than this is parsed in a thread (the event loop keeps answering meanwhile).
OFF_LOOP_BYTES = 64 * 1024


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str | bytes, what: str = "The body") -> Any:
    """Strict JSON: finite numbers only, at most :data:`MAX_JSON_DEPTH` levels deep."""
    try:
        document = json.loads(text, parse_float=_finite, parse_constant=_no_constants)
    except RecursionError:
        raise ApiError(400, f"{what} is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as exc:  # also UnicodeDecodeError
        raise ApiError(400, f"{what} is not valid JSON: {exc}") from None
    if _depth(document) > MAX_JSON_DEPTH:
        raise ApiError(400, f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
    return document


def _depth(document: Any) -> int:
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


async def read_json_object(request: web.Request, what: str) -> dict[str, Any] | None:
    """The body as a JSON object (none at all: None); blanks, ``null`` or any other JSON value are a 400."""
    raw = await read_bytes(request)
    if not raw:
        return None
    document = await asyncio.to_thread(loads, raw) if len(raw) > OFF_LOOP_BYTES else loads(raw)
    if not isinstance(document, dict):
        raise ApiError(400, f"A JSON body must be an object of {what}")
    return document


def _identity_only(request: web.Request) -> None:
    """Compressed request bodies are refused: nothing sends them, and each codec is one more parser to attack.

    The server runs with ``auto_decompress=False`` (``python -m gateway``), so this is what answers them.
    """
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise ApiError(415, f"Request bodies must not be compressed (Content-Encoding: {encoding[:40]!r})")


async def read_bytes(request: web.Request) -> bytes:
    _identity_only(request)
    try:
        return await request.read()
    except web.HTTPException:
        raise  # 413 past client_max_size: the errors middleware answers it
    except Exception as exc:  # garbage under Content-Encoding, a broken chunked body, ...
        raise ApiError(400, f"The body could not be read: {type(exc).__name__}") from None


async def read_form(request: web.Request) -> Any:
    """``request.post()`` (urlencoded or multipart), with every way it can fail on bad input made a 400."""
    _identity_only(request)
    try:
        return await request.post()
    except web.HTTPException:
        raise
    except Exception as exc:  # bad framing, unknown charset, invalid UTF-8, nested multipart, ...
        raise ApiError(
            400, f"The form body could not be read ({type(exc).__name__}); send JSON, a form or multipart/form-data"
        ) from None


_TRUE = frozenset({"", "true", "1", "yes", "on", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "off", "n", "f"})
#: Every spelling of a boolean that :func:`parse_bool` takes ("" is true: present without a value).
BOOL_WORDS = tuple(sorted(_TRUE | _FALSE))


def parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return True
    if isinstance(value, str) and value.strip().lower() in _FALSE:
        return False
    raise ApiError(400, f"'{name}' must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}")

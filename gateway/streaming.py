"""Streaming a run's output as it is printed: NDJSON, Server-Sent Events, or plain text.

Built for proxies: ``X-Accel-Buffering: no`` and ``Cache-Control: no-cache`` on every stream, no
compression, a heartbeat after ``heartbeat_s`` of silence (so nginx's ``proxy_read_timeout`` never
fires), and over-long lines split instead of failing. When the client goes away, the run is
cancelled, which kills its process group.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from .catalog import parse_bool
from .envelope import masked
from .errors import ApiError
from .masking import Masker

T = TypeVar("T")
#: How often a waiting stream checks that its client is still there.
DISCONNECT_POLL_S = 0.25


class Format(enum.Enum):
    NDJSON = "application/x-ndjson"
    SSE = "text/event-stream"
    TEXT = "text/plain"


def stream_format(stream_value: Any, accept: str) -> Format | None:
    """Which format the request asks for (``stream=true|text``, ``Accept: text/event-stream``), if any."""
    if isinstance(stream_value, str) and stream_value.strip().lower() == "text":
        return Format.TEXT
    wanted = stream_value is not None and parse_bool("stream", stream_value)
    if "text/event-stream" in accept:
        return Format.SSE if wanted or stream_value is None else None
    return Format.NDJSON if wanted else None


class EventWriter:
    """Writes events in one format onto a prepared :class:`web.StreamResponse`."""

    def __init__(self, response: web.StreamResponse, fmt: Format, masker: Masker) -> None:
        self.response = response
        self.format = fmt
        self.masker = masker

    @classmethod
    async def open(cls, request: web.Request, fmt: Format, masker: Masker) -> EventWriter:
        content_type = fmt.value + ("; charset=utf-8" if fmt is not Format.SSE else "")
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": content_type,
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                "Content-Encoding": "identity",
            },
        )
        await response.prepare(request)
        return cls(response, fmt, masker)

    async def event(
        self, kind: str, payload: dict[str, Any], event_id: int | None = None, premasked: bool = False
    ) -> None:
        """One event, masked (``premasked``: its text already was, by :class:`~gateway.outflow.MaskedOutput`);
        ``event_id`` (SSE only) is where a reader that saw it resumes (``Last-Event-ID``)."""
        if not premasked:
            payload = masked(payload, self.masker) if kind == "result" else self.masker.value(payload)
        if self.format is Format.NDJSON:
            data = json.dumps({"type": kind, **payload}) + "\n"
        elif self.format is Format.SSE:
            resume = "" if event_id is None else f"id: {event_id}\n"
            data = f"{resume}event: {kind}\ndata: {json.dumps(payload)}\n\n"
        elif kind == "output":
            data = payload["text"] + "\n"
        elif kind == "log":
            data = f"[{payload['task_id']}] {payload['text']}\n"
        else:
            data = f"[{kind}] {json.dumps(payload, sort_keys=True)}\n"
        await self.response.write(data.encode())

    async def heartbeat(self) -> None:
        if self.format is Format.NDJSON:
            await self.response.write(b'{"type": "heartbeat"}\n')
        elif self.format is Format.SSE:
            await self.response.write(b": heartbeat\n\n")
        # Plain text has no room for a heartbeat that is not output; it relies on the proxy's timeout.


class ClientGone(Exception):
    """The client closed the connection; the run must be stopped."""


async def with_heartbeats(
    request: web.Request, source: AsyncIterator[T], heartbeat_s: float, on_idle: Callable[[], Awaitable[None]]
) -> AsyncIterator[T]:
    """``source``'s items; ``on_idle`` after each ``heartbeat_s`` of silence; :class:`ClientGone` on disconnect."""
    items = source.__aiter__()
    pending: asyncio.Future[T] = asyncio.ensure_future(anext(items))
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=DISCONNECT_POLL_S)
            if request.transport is None or request.transport.is_closing():
                raise ClientGone
            if not done:
                if loop.time() - quiet_since >= heartbeat_s:
                    await on_idle()
                    quiet_since = loop.time()
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            quiet_since = loop.time()
            yield item
            pending = asyncio.ensure_future(anext(items))
    finally:
        if not pending.done():
            pending.cancel()


async def stream_events(
    request: web.Request,
    fmt: Format,
    masker: Masker,
    events: AsyncIterator[tuple[str, dict[str, Any]]],
    heartbeat_s: float,
    result: Callable[[ApiError | None], dict[str, Any]],
) -> web.StreamResponse:
    """``events`` as they come, then ``result(refusal)`` as the last event (a refusal mid-way ends the stream)."""
    writer = await EventWriter.open(request, fmt, masker)
    error = None
    try:
        async for kind, payload in with_heartbeats(request, events, heartbeat_s, writer.heartbeat):
            if kind == "log":  # a task's log line: what it shows is secret from here on
                masker.learn_line(str(payload.get("text", "")))
            await writer.event(kind, payload)
    except ApiError as exc:
        error = exc
    except (ClientGone, ConnectionError):
        return writer.response
    await writer.event("result", result(error))
    await writer.response.write_eof()
    return writer.response

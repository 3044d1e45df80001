"""asyncio helpers: the background tasks the gateway owns, and work too heavy for the event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
#: Work on a request or an answer larger than this (bytes, characters or items) runs in a thread: parsing,
#: learning and masking cost O(size), and the event loop must keep answering everyone else meanwhile.
OFF_LOOP_SIZE = 64 * 1024


async def off_loop(size: int, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)``, in a thread when ``size`` says it could take more than a few milliseconds."""
    if size > OFF_LOOP_SIZE:
        return await asyncio.to_thread(work, *args)
    return work(*args)


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` (None: there is none) and wait until each has finished, so that whatever a task was
    using (a connection, a process) is no longer in use when its owner closes it."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    for task in live:
        with contextlib.suppress(asyncio.CancelledError):
            await task

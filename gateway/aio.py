"""asyncio helpers for the background tasks the gateway owns."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` (None: there is none) and wait until each has finished, so that whatever a task was
    using (a connection, a process) is no longer in use when its owner closes it."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    for task in live:
        with contextlib.suppress(asyncio.CancelledError):
            await task

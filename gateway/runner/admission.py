"""Admission control: at most ``max_concurrency`` runs, at most ``max_queue`` waiting; beyond that, refuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..errors import ApiError


class Overloaded(ApiError):
    """Every slot is busy and the queue is full: a 503, and ``Retry-After`` says when to come back."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(503, "The gateway is at capacity; retry later", {"Retry-After": str(retry_after_s)})
        self.retry_after_s = retry_after_s


class Admission:
    """One global gate for every process the gateway starts.

    Refusing early (instead of queueing without bound) keeps latency predictable and memory flat under
    bursts from CI systems; the 503 carries ``Retry-After`` so well-behaved clients back off.
    """

    def __init__(self, max_concurrency: int, max_queue: int, retry_after_s: int = 2) -> None:
        self._slots = asyncio.Semaphore(max_concurrency)
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.retry_after_s = retry_after_s
        self.running = 0
        self.waiting = 0
        #: Requests refused with a 503 so far.
        self.rejected = 0

    @property
    def full(self) -> bool:
        """Every slot busy and the queue full: the next request would be refused."""
        return self._slots.locked() and self.waiting >= self.max_queue

    def check(self) -> None:
        """Refuse now (:class:`Overloaded`, counted) if the next request could not even queue."""
        if self.full:
            self.rejected += 1
            raise Overloaded(self.retry_after_s)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.check()
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()

from __future__ import annotations

import asyncio

import pytest

from gateway.runner.admission import Admission, Overloaded


async def test_runs_at_most_max_concurrency_and_refuses_past_the_queue() -> None:
    admission = Admission(max_concurrency=2, max_queue=1)
    release = asyncio.Event()
    peak = 0

    async def hold() -> None:
        nonlocal peak
        async with admission.slot():
            peak = max(peak, admission.running)
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert (admission.running, admission.waiting) == (2, 1)
    with pytest.raises(Overloaded) as refused:
        async with admission.slot():
            pass
    assert refused.value.retry_after_s > 0
    release.set()
    await asyncio.gather(*holders)
    assert peak == 2
    assert (admission.running, admission.waiting) == (0, 0)


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    admission = Admission(max_concurrency=1, max_queue=1)
    async with admission.slot():
        waiter = asyncio.create_task(admission.slot().__aenter__())
        await asyncio.sleep(0.01)
        assert admission.waiting == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert admission.waiting == 0
    async with admission.slot():
        assert admission.running == 1

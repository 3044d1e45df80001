"""The worker connection's failure modes, with a peer played by the test (no Airflow): whatever breaks the
link, every waiting request fails at once as a 503, and the process is let go."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.runner import RunnerUnavailable
from gateway.worker.client import _Link


class FakeHelperForWorkerTests:
    """Stands in for the worker's HelperProcess: it only records that the link let it go."""

    pid = 12345
    alive = True

    def __init__(self) -> None:
        self.stopped = False

    async def stop(self, grace_s: float = 3.0) -> None:
        self.stopped = True


class Peer:
    """The worker's end of the socket, driven by the test."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rwb")

    async def requests(self, count: int) -> list[dict[str, object]]:
        return [json.loads(await asyncio.to_thread(self.file.readline)) for _ in range(count)]

    async def send(self, data: bytes) -> None:
        await asyncio.to_thread(self.sock.sendall, data)


@pytest.fixture
async def link_and_peer() -> AsyncIterator[tuple[_Link, Peer, FakeHelperForWorkerTests, list[_Link]]]:
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours, limit=1024)
    helper = FakeHelperForWorkerTests()
    breaks: list[_Link] = []
    link = _Link(helper, reader, writer, breaks.append)  # type: ignore[arg-type]
    peer = Peer(theirs)
    yield link, peer, helper, breaks
    writer.close()
    theirs.close()
    link.task.cancel()


async def calls(link: _Link, count: int) -> list[asyncio.Task[tuple[int, object]]]:
    tasks = [asyncio.create_task(link.call(n, "pools", {})) for n in range(1, count + 1)]
    await asyncio.sleep(0)
    return tasks


def reply(request_id: int, size: int = 0) -> bytes:
    return json.dumps({"id": request_id, "status": 200, "body": "x" * size}).encode() + b"\n"


BREAKERS: dict[str, Callable[[Peer], bytes | None]] = {
    "eof": lambda peer: None,
    "a reply longer than the line limit": lambda peer: reply(1, 4096),
    "a line that is not JSON": lambda peer: b"Traceback (most recent call last):\n",
    "a reply without an id": lambda peer: b'{"status": 200}\n',
    "a reply that is not an object": lambda peer: b"[1, 2]\n",
}


@pytest.mark.parametrize("breaker", BREAKERS)
async def test_a_broken_connection_fails_every_waiting_request(link_and_peer: tuple, breaker: str) -> None:
    link, peer, helper, breaks = link_and_peer
    waiting = await calls(link, 8)
    await peer.requests(8)
    await peer.send(reply(2))  # one is answered before it breaks
    data = BREAKERS[breaker](peer)
    if data is None:
        peer.sock.shutdown(socket.SHUT_RDWR)
    else:
        await peer.send(data)
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert results[1] == (200, "")
    assert all(isinstance(r, RunnerUnavailable) for i, r in enumerate(results) if i != 1), results
    assert all(r.status == 503 and "Retry-After" in r.headers for r in results if isinstance(r, RunnerUnavailable))
    await link.task
    assert (breaks, helper.stopped, link.alive) == ([link], True, False)
    with pytest.raises(RunnerUnavailable):
        await link.call(99, "pools", {})


async def test_a_closed_connection_fails_the_requests_being_written(link_and_peer: tuple) -> None:
    link, peer, helper, breaks = link_and_peer
    peer.file.close()
    peer.sock.close()  # writes to it now fail: EPIPE
    results = await asyncio.gather(*(link.call(n, "pools", {}) for n in range(8)), return_exceptions=True)
    assert all(isinstance(r, RunnerUnavailable) for r in results), results
    await link.task
    assert (breaks, helper.stopped) == ([link], True)

"""The Airflow worker under faults, for real: killed mid-read, an answer over its size limit, a failed restart."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.keys import AIRFLOW_WORKER
from gateway.worker.client import AirflowWorker

from ..support import AUTH, settings_dict

pytestmark = pytest.mark.integration
API = "/api/experimental"
PLUGIN = "/admin/rest_api/api"
#: A request that takes longer than this hangs: the faults here must all be answered at once.
HANG_S = 60


async def own_worker_client(aiohttp_client: Any, airflow_home: Path, **experimental: Any) -> TestClient:
    """An app with a worker of its own (the tests kill it), started with the app."""
    settings = parse_settings(
        settings_dict(airflow_home, runner={"mode": "exec"}, experimental={"warm_at_start": True, **experimental})
    )
    return await aiohttp_client(create_app(settings))


def worker(client: TestClient) -> AirflowWorker:
    return client.app[AIRFLOW_WORKER]


async def health(client: TestClient) -> dict[str, Any]:
    return await (await client.get("/health")).json()


async def wait_worker_ready(client: TestClient) -> dict[str, Any]:
    for _ in range(1200):
        body = await health(client)
        if body["worker"]["ready"]:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"the worker never became ready: {body}")


async def read(client: TestClient, n: int) -> tuple[int, str | None]:
    """One of the concurrent reads: the experimental API (503 when the worker is gone) or a plugin read (the CLI)."""
    if n % 2:
        resp = await client.get(PLUGIN, params={"api": "pool"}, headers=AUTH)
    else:
        resp = await client.get(f"{API}/pools", headers=AUTH)
    await resp.read()
    return resp.status, resp.headers.get("Retry-After")


async def test_a_killed_worker_fails_the_reads_in_flight_at_once_and_comes_back(
    aiohttp_client: Any, airflow_home: Path
) -> None:
    client = await own_worker_client(aiohttp_client, airflow_home)
    await wait_worker_ready(client)
    first = worker(client).pid
    assert first is not None
    outcomes: list[tuple[int, str | None]] = []
    for round_ in range(3):
        pid = worker(client).pid
        assert pid is not None
        reads = [asyncio.create_task(read(client, n)) for n in range(8)]
        await asyncio.sleep(0.005 * round_)
        os.kill(pid, signal.SIGKILL)
        outcomes += await asyncio.wait_for(asyncio.gather(*reads), HANG_S)
        body = await wait_worker_ready(client)
        assert worker(client).pid != pid
    assert {status for status, _ in outcomes} <= {200, 503}, outcomes
    assert all(retry for status, retry in outcomes if status == 503), outcomes
    assert body["worker"]["restarts"] >= 3 and body["worker"]["last_error"] and body["status"] == "ok"
    assert (await asyncio.wait_for(read(client, 0), HANG_S))[0] == 200
    assert (await asyncio.wait_for(read(client, 1), HANG_S))[0] == 200


async def test_health_says_degraded_while_the_worker_cannot_come_back(aiohttp_client: Any, airflow_home: Path) -> None:
    client = await own_worker_client(aiohttp_client, airflow_home)
    await wait_worker_ready(client)
    python = worker(client).python
    worker(client).python = "/nonexistent/python"  # its restarts fail
    os.kill(worker(client).pid or 0, signal.SIGKILL)
    for _ in range(600):
        body = await health(client)
        if body["status"] != "ok":
            break
        await asyncio.sleep(0.1)
    assert body["status"] == "degraded" and body["worker"]["ready"] is False and body["worker"]["last_error"]
    resp = await client.get(f"{API}/pools", headers=AUTH)
    assert resp.status == 503 and resp.headers["Retry-After"]
    worker(client).python = python
    resp = await asyncio.wait_for(client.get(f"{API}/pools", headers=AUTH), HANG_S)
    assert resp.status == 200
    assert (await health(client))["status"] == "ok"


async def test_an_answer_over_the_reply_limit_is_a_413_and_the_next_call_works(
    aiohttp_client: Any, airflow_home: Path
) -> None:
    client = await own_worker_client(aiohttp_client, airflow_home, max_reply_bytes=1024)
    await wait_worker_ready(client)
    pid = worker(client).pid
    resp = await asyncio.wait_for(client.get(f"{API}/dags/gw_probe/code", headers=AUTH), HANG_S)  # 1.3 kB of source
    assert resp.status == 413
    assert "1024 bytes" in (await resp.json())["error"]
    resp = await asyncio.wait_for(client.get(f"{API}/test", headers=AUTH), HANG_S)
    assert (resp.status, await resp.json()) == (200, {"status": "OK"})
    assert (worker(client).pid, worker(client).restarts) == (pid, 0)

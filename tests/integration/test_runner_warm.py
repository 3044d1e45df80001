"""The warm runner's supervision: a killed fork server, recycling, config changes, readiness."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.keys import RUNNER
from gateway.runner import Command, WarmRunner

from ..support import AUTH, settings_dict

pytestmark = pytest.mark.integration
PLUGIN = "/admin/rest_api/api"


async def own_warm_client(aiohttp_client: Any, airflow_home: Path, **runner: Any) -> TestClient:
    """An app with a fork server of its own, through which every call goes (no read answered by the worker)."""
    settings = parse_settings(
        settings_dict(airflow_home, runner={"mode": "warm", **runner}, apis={"fast_reads": False})
    )
    return await aiohttp_client(create_app(settings))


async def wait_ready(client: TestClient) -> dict[str, Any]:
    for _ in range(600):
        health = await (await client.get("/health")).json()
        if health["runner"]["ready"]:
            return health
        await asyncio.sleep(0.1)
    raise AssertionError("the warm runner never became ready")


def backend(client: TestClient) -> WarmRunner:
    warm = client.app[RUNNER].backend
    assert isinstance(warm, WarmRunner)
    return warm


async def test_health_reports_mode_readiness_and_restarts(aiohttp_client: Any, airflow_home: Path) -> None:
    client = await own_warm_client(aiohttp_client, airflow_home)
    health = await wait_ready(client)
    assert health["runner"] | {"running": 0} == health["runner"]
    assert (health["runner"]["mode"], health["runner"]["restarts"]) == ("warm", 0)


async def test_killing_the_fork_server_mid_request_fails_that_request_and_recovers(
    aiohttp_client: Any, airflow_home: Path
) -> None:
    client = await own_warm_client(aiohttp_client, airflow_home)
    await wait_ready(client)
    [zygote_pid] = backend(client).pids

    # `slow` prints a line a second for three seconds; the fork server dies one second in.
    request = asyncio.create_task(
        client.get(PLUGIN, params={"api": "test", "dag_id": "gw_probe", "task_id": "slow"}, headers=AUTH)
    )
    await asyncio.sleep(1.0)
    os.kill(zygote_pid, signal.SIGKILL)
    resp = await request
    body = await resp.json()
    assert resp.status == 503
    assert body["status"] == "ERROR" and "fork server stopped" in body["output"]

    health = await wait_ready(client)
    assert health["runner"]["restarts"] == 1
    assert backend(client).pids != [zygote_pid]
    resp = await client.get(PLUGIN, params={"api": "version"}, headers=AUTH)
    assert resp.status == 200


async def test_the_fork_server_is_recycled_after_max_runs(aiohttp_client: Any, airflow_home: Path) -> None:
    client = await own_warm_client(aiohttp_client, airflow_home, max_runs_per_zygote=2)
    await wait_ready(client)
    [first] = backend(client).pids
    for _ in range(3):
        assert (await client.get(PLUGIN, params={"api": "version"}, headers=AUTH)).status == 200
    for _ in range(300):  # the successor warms up in the background while the first keeps serving
        if first not in backend(client).pids:
            break
        await asyncio.sleep(0.1)
    assert first not in backend(client).pids and len(backend(client).pids) == 1
    assert (await client.get(PLUGIN, params={"api": "version"}, headers=AUTH)).status == 200
    assert client.app[RUNNER].restarts == 0  # a planned replacement is not a restart


async def test_a_changed_airflow_cfg_brings_a_fresh_fork_server(
    aiohttp_client: Any, tmp_path: Path, airflow_home: Path
) -> None:
    client = await own_warm_client(aiohttp_client, airflow_home)
    await wait_ready(client)
    [first] = backend(client).pids
    cfg = airflow_home / "airflow.cfg"
    stat = cfg.stat()
    os.utime(cfg, (stat.st_atime, stat.st_mtime + 5))
    assert (await client.get(PLUGIN, params={"api": "version"}, headers=AUTH)).status == 200
    for _ in range(300):
        if first not in backend(client).pids:
            break
        await asyncio.sleep(0.1)
    assert first not in backend(client).pids


#: Moments (seconds after the call starts) at which a client hangs up; 0 is "the moment the child's pid is known".
HANG_UP_AFTER_S = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)


async def hang_up_after(runner: Any, delay_s: float) -> None:
    """A call whose client hangs up ``delay_s`` into it (at 0: as soon as its child was forked)."""

    async def call() -> None:
        async with runner.start(Command(("version",))):
            if delay_s == 0:
                raise asyncio.CancelledError
            await asyncio.sleep(3600)

    task = asyncio.create_task(call())
    if delay_s:
        await asyncio.sleep(delay_s)
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_client_hanging_up_as_its_command_starts_kills_only_that_command(
    aiohttp_client: Any, airflow_home: Path
) -> None:
    """The child's setsid comes after the fork: signalling "its group" before it means the fork server's group."""
    client = await own_warm_client(aiohttp_client, airflow_home, max_concurrency=4)
    await wait_ready(client)
    runner = client.app[RUNNER]
    [zygote_pid] = backend(client).pids
    other = asyncio.create_task(
        client.get(PLUGIN, params={"api": "test", "dag_id": "gw_probe", "task_id": "slow"}, headers=AUTH)
    )
    for _ in range(3):
        for delay_s in HANG_UP_AFTER_S:
            await hang_up_after(runner, delay_s)
    resp = await other
    assert resp.status == 200, await resp.text()
    assert "tick 3" in (await resp.json())["output"]["stdout"]
    assert (runner.restarts, backend(client).pids) == (0, [zygote_pid])

"""Background jobs of real Airflow commands: started, followed live, replayed, cancelled, timed out.

On SQLite the jobs live in files (the default store); on PostgreSQL in PostgreSQL (the replicas' store).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ..conftest import Homes
from ..support import AUTH

pytestmark = [pytest.mark.integration, pytest.mark.databases("sqlite", "postgresql"), pytest.mark.oldest]
PLUGIN = "/admin/rest_api/api"
SLOW = {"api": "test", "dag_id": "gw_probe", "task_id": "slow", "execution_date": "2024-10-10"}


@pytest.fixture
def make_client(make_client: Any, homes: Homes, airflow_home: Any, database: str) -> Any:
    """The app, with its jobs in a PostgreSQL database of their own when Airflow's is PostgreSQL."""
    if database != "postgresql":
        return make_client
    assert homes.postgres is not None
    store = homes.postgres.create_database()

    async def make(**sections: Any) -> TestClient:
        return await make_client(jobs={"store": store}, **sections)

    return make


async def start(client: TestClient, **params: str) -> dict[str, Any]:
    resp = await client.get(PLUGIN, params={**params, "async": "true"}, headers=AUTH)
    body = await resp.json()
    assert resp.status == 202, body
    assert set(body) >= {"job_id", "status_url", "log_url", "cancel_url"}
    return body


async def status(client: TestClient, job: dict[str, Any]) -> dict[str, Any]:
    return await (await client.get(job["status_url"], headers=AUTH)).json()


async def wait_until(client: TestClient, job: dict[str, Any], *states: str) -> dict[str, Any]:
    for _ in range(600):
        current = await status(client, job)
        if current["state"] in states:
            return current
        await asyncio.sleep(0.05)
    raise AssertionError(f"job stayed {current['state']}, expected {states}")


async def test_a_task_test_job_is_followed_live_then_replayed(make_client: Any) -> None:
    client: TestClient = await make_client()
    job = await start(client, **SLOW)
    assert job["data"]["state"] in ("queued", "running")

    resp = await client.get(job["log_url"], params={"stream": "true"}, headers=AUTH)
    assert resp.content_type == "application/x-ndjson"
    followed = [json.loads(raw) async for raw in resp.content]
    assert any("tick 3" in e.get("text", "") for e in followed)
    assert followed[-1]["type"] == "result" and followed[-1]["state"] == "succeeded"

    final = await status(client, job)
    assert (final["state"], final["exit_code"], final["api"]) == ("succeeded", 0, "test")
    replay = await (await client.get(job["log_url"], params={"offset": "0"}, headers=AUTH)).json()
    assert [e["text"] for e in replay["events"]] == [e["text"] for e in followed if e["type"] == "output"]
    tail = await (await client.get(job["log_url"], params={"offset": replay["next_offset"]}, headers=AUTH)).json()
    assert tail["events"] == [] and tail["next_offset"] == replay["next_offset"]

    listed = await (await client.get("/api/jobs", headers=AUTH)).json()
    assert listed["jobs"][0]["id"] == job["job_id"]


async def test_cancelling_a_running_job_kills_it(make_client: Any) -> None:
    client: TestClient = await make_client()
    job = await start(client, **SLOW)
    await wait_until(client, job, "running")
    resp = await client.delete(job["cancel_url"], headers=AUTH)
    assert resp.status == 200 and (await resp.json())["state"] == "cancelled"
    again = await client.delete(job["cancel_url"], headers=AUTH)
    assert again.status == 409


async def test_failed_and_timed_out_jobs(make_client: Any) -> None:
    client: TestClient = await make_client()
    failed = await start(client, api="variables", get="no_such_var_for_jobs")
    final = await wait_until(client, failed, "failed")
    assert final["exit_code"] == 1

    client = await make_client(runner={"timeout_s": 1.0, "kill_grace_s": 0.5})
    slow = await start(client, **SLOW)
    await wait_until(client, slow, "timed_out")


async def test_bad_job_requests(make_client: Any) -> None:
    client: TestClient = await make_client()
    assert (await client.get("/api/jobs/no-such-job", headers=AUTH)).status == 404
    job = await start(client, api="version")
    resp = await client.get(job["log_url"], params={"offset": "-3"}, headers=AUTH)
    assert resp.status == 400 and "offset" in (await resp.json())["error"]

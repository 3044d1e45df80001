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
    assert resp.headers["Location"] == body["status_url"]
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


async def sse_events(resp: Any, stop_after_output: int | None = None) -> list[dict[str, Any]]:
    """SSE events as dicts (``id``, ``event``, ``data``); with ``stop_after_output``, hang up after that many."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line:
            field, _, value = line.partition(": ")
            if field in ("id", "event", "data"):
                current[field] = json.loads(value) if field == "data" else value
            continue
        if "event" in current:
            events.append(current)
            outputs = [e for e in events if e["event"] == "output"]
            if stop_after_output is not None and len(outputs) == stop_after_output:
                resp.close()
                break
        current = {}
    return events


async def test_an_sse_follow_resumes_from_last_event_id_without_losing_or_repeating(make_client: Any) -> None:
    client: TestClient = await make_client()
    job = await start(client, **SLOW)
    sse = {**AUTH, "Accept": "text/event-stream"}
    first = await sse_events(await client.get(job["log_url"], headers=sse), stop_after_output=1)
    assert [e["event"] for e in first] == ["output"] and int(first[0]["id"]) > 0
    resumed = await client.get(job["log_url"], params={"offset": "0"}, headers={**sse, "Last-Event-ID": first[0]["id"]})
    rest = await sse_events(resumed)
    assert rest[-1]["event"] == "result" and "id" not in rest[-1]
    replay = await (await client.get(job["log_url"], params={"offset": "0"}, headers=AUTH)).json()
    followed = [e["data"] for e in first + rest if e["event"] == "output"]
    assert followed == replay["events"]  # every line once, in order
    assert int(rest[-2]["id"]) == replay["next_offset"]  # the last id is where the log ends
    bad = await client.get(job["log_url"], headers={**sse, "Last-Event-ID": "x"})
    assert bad.status == 400 and "Last-Event-ID" in (await bad.json())["error"]

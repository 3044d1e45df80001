"""Waits on a home where no scheduler runs (as a gateway next to a stopped Airflow): said plainly, never a hang.

The end-to-end wait with a scheduler running is in test_services.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ..support import AUTH, dag_source
from .test_plugin_api import call, deploy, unique

pytestmark = [pytest.mark.integration, pytest.mark.oldest]
NO_SCHEDULER = "No Airflow scheduler is running"
EXPERIMENTAL = "/api/experimental"


@pytest.fixture
async def client(make_client: Any) -> TestClient:
    return await make_client()


async def unpaused_dag(client: TestClient) -> str:
    dag_id = unique("waits")
    status, body = await deploy(client, f"{dag_id}.py", dag_source(dag_id), unpause="on")
    assert status == 200 and body["data"]["is_paused"] == {dag_id: False}, body
    return dag_id


async def run_ids(client: TestClient, dag_id: str) -> list[str]:
    resp = await client.get(f"{EXPERIMENTAL}/dags/{dag_id}/dag_runs", headers=AUTH)
    assert resp.status == 200
    return [run["run_id"] for run in await resp.json()]


async def test_a_wait_without_a_scheduler_is_refused_at_once_and_triggers_nothing(client: TestClient) -> None:
    dag_id = await unpaused_dag(client)
    for stream in ("false", "true"):
        resp = await client.get(
            "/admin/rest_api/api",
            params={"api": "trigger_dag", "dag_id": dag_id, "wait": "true", "stream": stream},
            headers=AUTH,
        )
        body = await resp.json()
        assert resp.status == 503 and resp.headers["Retry-After"], body
        assert NO_SCHEDULER in body["output"] and "runs stay queued" in body["output"], body
    resp = await client.post(f"{EXPERIMENTAL}/dags/{dag_id}/dag_runs?wait=true", json={}, headers=AUTH)
    assert resp.status == 503 and NO_SCHEDULER in (await resp.json())["error"]
    assert await run_ids(client, dag_id) == []


async def test_a_run_that_will_stay_queued_says_why(client: TestClient) -> None:
    dag_id = await unpaused_dag(client)
    status, triggered = await call(client, "trigger_dag", dag_id=dag_id)
    assert status == 200 and triggered["data"]["state"] == "queued"
    assert NO_SCHEDULER in triggered["warning"]
    run_id = triggered["data"]["run_id"]
    status, state = await call(client, "dag_state", dag_id=dag_id, execution_date=run_id)
    assert status == 200 and state["data"]["state"] == "queued" and NO_SCHEDULER in state["warning"]
    status, watched = await call(client, "watch_dag_run", dag_id=dag_id, run_id=run_id)
    assert status == 503 and NO_SCHEDULER in watched["error"], watched


async def test_a_paused_dag_is_refused_before_anything_is_triggered(client: TestClient, airflow_home: Path) -> None:
    dag_id = unique("paused")
    status, _ = await deploy(client, f"{dag_id}.py", dag_source(dag_id), pause="on")
    assert status == 200
    status, body = await call(client, "trigger_dag", dag_id=dag_id, wait="true")
    assert status == 409 and "paused" in body["output"] and "api=unpause" in body["output"]
    assert await run_ids(client, dag_id) == []


@pytest.mark.parametrize("wait_timeout", ["0", "-1", "abc", "1e3", "99999999", "nan"])
async def test_a_bad_wait_timeout_is_a_400(client: TestClient, wait_timeout: str) -> None:
    status, body = await call(client, "trigger_dag", dag_id="gw_probe", wait="true", wait_timeout_s=wait_timeout)
    assert status == 400 and "wait_timeout_s" in body["output"], body


async def test_watching_a_run_that_does_not_exist_is_a_404(client: TestClient) -> None:
    status, body = await call(client, "watch_dag_run", dag_id="gw_probe", run_id="no_such_run")
    assert status == 404, body
    status, body = await call(client, "watch_dag_run", dag_id="no_such_dag", run_id="no_such_run")
    assert status == 404, body

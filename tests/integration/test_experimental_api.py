"""Every /api/experimental endpoint over HTTP on real Airflow 3.3.2: shapes and error texts of Airflow 2."""

from __future__ import annotations

import asyncio
import importlib.metadata
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.worker.client import AirflowWorker

from ..support import AUTH, HEADER, TOKEN, dag_source, settings_dict

pytestmark = [pytest.mark.integration, pytest.mark.databases("sqlite", "postgresql"), pytest.mark.oldest]
API = "/api/experimental"
DATE_ERROR = "could not be identified as a date. Example date format: 2015-11-16T14:34:15+00:00"


@pytest.fixture
async def client(aiohttp_client: Any, airflow_home: Path, airflow_worker: AirflowWorker) -> TestClient:
    settings = parse_settings(settings_dict(airflow_home, runner={"mode": "exec"}))
    return await aiohttp_client(create_app(settings, airflow_worker=airflow_worker))


async def get(client: TestClient, path: str, **kwargs: Any) -> tuple[int, Any]:
    resp = await client.get(API + path, headers=AUTH, **kwargs)
    return resp.status, await resp.json()


async def post(client: TestClient, path: str, body: Any) -> tuple[int, Any]:
    resp = await client.post(API + path, json=body, headers=AUTH)
    return resp.status, await resp.json()


def fresh_date(hour_offset: int = 0) -> datetime:
    base = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(seconds=random.randrange(300_000_000))
    return base + timedelta(hours=hour_offset)


async def test_test_info_and_auth(client: TestClient) -> None:
    assert await get(client, "/test") == (200, {"status": "OK"})
    status, body = await get(client, "/info")
    assert status == 200 and body["version"] == importlib.metadata.version("apache-airflow")
    for headers in ({}, {HEADER: "wrong"}, {"Authorization": "Bearer wrong"}):
        resp = await client.get(API + "/test", headers=headers)
        assert resp.status == 403 and "error" in await resp.json()
    resp = await client.get(API + "/test", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200


async def test_unknown_routes_are_json_404(client: TestClient) -> None:
    status, body = await get(client, "/nothing/here")
    assert status == 404 and "error" in body


async def test_trigger_without_a_date_gets_a_logical_date_and_airflow_2_run_id(client: TestClient) -> None:
    status, body = await post(client, "/dags/gw_probe/dag_runs", {"conf": '{"who": "exp"}'})  # the seed's string conf
    assert status == 200, body
    assert set(body) == {"execution_date", "message", "run_id"}
    assert body["message"].startswith("Created <DagRun gw_probe")
    assert "." not in body["execution_date"]  # microseconds zeroed: one run per second, as in Airflow 2
    assert body["run_id"] == f"manual__{body['execution_date']}"
    status, state = await get(client, f"/dags/gw_probe/dag_runs/{body['run_id']}")
    assert (status, state) == (200, {"state": "queued"})


async def test_concurrent_writes_all_succeed_on_every_database(client: TestClient) -> None:
    """The worker runs operations side by side (on SQLite its writes take turns)."""
    dates = [fresh_date(hour) for hour in range(12)]
    triggers = [post(client, "/dags/gw_probe/dag_runs", {"execution_date": d.isoformat()}) for d in dates]
    names = [f"exp_concurrent_{d.timestamp():.0f}" for d in dates[:6]]
    pools = [post(client, "/pools", {"name": n, "slots": 2, "description": "concurrent"}) for n in names]
    reads = [get(client, "/pools") for _ in range(6)]
    answers = await asyncio.gather(*triggers, *pools, *reads)
    assert [status for status, _ in answers] == [200] * len(answers), [b for s, b in answers if s != 200]
    deleted = await asyncio.gather(*(client.delete(f"{API}/pools/{n}", headers=AUTH) for n in names))
    assert [resp.status for resp in deleted] == [200] * len(names)


async def test_trigger_with_dates_and_microseconds(client: TestClient) -> None:
    when = fresh_date().replace(microsecond=123456)
    status, body = await post(client, "/dags/gw_probe/dag_runs", {"execution_date": when.isoformat()})
    assert status == 200, body
    assert body["execution_date"] == when.isoformat()  # explicit date: microseconds kept

    other = fresh_date(1).replace(microsecond=654321)
    body2 = {"execution_date": other.isoformat(), "replace_microseconds": "true"}
    status, body = await post(client, "/dags/gw_probe/dag_runs", body2)
    assert body["execution_date"] == other.replace(microsecond=0).isoformat()

    status, body = await post(client, "/dags/gw_probe/dag_runs", {"replace_microseconds": False})  # a JSON boolean
    assert status == 200 and "." in body["execution_date"]


async def test_trigger_refusals(client: TestClient) -> None:
    run_id = f"exp_{random.randrange(10**9)}"
    first = {"run_id": run_id, "execution_date": fresh_date().isoformat()}
    assert (await post(client, "/dags/gw_probe/dag_runs", first))[0] == 200
    status, body = await post(client, "/dags/gw_probe/dag_runs", {**first, "execution_date": fresh_date(2).isoformat()})
    assert status == 400 and "already exists" in body["error"]  # the same run id
    status, body = await post(client, "/dags/gw_probe/dag_runs", {**first, "run_id": f"{run_id}_other"})
    assert status == 400 and "already exists" in body["error"]  # the same logical date
    for conf in ([1, 2], "[1]", "{not json", 5):
        status, body = await post(client, "/dags/gw_probe/dag_runs", {"conf": conf})
        assert (status, body) == (
            400,
            {"error": "Dag Run conf must be a dictionary object, other types are not supported"},
        )
    status, body = await post(client, "/dags/gw_probe/dag_runs", {"execution_date": "not_a_datetime"})
    assert status == 400 and body["error"] == f"Given execution date, not_a_datetime, {DATE_ERROR}"
    status, body = await post(client, "/dags/gw_probe/dag_runs", {"execution_date": "2001-01-01T00:00:00+00:00"})
    assert status == 400 and "error" in body  # before the DAG's start_date (Airflow 2: an HTML 500)
    status, body = await post(client, "/dags/no_such_dag/dag_runs", {})
    assert status == 404 and "not found" in body["error"]
    status, body = await post(client, "/dags/gw_probe/dag_runs", {"run_id": "-bad id"})
    assert status == 400
    status, body = await post(client, "/dags/gw_probe/dag_runs", {"replace_microseconds": [1]})
    assert status == 400
    resp = await client.post(API + "/dags/gw_probe/dag_runs", data="{broken", headers=AUTH)
    assert resp.status == 400 and "error" in await resp.json()


async def test_list_runs_with_state_filter(client: TestClient) -> None:
    status, triggered = await post(client, "/dags/gw_probe/dag_runs", {"execution_date": fresh_date().isoformat()})
    assert status == 200
    status, runs = await get(client, "/dags/gw_probe/dag_runs")
    assert status == 200
    mine = [r for r in runs if r["run_id"] == triggered["run_id"]]
    assert len(mine) == 1
    assert set(mine[0]) == {"dag_id", "dag_run_url", "execution_date", "id", "run_id", "start_date", "state"}
    assert mine[0]["start_date"] == "" and mine[0]["state"] == "queued"
    status, queued = await get(client, "/dags/gw_probe/dag_runs", params={"state": "QUEUED"})
    assert triggered["run_id"] in {r["run_id"] for r in queued}
    status, running = await get(client, "/dags/gw_probe/dag_runs", params={"state": "running"})
    assert triggered["run_id"] not in {r["run_id"] for r in running}
    status, body = await get(client, "/dags/gw_probe/dag_runs", params={"state": "dummy"})
    assert status == 400 and "dummy" in body["error"]
    status, body = await get(client, "/dags/no_such_dag/dag_runs")
    assert (status, body) == (400, {"error": "Dag id no_such_dag not found in DagModel"})


async def test_run_state_by_date_in_every_spelling(client: TestClient) -> None:
    when = fresh_date().replace(microsecond=0)
    status, body = await post(client, "/dags/gw_probe/dag_runs", {"execution_date": when.isoformat()})
    assert status == 200
    for spelling in (quote(when.isoformat(), safe=""), when.isoformat(), when.strftime("%Y-%m-%dT%H:%M:%S")):
        status, state = await get(client, f"/dags/gw_probe/dag_runs/{spelling}")
        assert (status, state) == (200, {"state": "queued"}), spelling
    status, body = await get(client, "/dags/gw_probe/dag_runs/1990-01-01T01:01:01+00:00")
    assert (
        status == 404
        and body["error"].startswith("Dag Run for date 1990-01-01")
        and "not found in dag gw_probe" in body["error"]
    )
    status, body = await get(client, "/dags/gw_probe/dag_runs/not_a_datetime")
    assert (status, body) == (400, {"error": f"Given execution date, not_a_datetime, {DATE_ERROR}"})
    status, body = await get(client, f"/dags/no_such_dag/dag_runs/{when.isoformat()}")
    assert status == 404


async def test_task_instance_and_task_info(client: TestClient) -> None:
    status, run = await post(client, "/dags/gw_probe/dag_runs", {"execution_date": fresh_date().isoformat()})
    date = quote(run["execution_date"], safe="")
    status, ti = await get(client, f"/dags/gw_probe/dag_runs/{date}/tasks/hello")
    assert status == 200 and ti["state"] == "None" and ti["task_id"] == "hello" and "error" not in ti
    status, body = await get(client, f"/dags/gw_probe/dag_runs/{date}/tasks/no_such_task")
    assert (status, body) == (404, {"error": "Task no_such_task not found in dag gw_probe"})
    status, body = await get(client, "/dags/gw_probe/dag_runs/1990-01-01/tasks/hello")
    assert status == 404

    status, task = await get(client, "/dags/gw_probe/tasks/hello")
    assert status == 200 and "email" in task and task["task_id"] == "hello" and "error" not in task
    status, body = await get(client, "/dags/gw_probe/tasks/no_such_task")
    assert (status, body) == (404, {"error": "Task no_such_task not found in dag gw_probe"})
    status, body = await get(client, "/dags/no_such_dag/tasks/hello")
    assert status == 404


async def test_code(client: TestClient) -> None:
    resp = await client.get(API + "/dags/gw_probe/code", headers=AUTH)
    assert resp.status == 200 and resp.content_type == "text/plain"
    assert "BashOperator(" in await resp.text()
    status, body = await get(client, "/dags/no_such_dag/code")
    assert status == 404 and "error" in body


async def test_paused_round_trip(client: TestClient) -> None:
    assert await get(client, "/dags/gw_daily/paused/true") == (200, {"response": "ok"})
    assert await get(client, "/dags/gw_daily/paused") == (200, {"is_paused": True})
    assert await get(client, "/dags/gw_daily/paused/false") == (200, {"response": "ok"})
    assert await get(client, "/dags/gw_daily/paused") == (200, {"is_paused": False})
    status, body = await get(client, "/dags/no_such_dag/paused")
    assert status == 404 and "error" in body  # Airflow 2: an HTML 500
    status, body = await get(client, "/dags/no_such_dag/paused/true")
    assert status == 404
    status, body = await get(client, "/dags/gw_daily/paused/yes")
    assert status == 400


async def test_latest_runs(client: TestClient) -> None:
    await post(client, "/dags/gw_probe/dag_runs", {"execution_date": fresh_date().isoformat()})
    status, body = await get(client, "/latest_runs")
    assert status == 200 and set(body) == {"items"}
    mine = [i for i in body["items"] if i["dag_id"] == "gw_probe"]
    assert len(mine) == 1 and set(mine[0]) == {"dag_id", "execution_date", "start_date", "dag_run_url"}


async def test_pools_crud_and_every_error_text(client: TestClient) -> None:
    name = f"exp_pool_{random.randrange(10**9)}"
    status, pools = await get(client, "/pools")
    default = next(p for p in pools if p["pool"] == "default_pool")
    assert status == 200 and (default["slots"], default["description"]) == (128, "Default pool")
    status, created = await post(client, "/pools", {"name": name, "slots": "3", "description": "first"})
    assert status == 200 and (created["pool"], created["slots"], created["description"]) == (name, 3, "first")
    assert set(created) == {"id", "pool", "slots", "description", "include_deferred"}
    status, updated = await post(client, "/pools", {"name": name, "slots": 7, "description": "upsert"})
    assert (updated["id"], updated["slots"], updated["description"]) == (created["id"], 7, "upsert")
    assert await get(client, f"/pools/{name}") == (200, updated)

    assert await post(client, "/pools", {"name": " ", "slots": 1, "description": ""}) == (
        400,
        {"error": "Pool name shouldn't be empty"},
    )
    assert await post(client, "/pools", {"name": "x", "slots": "abc", "description": ""}) == (
        400,
        {"error": "Bad value for `slots`: abc"},
    )
    assert (await post(client, "/pools", {"name": "x", "slots": None, "description": ""}))[0] == 400
    assert (await post(client, "/pools", {"name": "x", "slots": 1, "colour": "red"}))[0] == 400
    status, body = await post(client, "/pools", {"name": "x" * 300, "slots": 1, "description": ""})
    assert (status, body) == (400, {"error": "Pool name can't be more than 256 characters"})
    assert await get(client, "/pools/no_such_pool") == (404, {"error": "Pool 'no_such_pool' doesn't exist"})
    assert await get(client, "/pools/%20") == (400, {"error": "Pool name shouldn't be empty"})

    resp = await client.delete(API + "/pools/default_pool", headers=AUTH)
    assert (resp.status, await resp.json()) == (400, {"error": "default_pool cannot be deleted"})
    resp = await client.delete(API + f"/pools/{name}", headers=AUTH)
    assert (resp.status, await resp.json()) == (200, updated)
    resp = await client.delete(API + f"/pools/{name}", headers=AUTH)
    assert (resp.status, await resp.json()) == (404, {"error": f"Pool '{name}' doesn't exist"})


async def test_lineage_from_assets(client: TestClient) -> None:
    status, run = await post(client, "/dags/gw_assets/dag_runs", {"execution_date": fresh_date().isoformat()})
    assert status == 200, run
    status, body = await get(client, f"/lineage/gw_assets/{quote(run['execution_date'], safe='')}")
    assert status == 200, body
    assert set(body["task_ids"]) == {"produce", "refine"}
    assert body["task_ids"]["produce"]["inlets"] == []
    assert [o["uri"] for o in body["task_ids"]["refine"]["outlets"]] == ["s3://lake/clean/orders"]
    assert [i["uri"] for i in body["task_ids"]["refine"]["inlets"]] == ["s3://lake/raw/orders"]
    assert body["message"] == f"Lineage of 2 task(s) in DAG run {run['run_id']} of gw_assets"
    # The reference writes the URL with a trailing slash.
    assert await get(client, f"/lineage/gw_assets/{quote(run['execution_date'], safe='')}/") == (200, body)
    status, body = await get(client, "/lineage/gw_assets/1990-01-01")
    assert status == 404
    status, body = await get(client, "/lineage/gw_assets/garbage")
    assert status == 400 and DATE_ERROR in body["error"]


async def test_delete_dag(make_client: Any, client: TestClient) -> None:
    import aiohttp

    plugin = await make_client()
    dag_id = f"exp_delete_{random.randrange(10**9)}"
    source = dag_source(dag_id)
    form = aiohttp.FormData()
    form.add_field("dag_file", source.encode(), filename=f"{dag_id}.py")
    resp = await plugin.post("/admin/rest_api/api", params={"api": "deploy_dag"}, data=form, headers=AUTH)
    assert resp.status == 200, await resp.text()
    resp = await client.delete(API + f"/dags/{dag_id}", headers=AUTH)
    body = await resp.json()
    assert resp.status == 200 and body["count"] >= 1 and body["message"] == f"Removed {body['count']} record(s)"
    resp = await client.delete(API + f"/dags/{dag_id}", headers=AUTH)
    assert resp.status == 404 and "not found" in (await resp.json())["error"]


async def test_a_token_not_allowed_to_trigger_learns_nothing_of_the_dags(
    aiohttp_client: Any, airflow_home: Path, airflow_worker: AirflowWorker
) -> None:
    """The permission comes first: a paused DAG (409 to who may trigger) and a missing one (404) are the same 403."""
    reader = {"name": "reader", "token": "reader-token-abcdefghijklmnop", "allow": ["experimental.get_paused"]}
    data = settings_dict(airflow_home, runner={"mode": "exec"})
    data["auth"]["tokens"] = [*data["auth"]["tokens"], reader]
    client = await aiohttp_client(create_app(parse_settings(data), airflow_worker=airflow_worker))
    assert await get(client, "/dags/gw_daily/paused/true") == (200, {"response": "ok"})
    try:
        refused = (403, {"error": "Token 'reader' is not allowed to call experimental.trigger"})
        for dag_id, admin_status in (("gw_daily", 409), ("no_such_dag", 404)):
            url = f"{API}/dags/{dag_id}/dag_runs?wait=true&wait_timeout_s={'9' * 5000}"
            resp = await client.post(url, json={}, headers={HEADER: reader["token"]})
            assert (resp.status, await resp.json()) == refused, dag_id
            resp = await client.post(f"{API}/dags/{dag_id}/dag_runs?wait=true", json={}, headers=AUTH)
            assert resp.status == admin_status, dag_id  # what the refusal must not tell
        resp = await client.get(f"{API}/dags/gw_daily/paused", headers={HEADER: reader["token"]})
        assert (resp.status, await resp.json()) == (200, {"is_paused": True})  # the token's own operation works
    finally:
        assert await get(client, "/dags/gw_daily/paused/false") == (200, {"response": "ok"})

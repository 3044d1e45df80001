"""Every plugin API over HTTP against the real Airflow 3.3.2 CLI on a temporary SQLite AIRFLOW_HOME."""

from __future__ import annotations

import importlib.metadata
import json
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway import airflow_release
from gateway.keys import RUNNER

from ..support import AUTH, dag_source

pytestmark = [pytest.mark.integration, pytest.mark.databases("sqlite", "postgresql"), pytest.mark.oldest]
PLUGIN = "/admin/rest_api/api"


async def call(client: TestClient, api: str, method: str = "GET", **params: Any) -> tuple[int, dict[str, Any]]:
    if method == "GET":
        resp = await client.get(PLUGIN, params={"api": api, **params}, headers=AUTH)
    else:
        resp = await client.post(PLUGIN, params={"api": api}, data=params, headers=AUTH)
    body = await resp.json()
    assert body["http_response_code"] == resp.status
    assert body["status"] == ("OK" if resp.status < 400 else "ERROR")
    return resp.status, body


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def unique_date() -> str:
    """A logical date no other test uses (both runner modes share one database; a DAG has one run per date)."""
    return (datetime(2024, 2, 1, tzinfo=UTC) + timedelta(minutes=random.randrange(5_000_000))).isoformat()


@pytest.fixture
async def client(make_client: Any) -> TestClient:
    return await make_client()


async def test_version(client: TestClient) -> None:
    status, body = await call(client, "version")
    assert status == 200
    assert body["output"]["stdout"].strip() == importlib.metadata.version("apache-airflow")
    assert body["airflow_cmd"] == "airflow version"
    assert body["exit_code"] == 0 and body["duration_s"] > 0 and body["truncated"] is False


async def test_variables_round_trip(client: TestClient) -> None:
    key = unique("var")
    status, body = await call(client, "variables", set=key, set_value="-5 apples")
    assert status == 200, body
    status, body = await call(client, "variables", get=key)
    assert (status, body["data"]) == (200, "-5 apples")

    status, _ = await call(client, "variables", cmd="set", key=key, value='{"a": [1, 2]}')
    assert status == 200
    status, body = await call(client, "variables", get=key, json="")
    assert body["data"] == {"a": [1, 2]}

    status, body = await call(client, "variables")
    assert status == 200 and {"key": key} in body["data"]
    status, body = await call(client, "variables", export="true")
    assert status == 200 and body["data"][key] == {"a": [1, 2]}

    status, _ = await call(client, "variables", delete=key)
    assert status == 200
    status, body = await call(client, "variables", get=key)
    assert status == 404 and "does not exist" in body["error"]
    status, body = await call(client, "variables", get=key, default="fallback")
    assert (status, body["data"]) == (200, "fallback")


async def test_variables_import_from_json_body_and_upload(client: TestClient) -> None:
    a, b = unique("imp"), unique("imp")
    resp = await client.post(PLUGIN, json={"api": "variables", "import": {a: "from-json"}}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    form = aiohttp.FormData()
    form.add_field("import", json.dumps({b: "from-file"}).encode(), filename="vars.json")
    resp = await client.post(PLUGIN, params={"api": "variables"}, data=form, headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert (await call(client, "variables", get=a))[1]["data"] == "from-json"
    assert (await call(client, "variables", get=b))[1]["data"] == "from-file"


async def test_connections_add_list_delete_without_leaking_the_password(client: TestClient) -> None:
    conn = unique("conn")
    status, body = await call(
        client, "connections", add="", conn_id=conn, conn_uri="postgres://user:hunter22@db:5432/x"
    )
    assert status == 200, body
    assert "hunter22" not in json.dumps(body)
    status, body = await call(client, "connections", list="")
    assert status == 200 and any(c["conn_id"] == conn for c in body["data"])
    assert "hunter22" not in json.dumps(body)
    status, body = await call(client, "connections", add="", conn_id=conn, conn_uri="postgres://u:p@db/x")
    assert status == 409 and "already exists" in body["error"]
    status, _ = await call(client, "connections", delete="", conn_id=conn)
    assert status == 200
    _, body = await call(client, "connections")
    assert not any(c["conn_id"] == conn for c in body["data"])


async def test_pools_in_both_spellings(client: TestClient) -> None:
    a, b = unique("pool"), unique("pool")
    status, _ = await call(client, "pool", set=f"{a} 5 nightly jobs")
    assert status == 200
    status, _ = await call(client, "pool", cmd="set", pool_name=b, slot_count="7", pool_description="other")
    assert status == 200
    status, body = await call(client, "pool", get=a)
    assert status == 200
    assert body["data"][0] | {"team_name": None} == {
        "pool": a, "slots": 5, "description": "nightly jobs", "include_deferred": False, "team_name": None
    }  # fmt: skip
    _, body = await call(client, "pool")
    assert {p["pool"] for p in body["data"]} >= {a, b, "default_pool"}
    default = next(p for p in body["data"] if p["pool"] == "default_pool")
    assert default["slots"] == 128 and default["include_deferred"] is False
    assert (await call(client, "pool", delete=a))[0] == 200
    status, body = await call(client, "pool", get=a)
    assert status == 404 and "does not exist" in body["error"]


async def test_pause_and_unpause_round_trip(client: TestClient) -> None:
    status, body = await call(client, "unpause", dag_id="gw_probe")
    assert status == 200 and body["data"]["is_paused"] is False
    _, listed = await call(client, "list_dags")
    assert {d["dag_id"]: d["is_paused"] for d in listed["data"]}["gw_probe"] is False
    status, body = await call(client, "pause", dag_id="gw_probe")
    assert (status, body["data"]) == (200, {"dag_id": "gw_probe", "is_paused": True, "changed": True})
    status, body = await call(client, "pause", dag_id="gw_probe")
    assert status == 200 and body["data"]["changed"] is False and "Nothing changed" in body["warning"]


async def test_trigger_then_read_its_state(client: TestClient) -> None:
    run_id, logical_date = unique("run"), unique_date()
    status, body = await call(
        client, "trigger_dag", dag_id="gw_probe", run_id=run_id, conf='{"who": "gateway"}', exec_date=logical_date
    )
    assert status == 200, body
    assert body["data"]["run_id"] == run_id
    assert body["data"]["logical_date"].startswith(logical_date[:10])
    assert body["data"]["conf"] == {"who": "gateway"}
    assert body["data"]["logical_date"] == datetime.fromisoformat(logical_date).isoformat()

    status, body = await call(client, "dag_state", dag_id="gw_probe", execution_date=run_id)
    assert status == 200 and body["data"] == {"state": "queued", "conf": {"who": "gateway"}}
    status, body = await call(client, "task_state", dag_id="gw_probe", task_id="hello", execution_date=run_id)
    assert (status, body["data"]) == (200, {"state": None})

    status, body = await call(client, "trigger_dag", dag_id="gw_probe", run_id=run_id)
    assert status == 409 and "DagRunAlreadyExists" in body["error"]
    status, body = await call(client, "trigger_dag", dag_id="gw_probe", exec_date=logical_date)
    # SQLite: "UNIQUE constraint failed: ..."; PostgreSQL: "DETAIL: Key (dag_id, logical_date)=(...) already exists."
    assert status == 409 and ("UNIQUE constraint failed" in body["error"] or "already exists" in body["error"])


async def test_trigger_returns_the_conf_as_stored(client: TestClient) -> None:
    conf = {"fresh": True, "n": 1, "ratio": 0.5, "none": None, "nested": {"list": [False, "True"]}, "text": "ü"}
    status, body = await call(client, "trigger_dag", dag_id="gw_probe", run_id=unique("conf"), conf=json.dumps(conf))
    assert status == 200, body
    assert body["data"]["conf"] == conf and body["data"]["conf"]["fresh"] is True
    status, body = await call(client, "dag_state", dag_id="gw_probe", execution_date=body["data"]["run_id"])
    assert status == 200 and body["data"]["conf"] == conf  # what Airflow stored


async def test_trigger_without_options_returns_the_generated_run_id(client: TestClient) -> None:
    status, body = await call(client, "trigger_dag", dag_id="gw_probe")
    assert status == 200
    assert body["data"]["run_id"].startswith("manual__")
    assert (await call(client, "dag_state", dag_id="gw_probe", execution_date=body["data"]["run_id"]))[0] == 200


async def test_unknown_dag_task_and_run_are_404(client: TestClient) -> None:
    status, body = await call(client, "trigger_dag", dag_id="no_such_dag")
    assert status == 404 and "not found" in body["error"]
    status, body = await call(client, "dag_state", dag_id="gw_probe", execution_date="no_such_run")
    assert status == 404
    status, body = await call(client, "task_state", dag_id="gw_probe", task_id="nope", execution_date="2024-06-01")
    assert status == 404
    status, body = await call(client, "list_tasks", dag_id="no_such_dag")
    assert status == 404


async def test_render_and_failed_deps(client: TestClient) -> None:
    status, body = await call(client, "render", dag_id="gw_probe", task_id="hello", execution_date="2024-03-04")
    assert status == 200, body
    assert "hello world 2024-03-04" in body["output"]["stdout"]
    status, body = await call(
        client, "task_failed_deps", dag_id="gw_probe", task_id="hello", execution_date="2024-03-04"
    )
    # No run at that date: Airflow says so, and it maps to 404.
    assert status == 404 and "DagRunNotFound" in body["error"]


async def test_test_runs_the_task_and_shows_its_own_output(client: TestClient) -> None:
    status, body = await call(
        client, "test", dag_id="gw_probe", task_id="hello", execution_date="2024-05-06", task_params='{"who": "tests"}'
    )
    assert status == 200, body
    assert "hello tests 2024-05-06" in body["output"]["stdout"]
    assert body["data"] == {"state": "success"}


async def test_a_failing_task_is_an_error_although_airflow_exits_0(client: TestClient) -> None:
    status, body = await call(client, "test", dag_id="gw_probe", task_id="fails", execution_date="2024-05-06")
    assert status == 422  # the task failed, not the gateway
    assert body["exit_code"] == 0 and body["data"] == {"state": "failed"}
    assert "about to fail" in body["output"]["stdout"]


@pytest.mark.skipif(
    airflow_release.series() < (3, 2),
    reason="Airflow 3.1's Execution API refuses a task of a run that has not started (TIRunContext needs the run's "
    "start_date): without a scheduler a triggered run stays queued, so `tasks test` on it fails",
)
async def test_run_maps_to_tasks_test_on_the_given_run(client: TestClient) -> None:
    run_id = unique("run")
    assert (await call(client, "trigger_dag", dag_id="gw_probe", run_id=run_id, exec_date=unique_date()))[0] == 200
    status, body = await call(client, "run", dag_id="gw_probe", task_id="hello", execution_date=run_id)
    assert status == 200, body
    assert body["airflow_cmd"].startswith("airflow tasks test")
    status, body = await call(client, "task_state", dag_id="gw_probe", task_id="hello", execution_date=run_id)
    assert body["data"] == {"state": "success"}


async def test_list_tasks_and_tree(client: TestClient) -> None:
    status, body = await call(client, "list_tasks", dag_id="gw_probe")
    assert (status, body["data"]) == (200, ["fails", "hello", "slow"])
    status, body = await call(client, "list_tasks", dag_id="gw_probe", tree="")
    assert (
        status == 200 and "digraph gw_probe" in body["output"]["stdout"] and "hello -> slow" in body["output"]["stdout"]
    )


async def test_list_dags_and_report(client: TestClient) -> None:
    status, body = await call(client, "list_dags")
    assert status == 200 and {"gw_probe", "gw_daily"} <= {d["dag_id"] for d in body["data"]}
    status, body = await call(client, "list_dags", report="")
    assert status == 200 and any("gw_probe" in r["dags"] for r in body["data"])


async def test_backfill_dry_run_and_a_dag_that_cannot_be_backfilled(client: TestClient) -> None:
    status, body = await call(
        client, "backfill", dag_id="gw_daily", start_date="2024-01-01", end_date="2024-01-03", dry_run=""
    )
    assert status == 200, body
    text = body["output"]["stdout"] + body["output"].get("log", "")
    assert "2024-01-02" in text
    status, body = await call(client, "backfill", dag_id="gw_probe", start_date="2024-01-01", dry_run="")
    # Airflow 3.3: "... does not support backfills"; 3.2: "DagNoScheduleException: gw_probe has no schedule".
    assert status == 400 and re.search("does not support backfills|has no schedule", body["error"]), body


async def test_clear_by_dates_and_by_run(client: TestClient) -> None:
    run_id, logical_date = unique("run"), unique_date()
    assert (await call(client, "trigger_dag", dag_id="gw_probe", run_id=run_id, exec_date=logical_date))[0] == 200
    day = logical_date[:10]
    status, body = await call(client, "clear", dag_id="gw_probe", task_regex="^hello$", start_date=day, end_date=day)
    assert status == 200, body
    status, body = await call(client, "clear", dag_id="gw_probe", run_id=run_id)
    if airflow_release.series() >= (3, 3):
        assert status == 200, body
    else:  # Airflow 3.2 has no `dags clear --run-id`: said plainly, nothing run
        assert status == 400 and "needs Airflow 3.3" in body["output"] and "airflow_cmd" not in body, body


async def test_refresh_and_refresh_all(client: TestClient) -> None:
    status, body = await call(client, "refresh_dag", dag_id="gw_probe")
    assert status == 200 and "gw_probe" in body["data"]["dag_ids"]
    status, body = await call(client, "refresh_dag", dag_id="no_such_dag")
    assert status == 404
    status, body = await call(client, "refresh_all_dags")
    assert status == 200, body


async def deploy(client: TestClient, filename: str, source: str, **fields: str) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("dag_file", source.encode(), filename=filename, content_type="text/x-python")
    for key, value in fields.items():
        form.add_field(key, value)
    resp = await client.post(PLUGIN, params={"api": "deploy_dag"}, data=form, headers=AUTH)
    return resp.status, await resp.json()


async def test_deploy_then_use_at_once_then_delete(client: TestClient, airflow_home: Path) -> None:
    dag_id = unique("deployed")
    status, body = await deploy(client, f"{dag_id}.py", dag_source(dag_id), unpause="on")
    assert status == 200, body
    assert body["data"] == {
        "file": f"{dag_id}.py",
        "replaced": False,
        "dag_ids": [dag_id],
        "is_paused": {dag_id: False},
    }
    assert (airflow_home / "dags" / f"{dag_id}.py").read_text() == dag_source(dag_id)
    assert [p.name for p in (airflow_home / "dags").iterdir() if p.name.endswith(".tmp")] == []

    _, listed = await call(client, "list_dags")
    assert dag_id in {d["dag_id"] for d in listed["data"]}
    status, triggered = await call(client, "trigger_dag", dag_id=dag_id)
    assert status == 200

    status, body = await deploy(client, f"{dag_id}.py", dag_source(dag_id))
    assert status == 400 and "already exists" in body["output"]
    status, body = await deploy(client, f"{dag_id}.py", dag_source(dag_id), force="true", pause="true")
    assert status == 200 and body["data"]["replaced"] is True and body["data"]["is_paused"] == {dag_id: True}

    status, body = await call(client, "delete_dag", dag_id=dag_id)
    assert status == 200, body
    status, _ = await call(client, "dag_state", dag_id=dag_id, execution_date=triggered["data"]["run_id"])
    assert status == 404


@pytest.mark.parametrize(
    "filename",
    ["../escape.py", "/tmp/abs.py", "sub/dir.py", "notes.txt", ".hidden.py", "..py", "-x.py", "a b.py", "x.py/"],
)
async def test_hostile_file_names_are_refused_and_nothing_is_written(
    client: TestClient, airflow_home: Path, filename: str
) -> None:
    before = sorted(p.name for p in (airflow_home / "dags").iterdir())
    status, body = await deploy(client, filename, dag_source("hostile"))
    assert status == 400, body
    assert sorted(p.name for p in (airflow_home / "dags").iterdir()) == before
    assert client.app[RUNNER].started == 0


async def test_a_file_with_import_errors_is_refused_and_not_written(client: TestClient, airflow_home: Path) -> None:
    name = f"{unique('broken')}.py"
    status, body = await deploy(client, name, "import no_such_module_anywhere\n")
    assert status == 400
    assert "import errors" in body["output"] and "no_such_module_anywhere" in body["output"]
    assert not (airflow_home / "dags" / name).exists()


async def test_deploy_limits(make_client: Any) -> None:
    client = await make_client(deploy={"max_bytes": 1000})
    status, body = await deploy(client, "big.py", "# " + "x" * 2000)
    assert status == 413
    status, body = await deploy(client, "both.py", dag_source("both"), pause="on", unpause="on")
    assert status == 400 and "not both" in body["output"]
    resp = await client.post(PLUGIN, params={"api": "deploy_dag"}, data={"force": "on"}, headers=AUTH)
    assert resp.status == 400 and "dag_file" in (await resp.json())["output"]


async def test_a_run_past_its_timeout_is_killed_with_its_whole_group(make_client: Any) -> None:
    # `slow` runs bash (a grandchild) printing a line a second for three seconds.
    client = await make_client(runner={"timeout_s": 1.5, "kill_grace_s": 0.5})
    status, body = await call(client, "test", dag_id="gw_probe", task_id="slow", execution_date="2024-05-07")
    assert status == 504
    assert "runner.timeout_s" in body["error"]


async def test_a_run_names_the_token_that_triggered_it(client: TestClient) -> None:
    status, body = await call(client, "trigger_dag", dag_id="gw_probe", run_id=unique("who"))
    assert status == 200, body
    assert body["data"]["triggering_user_name"] == "admin"  # the token's name, not the OS user


async def test_a_variable_named_like_a_secret_is_redacted_as_airflows_api_does(client: TestClient) -> None:
    key, value = unique("db_password"), f"s3cret-{uuid.uuid4().hex}"
    status, body = await call(client, "variables", set=key, set_value=value)
    assert status == 200 and value not in json.dumps(body)
    for params in ({"get": key}, {"export": "true"}):
        status, body = await call(client, "variables", **params)
        assert status == 200 and value not in json.dumps(body)
    status, body = await call(client, "variables", get=key)
    assert body["data"] == "***"
    await call(client, "variables", delete=key)

"""Parity: every read-only API answered by the Airflow worker (no fork) against the forked CLI, on the same state.

Two gateways on one Airflow home of this module's own (so its lists start empty): one with
``apis.fast_reads`` (the default), one with every call running the CLI. Each call must give the same
status, error, ``data`` and parsed stdout on both; the fast gateway must never have started a process
for an API the worker answers.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.catalog import CATALOG
from gateway.config import parse_settings
from gateway.keys import RUNNER
from gateway.output import parse_json

from ..conftest import Homes
from ..support import AUTH, settings_dict

pytestmark = [pytest.mark.integration, pytest.mark.databases("sqlite", "postgresql"), pytest.mark.oldest]
PLUGIN = "/admin/rest_api/api"
SUFFIX = uuid.uuid4().hex[:6]
UNICODE = "héllo wörld ✓ 日本語 🚀"
SECRET = f"s3cret-{uuid.uuid4().hex}"
RUN_ID = f"parity_{SUFFIX}"
RUN_DATE = "2024-07-08T09:10:11+00:00"
FRESH = '{"fresh": true}'
#: The DAG file the CLI would parse, with no serialized DAG yet: the worker must leave it to the CLI.
UNSERIALIZED = f"gw_unserialized_{SUFFIX}"


@pytest.fixture(scope="module")
def parity_homes() -> dict[str, Path]:
    return {}


@pytest.fixture
def parity_home(parity_homes: dict[str, Path], homes: Homes, database: str) -> Path:
    """This module's own home on ``database``, shared by its tests (the first one sees it empty)."""
    if database not in parity_homes:
        parity_homes[database] = homes.fresh(database)
    return parity_homes[database]


async def clients(aiohttp_client: Any, home: Path) -> tuple[TestClient, TestClient]:
    fast = await aiohttp_client(create_app(parse_settings(settings_dict(home, runner={"mode": "exec"}))))
    forked = await aiohttp_client(
        create_app(parse_settings(settings_dict(home, runner={"mode": "exec"}, apis={"fast_reads": False})))
    )
    return fast, forked


async def call(client: TestClient, params: dict[str, str]) -> dict[str, Any]:
    resp = await client.get(PLUGIN, params=params, headers=AUTH)
    body = await resp.json()
    assert body["http_response_code"] == resp.status
    return body


def parsed_stdout(api: str, stdout: str) -> Any:
    """What a client reads from stdout: the JSON, or its lines (failed-deps in any order: Airflow's deps are a set)."""
    document = parse_json(stdout)
    if document is not None:
        return document
    lines = [line for line in stdout.splitlines() if line.strip()]
    return sorted(lines) if api == "task_failed_deps" else lines


def comparable(api: str, body: dict[str, Any]) -> dict[str, Any]:
    output = body.get("output")
    stdout = output.get("stdout", "") if isinstance(output, dict) else ""
    return {
        "http": body["http_response_code"],
        "exit_code": body.get("exit_code"),
        "airflow_cmd": body.get("airflow_cmd"),
        "error": body.get("error"),
        "warning": body.get("warning"),
        "data": body.get("data"),
        "stdout": parsed_stdout(api, stdout),
    }


def helper(answer: dict[str, Any]) -> bool:
    """Answered by a gateway helper process, never by the worker: the connections list on Airflow 3.1 (whose
    ``connections list`` prints every password)."""
    return answer["airflow_cmd"].startswith("gateway-helper ")


async def assert_same(fast: TestClient, forked: TestClient, calls: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Each call on both gateways (the CLI first: a write-free read leaves the state as it was); the fast answers."""
    answers = []
    for params in calls:
        on_cli = comparable(params["api"], await call(forked, params))
        started = fast.app[RUNNER].started
        on_worker = comparable(params["api"], await call(fast, params))
        assert on_worker == on_cli, params
        answers.append(on_worker)
        if CATALOG[params["api"]].fast_path and not ({"tree", "report"} & set(params)):
            answers[-1]["forked"] = fast.app[RUNNER].started > started
    return answers


def dag_with_tasks(dag_id: str, *task_ids: str) -> str:
    return (
        "import pendulum\nfrom airflow.sdk import DAG\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        f"with DAG({dag_id!r}, start_date=pendulum.datetime(2024, 1, 1), schedule=None):\n"
        + "".join(f"    EmptyOperator(task_id={task_id!r})\n" for task_id in task_ids)
    )


def reads(api: str, **params: str) -> dict[str, str]:
    return {"api": api, **params}


async def test_empty_lists_and_missing_things(aiohttp_client: Any, parity_home: Path) -> None:
    fast, forked = await clients(aiohttp_client, parity_home)
    answers = await assert_same(
        fast,
        forked,
        [
            reads("version"),
            reads("variables"),
            reads("connections"),
            reads("connections", list="true"),
            reads("variables", get="no_such_variable"),
            reads("variables", get="no_such_variable", default=UNICODE),
            reads("pool", get="no_such_pool"),
            reads("list_tasks", dag_id="no_such_dag"),
            reads("dag_state", dag_id="no_such_dag", execution_date="2024-01-01"),
            reads("dag_state", dag_id="gw_probe", execution_date="no_such_run"),
            reads("dag_state", dag_id="gw_probe", execution_date="2024-01-01"),
            reads("task_state", dag_id="gw_probe", task_id="hello", execution_date="no_such_run"),
            reads("task_state", dag_id="no_such_dag", task_id="hello", execution_date="2024-01-01"),
            reads("task_failed_deps", dag_id="gw_probe", task_id="hello", execution_date="1999-01-01"),
        ],
    )
    assert [a["data"] for a in answers[1:4]] == [[], [], []]
    assert [a["http"] for a in answers[4:]] == [404, 200, 404, 404, 404, 404, 404, 404, 404, 404]
    assert answers[5]["data"] == UNICODE
    assert not any(
        a.get("forked") for a in answers if a["airflow_cmd"] != "airflow tasks list -- no_such_dag" and not helper(a)
    )


async def test_the_same_state_read_both_ways(aiohttp_client: Any, parity_home: Path) -> None:
    fast, forked = await clients(aiohttp_client, parity_home)
    pool, key, secret_key, conn = f"pool_{SUFFIX}", f"var_{SUFFIX}", f"db_password_{SUFFIX}", f"conn_{SUFFIX}"
    writes = [
        {"api": "variables", "set": key, "set_value": UNICODE},
        {"api": "variables", "set": f"json_{key}", "set_value": json.dumps({"a": [1, True, None], "t": UNICODE})},
        {"api": "variables", "set": secret_key, "set_value": SECRET},
        {"api": "pool", "set": f"{pool} 5 {UNICODE}"},
        {"api": "connections", "add": "true", "conn_id": conn, "conn_uri": f"postgres://user:{SECRET}@db:5432/x"},
        {"api": "unpause", "dag_id": "gw_daily"},
        {"api": "trigger_dag", "dag_id": "gw_probe", "run_id": RUN_ID, "exec_date": RUN_DATE, "conf": FRESH},
    ]
    for params in writes:
        body = await call(forked, params)
        assert body["http_response_code"] == 200, body
    assert body["data"]["conf"] == {"fresh": True}  # the trigger's conf, as stored
    dag_file = parity_home / "dags" / f"{UNSERIALIZED}.py"
    dag_file.write_text(dag_with_tasks(UNSERIALIZED, "b", "a"))
    started = fast.app[RUNNER].started
    body = await call(fast, reads("list_tasks", dag_id=UNSERIALIZED))  # only its file knows it: the CLI answers
    assert body["data"] == ["a", "b"] and fast.app[RUNNER].started == started + 1
    run_ref = {"dag_id": "gw_probe", "task_id": "hello"}
    answers = await assert_same(
        fast,
        forked,
        [
            reads("variables"),
            reads("variables", get=key),
            reads("variables", get=f"json_{key}"),
            reads("variables", get=f"json_{key}", json="true"),
            reads("variables", get=secret_key),
            reads("pool"),
            reads("pool", get=pool),
            reads("pool", get="default_pool"),
            reads("connections"),
            reads("list_dags"),
            reads("list_tasks", dag_id="gw_probe"),
            reads("list_tasks", dag_id="gw_probe", tree="true"),
            reads("list_tasks", dag_id=UNSERIALIZED),
            reads("dag_state", dag_id="gw_probe", execution_date=RUN_ID),
            reads("dag_state", dag_id="gw_probe", execution_date=RUN_DATE),
            reads("dag_state", dag_id="gw_probe", execution_date="2024-07-08T09:10:11Z"),
            reads("task_state", **run_ref, execution_date=RUN_ID),
            reads("task_state", **run_ref, execution_date=RUN_DATE),
            reads("task_state", dag_id="gw_probe", task_id="no_such_task", execution_date=RUN_ID),
            reads("task_state", **run_ref, execution_date=RUN_ID, map_index="2"),
            reads("task_failed_deps", **run_ref, execution_date=RUN_ID),
            reads("task_failed_deps", **run_ref, execution_date=RUN_DATE),
        ],
    )
    by_call = dict(zip(range(len(answers)), answers, strict=True))
    assert key in {v["key"] for v in by_call[0]["data"]}
    assert by_call[1]["data"] == UNICODE
    assert by_call[3]["data"] == {"a": [1, True, None], "t": UNICODE}
    assert by_call[4]["data"] == "***" and SECRET not in json.dumps(answers)
    assert by_call[6]["data"][0] | {"team_name": None} == {
        "pool": pool, "slots": 5, "description": UNICODE, "include_deferred": False, "team_name": None
    }  # fmt: skip
    assert by_call[7]["data"][0]["slots"] == 128
    assert {"conn_id": conn, "conn_type": "postgres"} in by_call[8]["data"]
    paused = {d["dag_id"]: d["is_paused"] for d in by_call[9]["data"]}
    assert paused["gw_daily"] is False and paused["gw_probe"] is True
    assert by_call[10]["data"] == ["fails", "hello", "slow"]
    assert by_call[12]["data"] == ["a", "b"]
    assert by_call[13]["data"] == by_call[14]["data"] == {"state": "queued", "conf": {"fresh": True}}
    assert by_call[16]["data"] == by_call[17]["data"] == {"state": None}
    assert by_call[18]["http"] == 404 and by_call[19]["http"] == 400
    assert "Task instance dependencies not met:" in by_call[20]["stdout"]
    assert by_call[20]["data"]["met"] is False and "Dagrun Running" in {d["dep"] for d in by_call[20]["data"]["failed"]}
    assert not any(a.get("forked") for a in answers if not helper(a))

    dag_file.write_text(dag_with_tasks(UNSERIALIZED, "b", "a", "c"))  # changed and serialized again
    assert (await call(forked, {"api": "refresh_dag", "dag_id": UNSERIALIZED}))["http_response_code"] == 200
    (answer,) = await assert_same(fast, forked, [reads("list_tasks", dag_id=UNSERIALIZED)])
    assert answer["data"] == ["a", "b", "c"] and not answer["forked"]


async def test_concurrent_reads_and_a_write_all_answer(aiohttp_client: Any, parity_home: Path) -> None:
    fast, _ = await clients(aiohttp_client, parity_home)
    await call(fast, reads("version"))  # the worker is up
    started = fast.app[RUNNER].started
    batch = [reads("pool", get="default_pool"), reads("list_dags"), reads("dag_state", dag_id="gw_probe",
             execution_date=RUN_ID), reads("variables", get="no_such_variable", default="d")] * 8  # fmt: skip
    write = asyncio.create_task(call(fast, {"api": "pool", "set": f"busy_{SUFFIX} 3 x"}))
    bodies = await asyncio.gather(*(call(fast, params) for params in batch))
    assert [b["http_response_code"] for b in bodies] == [200] * len(batch)
    assert [b["data"] for b in bodies[:4]] * 8 == [b["data"] for b in bodies]
    assert (await write)["http_response_code"] == 200
    assert fast.app[RUNNER].started == started + 1  # only the write forked

"""On PostgreSQL, writes that SQLite serializes run side by side: every one of them succeeds."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ..support import AIRFLOW, airflow_env
from .test_plugin_api import call, unique

pytestmark = [pytest.mark.integration, pytest.mark.databases("postgresql")]
CONCURRENT_CALLS = 24


@pytest.fixture
async def client(make_client: Any) -> TestClient:
    # Up to 8 commands at once, the rest queued: the database sees 8 concurrent writers all the time.
    return await make_client(runner={"max_concurrency": 8, "max_queue": CONCURRENT_CALLS})


def test_the_home_really_is_on_postgresql(airflow_home: Path) -> None:
    done = subprocess.run(
        [AIRFLOW, "config", "get-value", "database", "sql_alchemy_conn"],
        env=airflow_env(airflow_home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip().startswith("postgresql://"), done.stdout + done.stderr


async def test_concurrent_variable_writes_all_succeed(client: TestClient) -> None:
    keys = [unique("pgvar") for _ in range(CONCURRENT_CALLS)]
    answers = await asyncio.gather(*(call(client, "variables", set=key, set_value=f"v-{key}") for key in keys))
    assert [status for status, _ in answers] == [200] * CONCURRENT_CALLS, [b.get("error") for _, b in answers]
    _, listed = await call(client, "variables")
    assert set(keys) <= {item["key"] for item in listed["data"]}
    status, body = await call(client, "variables", get=keys[-1])
    assert (status, body["data"]) == (200, f"v-{keys[-1]}")


async def test_concurrent_triggers_of_one_dag_all_succeed(client: TestClient) -> None:
    run_ids = [unique("pgrun") for _ in range(CONCURRENT_CALLS)]
    answers = await asyncio.gather(*(call(client, "trigger_dag", dag_id="gw_probe", run_id=r) for r in run_ids))
    assert [status for status, _ in answers] == [200] * CONCURRENT_CALLS, [b.get("error") for _, b in answers]
    assert sorted(body["data"]["run_id"] for _, body in answers) == sorted(run_ids)
    states = await asyncio.gather(*(call(client, "dag_state", dag_id="gw_probe", execution_date=r) for r in run_ids))
    assert {body["data"]["state"] for _, body in states} == {"queued"}


async def test_concurrent_pool_changes_all_succeed(client: TestClient) -> None:
    pools = [unique("pgpool") for _ in range(CONCURRENT_CALLS // 2)]
    creates = [call(client, "pool", set=f"{name} {slots} made concurrently") for slots, name in enumerate(pools, 1)]
    updates = [call(client, "pool", cmd="set", pool_name="default_pool", slot_count=str(100 + n)) for n in range(8)]
    answers = await asyncio.gather(*creates, *updates)
    assert [status for status, _ in answers] == [200] * len(answers), [b.get("error") for _, b in answers]
    _, listed = await call(client, "pool")
    slots = {item["pool"]: item["slots"] for item in listed["data"]}
    assert {name: slots[name] for name in pools} == {name: n for n, name in enumerate(pools, 1)}
    assert 100 <= slots["default_pool"] < 108

"""DAG code that daemonizes (fork, setsid, fork again) leaves nothing running: at deploy, in a task, in both modes."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from ..support import AUTH, pid_alive

pytestmark = pytest.mark.integration
PLUGIN = "/admin/rest_api/api"

DAEMONIZING_DAG = '''
import os, time, pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.python import PythonOperator

PIDS = {pids!r}


def daemonize(tag):
    """The classic double fork: the grandchild is orphaned, in a session of its own, and would live on."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            with open(os.path.join(PIDS, f"{{tag}}-{{os.getpid()}}"), "w"):
                pass
            time.sleep(600)
        os._exit(0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(n.startswith(tag + "-") for n in os.listdir(PIDS)):
        time.sleep(0.02)


daemonize("import")

with DAG({dag_id!r}, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None):
    PythonOperator(task_id="spawn", python_callable=lambda: daemonize("task"))
'''


def daemons(directory: Path, tag: str) -> list[int]:
    return [int(name.split("-", 1)[1]) for name in [p.name for p in directory.iterdir()] if name.startswith(tag + "-")]


async def test_daemons_started_by_dag_code_die_at_deploy_and_in_tasks(make_client: Any, tmp_path: Path) -> None:
    client: TestClient = await make_client()
    dag_id = f"daemonizer_{uuid.uuid4().hex[:8]}"
    pids = tmp_path / "pids"
    pids.mkdir()
    form = aiohttp.FormData()
    form.add_field("dag_file", DAEMONIZING_DAG.format(pids=str(pids), dag_id=dag_id), filename=f"{dag_id}.py")
    resp = await client.post(PLUGIN, params={"api": "deploy_dag"}, data=form, headers=AUTH)
    assert resp.status == 200, await resp.text()
    started = daemons(pids, "import")
    assert len(started) >= 2  # the check and the serialization each imported the file
    await asyncio.sleep(0.2)
    assert [pid for pid in started if pid_alive(pid)] == []

    resp = await client.get(PLUGIN, params={"api": "test", "dag_id": dag_id, "task_id": "spawn"}, headers=AUTH)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["data"]["state"] == "success"
    in_task = daemons(pids, "task")
    assert in_task
    await asyncio.sleep(0.2)
    assert [pid for pid in daemons(pids, "import") + in_task if pid_alive(pid)] == []

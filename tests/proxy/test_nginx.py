"""Through Debian's real nginx: the shipped config/nginx.conf, and a bare `proxy_pass` location.

Needs the nginx binary (./run.sh test installs it); without it these tests are skipped, loudly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.keys import RUNNER

from ..support import AUTH, NGINX, TOKEN, dag_source, free_port, render_nginx, start_nginx

pytestmark = pytest.mark.integration
SLOW = {"api": "test", "dag_id": "gw_probe", "task_id": "slow", "execution_date": "2024-11-11"}
BEARER = {"Authorization": f"Bearer {TOKEN}"}

if NGINX is None:
    pytest.skip(
        "\n\n*** nginx is not installed: the proxy tests are SKIPPED (./run.sh test installs it with apt) ***\n",
        allow_module_level=True,
    )


@dataclass
class Proxied:
    client: TestClient
    shipped: str  # base URL through config/nginx.conf
    bare: str  # base URL through a location that is only `proxy_pass`


@pytest.fixture
async def proxied(make_client: Any, tmp_path: Path) -> AsyncIterator[Proxied]:
    client: TestClient = await make_client(server={"trusted_proxies": ["127.0.0.1"]})
    shipped_port, bare_port = free_port(), free_port()
    conf = render_nginx(tmp_path, client.server.port, shipped_port, bare_port)
    nginx = start_nginx(tmp_path, conf, shipped_port)
    try:
        yield Proxied(client, f"http://127.0.0.1:{shipped_port}/airflow-gw", f"http://127.0.0.1:{bare_port}/airflow-gw")
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


async def test_a_plugin_call_with_the_underscore_header(proxied: Proxied) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{proxied.shipped}/admin/rest_api/api", params={"api": "version"}, headers=AUTH
        ) as resp:
            body = await resp.json()
        assert resp.status == 200 and body["status"] == "OK"
        async with session.get(f"{proxied.shipped}/health") as resp:
            assert resp.status == 200


@pytest.mark.parametrize("route", ["shipped", "bare"])
async def test_streamed_lines_arrive_through_nginx_before_the_result(proxied: Proxied, route: str) -> None:
    base = getattr(proxied, route)
    async with aiohttp.ClientSession() as session:
        url = f"{base}/admin/rest_api/api"
        async with session.get(url, params={**SLOW, "stream": "true"}, headers=BEARER) as resp:
            assert resp.status == 200 and resp.content_type == "application/x-ndjson"
            running_at_first_tick, kinds = None, []
            async for raw in resp.content:
                event = json.loads(raw)
                kinds.append(event["type"])
                if running_at_first_tick is None and re.search(r"\btick 1\b", event.get("text", "")):
                    running_at_first_tick = proxied.client.app[RUNNER].admission.running
    assert running_at_first_tick == 1  # the line came through nginx while the task was still running
    assert kinds[-1] == "result" and kinds.count("result") == 1


async def test_a_dag_upload_through_nginx(proxied: Proxied, airflow_home: Path) -> None:
    name = f"via_nginx_{os.getpid()}_{time.monotonic_ns()}"
    source = dag_source(name)
    form = aiohttp.FormData()
    form.add_field("dag_file", source.encode(), filename=f"{name}.py")
    async with aiohttp.ClientSession() as session:
        url = f"{proxied.shipped}/admin/rest_api/api"
        async with session.post(url, params={"api": "deploy_dag"}, data=form, headers=AUTH) as resp:
            body = await resp.json()
    assert resp.status == 200, body
    assert body["data"]["dag_ids"] == [name]
    assert (airflow_home / "dags" / f"{name}.py").exists()


async def test_a_job_started_followed_and_cancelled_through_nginx(proxied: Proxied) -> None:
    origin = proxied.shipped.removesuffix("/airflow-gw")
    async with aiohttp.ClientSession() as session:
        url = f"{proxied.shipped}/admin/rest_api/api"
        async with session.get(
            url, params={"api": "list_tasks", "dag_id": "gw_probe", "async": "1"}, headers=AUTH
        ) as resp:
            job = await resp.json()
        assert resp.status == 202
        assert job["status_url"] == f"/airflow-gw/api/jobs/{job['job_id']}"  # links carry the proxy's prefix
        async with session.get(origin + job["log_url"], params={"stream": "true"}, headers=AUTH) as resp:
            events = [json.loads(raw) async for raw in resp.content]
        assert [e["text"] for e in events if e["type"] == "output"] == ["fails", "hello", "slow"]
        assert events[-1]["state"] == "succeeded"

        async with session.get(url, params={**SLOW, "async": "1"}, headers=AUTH) as resp:
            slow = await resp.json()
        for _ in range(400):
            async with session.get(origin + slow["status_url"], headers=AUTH) as resp:
                if (await resp.json())["state"] == "running":
                    break
            await asyncio.sleep(0.05)
        async with session.delete(origin + slow["cancel_url"], headers=AUTH) as resp:
            assert resp.status == 200 and (await resp.json())["state"] == "cancelled"

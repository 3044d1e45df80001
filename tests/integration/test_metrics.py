"""``GET /metrics`` on real Airflow: scraped as Prometheus does, its counters move with calls, 503s, timeouts."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.config import parse_settings

from ..support import AUTH, settings_dict

pytestmark = pytest.mark.integration
PLUGIN = "/admin/rest_api/api"
SLOW = {"api": "test", "dag_id": "gw_probe", "task_id": "slow", "execution_date": "2024-09-09"}


async def app_client(aiohttp_client: Any, home: Path, **sections: Any) -> TestClient:
    runner = {"mode": "exec", **sections.pop("runner", {})}
    return await aiohttp_client(create_app(parse_settings(settings_dict(home, runner=runner, **sections))))


async def scrape(client: TestClient, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple[Any, ...]], float]:
    """Every sample, by name and sorted labels (parsed with prometheus-client's own parser)."""
    resp = await client.get("/metrics", headers=headers or {})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await resp.text())
        for sample in family.samples
    }


def requests_of(samples: dict[tuple[str, tuple[Any, ...]], float], family: str, api: str, status: int) -> float:
    labels = (("api", api), ("family", family), ("status", str(status)))
    return samples.get(("gateway_requests_total", labels), 0.0)


async def wait_for(client: TestClient, name: str, at_least: float) -> dict[tuple[str, tuple[Any, ...]], float]:
    for _ in range(200):
        samples = await scrape(client)
        if samples[(name, ())] >= at_least:
            return samples
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} stayed below {at_least}: {samples}")


async def test_a_call_a_rejection_and_a_hang_up_move_the_counters(aiohttp_client: Any, airflow_home: Path) -> None:
    # Every call through the runner (version would otherwise be read by the worker, without a slot).
    client = await app_client(
        aiohttp_client, airflow_home, runner={"max_concurrency": 1, "max_queue": 0}, apis={"fast_reads": False}
    )
    before = await scrape(client)
    assert before[("gateway_runner_slots", ())] == 1
    assert before[("gateway_runner_runs_started_total", ())] == 0

    resp = await client.get(PLUGIN, params={"api": "version"}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    after_call = await scrape(client)
    assert requests_of(after_call, "plugin", "version", 200) == 1
    assert after_call[("gateway_runner_runs_started_total", ())] == 1
    assert after_call[("gateway_runner_runs_ended_total", (("state", "succeeded"),))] == 1
    assert after_call[("gateway_request_duration_seconds_count", (("api", "version"), ("family", "plugin")))] == 1

    stream = await client.get(PLUGIN, params={**SLOW, "stream": "true"}, headers=AUTH)
    async for raw in stream.content:  # the slot is held once the stream has begun
        if re.search(r"\btick 1\b", json.loads(raw).get("text", "")):
            break
    assert (await scrape(client))[("gateway_runner_slots_in_use", ())] == 1
    refused = await client.get(PLUGIN, params={"api": "version"}, headers=AUTH)
    assert refused.status == 503 and refused.headers["Retry-After"]
    after_refusal = await scrape(client)
    assert after_refusal[("gateway_runner_rejections_total", ())] == 1
    assert requests_of(after_refusal, "plugin", "version", 503) == 1

    stream.close()
    after_hang_up = await wait_for(client, "gateway_runner_runs_killed_on_disconnect_total", 1)
    assert after_hang_up[("gateway_runner_runs_started_total", ())] == 2  # the refusal started nothing


async def test_a_timeout_moves_its_counter(aiohttp_client: Any, airflow_home: Path) -> None:
    client = await app_client(aiohttp_client, airflow_home, runner={"timeout_s": 1, "kill_grace_s": 0.2})
    resp = await client.get(PLUGIN, params=SLOW, headers=AUTH)
    assert resp.status == 504, await resp.text()
    samples = await scrape(client)
    assert samples[("gateway_runner_runs_timed_out_total", ())] == 1
    assert samples[("gateway_runner_runs_ended_total", (("state", "timed_out"),))] == 1
    assert requests_of(samples, "plugin", "test", 504) == 1


async def test_jobs_by_state_and_the_experimental_worker(
    aiohttp_client: Any, airflow_home: Path, tmp_path: Path
) -> None:
    client = await app_client(aiohttp_client, airflow_home, state_dir=str(tmp_path))  # a job store of its own
    resp = await client.get(PLUGIN, params={"api": "version", "async": "true"}, headers=AUTH)
    assert resp.status == 202
    status_url = (await resp.json())["status_url"]
    for _ in range(400):
        if (await (await client.get(status_url, headers=AUTH)).json())["state"] == "succeeded":
            break
        await asyncio.sleep(0.05)
    samples = await scrape(client)
    assert samples[("gateway_jobs", (("state", "succeeded"),))] == 1
    assert samples[("gateway_experimental_worker_restarts_total", ())] == 0
    assert requests_of(samples, "jobs", "", 200) >= 1


async def test_a_token_can_be_required(aiohttp_client: Any, airflow_home: Path) -> None:
    client = await app_client(aiohttp_client, airflow_home, metrics={"require_token": True})
    resp = await client.get("/metrics")
    assert resp.status == 403 and await resp.json() == {"error": "Token Authentication Failed"}
    samples = await scrape(client, AUTH)
    assert ("gateway_runner_slots", ()) in samples
    assert all(AUTH[next(iter(AUTH))] not in str(key) for key in samples)

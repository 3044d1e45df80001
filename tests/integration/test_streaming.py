"""Streamed runs of real Airflow commands: lines as they are printed, every format, disconnects."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.keys import RUNNER

from ..support import AUTH, assert_nothing_left

pytestmark = pytest.mark.integration
PLUGIN = "/admin/rest_api/api"
SLOW = {"api": "test", "dag_id": "gw_probe", "task_id": "slow", "execution_date": "2024-09-09"}


async def test_lines_arrive_while_the_task_runs_then_the_result(make_client: Any) -> None:
    client: TestClient = await make_client()
    resp = await client.get(PLUGIN, params={**SLOW, "stream": "true"}, headers=AUTH)
    assert resp.status == 200
    assert resp.content_type == "application/x-ndjson"
    assert resp.headers["X-Accel-Buffering"] == "no" and resp.headers["Cache-Control"] == "no-cache"
    events = []
    running_at_first_tick = None
    async for raw in resp.content:
        event = json.loads(raw)
        events.append(event)
        if event["type"] == "output" and re.search(r"\btick 1\b", event["text"]) and running_at_first_tick is None:
            running_at_first_tick = client.app[RUNNER].admission.running
    assert running_at_first_tick == 1  # the first tick came while the command was still running
    ticks = [m for e in events if e["type"] == "output" for m in re.findall(r"\btick (\d)\b", e["text"])]
    assert ticks == ["1", "2", "3"]
    result = events[-1]
    assert result["type"] == "result" and [e for e in events if e["type"] == "result"] == [result]
    assert (result["status"], result["exit_code"], result["data"]) == ("OK", 0, {"state": "success"})
    assert "output" not in result


async def test_sse_and_text_formats(make_client: Any) -> None:
    client: TestClient = await make_client()
    resp = await client.get(
        PLUGIN, params={"api": "list_tasks", "dag_id": "gw_probe"}, headers={**AUTH, "Accept": "text/event-stream"}
    )
    assert resp.content_type == "text/event-stream"
    text = await resp.text()
    assert 'event: output\ndata: {"stream": "stdout", "text": "hello"}' in text
    assert text.rstrip().split("\n\n")[-1].startswith("event: result\ndata: ")

    resp = await client.get(PLUGIN, params={"api": "list_tasks", "dag_id": "gw_probe", "stream": "text"}, headers=AUTH)
    assert resp.content_type == "text/plain"
    lines = (await resp.text()).splitlines()
    assert lines[:3] == ["fails", "hello", "slow"]
    assert lines[-1].startswith("[result] ") and json.loads(lines[-1][9:])["data"] == ["fails", "hello", "slow"]


async def test_heartbeats_fill_silences(make_client: Any) -> None:
    client: TestClient = await make_client(streaming={"heartbeat_s": 0.3})
    resp = await client.get(PLUGIN, params={**SLOW, "stream": "1"}, headers=AUTH)
    kinds = [json.loads(raw)["type"] async for raw in resp.content]
    assert "heartbeat" in kinds and kinds[-1] == "result"


async def test_a_client_that_hangs_up_mid_stream_kills_the_run(make_client: Any) -> None:
    client: TestClient = await make_client()
    resp = await client.get(PLUGIN, params={**SLOW, "stream": "true"}, headers=AUTH)
    async for raw in resp.content:
        if re.search(r"\btick 1\b", json.loads(raw).get("text", "")):
            break
    assert client.app[RUNNER].admission.running == 1
    resp.close()
    # The process table, checked from a thread so the server (on this loop) notices the hang-up meanwhile.
    await asyncio.to_thread(assert_nothing_left, 2.0)
    for _ in range(100):  # the handler finishes its clean-up right after the kill
        if client.app[RUNNER].admission.running == 0:
            break
        await asyncio.sleep(0.02)
    assert client.app[RUNNER].admission.running == 0


async def test_a_failing_command_streams_its_error_in_the_result(make_client: Any) -> None:
    client: TestClient = await make_client()
    resp = await client.get(PLUGIN, params={"api": "variables", "get": "no_such_var", "stream": "true"}, headers=AUTH)
    events = [json.loads(raw) async for raw in resp.content]
    assert resp.status == 200  # the stream started; the outcome is in the last event
    result = events[-1]
    assert (result["http_response_code"], result["status"], result["exit_code"]) == (404, "ERROR", 1)
    assert "does not exist" in result["error"]

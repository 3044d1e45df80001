"""Airflow's metadata database going away is a dependency failing, not a crash: 503 + Retry-After with a plain
message on the CLI path (never the driver's text with the host, never a 404 about data that exists), and every
call succeeds again once the database is back, without a restart of the gateway."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import parse_settings

from ..support import AUTH, PostgresServer, make_airflow_home, postgres_bindir, settings_dict

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(postgres_bindir() is None, reason="PostgreSQL's server binaries are not installed"),
]
PLUGIN = "/admin/rest_api/api"
#: What an answer must never show of a database failure.
FORBIDDEN = ("Traceback", "sqlalche.me", "OperationalError", "psycopg2", "127.0.0.1", "port ")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PostgresServer, Path]]:
    """A PostgreSQL server of this module's own (it is stopped and started here) and a home on it."""
    server = PostgresServer()
    try:
        yield server, make_airflow_home(tmp_path_factory.mktemp("db_down_home"), server.create_database())
    finally:
        server.stop()


@pytest.fixture
async def client(aiohttp_client: Any, database: tuple[PostgresServer, Path]) -> TestClient:
    """The CLI path (exec mode, no fast reads): every call is an ``airflow`` process that opens the database."""
    settings = parse_settings(settings_dict(database[1], runner={"mode": "exec"}, apis={"fast_reads": False}))
    return await aiohttp_client(create_app(settings))


async def call(client: TestClient, **params: str) -> tuple[int, dict[str, Any], str | None]:
    resp = await client.get(PLUGIN, params=params, headers=AUTH)
    text = await resp.text()
    for word in FORBIDDEN:
        assert word not in text, f"{word!r} in {text[:500]}"
    return resp.status, json.loads(text), resp.headers.get("Retry-After")


async def test_reads_and_writes_are_503_while_the_database_is_down_then_succeed(
    client: TestClient, database: tuple[PostgresServer, Path]
) -> None:
    server, _ = database
    key = f"gw_down_{uuid.uuid4().hex[:8]}"
    status, _, _ = await call(client, api="variables", set=key, set_value="kept")
    assert status == 200
    server.pause()
    try:
        for params in (
            {"api": "variables", "get": key},  # must not claim the variable does not exist
            {"api": "variables", "set": f"{key}_2", "set_value": "x"},
            {"api": "pool", "get": "default_pool"},
            {"api": "list_dags"},
        ):
            status, body, retry_after = await call(client, **params)
            assert status == 503 and retry_after is not None, (params, body)
            assert "database" in body["error"] and body["status"] == "ERROR"
    finally:
        server.resume()
    status, body, _ = await call(client, api="variables", get=key)
    assert status == 200 and body["data"] == "kept"
    status, _, _ = await call(client, api="variables", get=f"{key}_2")
    assert status == 404  # the write refused while the database was down wrote nothing


async def test_the_worker_answers_503_while_the_database_is_down_then_recovers(
    aiohttp_client: Any, database: tuple[PostgresServer, Path]
) -> None:
    """Fast reads and the experimental API (the persistent worker): its pooled connections die with the server."""
    server, home = database
    settings = parse_settings(settings_dict(home, runner={"mode": "exec"}, experimental={"warm_at_start": True}))
    client = await aiohttp_client(create_app(settings))
    key = f"gw_down_{uuid.uuid4().hex[:8]}"
    assert (await call(client, api="variables", set=key, set_value="kept"))[0] == 200
    assert (await call(client, api="variables", get=key))[0] == 200  # the worker holds pooled connections now
    server.pause()
    try:
        for params in ({"api": "variables", "get": key}, {"api": "pool", "get": "default_pool"}):
            status, body, retry_after = await call(client, **params)
            assert status == 503 and retry_after is not None, (params, body)
        for path in ("/api/experimental/pools", "/api/experimental/dags/gw_probe/paused"):
            resp = await client.get(path, headers=AUTH)
            text = await resp.text()
            assert resp.status == 503 and resp.headers.get("Retry-After"), text
            assert not any(word in text for word in FORBIDDEN), text
    finally:
        server.resume()
    # Back without a restart: the next calls succeed (the worker's dead connections are replaced).
    status, body, _ = await call(client, api="variables", get=key)
    assert status == 200 and body["data"] == "kept"
    resp = await client.get("/api/experimental/pools", headers=AUTH)
    assert resp.status == 200

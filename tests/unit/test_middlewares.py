"""The middlewares: forwarded headers believed only from trusted proxies, audit records, secrets never echoed."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gateway.audit import AccessLogger, AuditLog
from gateway.keys import RUNNER
from gateway.middlewares import audit_middleware

from ..support import AUTH, HEADER, TOKEN

PLUGIN = "/admin/rest_api/api"


async def job_link(make: Any, headers: dict[str, str], **server: Any) -> str:
    client = await make(server=server)
    resp = await client.get(PLUGIN, params={"api": "version", "async": "true"}, headers={**AUTH, **headers})
    return (await resp.json())["status_url"]


async def test_a_trusted_proxy_sets_the_prefix_and_others_cannot(make: Any) -> None:
    prefix = {"X-Forwarded-Prefix": "/airflow-gw"}
    assert (await job_link(make, prefix, trusted_proxies=["127.0.0.0/8"])).startswith("/airflow-gw/api/jobs/")
    assert (await job_link(make, prefix, trusted_proxies=["10.0.0.0/8"])).startswith("/api/jobs/")
    assert (await job_link(make, {"X-Forwarded-Prefix": "/a b<x>"}, trusted_proxies=["127.0.0.1"])).startswith(
        "/api/jobs/"
    )


@pytest.mark.parametrize(
    ("forwarded_for", "client"),
    [
        ("6.6.6.6, 1.2.3.4", "1.2.3.4"),  # nginx appends the real peer: the forged left entry is ignored
        ("1.2.3.4", "1.2.3.4"),
        ("6.6.6.6, 1.2.3.4, 10.1.2.3", "1.2.3.4"),  # 10.1.2.3 is a trusted proxy hop
    ],
)
async def test_the_client_is_the_right_most_untrusted_hop(
    make: Any, tmp_path: Path, forwarded_for: str, client: str
) -> None:
    audit = tmp_path / "audit.jsonl"
    app_client = await make(server={"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}, audit={"destination": str(audit)})
    resp = await app_client.get(
        PLUGIN, params={"api": "rest_api_plugin_version"}, headers={**AUTH, "X-Forwarded-For": forwarded_for}
    )
    assert resp.status == 200
    await app_client.close()
    assert json.loads(audit.read_text().splitlines()[-1])["remote"] == client


@pytest.mark.parametrize("value", ["not-an-ip", "1.2.3.4, ,", "1.2.3.4, 999.1.1.1"])
async def test_a_malformed_forwarded_header_from_a_trusted_proxy_is_a_json_400(make: Any, value: str) -> None:
    client = await make(server={"trusted_proxies": ["127.0.0.1"]})
    resp = await client.get(PLUGIN, params={"api": "version"}, headers={**AUTH, "X-Forwarded-For": value})
    assert resp.status == 400 and resp.content_type == "application/json"
    assert client.app[RUNNER].started == 0


async def test_every_call_is_audited_with_names_never_values(make: Any, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    client = await make(audit={"destination": str(audit)})
    await client.get(PLUGIN, params={"api": "version", "async": "true"}, headers=AUTH)
    await client.get(
        PLUGIN,
        params={"api": "connections", "add": "", "conn_id": "c1", "conn_password": "pw-in-query"},
        headers={HEADER: "wrong-token"},
    )
    await client.get("/health")
    await client.close()
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(r.get("api"), r.get("token"), r["status"]) for r in records] == [
        ("version", "admin", 202),
        (None, None, 403),
    ]
    assert records[0]["args"] == [] and records[0]["job_id"] and records[0]["route"] == PLUGIN
    assert "args" not in records[1] or records[1]["args"] == []
    text = audit.read_text()
    assert "pw-in-query" not in text and TOKEN not in text and "wrong-token" not in text


def test_the_access_log_has_no_query_string(caplog: pytest.LogCaptureFixture) -> None:
    logger = AccessLogger(logging.getLogger("aiohttp.access"), "")
    request = make_mocked_request("GET", f"{PLUGIN}?api=connections&conn_password=pw-1&token={TOKEN}")
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        logger.log(request, web.Response(status=400), 0.01)
    assert f'"GET {PLUGIN}" 400' in caplog.text
    assert "pw-1" not in caplog.text and "conn_password" not in caplog.text and TOKEN not in caplog.text


async def test_a_token_header_that_is_not_utf8_is_refused_not_a_crash(make: Any) -> None:
    client = await make()
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(
        b"GET /admin/rest_api/api?api=version HTTP/1.1\r\nHost: x\r\n"
        + HEADER.encode()
        + b": \xff\xfe\xc3(\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403")
    assert json.loads(body)["output"] == "Token Authentication Failed"


async def test_errors_echo_no_secret_the_request_carried(make: Any) -> None:
    client = await make()
    params = {"api": "connections", "add": "", "conn_id": "-bad", "conn_uri": "postgres://u:pw-xyz@db/x"}
    resp = await client.get(PLUGIN, params={**params, "my_token": TOKEN}, headers=AUTH)
    text = await resp.text()
    assert resp.status == 400
    assert "pw-xyz" not in text and TOKEN not in text
    assert json.loads(text)["arguments"]["conn_uri"] == "postgres://u:***@db/x"


async def test_an_unknown_expectation_is_a_json_417_and_100_continue_still_works(make: Any) -> None:
    client = await make()
    for expect, status in ((b"bogus", b"417"), (b"100-continue", b"100")):
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        writer.write(
            b"POST /admin/rest_api/api?api=version HTTP/1.1\r\nHost: x\r\nExpect: " + expect + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 " + status), head
        if status == b"417":
            assert b"application/json" in head
        writer.close()


async def test_a_client_that_hangs_up_is_audited_as_499_as_metrics_count_it(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    audit_file = tmp_path / "audit.jsonl"
    audit = AuditLog(str(audit_file))
    app = web.Application(middlewares=[audit_middleware(audit)])
    started = asyncio.Event()

    async def forever(request: web.Request) -> web.Response:
        started.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    app.router.add_get("/slow", forever)
    client = await aiohttp_client(app, server_kwargs={"handler_cancellation": True})
    _, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await started.wait()
    writer.close()
    for _ in range(500):
        if audit_file.exists() and audit_file.read_text():
            break
        await asyncio.sleep(0.01)
    [record] = [json.loads(line) for line in audit_file.read_text().splitlines()]
    assert record["status"] == 499
    audit.close()

"""Refusals that come first and start nothing, on the app with a fake Airflow worker (no Airflow): every
experimental route refuses a token not allowed its operation before it looks at anything, numbers are bounded
before they are converted, and a method a path does not take is a 405 naming those it does, in every family."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.api import FAMILIES, experimental
from gateway.app import create_app
from gateway.config import parse_settings

from ..support import AUTH, HEADER, settings_dict
from .conftest import FAKE

API = "/api/experimental"
#: Every experimental route's operation, as its handler declares it (``/test`` declares none: any token).
OPERATIONS = sorted({getattr(route.handler, "operation", "") for route in experimental.routes} - {""})
#: Path parameters no handler would accept (each is a 400 or a 404 once the token may call the operation) ...
HOSTILE = {"dag_id": "-no such dag", "task_id": "-x", "execution_date": "not a date", "name": "\x01", "paused": "maybe"}
#: ... and ones every handler takes.
GOOD = {"dag_id": "gw_probe", "task_id": "hello", "execution_date": "2024-01-01", "name": "p", "paused": "true"}
GOOD_BODIES = {"create_pool": {"name": "p", "slots": 1}}
TOO_MANY_DIGITS = "9" * 4301  # one more than int() converts


class FakeWorker:
    """Stands in for the Airflow worker (a shared one: the app neither starts nor closes it); records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, op: str, **args: Any) -> tuple[int, Any]:
        self.calls.append((op, args))
        return 200, "code" if op == "dag_code" else {"run_id": "r", "execution_date": "x", "message": "m"}

    async def read(self, command: Any, max_bytes: int) -> None:
        return None  # not a read it answers: the CLI runs


def token_of(op: str) -> str:
    return f"token-allowed-all-but-{op}".ljust(32, "x")


@pytest.fixture
def worker() -> FakeWorker:
    return FakeWorker()


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path, worker: FakeWorker) -> TestClient:
    """The app with the fake worker; besides the admin token, one per operation allowed every other one."""
    others = [
        {"name": f"not-{op}", "token": token_of(op), "allow": [f"experimental.{o}" for o in OPERATIONS if o != op]}
        for op in OPERATIONS
    ]
    data = settings_dict(tmp_path, runner={"mode": "exec"})
    data["auth"]["tokens"] += others
    data["airflow"]["executable"] = FAKE
    return await aiohttp_client(create_app(parse_settings(data, environ={}), airflow_worker=worker))


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: quote(values.get(m[1], "x"), safe=""), path)


def experimental_routes() -> list[web.RouteDef]:
    found = [route for route in experimental.routes if isinstance(route, web.RouteDef)]
    assert len(found) > 15
    return found


def test_every_experimental_route_but_test_declares_its_operation() -> None:
    for route in experimental_routes():
        declared = getattr(route.handler, "operation", None)
        assert (declared is None) == (route.path == "/test"), route.path
    # The names allow lists use (experimental.<operation>): renaming one would lock configured tokens out.
    expected = {
        "trigger", "list_runs", "run_state", "task_instance", "task_info", "dag_code", "set_paused", "get_paused",
        "delete", "info", "latest_runs", "pools", "create_pool", "pool", "delete_pool", "lineage",
    }  # fmt: skip
    assert set(OPERATIONS) == expected


async def test_a_token_not_allowed_the_operation_is_refused_before_anything_is_looked_at(
    client: TestClient, worker: FakeWorker
) -> None:
    """A broken body, paths that do not exist, a wait with a timeout int() cannot read: still a 403, no worker call."""
    for route in experimental_routes():
        op = getattr(route.handler, "operation", None)
        if op is None:
            continue
        url = f"{API}{fill(route.path, HOSTILE)}?wait=true&wait_timeout_s={TOO_MANY_DIGITS}&state=bogus"
        headers = {HEADER: token_of(op), "Content-Type": "application/json"}
        resp = await client.request(route.method, url, data="{broken", headers=headers)
        assert resp.status == 403, (route.method, route.path, await resp.text())
        assert await resp.json() == {"error": f"Token 'not-{op}' is not allowed to call experimental.{op}"}
        assert worker.calls == [], (route.method, route.path)


async def test_a_token_allowed_the_operation_reaches_the_worker(client: TestClient, worker: FakeWorker) -> None:
    """The control: the same routes with good values, for a token allowed the operation, ask the worker for it."""
    for route in experimental_routes():
        op = getattr(route.handler, "operation", None)
        if op is None:
            continue
        body = GOOD_BODIES.get(op, {}) if route.method == "POST" else None
        resp = await client.request(route.method, API + fill(route.path, GOOD), json=body, headers=AUTH)
        assert resp.status == 200, (route.method, route.path, await resp.text())
        assert worker.calls[-1][0] == op
    assert len(worker.calls) == len(experimental_routes()) - 1


async def test_the_test_route_answers_any_token(client: TestClient) -> None:
    resp = await client.get(f"{API}/test", headers={HEADER: token_of(OPERATIONS[0])})
    assert (resp.status, await resp.json()) == (200, {"status": "OK"})


@pytest.mark.parametrize("given", [TOO_MANY_DIGITS, "9" * 20, "0", "-1", "1.5", "", " 5", "٣", "+5", "3601x"])
async def test_a_wait_timeout_that_is_no_small_whole_number_is_a_400_before_the_dag_is_looked_up(
    client: TestClient, worker: FakeWorker, given: str
) -> None:
    resp = await client.post(f"{API}/dags/gw_probe/dag_runs?wait=true&wait_timeout_s={quote(given)}", headers=AUTH)
    assert resp.status == 400
    assert "'wait_timeout_s' must be a whole number of seconds" in (await resp.json())["error"]
    assert worker.calls == []


@pytest.mark.parametrize(
    "slots",
    ["9" * 5000, "9" * 11, "--5", "+5", "1e3", "٣", "-2", "", 1e300, 2**31, -2, 1.5, True, None, [1]],
    ids=repr,
)
async def test_pool_slots_out_of_range_or_no_whole_number_are_a_400(
    client: TestClient, worker: FakeWorker, slots: Any
) -> None:
    resp = await client.post(f"{API}/pools", json={"name": "p", "slots": slots}, headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["error"].startswith("Bad value for `slots`: ")
    assert worker.calls == []


async def test_pool_slots_of_thousands_of_digits_in_json_are_a_400(client: TestClient, worker: FakeWorker) -> None:
    for digits in (4300, 20):
        body = '{"name": "p", "slots": ' + "9" * digits + "}"
        resp = await client.post(f"{API}/pools", data=body, headers=AUTH)
        assert resp.status == 400 and (await resp.json())["error"] == "Bad value for `slots`: a number out of range"
    assert worker.calls == []


@pytest.mark.parametrize(("slots", "taken"), [("-1", -1), (" 7 ", 7), (7.0, 7), (2**31 - 1, 2**31 - 1), ("0", 0)])
async def test_pool_slots_in_range_are_taken(client: TestClient, worker: FakeWorker, slots: Any, taken: int) -> None:
    resp = await client.post(f"{API}/pools", json={"name": "p", "slots": slots}, headers=AUTH)
    assert resp.status == 200
    assert worker.calls == [
        ("create_pool", {"name": "p", "slots": taken, "description": "", "include_deferred": False})
    ]


async def test_a_log_offset_is_bounded_before_it_is_converted(client: TestClient) -> None:
    resp = await client.get("/admin/rest_api/api", params={"api": "version", "async": "true"}, headers=AUTH)
    log_url = (await resp.json())["log_url"]
    for offset in (TOO_MANY_DIGITS, "9" * 19, "-1", "1.0", "", "٣"):
        resp = await client.get(log_url, params={"offset": offset}, headers=AUTH)
        assert resp.status == 400, offset
        assert "'offset' must be a non-negative whole number" in (await resp.json())["error"]
    sse = {**AUTH, "Accept": "text/event-stream", "Last-Event-ID": TOO_MANY_DIGITS}
    resp = await client.get(log_url, headers=sse)
    assert resp.status == 400 and "'Last-Event-ID'" in (await resp.json())["error"]
    resp = await client.get(log_url, params={"offset": "0"}, headers=AUTH)
    assert resp.status == 200


def declared_methods() -> list[tuple[Any, str, list[str]]]:
    """Every path of every family under a prefix, with the methods its routes take (``*`` routes take all)."""
    found = []
    for family in FAMILIES:
        if not family.prefix:
            continue  # root routes: the errors middleware answers aiohttp's 405 itself (see the report)
        methods: dict[str, list[str]] = {}
        for table in family.routes:
            for route in table:
                if isinstance(route, web.RouteDef):
                    methods.setdefault(route.path, []).append(route.method)
        found += [(family, path, taken) for path, taken in methods.items() if "*" not in taken]
    return found


@pytest.mark.parametrize("base_path", ["", "/gw"])
async def test_a_method_a_path_does_not_take_is_a_405_naming_those_it_does(make: Any, base_path: str) -> None:
    client = await make(server={"base_path": base_path})
    for family, path, taken in declared_methods():
        url = base_path + family.prefix + fill(path, GOOD)
        for spelling in [url, url.rstrip("/")] if path == "/" else [url]:
            for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - set(taken):
                resp = await client.request(method, spelling, headers=AUTH)
                assert resp.status == 405, (method, spelling)
                assert set(resp.headers["Allow"].split(", ")) == set(taken), (method, spelling)
                body = await resp.json()
                assert body["http_response_code"] == 405 if family.envelope else set(body) == {"error"}


async def test_the_job_routes_allow_what_they_serve(make: Any) -> None:
    client = await make()
    for path, allow in (("/api/jobs", "GET"), ("/api/jobs/", "GET"), ("/api/jobs/0123456789abcdef", "GET, DELETE")):
        for method in ("PUT", "PATCH", "POST") + (("DELETE",) if allow == "GET" else ()):
            resp = await client.request(method, path, headers=AUTH)
            assert (resp.status, resp.headers.get("Allow")) == (405, allow), (method, path)
            assert json.loads(await resp.text()) == {"error": f"Method Not Allowed: this path takes {allow}"}
    assert (await client.get("/api/jobs", headers=AUTH)).status == 200
    assert (await client.put("/api/jobs")).status == 403  # no token: refused as any call is, method or not


async def test_the_page_still_answers_at_the_bare_prefix_without_a_token(make: Any) -> None:
    client = await make()
    for path in ("/admin/rest_api", "/admin/rest_api/"):
        resp = await client.get(path)
        assert resp.status == 200 and resp.content_type == "text/html", path

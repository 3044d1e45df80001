"""The app without Airflow: auth, error shapes, health, the page, refusals that must start nothing."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import __version__
from gateway.keys import RUNNER

from ..support import AUTH, HEADER, TOKEN

PLUGIN = "/admin/rest_api/api"


async def test_plugin_version_with_the_header_and_with_bearer(make: Any) -> None:
    client = await make()
    for headers in (AUTH, {"Authorization": f"Bearer {TOKEN}"}):
        resp = await client.get(PLUGIN, params={"api": "rest_api_plugin_version"}, headers=headers)
        assert resp.status == 200
        body = await resp.json()
        assert body["output"] == __version__
        assert body["status"] == "OK" and body["http_response_code"] == 200
        assert body["call_time"].endswith(" GMT") and body["response_time"].endswith(" GMT")


@pytest.mark.parametrize("headers", [{}, {HEADER: "wrong"}, {"Authorization": "Bearer wrong"}, {HEADER: ""}])
async def test_refused_calls_get_exactly_the_plugin_body(make: Any, headers: dict[str, str]) -> None:
    client = await make()
    resp = await client.get(PLUGIN, params={"api": "version"}, headers=headers)
    assert resp.status == 403
    body = await resp.json()
    assert set(body) == {"call_time", "http_response_code", "output", "response_time", "status"}
    assert (body["status"], body["http_response_code"], body["output"]) == ("ERROR", 403, "Token Authentication Failed")
    assert client.app[RUNNER].started == 0


async def test_a_custom_header_name(make: Any) -> None:
    client = await make(auth={"header_name": "X-Airflow-Token"})
    resp = await client.get(PLUGIN, params={"api": "rest_api_plugin_version"}, headers={"X-Airflow-Token": TOKEN})
    assert resp.status == 200


async def test_allow_lists_limit_what_a_token_may_call(make: Any) -> None:
    client = await make(auth={"tokens": [{"name": "ci", "token": TOKEN, "allow": ["version", "dag_*"]}]})
    resp = await client.get(PLUGIN, params={"api": "rest_api_plugin_version"}, headers=AUTH)
    assert resp.status == 403
    assert "not allowed to call API 'rest_api_plugin_version'" in (await resp.json())["output"]
    resp = await client.get(PLUGIN, params={"api": "version"}, headers=AUTH)
    assert (await resp.json())["airflow_cmd"] == "airflow version"  # allowed through, ran (the fake fails it)


async def test_health_needs_no_token_and_shows_no_secret(make: Any) -> None:
    client = await make()
    resp = await client.get("/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and body["runner"]["mode"] == "exec"
    assert body["jobs"] == {"store": "files"}
    assert TOKEN not in await resp.text()


async def test_health_names_a_postgresql_job_store_but_never_its_url(make: Any, postgres_server: Any) -> None:
    url = postgres_server.create_database().replace("postgres@", "postgres:pw-of-the-job-store@")
    client = await make(jobs={"store": url})
    resp = await client.get("/health")
    assert (await resp.json())["jobs"] == {"store": "postgresql"}
    text = await resp.text()
    assert "pw-of-the-job-store" not in text and str(postgres_server.port) not in text


async def test_the_page_lists_every_api_and_needs_no_token(make: Any) -> None:
    client = await make(server={"base_path": "/gw"})
    resp = await client.get("/gw/admin/rest_api/")
    assert resp.status == 200
    html = await resp.text()
    assert 'data-api="trigger_dag"' in html and 'data-api="deploy_dag"' in html
    assert "/gw/admin/rest_api/api?api=version" in html
    assert TOKEN not in html


@pytest.mark.parametrize(
    ("params", "status", "output"),
    [
        ({}, 400, "API should be provided"),
        ({"api": "nope"}, 400, "API 'nope' was not found"),
        ({"api": "scheduler"}, 403, "remove 'scheduler' from apis.disabled"),
        ({"api": "serve_logs"}, 410, "inside the scheduler and triggerer"),
        ({"api": "deploy_dag"}, 405, "takes POST"),
        ({"api": "render", "dag_id": "d"}, 400, "The argument(s) ['task_id', 'execution_date'] are required"),
        ({"api": "render", "dag_id": "d", "task_id": "t", "execution_date": "x", "oops": "1"}, 400, "Unknown argument"),
        ({"api": "trigger_dag", "dag_id": "--help"}, 400, "'dag_id' must be"),
        ({"api": "trigger_dag", "dag_id": "d", "conf": "{bad"}, 400, "not valid JSON"),
        ({"api": "dag_state", "dag_id": "d", "execution_date": "2017-02-30"}, 400, "must be a date"),
        ({"api": "list_dags", "subdir": "/etc"}, 400, "names a path on the server"),
    ],
)
async def test_bad_input_is_a_json_envelope_and_starts_nothing(
    make: Any, params: dict[str, str], status: int, output: str
) -> None:
    client = await make()
    resp = await client.get(PLUGIN, params=params, headers=AUTH)
    assert resp.status == status
    body = await resp.json()
    assert body["status"] == "ERROR" and body["http_response_code"] == status
    assert output in body["output"]
    assert body["arguments"] == params
    assert client.app[RUNNER].started == 0


async def test_enabled_daemons_run_only_as_jobs(make: Any) -> None:
    client = await make(apis={"disabled": []})
    resp = await client.get(PLUGIN, params={"api": "scheduler"}, headers=AUTH)
    assert resp.status == 400 and "add async=true" in (await resp.json())["output"]
    resp = await client.get(PLUGIN, params={"api": "scheduler", "num_runs": "1", "async": "true"}, headers=AUTH)
    assert resp.status == 202
    body = await resp.json()
    assert body["airflow_cmd"] == "airflow scheduler --num-runs=1" and body["data"]["daemon"] is True
    status = await client.get(body["status_url"], headers=AUTH)
    assert (await status.json())["api"] == "scheduler"


async def test_json_and_form_bodies(make: Any) -> None:
    client = await make()
    resp = await client.post(PLUGIN, json={"api": "render", "dag_id": "-x"}, headers=AUTH)
    assert resp.status == 400 and "'dag_id' must be" in (await resp.json())["output"]
    resp = await client.post(PLUGIN, json=["not", "an", "object"], headers=AUTH)
    assert resp.status == 400
    resp = await client.post(PLUGIN, data="{broken", headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 400 and "not valid JSON" in (await resp.json())["output"]
    resp = await client.post(PLUGIN + "?api=version", data={"bogus": "1"}, headers=AUTH)
    body = await resp.json()
    assert resp.status == 400 and body["post_arguments"] == {"bogus": "1"}


async def test_unknown_routes_answer_json_in_their_family(make: Any) -> None:
    client = await make()
    resp = await client.get("/admin/rest_api/nothing-here", headers=AUTH)
    assert resp.status == 404
    assert (await resp.json())["status"] == "ERROR"
    resp = await client.get("/nothing", headers=AUTH)
    assert resp.status == 404
    assert "error" in await resp.json()


async def test_a_command_that_runs_is_enveloped(make: Any) -> None:
    client = await make()
    resp = await client.get(PLUGIN, params={"api": "version"}, headers=AUTH)
    body = await resp.json()
    # The fake executable prints "unknown mode version" on stderr and exits 1.
    assert resp.status == 500 and body["status"] == "ERROR"
    assert body["airflow_cmd"] == "airflow version"
    assert body["exit_code"] == 1 and "unknown mode version" in body["output"]["stderr"]
    assert client.app[RUNNER].started == 1


async def test_overload_is_503_with_retry_after(make: Any) -> None:
    client = await make(runner={"max_concurrency": 1, "max_queue": 0})
    admission = client.app[RUNNER].admission
    async with admission.slot():
        resp = await client.get(PLUGIN, params={"api": "version"}, headers=AUTH)
    assert resp.status == 503
    assert resp.headers["Retry-After"].isdigit()
    assert (await resp.json())["http_response_code"] == 503


async def test_a_stream_refused_by_admission_is_plain_json(make: Any) -> None:
    client = await make(runner={"max_concurrency": 1, "max_queue": 0})
    async with client.app[RUNNER].admission.slot():
        resp = await client.get(PLUGIN, params={"api": "version", "stream": "true"}, headers=AUTH)
        assert resp.status == 503 and resp.content_type == "application/json"
        resp = await client.get(PLUGIN, params={"api": "version", "async": "true"}, headers=AUTH)
        assert resp.status == 503 and resp.headers["Retry-After"]


async def test_jobs_belong_to_the_token_that_started_them(make: Any) -> None:
    client = await make(
        auth={
            "tokens": [
                {"name": "admin", "token": TOKEN},
                {"name": "ci", "token": "ci-token-0123456789", "allow": ["trigger_dag"]},
            ]
        }
    )
    resp = await client.get(PLUGIN, params={"api": "version", "async": "1"}, headers=AUTH)
    job = await resp.json()
    ci = {"Authorization": "Bearer ci-token-0123456789"}
    assert (await client.get(job["status_url"], headers=ci)).status == 404
    assert (await (await client.get("/api/jobs", headers=ci)).json())["jobs"] == []
    assert (await client.delete(job["cancel_url"], headers=ci)).status == 404
    assert (await client.get(job["status_url"])).status == 403
    listed = await (await client.get("/api/jobs", headers=AUTH)).json()
    assert [j["id"] for j in listed["jobs"]] == [job["job_id"]]


async def test_a_limited_token_never_sees_an_admins_job_even_of_an_api_it_may_call(make: Any) -> None:
    ops = {"Authorization": "Bearer ops-token-0123456789"}
    client = await make(
        auth={
            "tokens": [
                {"name": "admin", "token": TOKEN},
                {"name": "ops", "token": "ops-token-0123456789", "allow": ["version"]},
            ]
        }
    )
    admins = await (await client.get(PLUGIN, params={"api": "version", "async": "1"}, headers=AUTH)).json()
    assert (await client.get(admins["status_url"], headers=ops)).status == 404
    assert (await client.delete(admins["cancel_url"], headers=ops)).status == 404
    assert (await (await client.get("/api/jobs", headers=ops)).json())["jobs"] == []
    own = await (await client.get(PLUGIN, params={"api": "version", "async": "1"}, headers=ops)).json()
    assert (await client.get(own["status_url"], headers=ops)).status == 200
    listed = await (await client.get("/api/jobs", headers=AUTH)).json()
    assert {j["id"] for j in listed["jobs"]} == {admins["job_id"], own["job_id"]}  # '*' sees every job


@pytest.mark.parametrize("query", ["api=version&api=list_dags", "api=render&dag_id=a&dag_id=b"])
async def test_an_argument_given_twice_is_refused(make: Any, query: str) -> None:
    client = await make()
    resp = await client.get(f"{PLUGIN}?{query}", headers=AUTH)
    assert resp.status == 400 and "more than once" in (await resp.json())["output"]
    assert client.app[RUNNER].started == 0


async def test_two_tokens_that_disagree_are_refused(make: Any) -> None:
    client = await make()
    both = {**AUTH, "Authorization": "Bearer not-the-same-token"}
    resp = await client.get(PLUGIN, params={"api": "rest_api_plugin_version"}, headers=both)
    assert resp.status == 403 and "not-the-same-token" not in await resp.text()
    same = {**AUTH, "Authorization": f"Bearer {TOKEN}"}
    resp = await client.get(PLUGIN, params={"api": "rest_api_plugin_version"}, headers=same)
    assert resp.status == 200

"""Two gateways sharing their jobs in PostgreSQL, behind the shipped nginx round-robin (config/nginx-replicas.conf).

A job started through nginx is listed, followed live, replayed and cancelled through the *other* replica;
a reader that resumes from ``next_offset`` loses and repeats nothing. When the replica running a job is
SIGKILLed, its processes die with it, the job becomes ``lost`` once its lease expires, and the other
replica (and nginx) go on serving every route. The store's URL carries a password that must never show.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import signal
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from ..conftest import Homes
from ..support import (
    HEADER,
    NGINX,
    TOKEN,
    GatewayProcess,
    free_port,
    pid_alive,
    poll,
    render_nginx_replicas,
    settings_dict,
    start_nginx,
)

pytestmark = pytest.mark.integration
PLUGIN = "/admin/rest_api/api"
#: Trust authentication ignores it; the gateways must still never show it.
PASSWORD = "job-store-pw-5c1e7"
LEASE_S = 3.0
#: A line the task printed (Airflow logs it with a prefix and a suffix).
TICK = re.compile(r"replica tick (\d+)\b")
TICKING_DAG = """
import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG("gw_replicas", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None, catchup=False):
    BashOperator(task_id="ticks", bash_command='for i in $(seq 1 8); do echo "replica tick $i"; sleep 1; done')
    BashOperator(task_id="forever", bash_command='for i in $(seq 1 600); do echo "replica tick $i"; sleep 1; done')
"""


class Stack:
    def __init__(self, gateways: tuple[GatewayProcess, GatewayProcess], nginx_url: str) -> None:
        self.gateways = gateways
        self.nginx = nginx_url

    def call(self, base: str, path: str, method: str = "GET", data: bytes | None = None, **headers: str) -> Any:
        request = urllib.request.Request(f"{base}{path}", data=data, method=method, headers={HEADER: TOKEN, **headers})
        try:
            return urllib.request.urlopen(request, timeout=120)
        except urllib.error.HTTPError as error:
            return error

    def json(self, base: str, path: str, method: str = "GET", status: int = 200) -> Any:
        resp = self.call(base, path, method)
        body = json.loads(resp.read())
        assert resp.status == status, body
        assert PASSWORD not in json.dumps(body)
        return body

    def start(self, task_id: str) -> str:
        query = urllib.parse.urlencode({"api": "test", "dag_id": "gw_replicas", "task_id": task_id, "async": "true"})
        body = self.json(self.nginx, f"{PLUGIN}?{query}", status=202)
        assert body["status_url"].startswith("/airflow-gw/api/jobs/")  # links carry nginx's prefix
        return str(body["job_id"])

    def owner_and_other(self) -> tuple[GatewayProcess, GatewayProcess]:
        """The replica whose processes run the ticking task, and the other one."""
        found: list[GatewayProcess] = []

        def running_on() -> bool:
            found[:] = [gw for gw in self.gateways if ticking(gw)]
            return len(found) == 1

        assert poll(running_on, timeout_s=120, interval_s=0.2), "no replica runs the task"
        owner = found[0]
        return owner, next(gw for gw in self.gateways if gw is not owner)


def ticking(gateway: GatewayProcess) -> list[int]:
    pids = []
    for process in gateway.helpers():
        try:
            if "replica tick" in " ".join(process.cmdline()):
                pids.append(process.pid)
        except psutil.Error:
            continue
    return pids


def wait_for_state(stack: Stack, base: str, job_id: str, *states: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(stack.json(base, f"/api/jobs/{job_id}"))
        return seen["state"] in states

    assert poll(reached, timeout_s=180, interval_s=0.2), f"job {job_id} stayed {seen.get('state')}"
    return seen


@pytest.fixture(scope="module")
def stack(homes: Homes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if NGINX is None:
        pytest.skip("nginx is not installed (./run.sh test installs it)")
    home = homes.fresh("postgresql")
    # The jobs go into Airflow's own database, in the gateway's schema, as a deployment would have it.
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(home / "airflow.cfg")
    airflow_db = cfg.get("database", "sql_alchemy_conn")
    store_url = airflow_db.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
    assert PASSWORD in store_url
    tmp = tmp_path_factory.mktemp("replicas")
    secret = tmp / "store-url"
    secret.write_text(store_url)
    secret.chmod(0o600)
    gateways = []
    try:
        for name, jobs in (
            ("a", {"store": "postgresql", "store_file": str(secret)}),
            ("b", {"store": "postgresql", "store_env": "GATEWAY_TEST_JOB_STORE"}),
        ):
            directory = tmp / name
            directory.mkdir()
            config = settings_dict(
                home,
                runner={"mode": "warm"},
                server={"trusted_proxies": ["127.0.0.1"]},
                jobs={**jobs, "lease_s": LEASE_S, "poll_s": 0.5},
                state_dir=str(directory / "state"),
            )
            os.environ["GATEWAY_TEST_JOB_STORE"] = store_url
            try:
                gateways.append(GatewayProcess(directory, config))
            finally:
                del os.environ["GATEWAY_TEST_JOB_STORE"]
        nginx_dir = tmp / "nginx"
        nginx_dir.mkdir()
        port = free_port()
        conf = render_nginx_replicas(nginx_dir, (gateways[0].port, gateways[1].port), port)
        nginx = start_nginx(nginx_dir, conf, port)
        try:
            stack = Stack((gateways[0], gateways[1]), f"http://127.0.0.1:{port}/airflow-gw")
            deploy(stack)
            yield stack
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    finally:
        for gateway in gateways:
            gateway.stop()


def deploy(stack: Stack) -> None:
    boundary = "replicasboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="dag_file"; filename="gw_replicas.py"\r\n\r\n'
        f"{TICKING_DAG}\r\n--{boundary}--\r\n"
    ).encode()
    resp = stack.call(
        stack.gateways[0].url,
        f"{PLUGIN}?api=deploy_dag",
        method="POST",
        data=body,
        **{"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert resp.status == 200, resp.read()


def test_both_replicas_say_they_share_a_postgresql_store_and_nothing_more(stack: Stack) -> None:
    for gateway in stack.gateways:
        health = stack.json(gateway.url, "/health")
        assert health["jobs"] == {"store": "postgresql"}
        assert "127.0.0.1" not in json.dumps(health["jobs"])


def test_a_job_started_through_nginx_is_listed_followed_and_resumed_on_the_other_replica(stack: Stack) -> None:
    job_id = stack.start("ticks")
    owner, other = stack.owner_and_other()
    assert job_id in [job["id"] for job in stack.json(other.url, "/api/jobs")["jobs"]]

    # Followed live on the replica that does not run it; when the first tick arrives, the job still runs and a
    # reader takes what there is so far from the replica that runs it.
    stream = stack.call(other.url, f"/api/jobs/{job_id}/log?stream=true")
    assert stream.status == 200 and stream.headers["Content-Type"].startswith("application/x-ndjson")
    followed: list[dict[str, Any]] = []
    so_far: dict[str, Any] = {}
    for raw in stream:
        event = json.loads(raw)
        followed.append(event)
        if not so_far and TICK.search(event.get("text", "")):
            so_far = stack.json(owner.url, f"/api/jobs/{job_id}/log?offset=0")
            assert so_far["state"] == "running"
    assert followed[-1]["type"] == "result" and followed[-1]["state"] == "succeeded", followed[-1]
    outputs = [event["text"] for event in followed if event["type"] == "output"]
    assert [int(found[1]) for found in map(TICK.search, outputs) if found] == list(range(1, 9))

    # That reader resumes from its next_offset through nginx, on either replica: each line exactly once.
    rest = stack.call(stack.nginx, f"/api/jobs/{job_id}/log?offset={so_far['next_offset']}&stream=true")
    resumed = [event["text"] for event in map(json.loads, rest) if event["type"] == "output"]
    assert [event["text"] for event in so_far["events"]] + resumed == outputs
    everything = stack.json(other.url, f"/api/jobs/{job_id}/log?offset=0")
    assert [event["text"] for event in everything["events"]] == outputs
    assert stack.json(stack.nginx, f"/api/jobs/{job_id}/log?offset={everything['next_offset']}")["events"] == []


def test_a_job_is_cancelled_through_the_other_replica_and_its_processes_die(stack: Stack) -> None:
    job_id = stack.start("forever")
    owner, other = stack.owner_and_other()
    wait_for_state(stack, other.url, job_id, "running")
    pids = ticking(owner)
    assert pids
    cancelled = stack.json(other.url, f"/api/jobs/{job_id}", method="DELETE")
    assert cancelled["state"] == "cancelled", cancelled
    assert poll(lambda: not any(pid_alive(pid) for pid in pids), timeout_s=30), "the task outlived its cancel"
    assert stack.json(stack.nginx, f"/api/jobs/{job_id}", method="DELETE", status=409)["error"]


def test_a_sigkilled_replica_loses_its_job_and_the_other_serves_every_route(stack: Stack) -> None:
    job_id = stack.start("forever")
    owner, survivor = stack.owner_and_other()
    wait_for_state(stack, survivor.url, job_id, "running")
    descendants = [process.pid for process in owner.helpers()]
    assert ticking(owner) and descendants
    os.kill(owner.proc.pid, signal.SIGKILL)
    owner.proc.wait()
    assert poll(lambda: not any(pid_alive(pid) for pid in descendants), timeout_s=30), [
        pid for pid in descendants if pid_alive(pid)
    ]

    lost = wait_for_state(stack, survivor.url, job_id, "lost")
    assert "lease" in lost["error"]
    replay = stack.json(survivor.url, f"/api/jobs/{job_id}/log?offset=0")
    assert any(TICK.search(event["text"]) for event in replay["events"])
    assert stack.json(survivor.url, f"/api/jobs/{job_id}", method="DELETE", status=409)
    for base in (survivor.url, stack.nginx):
        assert stack.json(base, "/health")["status"] == "ok"
        assert job_id in [job["id"] for job in stack.json(base, "/api/jobs")["jobs"]]
        version = stack.json(base, f"{PLUGIN}?api=version")
        assert version["status"] == "OK"
        assert stack.json(base, "/api/experimental/test")["status"] == "OK"
        assert stack.call(base, "/admin/rest_api/").status == 200
    # New jobs go to the survivor, through nginx too.
    fresh = stack.start("ticks")
    assert wait_for_state(stack, stack.nginx, fresh, "succeeded")["exit_code"] == 0


def test_the_job_store_password_is_in_no_log_or_config(stack: Stack) -> None:
    for gateway in stack.gateways:
        assert "jobs: postgresql" in gateway.log_path.read_text()
        assert PASSWORD not in gateway.log_path.read_text() and PASSWORD not in gateway.config_path.read_text()

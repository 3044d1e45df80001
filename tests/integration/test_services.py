"""End to end, as the demo and a one-box install run: a real gateway process on PostgreSQL with Airflow's
scheduler, dag-processor, triggerer and api-server under it (``services.run``), and Debian's nginx in front.

A DAG deployed through the gateway is triggered with ``wait=true&stream=true`` through nginx: its task's log
lines arrive while the task runs, before the result; the run reaches ``success`` and its states and logs
can be read back. A failing run answers 422. The services die with the gateway, even on SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from ..conftest import Homes
from ..support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_FLAGS,
    HEADER,
    NGINX,
    TOKEN,
    GatewayProcess,
    free_port,
    pid_alive,
    poll,
    render_nginx,
    settings_dict,
    start_nginx,
)

pytestmark = [pytest.mark.integration, pytest.mark.oldest]
SERVICES = ["scheduler", "dag-processor", "triggerer", "api-server"]
#: Prints a numbered line a second: long enough to see lines arrive while it runs.
TICKING_DAG = """
import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG("e2e_ticks", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None, catchup=False):
    BashOperator(task_id="first", bash_command="echo 'first says hi'") >> BashOperator(
        task_id="ticks", bash_command='for i in 1 2 3 4 5 6; do echo "tick $i"; sleep 1; done'
    )
"""
FAILING_DAG = """
import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG("e2e_fails", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None, catchup=False):
    BashOperator(task_id="boom", bash_command="echo 'about to fail'; exit 3", retries=0)
"""


class Stack:
    def __init__(self, gateway: GatewayProcess, proxied_url: str) -> None:
        self.gateway = gateway
        self.proxied = proxied_url

    def call(self, base: str, params: dict[str, str], data: bytes | None = None, **headers: str) -> Any:
        request = urllib.request.Request(
            f"{base}/admin/rest_api/api?{urllib.parse.urlencode(params)}",
            data=data,
            headers={HEADER: TOKEN, **headers},
        )
        try:
            return urllib.request.urlopen(request, timeout=300)
        except urllib.error.HTTPError as error:
            return error


@pytest.fixture(scope="module")
def stack(homes: Homes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if NGINX is None:
        pytest.skip("nginx is not installed (./run.sh test installs it)")
    home = homes.fresh("postgresql")
    api_port = free_port()
    env = {
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    }
    tmp = tmp_path_factory.mktemp("e2e")
    config = settings_dict(
        home,
        airflow={"env": env},
        services={"run": SERVICES, "restart_delay_s": 2},
        server={"trusted_proxies": ["127.0.0.1"]},
        runner={"mode": "warm"},
        wait={"poll_s": 0.5},
        state_dir=str(tmp / "state"),
    )
    gateway = GatewayProcess(tmp, config)
    nginx_dir = tmp / "nginx"
    nginx_dir.mkdir()
    shipped, bare = free_port(), free_port()
    nginx = start_nginx(nginx_dir, render_nginx(nginx_dir, gateway.port, shipped, bare), shipped)
    try:
        yield Stack(gateway, f"http://127.0.0.1:{shipped}/airflow-gw")
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        gateway.stop()


def health(stack: Stack) -> dict[str, Any]:
    with urllib.request.urlopen(f"{stack.gateway.url}/health", timeout=10) as resp:
        return json.loads(resp.read())


def deploy(stack: Stack, name: str, source: str) -> None:
    boundary = "e2eboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="dag_file"; filename="{name}.py"\r\n\r\n'
        f'{source}\r\n--{boundary}\r\nContent-Disposition: form-data; name="unpause"\r\n\r\ntrue\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    resp = stack.call(
        stack.gateway.url,
        {"api": "deploy_dag"},
        data=body,
        **{"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    answer = json.loads(resp.read())
    assert resp.status == 200, answer
    assert answer["data"]["is_paused"] == {name: False}


def trigger_once_a_scheduler_runs(stack: Stack, base: str, params: dict[str, str]) -> Any:
    """Until the scheduler heartbeats, a wait is refused at once (503, nothing triggered); then it goes ahead."""
    deadline = time.monotonic() + 180
    while True:
        resp = stack.call(base, {"api": "trigger_dag", "wait": "true", **params})
        if resp.status != 503:
            return resp
        refusal = json.loads(resp.read())
        assert "No Airflow scheduler is running" in refusal["error"] and resp.headers["Retry-After"], refusal
        assert time.monotonic() < deadline, "the scheduler never heartbeated"
        time.sleep(1)


def test_a_run_reaches_success_with_its_logs_streamed_through_nginx_as_it_goes(stack: Stack) -> None:
    assert set(health(stack)["services"]) == set(SERVICES)
    deploy(stack, "e2e_ticks", TICKING_DAG)
    resp = trigger_once_a_scheduler_runs(stack, stack.proxied, {"dag_id": "e2e_ticks", "stream": "true"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/x-ndjson")
    events = [event for event in map(json.loads, resp) if event["type"] != "heartbeat"]
    kinds = [event["type"] for event in events]
    assert kinds[-1] == "result" and kinds.count("result") == 1
    result = events[-1]
    assert result["http_response_code"] == 200 and result["status"] == "OK", result
    assert result["data"]["state"] == "success"
    assert {t["task_id"]: t["state"] for t in result["data"]["tasks"]} == {"first": "success", "ticks": "success"}

    def first(predicate: Any) -> int:
        return next(index for index, event in enumerate(events) if predicate(event))

    # Each poll reports state changes before new log lines: a line that comes before the task's
    # "success" was read while the task still ran.
    tick1 = first(lambda e: e["type"] == "log" and e["text"] == "tick 1")
    done = first(lambda e: e["type"] == "task" and e["task_id"] == "ticks" and e["state"] == "success")
    assert first(lambda e: e["type"] == "run" and e["state"] == "running") < tick1 < done
    assert first(lambda e: e["type"] == "log" and e["text"] == "tick 6") < len(events) - 1
    run_id = result["data"]["run_id"]

    # The finished run, read back through the gateway.
    ref = {"dag_id": "e2e_ticks", "execution_date": run_id}
    state = json.loads(stack.call(stack.gateway.url, {"api": "task_state", "task_id": "ticks", **ref}).read())
    assert state["status"] == "OK" and state["output"]["stdout"].strip().endswith("success"), state
    watched = stack.call(stack.gateway.url, {"api": "watch_dag_run", "stream": "text", **ref})
    text = watched.read().decode()
    assert "[ticks] tick 3" in text and "[first] first says hi" in text and '"state": "success"' in text


async def test_a_run_triggered_from_the_test_page_reaches_success_on_screen(stack: Stack) -> None:
    """What a person does in the demo: the page's trigger_dag form with "wait" ticked, through nginx."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (./run.sh test installs it)")
    from playwright.async_api import async_playwright, expect

    deploy(stack, "e2e_page", TICKING_DAG.replace("e2e_ticks", "e2e_page"))
    # The page shows a 503 as any answer; a first run through the API makes sure a scheduler heartbeats.
    warm_up = trigger_once_a_scheduler_runs(stack, stack.gateway.url, {"dag_id": "e2e_page"})
    assert warm_up.status == 200, warm_up.read()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            await page.goto(f"{stack.proxied}/admin/rest_api/")
            await page.fill("#token", TOKEN)
            form = page.locator('form[data-api="trigger_dag"]')
            await form.locator('input[name="dag_id"]').fill("e2e_page")
            await form.locator('input[name="wait"]').check()
            await form.locator('button[type="submit"]').click()
            # Task log lines and state changes appear while the run goes, then the result with every task.
            await expect(form.locator(".output pre.live")).to_contain_text("[ticks] tick 2", timeout=120_000)
            await expect(form.locator(".output .status").first).to_contain_text("OK · HTTP 200", timeout=120_000)
            await expect(form.locator(".output .run-state")).to_have_text("run success · first success, ticks success")
            await form.locator(".output .status").first.scroll_into_view_if_needed()
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "trigger-and-wait-success.png"))
        finally:
            await browser.close()


def test_a_failed_run_answers_422_with_the_failed_task(stack: Stack) -> None:
    deploy(stack, "e2e_fails", FAILING_DAG)
    resp = trigger_once_a_scheduler_runs(stack, stack.gateway.url, {"dag_id": "e2e_fails"})
    answer = json.loads(resp.read())
    assert resp.status == 422 and answer["status"] == "ERROR", answer
    assert answer["data"]["state"] == "failed" and "boom" in answer["error"]
    assert answer["data"]["tasks"][0]["state"] == "failed"

    experimental = urllib.request.Request(
        f"{stack.proxied}/api/experimental/dags/e2e_fails/dag_runs?wait=true",
        data=b"{}",
        headers={HEADER: TOKEN, "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(experimental, timeout=300)
    body = json.loads(failed.value.read())
    assert failed.value.code == 422 and body["state"] == "failed" and body["run_id"].startswith("manual__")


def test_the_services_die_with_the_gateway_even_on_sigkill(stack: Stack) -> None:
    pids = [s["pid"] for s in health(stack)["services"].values()]
    assert all(pids) and all(pid_alive(pid) for pid in pids)
    descendants = [p.pid for p in stack.gateway.helpers()]
    os.kill(stack.gateway.proc.pid, signal.SIGKILL)
    stack.gateway.proc.wait()
    assert poll(lambda: not any(pid_alive(pid) for pid in descendants), timeout_s=20), [
        pid for pid in descendants if pid_alive(pid)
    ]

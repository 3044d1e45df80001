"""The gateway as production runs it (``python -m gateway --config``): how it dies, and what DAG code can steal."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from ..support import GatewayProcess, pid_alive, poll, settings_dict

pytestmark = pytest.mark.integration
PLUGIN = "/admin/rest_api/api"

LONG_DAEMONIZING_DAG = """
import os, time, pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.python import PythonOperator

PIDS = {pids!r}


def daemonize_then_wait():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            open(os.path.join(PIDS, str(os.getpid())), "w").close()
            time.sleep(600)
        os._exit(0)
    print("daemonized", flush=True)
    time.sleep(600)


with DAG({dag_id!r}, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None):
    PythonOperator(task_id="wait", python_callable=daemonize_then_wait)
"""

TOKEN_THIEF_DAG = """
import os
found = []
pid = os.getpid()
while pid > 1:
    for name in ("cmdline", "environ"):
        try:
            found.append(open(f"/proc/{pid}/{name}", "rb").read().replace(b"\\0", b" ").decode(errors="replace"))
        except OSError as exc:
            found.append(f"{pid}/{name}: {exc}")
    try:
        args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        if b"--config" in args:
            found.append(open(args[args.index(b"--config") + 1], errors="replace").read())
    except OSError as exc:
        found.append(str(exc))
    pid = int(next(l for l in open(f"/proc/{pid}/status") if l.startswith("PPid:")).split()[1])
raise RuntimeError("STOLEN " + " | ".join(found))
"""


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def deploy(
    session: aiohttp.ClientSession, url: str, token: str, name: str, source: str
) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("dag_file", source, filename=name)
    return await session.post(
        f"{url}{PLUGIN}", params={"api": "deploy_dag"}, data=form, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.mark.parametrize("mode", ["warm", "exec"])
async def test_a_sigkilled_gateway_leaves_no_fork_server_worker_or_run_behind(
    airflow_home: Path, tmp_path: Path, mode: str
) -> None:
    token = uuid.uuid4().hex
    config = settings_dict(airflow_home, runner={"mode": mode}, experimental={"warm_at_start": True})
    config["auth"] = {"tokens": [{"name": "admin", "token_sha256": sha256(token)}]}
    gateway = GatewayProcess(tmp_path, config)
    pids = tmp_path / "pids"
    pids.mkdir()
    dag_id = f"lingerer_{uuid.uuid4().hex[:8]}"
    try:
        async with aiohttp.ClientSession() as session:
            resp = await deploy(
                session, gateway.url, token, f"{dag_id}.py", LONG_DAEMONIZING_DAG.format(pids=str(pids), dag_id=dag_id)
            )
            assert resp.status == 200, await resp.text()
            params = {"api": "test", "dag_id": dag_id, "task_id": "wait", "async": "true"}
            resp = await session.get(
                f"{gateway.url}{PLUGIN}", params=params, headers={"Authorization": f"Bearer {token}"}
            )
            assert resp.status == 202, await resp.text()
        await asyncio.to_thread(poll, lambda: list(pids.iterdir()), 60)
        daemons = [int(p.name) for p in pids.iterdir()]
        assert daemons, "the task never daemonized"
        everything = {p.pid for p in gateway.helpers()} | set(daemons)
        assert len(everything) >= 3  # at least the worker, the run and its daemon (and, warm, the fork server)
        os.kill(gateway.proc.pid, signal.SIGKILL)
        gateway.proc.wait()
        await asyncio.to_thread(poll, lambda: not any(pid_alive(pid) for pid in everything), 2.0)
        assert [pid for pid in everything if pid_alive(pid)] == []
    finally:
        gateway.stop()
        (airflow_home / "dags" / f"{dag_id}.py").unlink(missing_ok=True)


async def test_a_deploy_only_token_cannot_obtain_any_other_token(airflow_home: Path, tmp_path: Path) -> None:
    """The attack: uploaded DAG code walks its ancestors' /proc, finds --config, reads it, raises it all."""
    tokens = {name: f"{name}-{uuid.uuid4().hex}" for name in ("admin", "ci", "deployer")}
    config = settings_dict(airflow_home)
    config["auth"] = {
        "tokens": [
            {"name": "admin", "token_sha256": sha256(tokens["admin"])},
            {"name": "ci", "token_env": "GATEWAY_TEST_CI_TOKEN", "allow": ["trigger_dag"]},
            {"name": "deployer", "token_sha256": sha256(tokens["deployer"]), "allow": ["deploy_dag"]},
        ]
    }
    os.environ["GATEWAY_TEST_CI_TOKEN"] = tokens["ci"]
    try:
        gateway = GatewayProcess(tmp_path, config)
    finally:
        del os.environ["GATEWAY_TEST_CI_TOKEN"]
    try:
        async with aiohttp.ClientSession() as session:
            resp = await deploy(session, gateway.url, tokens["deployer"], "thief.py", TOKEN_THIEF_DAG)
            answer = await resp.text()
        assert resp.status == 400
        assert "STOLEN" in answer and "token_sha256" in answer  # the attack ran and read the config file
        for token in tokens.values():
            assert token not in answer
        log = gateway.log_path.read_text()
        for token in tokens.values():
            assert token not in log
        assert not (airflow_home / "dags" / "thief.py").exists()
    finally:
        gateway.stop()


def test_the_gateway_process_is_not_dumpable() -> None:
    probe = (
        "import ctypes; from gateway.runner import contain; contain.not_dumpable(); "
        "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"  # PR_GET_DUMPABLE
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0"


def test_a_configured_store_whose_driver_is_missing_stops_the_start_with_the_extra_to_install(tmp_path: Path) -> None:
    """psycopg made unimportable by a shim directory first on PYTHONPATH, for a real ``python -m gateway``."""
    import yaml

    shim = tmp_path / "shim" / "psycopg"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named psycopg (a test shim)')\n")
    config = settings_dict(tmp_path / "home", jobs={"store": "postgresql://gw:pw@127.0.0.1:1/jobs"})
    config["server"] = {"host": "127.0.0.1", "port": 0}
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim.parent), str(Path(__file__).parents[2])])}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(tmp_path / "gateway.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a bound on a hang, not a timing assertion
    )
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert "pip install 'airflow-rest-gateway[postgres]'" in line and "pw" not in line

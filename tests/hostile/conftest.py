"""A real gateway process (``python -m gateway --config ...``) on the session's real Airflow home.

The hostile suite talks to it over TCP only, as an attacker would: through an aiohttp client session
and, for protocol-level abuse, raw sockets.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..conftest import Homes
from ..support import GatewayProcess

HEADER = "rest_api_plugin_http_token"
START_TIMEOUT_S = 120.0
TOKEN_NAMES = ("admin", "vars_only", "deployer")
ALLOW = {"admin": ["*"], "vars_only": ["variables"], "deployer": ["deploy_dag"]}


@dataclass
class LiveGateway:
    url: str
    tokens: dict[str, str]
    header: str
    log_path: Path
    state_dir: Path
    dags_folder: Path
    airflow_home: Path
    proc: subprocess.Popen[bytes]
    host: str = "127.0.0.1"
    port: int = 0
    config_path: Path = Path()
    #: Notes about protocol-level answers (raw-socket cases), written out by the last test.
    notes: dict[str, Any] = field(default_factory=dict)

    def alive(self) -> bool:
        return self.proc.poll() is None


def _config(tokens: dict[str, str], home: Path, state_dir: Path) -> dict[str, Any]:
    entries = [
        {"name": name, "token_sha256": hashlib.sha256(tokens[name].encode()).hexdigest(), "allow": ALLOW[name]}
        for name in TOKEN_NAMES
    ]
    return {
        "server": {"trusted_proxies": ["127.0.0.1"]},
        "auth": {"tokens": entries},
        "airflow": {"home": str(home), "env": {"AIRFLOW__CORE__LOAD_EXAMPLES": "False"}},
        "runner": {"mode": "warm", "timeout_s": 60},
        "state_dir": str(state_dir),
    }


@pytest.fixture(scope="session")
def live_gateway(homes: Homes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    airflow_home = homes.get("sqlite")
    tmp = tmp_path_factory.mktemp("hostile_gateway")
    dags_folder = airflow_home / "dags"
    dags_before = _dag_files(dags_folder)
    tokens = {name: secrets.token_urlsafe(24) for name in TOKEN_NAMES}
    process = GatewayProcess(tmp, _config(tokens, airflow_home, tmp / "state"), START_TIMEOUT_S)
    gateway = LiveGateway(
        url=process.url,
        tokens=tokens,
        header=HEADER,
        log_path=process.log_path,
        state_dir=tmp / "state",
        dags_folder=dags_folder,
        airflow_home=airflow_home,
        proc=process.proc,
        port=process.port,
        config_path=process.config_path,
    )
    try:
        yield gateway
    finally:
        process.stop()
        _restore_dag_files(dags_folder, dags_before)


def _dag_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _restore_dag_files(folder: Path, before: dict[str, bytes]) -> None:
    """The DAGs folder is shared with the rest of the session: leave it as it was found."""
    for path in folder.iterdir():
        if path.is_file() and path.name not in before:
            path.unlink()
    for name, content in before.items():
        path = folder / name
        if not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)


@pytest.fixture(scope="session")
async def http(live_gateway: LiveGateway) -> AsyncIterator[aiohttp.ClientSession]:
    """One client session for the whole suite. Every request on a fresh connection: a hostile answer may
    leave a connection unusable, and the next case must not inherit that."""
    connector = aiohttp.TCPConnector(force_close=True, limit=8)
    timeout = aiohttp.ClientTimeout(total=90)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        yield session


@dataclass(frozen=True)
class AdminJob:
    id: str
    log_path: Path
    log_size: int
    first_line_len: int


@pytest.fixture(scope="session")
def admin_job(live_gateway: LiveGateway) -> AdminJob:
    """One real background job started with the admin token, waited for until it ended."""
    gw = live_gateway
    query = "api=test&dag_id=gw_probe&task_id=hello&execution_date=2024-03-03&async=true"
    headers = {gw.header: gw.tokens["admin"]}
    req = urllib.request.Request(f"{gw.url}/admin/rest_api/api?{query}", headers=headers)
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = json.loads(resp.read())
    job_id = body["job_id"]
    deadline = time.monotonic() + 90
    while True:
        req = urllib.request.Request(f"{gw.url}/api/jobs/{job_id}", headers=headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            status = json.loads(resp.read())
        if status["state"] not in ("queued", "running"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the admin job {job_id} did not finish: {status}")
        time.sleep(0.2)
    log_path = gw.state_dir / "jobs" / f"{job_id}.log"
    content = log_path.read_bytes()
    assert content.count(b"\n") >= 2, f"the admin job logged too little to test offsets: {content[:500]!r}"
    return AdminJob(job_id, log_path, len(content), content.index(b"\n") + 1)

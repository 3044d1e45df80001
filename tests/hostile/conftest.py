"""A real gateway process (``python -m gateway --config ...``) on the session's real Airflow home.

The hostile suite talks to it over TCP only, as an attacker would: through an aiohttp client session
and, for protocol-level abuse, raw sockets.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from ..support import REPO

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
    #: ``token_sha256`` (the first choice) or ``token`` (plaintext fallback for a gateway without it).
    token_mode: str = "token_sha256"
    #: Notes about protocol-level answers (raw-socket cases), written out by the last test.
    notes: dict[str, Any] = field(default_factory=dict)

    def alive(self) -> bool:
        return self.proc.poll() is None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(port: int, tokens: dict[str, str], mode: str, home: Path, state_dir: Path) -> dict[str, Any]:
    entries = []
    for name in TOKEN_NAMES:
        secret = tokens[name]
        value = hashlib.sha256(secret.encode("utf-8")).hexdigest() if mode == "token_sha256" else secret
        entries.append({"name": name, mode: value, "allow": ALLOW[name]})
    return {
        "server": {"host": "127.0.0.1", "port": port, "trusted_proxies": ["127.0.0.1"]},
        "auth": {"tokens": entries},
        "airflow": {"home": str(home), "env": {"AIRFLOW__CORE__LOAD_EXAMPLES": "False"}},
        "runner": {"mode": "warm", "timeout_s": 60},
        "state_dir": str(state_dir),
    }


def _health(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            if resp.status == 200:
                return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _start(tmp: Path, home: Path, tokens: dict[str, str], mode: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    state_dir = tmp / "state"
    cfg = tmp / "gateway.yaml"
    cfg.write_text(yaml.safe_dump(_config(port, tokens, mode, home, state_dir), sort_keys=False))
    log_path = tmp / "gateway.log"
    env = {**os.environ, "AIRFLOW_HOME": str(home)}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(cfg)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    return proc, f"http://127.0.0.1:{port}", cfg


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> bool:
    """True once /health says the runner is ready; False if the process exited first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        body = _health(url)
        if body is not None and body.get("runner", {}).get("ready") is True:
            return True
        time.sleep(0.25)
    _stop(proc)
    raise RuntimeError(f"the gateway at {url} was not ready within {START_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def live_gateway(airflow_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp = tmp_path_factory.mktemp("hostile_gateway")
    tokens = {name: secrets.token_urlsafe(24) for name in TOKEN_NAMES}
    log_path = tmp / "gateway.log"
    mode = "token_sha256"
    proc, url, cfg = _start(tmp, airflow_home, tokens, mode)
    if not _wait_ready(proc, url):
        text = log_path.read_text(errors="replace")
        if proc.returncode == 2 and "token_sha256" in text:
            # A gateway that does not know token_sha256 yet: develop against it with plaintext tokens.
            mode = "token"
            log_path.write_text("")
            proc, url, cfg = _start(tmp, airflow_home, tokens, mode)
            if not _wait_ready(proc, url):
                raise RuntimeError(f"the gateway exited at start:\n{log_path.read_text(errors='replace')[-3000:]}")
        else:
            raise RuntimeError(f"the gateway exited at start:\n{text[-3000:]}")
    gateway = LiveGateway(
        url=url,
        tokens=tokens,
        header=HEADER,
        log_path=log_path,
        state_dir=tmp / "state",
        dags_folder=airflow_home / "dags",
        airflow_home=airflow_home,
        proc=proc,
        port=int(url.rsplit(":", 1)[1]),
        config_path=cfg,
        token_mode=mode,
    )
    try:
        yield gateway
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
async def http(live_gateway: LiveGateway) -> AsyncIterator[aiohttp.ClientSession]:
    """One client session for the whole suite. Every request on a fresh connection: a hostile answer may
    leave a connection unusable, and the next case must not inherit that."""
    connector = aiohttp.TCPConnector(force_close=True, limit=8)
    timeout = aiohttp.ClientTimeout(total=120)
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

"""The gateway's /api/experimental against Airflow 3's own REST API v2, side by side on one AIRFLOW_HOME.

Starts ``airflow api-server`` (simple auth manager, all admins; token from ``GET /auth/token``) and
the gateway on free loopback ports, then times the same four operations on each, alternating:
list pools, one pool, list a DAG's runs, trigger a run (each trigger with its own logical date).
Prints median and p95 per operation and the ratio gateway / Airflow (below 1.0: the gateway is faster).

    .venv/bin/python benchmarks/bench_experimental.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runner import AIRFLOW, free_port, p95, prepare_home, stop_all

TOKEN = "bench-token-0123456789"
DAG = "gateway_demo"


def start_airflow_api(home: Path, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore",
    }
    log = open(workdir / "api-server.log", "wb")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        [AIRFLOW, "api-server", "--port", str(port), "--host", "127.0.0.1"], env=env, stdout=log, stderr=log
    )


def start_gateway(home: Path, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    config = {
        "server": {"port": port},
        "auth": {"tokens": [{"name": "bench", "token": TOKEN}]},
        "airflow": {"home": str(home), "env": {"AIRFLOW__CORE__LOAD_EXAMPLES": "False"}},
        "runner": {"mode": "exec"},
    }
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    log = open(workdir / "gateway.log", "wb")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(path)], stdout=log, stderr=log)


async def wait_http(session: aiohttp.ClientSession, url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with session.get(url) as resp:
                if resp.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.25)
    raise RuntimeError(f"{url} did not come up")


async def timed(session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], json: object) -> float:
    started = time.perf_counter()
    async with session.request(method, url, headers=headers, json=json) as resp:
        await resp.read()
    elapsed = time.perf_counter() - started
    if resp.status >= 300:
        raise RuntimeError(f"{method} {url} -> {resp.status}")
    return elapsed


async def bench(gateway: str, airflow: str, rounds: int) -> None:
    dates = (datetime(2030, 1, 1, tzinfo=UTC) + timedelta(minutes=i) for i in range(10**6))
    async with aiohttp.ClientSession() as session:
        await wait_http(session, f"{gateway}/health")
        await wait_http(session, f"{airflow}/api/v2/monitor/health")
        async with session.get(f"{airflow}/auth/token") as resp:
            airflow_token = (await resp.json())["access_token"]
        ours = {"Authorization": f"Bearer {TOKEN}"}
        theirs = {"Authorization": f"Bearer {airflow_token}"}
        cases = {
            "pools list": (
                ("GET", f"{gateway}/api/experimental/pools", ours, lambda: None),
                ("GET", f"{airflow}/api/v2/pools", theirs, lambda: None),
            ),
            "one pool": (
                ("GET", f"{gateway}/api/experimental/pools/default_pool", ours, lambda: None),
                ("GET", f"{airflow}/api/v2/pools/default_pool", theirs, lambda: None),
            ),
            "dag runs list": (
                ("GET", f"{gateway}/api/experimental/dags/{DAG}/dag_runs", ours, lambda: None),
                ("GET", f"{airflow}/api/v2/dags/{DAG}/dagRuns", theirs, lambda: None),
            ),
            "trigger": (
                ("POST", f"{gateway}/api/experimental/dags/{DAG}/dag_runs", ours,
                 lambda: {"execution_date": next(dates).isoformat()}),
                ("POST", f"{airflow}/api/v2/dags/{DAG}/dagRuns", theirs,
                 lambda: {"logical_date": next(dates).isoformat()}),
            ),
        }  # fmt: skip
        samples: dict[tuple[str, str], list[float]] = {}
        for method, url, headers, body in (side for pair in cases.values() for side in pair):
            await timed(session, method, url, headers, body())  # warm-up, untimed
        for round_no in range(rounds):
            for name, pair in cases.items():
                order = pair if round_no % 2 == 0 else tuple(reversed(pair))
                for method, url, headers, body in order:
                    who = "gateway" if url.startswith(gateway) else "airflow"
                    samples.setdefault((name, who), []).append(await timed(session, method, url, headers, body()))

    print(f"\n{rounds} rounds, alternating; milliseconds\n")
    print(f"{'operation':<15}{'gateway med':>12}{'p95':>8}{'airflow med':>13}{'p95':>8}{'gateway/airflow':>17}")
    for name in cases:
        ours_s, theirs_s = samples[(name, "gateway")], samples[(name, "airflow")]
        ratio = statistics.median(ours_s) / statistics.median(theirs_s)
        print(
            f"{name:<15}{statistics.median(ours_s) * 1000:>12.1f}{p95(ours_s) * 1000:>8.1f}"
            f"{statistics.median(theirs_s) * 1000:>13.1f}{p95(theirs_s) * 1000:>8.1f}{ratio:>16.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-experimental-"))
    home = workdir / "airflow_home"
    procs = []
    try:
        prepare_home(home)
        gateway_port, airflow_port = free_port(), free_port()
        procs.append(start_airflow_api(home, airflow_port, workdir))
        procs.append(start_gateway(home, gateway_port, workdir))
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, AIRFLOW_HOME={home}")
        asyncio.run(bench(f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{airflow_port}", args.rounds))
    finally:
        stop_all(procs)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

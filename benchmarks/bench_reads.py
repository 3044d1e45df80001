"""The plugin's read-only APIs against Airflow 3's own REST API v2, side by side on one AIRFLOW_HOME.

Starts ``airflow api-server`` (simple auth manager, all admins; token from ``GET /auth/token``) and
the gateway (its defaults: warm runner, reads answered by the Airflow worker) on free loopback ports,
makes one DAG run, then times each read on both, alternating, and prints median and p95 per read and
the ratio gateway / Airflow (below 1.0: the gateway is faster). Then throughput: the same mix of reads
with 1, 8 and 32 in flight on each, requests per second.

    .venv/bin/python benchmarks/bench_reads.py [--rounds 30] [--seconds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_experimental import start_airflow_api, wait_http
from bench_runner import free_port, p95, prepare_home, stop_all

TOKEN = "bench-token-0123456789"
DAG, TASK, RUN_ID, RUN_DATE = "gateway_demo", "hello", "bench_run", "2030-01-02T03:04:05+00:00"
PLUGIN = "/admin/rest_api/api"

#: (read, the gateway's plugin query, Airflow REST v2's path for the same read)
READS: list[tuple[str, dict[str, str], str]] = [
    ("version", {"api": "version"}, "/api/v2/version"),
    ("variables get", {"api": "variables", "get": "bench_var"}, "/api/v2/variables/bench_var"),
    ("variables list", {"api": "variables"}, "/api/v2/variables"),
    ("pool get", {"api": "pool", "get": "default_pool"}, "/api/v2/pools/default_pool"),
    ("pool list", {"api": "pool"}, "/api/v2/pools"),
    ("connections list", {"api": "connections"}, "/api/v2/connections"),
    ("list_dags", {"api": "list_dags"}, "/api/v2/dags"),
    ("list_tasks", {"api": "list_tasks", "dag_id": DAG}, f"/api/v2/dags/{DAG}/tasks"),
    ("dag_state (run id)", {"api": "dag_state", "dag_id": DAG, "execution_date": RUN_ID},
     f"/api/v2/dags/{DAG}/dagRuns/{RUN_ID}"),
    ("dag_state (date)", {"api": "dag_state", "dag_id": DAG, "execution_date": RUN_DATE},
     f"/api/v2/dags/{DAG}/dagRuns?logical_date_gte={RUN_DATE.replace('+', '%2B')}"
     f"&logical_date_lte={RUN_DATE.replace('+', '%2B')}"),
    ("task_state", {"api": "task_state", "dag_id": DAG, "task_id": TASK, "execution_date": RUN_ID},
     f"/api/v2/dags/{DAG}/dagRuns/{RUN_ID}/taskInstances/{TASK}"),
    ("task_failed_deps", {"api": "task_failed_deps", "dag_id": DAG, "task_id": TASK, "execution_date": RUN_ID},
     f"/api/v2/dags/{DAG}/dagRuns/{RUN_ID}/taskInstances/{TASK}/dependencies"),
]  # fmt: skip


def start_gateway(home: Path, port: int, workdir: Path, threads: int | None) -> subprocess.Popen[bytes]:
    """The gateway with its defaults (warm runner, reads answered by the Airflow worker), ``threads`` if given."""
    config = {
        "server": {"port": port},
        "auth": {"tokens": [{"name": "bench", "token": TOKEN}]},
        "airflow": {"home": str(home), "env": {"AIRFLOW__CORE__LOAD_EXAMPLES": "False"}},
        **({"experimental": {"threads": threads}} if threads else {}),
    }
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    log = open(workdir / "gateway.log", "wb")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(path)], stdout=log, stderr=log)


async def fetch(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    async with session.get(url, headers=headers) as resp:
        await resp.read()
    elapsed = time.perf_counter() - started
    if resp.status >= 300:
        raise RuntimeError(f"GET {url} -> {resp.status}")
    return elapsed


async def throughput(session: aiohttp.ClientSession, urls: list[str], headers: dict[str, str], in_flight: int,
                     seconds: float) -> float:  # fmt: skip
    """Requests per second with ``in_flight`` concurrent clients cycling through ``urls`` for ``seconds``."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def client(offset: int) -> None:
        nonlocal done
        for url in itertools.islice(itertools.cycle(urls), offset, None):
            if time.perf_counter() > deadline:
                return
            await fetch(session, url, headers)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(in_flight)))
    return done / (time.perf_counter() - started)


async def bench(gateway: str, airflow: str, rounds: int, seconds: float) -> None:
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_http(session, f"{gateway}/health")
        await wait_http(session, f"{airflow}/api/v2/monitor/health")
        async with session.get(f"{airflow}/auth/token") as resp:
            airflow_token = (await resp.json())["access_token"]
        ours = {"Authorization": f"Bearer {TOKEN}"}
        theirs = {"Authorization": f"Bearer {airflow_token}"}
        trigger = {"api": "trigger_dag", "dag_id": DAG, "run_id": RUN_ID, "exec_date": RUN_DATE}
        async with session.get(f"{gateway}{PLUGIN}", params=trigger, headers=ours) as resp:
            assert resp.status == 200, await resp.text()
        urls = {
            name: (str(URL(f"{gateway}{PLUGIN}").with_query(query)), f"{airflow}{path}") for name, query, path in READS
        }
        for pair in urls.values():  # warm-up, untimed; a failing read stops the run here
            for url, headers in zip(pair, (ours, theirs), strict=True):
                for _ in range(3):
                    await fetch(session, url, headers)
        samples: dict[tuple[str, str], list[float]] = {}
        for round_no in range(rounds):
            for name, pair in urls.items():
                sides = list(zip(("gateway", "airflow"), pair, (ours, theirs), strict=True))
                for who, url, headers in sides if round_no % 2 == 0 else reversed(sides):
                    samples.setdefault((name, who), []).append(await fetch(session, url, headers))

        print(f"\n{rounds} rounds, alternating; milliseconds\n")
        print("| read | gateway median | p95 | Airflow median | p95 | gateway / Airflow |\n|---|---|---|---|---|---|")
        for name in urls:
            ours_s, theirs_s = samples[(name, "gateway")], samples[(name, "airflow")]
            ratio = statistics.median(ours_s) / statistics.median(theirs_s)
            print(
                f"| {name} | {statistics.median(ours_s) * 1000:.1f} | {p95(ours_s) * 1000:.1f} "
                f"| {statistics.median(theirs_s) * 1000:.1f} | {p95(theirs_s) * 1000:.1f} | {ratio:.2f}x |"
            )

        print(f"\nThroughput, every read in turn, {seconds:g} s per cell; requests per second\n")
        print("| in flight | gateway | Airflow | gateway / Airflow |\n|---|---|---|---|")
        for in_flight in (1, 8, 32):
            gw = await throughput(session, [pair[0] for pair in urls.values()], ours, in_flight, seconds)
            af = await throughput(session, [pair[1] for pair in urls.values()], theirs, in_flight, seconds)
            print(f"| {in_flight} | {gw:.0f} | {af:.0f} | {gw / af:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, help="the Airflow worker's threads (experimental.threads)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-reads-"))
    home = workdir / "airflow_home"
    procs = []
    try:
        prepare_home(home)
        gateway_port, airflow_port = free_port(), free_port()
        procs.append(start_airflow_api(home, airflow_port, workdir))
        procs.append(start_gateway(home, gateway_port, workdir, args.threads))
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, AIRFLOW_HOME={home}")
        asyncio.run(
            bench(f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{airflow_port}", args.rounds, args.seconds)
        )
    finally:
        stop_all(procs)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

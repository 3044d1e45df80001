"""Overload: 500 concurrent clients against ``max_concurrency`` 4 and a small queue.

Starts one warm gateway (``max_concurrency: 4``, ``max_queue: 16``) on a temporary AIRFLOW_HOME with
the demo DAG, then sends 500 concurrent calls of a command that takes seconds (``tasks test`` of the
demo's ``count`` task) and prints how many got 200, 503 with ``Retry-After``, anything else; the
median time to a 503; the gateway's RSS before and after; and what /metrics counted.

    .venv/bin/python benchmarks/bench_overload.py [--clients 500] [--queue 16] [--home PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import psutil
from bench_runner import HEADERS, TOKEN, spawn_gateway, stop_all, wait_ready, workspace

CALL = {"api": "test", "dag_id": "gateway_demo", "task_id": "count"}


def start_gateway(home: Path, workdir: Path, queue: int) -> tuple[subprocess.Popen[bytes], str]:
    config = {
        "auth": {"tokens": [{"name": "bench", "token": TOKEN}]},
        "airflow": {"home": str(home), "env": {"AIRFLOW__CORE__LOAD_EXAMPLES": "False"}},
        "runner": {"mode": "warm", "max_concurrency": 4, "max_queue": queue},
        "audit": {"destination": "off"},
    }
    return spawn_gateway(config, workdir, "overload")


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def call(session: aiohttp.ClientSession, url: str, n: int) -> tuple[int, bool, float]:
    """One call; each client tests its own logical date (two tests of one date would collide in the DB)."""
    params = {**CALL, "execution_date": (datetime(2024, 1, 1) + timedelta(hours=n)).isoformat()}
    started = time.perf_counter()
    async with session.get(f"{url}/admin/rest_api/api", params=params, headers=HEADERS) as resp:
        await resp.read()
        return resp.status, "Retry-After" in resp.headers, time.perf_counter() - started


async def bench(url: str, pid: int, clients: int) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:
        await wait_ready(session, url)
        await call(session, url, 0)  # one untimed call: the demo DAG is parsed once
        before = rss_mb(pid)
        started = time.perf_counter()
        results = await asyncio.gather(*(call(session, url, n) for n in range(1, clients + 1)))
        wall = time.perf_counter() - started
        after = rss_mb(pid)
        async with session.get(f"{url}/metrics") as resp:
            metrics = [line for line in (await resp.text()).splitlines() if line.startswith("gateway_runner_")]
    statuses = collections.Counter(status for status, _, _ in results)
    refused = [seconds for status, _, seconds in results if status == 503]
    print(f"{clients} concurrent clients, max_concurrency 4, wall {wall:.1f} s")
    other = {status: count for status, count in statuses.items() if status not in (200, 503)}
    print(f"  200: {statuses[200]}   503: {statuses[503]}   other: {sum(other.values())} {other or ''}")
    print(f"  503 without Retry-After: {sum(1 for status, retry, _ in results if status == 503 and not retry)}")
    if refused:
        print(f"  time to a 503: median {statistics.median(refused) * 1000:.1f} ms, max {max(refused) * 1000:.1f} ms")
    print(f"  gateway RSS: {before:.0f} MB before, {after:.0f} MB after")
    print("  /metrics: " + "; ".join(m for m in metrics if "rejections" in m or "runs_started" in m))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--queue", type=int, default=16)
    parser.add_argument("--home", type=Path, help="an existing AIRFLOW_HOME with the demo DAG serialized")
    args = parser.parse_args()
    with workspace("bench-overload-", args.home) as (workdir, home):
        proc, url = start_gateway(home, workdir, args.queue)
        try:
            asyncio.run(bench(url, proc.pid, args.clients))
        finally:
            stop_all([proc])


if __name__ == "__main__":
    main()

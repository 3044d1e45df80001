"""Exec vs warm runner, through HTTP, side by side on one AIRFLOW_HOME.

Starts two gateways (``runner.mode: exec`` and ``warm``) on free loopback ports, waits until both
are ready, then calls the same plugin APIs on each in alternation and prints per-API median and p95
latency for each mode and their ratio; then 8 and 32 concurrent calls per mode (wall time).

    .venv/bin/python benchmarks/bench_runner.py [--rounds 7] [--home PATH]

Without ``--home`` it prepares a temporary AIRFLOW_HOME (SQLite, the demo DAG) and removes it after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
AIRFLOW = str(Path(sys.executable).parent / "airflow")
TOKEN = "bench-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
CALLS: list[tuple[str, dict[str, str]]] = [
    ("version", {"api": "version"}),
    ("variables get", {"api": "variables", "get": "bench_var"}),
    ("pool get", {"api": "pool", "get": "default_pool"}),
    ("list_dags", {"api": "list_dags"}),
    ("list_tasks", {"api": "list_tasks", "dag_id": "gateway_demo"}),
    ("test", {"api": "test", "dag_id": "gateway_demo", "task_id": "hello", "execution_date": "2024-06-01"}),
]


def prepare_home(home: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONWARNINGS": "ignore"}
    (home / "dags").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config" / "demo_dags" / "gateway_demo.py", home / "dags")
    for argv in (["db", "migrate"], ["dags", "reserialize"], ["variables", "set", "bench_var", "42"]):
        subprocess.run([AIRFLOW, *argv], env=env, check=True, capture_output=True)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def workspace(prefix: str, home: Path | None) -> Iterator[tuple[Path, Path]]:
    """A temporary directory and an AIRFLOW_HOME (``home``, or a new one prepared in it); removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        if home is None:
            home = workdir / "airflow_home"
            prepare_home(home)
        yield workdir, home
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def spawn_gateway(config: dict[str, Any], workdir: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m gateway`` with ``config`` (on a free port), its log in ``workdir/NAME.log``; the process and URL."""
    port = free_port()
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**config, "server": {**config.get("server", {}), "port": port}}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / f"{name}.log", "wb"),  # noqa: SIM115 - closed with the process
    )
    return proc, f"http://127.0.0.1:{port}"


def start_gateway(home: Path, mode: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = {
        "auth": {"tokens": [{"name": "bench", "token": TOKEN}]},
        "airflow": {"home": str(home), "env": {"AIRFLOW__CORE__LOAD_EXAMPLES": "False"}},
        "runner": {"mode": mode, "max_concurrency": 4, "max_queue": 64},
        "apis": {"fast_reads": False},  # this compares the runners: every call runs the CLI
    }
    return spawn_gateway(config, workdir, mode)


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(1200):
        try:
            async with session.get(f"{url}/health") as resp:
                if (await resp.json())["runner"]["ready"]:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never became ready")


async def timed_call(session: aiohttp.ClientSession, url: str, params: dict[str, str]) -> float:
    started = time.perf_counter()
    async with session.get(f"{url}/admin/rest_api/api", params=params, headers=HEADERS) as resp:
        body = await resp.json()
    elapsed = time.perf_counter() - started
    if resp.status != 200:
        raise RuntimeError(f"{params} failed: {resp.status} {body.get('error') or body.get('output')}")
    return elapsed


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def bench(urls: dict[str, str], rounds: int) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        for url in urls.values():
            await wait_ready(session, url)
        for url in urls.values():  # one untimed call each: first-use costs are not what we measure
            await timed_call(session, url, CALLS[0][1])
        samples: dict[tuple[str, str], list[float]] = {}
        for round_no in range(rounds):
            order = list(urls.items()) if round_no % 2 == 0 else list(reversed(urls.items()))
            for name, params in CALLS:
                for mode, url in order:
                    samples.setdefault((name, mode), []).append(await timed_call(session, url, params))

        print(f"\nLatency through HTTP, {rounds} rounds, modes alternating (seconds)\n")
        print(f"{'API':<16}{'exec median':>12}{'exec p95':>10}{'warm median':>13}{'warm p95':>10}{'speed-up':>10}")
        for name, _ in CALLS:
            cold, warm = samples[(name, "exec")], samples[(name, "warm")]
            ratio = statistics.median(cold) / statistics.median(warm)
            print(
                f"{name:<16}{statistics.median(cold):>12.3f}{p95(cold):>10.3f}"
                f"{statistics.median(warm):>13.3f}{p95(warm):>10.3f}{ratio:>9.1f}x"
            )

        print("\nConcurrent `variables get` calls (max_concurrency 4): wall time for the batch (seconds)\n")
        print(f"{'calls':<8}{'exec':>10}{'warm':>10}{'speed-up':>10}")
        for batch in (8, 32):
            walls = {}
            for mode, url in urls.items():
                started = time.perf_counter()
                await asyncio.gather(*(timed_call(session, url, CALLS[1][1]) for _ in range(batch)))
                walls[mode] = time.perf_counter() - started
            print(f"{batch:<8}{walls['exec']:>10.2f}{walls['warm']:>10.2f}{walls['exec'] / walls['warm']:>9.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--home", type=Path, help="an existing AIRFLOW_HOME with the demo DAG serialized")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-runner-"))
    home = args.home or workdir / "airflow_home"
    procs = []
    try:
        if args.home is None:
            prepare_home(home)
        urls: dict[str, str] = {}
        for mode in ("exec", "warm"):
            proc, urls[mode] = start_gateway(home, mode, workdir)
            procs.append(proc)
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, AIRFLOW_HOME={home}")
        asyncio.run(bench(urls, args.rounds))
    finally:
        stop_all(procs)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

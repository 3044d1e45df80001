"""Streaming 100 MB of a command's output through the gateway: throughput and the gateway's memory.

Starts one warm gateway on a temporary AIRFLOW_HOME holding a DAG whose task prints ``--mb`` MB
(1000-byte lines, through Airflow's task logging as any task's output), and Debian's nginx in front
of it with the shipped site config (tests/support.py ``render_nginx``). Streams
``api=test&stream=true`` (NDJSON) directly and through nginx, reading as fast as it can, and
prints MB/s and the gateway's RSS before and at its peak during each stream.

    .venv/bin/python benchmarks/bench_streaming.py [--mb 100] [--home PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
from bench_overload import start_gateway
from bench_runner import HEADERS, free_port, prepare_home, stop_all, wait_ready

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support import NGINX, render_nginx, start_nginx

FLOOD_DAG = """
import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG("bench_stream", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None, params={"mb": 100}):
    BashOperator(
        task_id="flood",
        bash_command="python3 -c \\"import sys; l='x' * 999 + chr(10); w=sys.stdout.write; "
        "[w(l) for _ in range({{ params.mb }} * 1000)]\\"",
    )
"""


def add_flood_dag(home: Path) -> None:
    import os
    import subprocess

    (home / "dags" / "bench_stream.py").write_text(FLOOD_DAG)
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONWARNINGS": "ignore"}
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "dags", "reserialize"], env=env, check=True, capture_output=True)


async def stream_once(url: str, pid: int, mb: int) -> tuple[float, float, float, int]:
    """Seconds, RSS before, peak RSS (MB), output bytes received in ``output`` events."""
    process = psutil.Process(pid)
    before = process.memory_info().rss / 2**20
    peak = before
    received = 0
    params = {
        "api": "test",
        "dag_id": "bench_stream",
        "task_id": "flood",
        "execution_date": "2024-06-01",
        "task_params": f'{{"mb": {mb}}}',
        "stream": "true",
    }
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        started = time.perf_counter()
        async with session.get(f"{url}/admin/rest_api/api", params=params, headers=HEADERS) as resp:
            assert resp.status == 200, await resp.text()
            last = b""
            async for line in resp.content:
                if line.startswith(b'{"type": "output"'):
                    received += len(line)
                last = line
                if received % (8 << 20) < len(line):
                    peak = max(peak, process.memory_info().rss / 2**20)
            assert b'"type": "result"' in last and b'"exit_code": 0' in last, last[:300]
        seconds = time.perf_counter() - started
    peak = max(peak, process.memory_info().rss / 2**20)
    return seconds, before, peak, received


async def bench(direct: str, proxied: str, pid: int, mb: int) -> None:
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, direct)
    await stream_once(direct, pid, 1)  # warm-up: the DAG parsed once
    print(f"{mb} MB of task output (1000-byte lines), NDJSON stream, warm runner")
    print(f"{'path':<10}{'seconds':>9}{'MB/s':>8}{'RSS before':>12}{'RSS peak':>10}{'growth':>8}")
    for name, url in (("direct", direct), ("nginx", proxied)):
        seconds, before, peak, received = await stream_once(url, pid, mb)
        print(
            f"{name:<10}{seconds:>9.1f}{mb / seconds:>8.1f}{before:>10.0f}MB{peak:>8.0f}MB{peak - before:>6.0f}MB"
            f"   ({received / 2**20:.0f} MB of NDJSON output events)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--home", type=Path, help="an existing AIRFLOW_HOME with the demo DAG serialized")
    args = parser.parse_args()
    if NGINX is None:
        sys.exit("nginx is not installed (Debian package nginx)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    home = args.home or workdir / "airflow_home"
    procs = []
    try:
        if args.home is None:
            prepare_home(home)
        add_flood_dag(home)
        gateway, url = start_gateway(home, workdir, queue=16)
        procs.append(gateway)
        nginx_dir = workdir / "nginx"
        nginx_dir.mkdir()
        shipped, bare = free_port(), free_port()
        port = int(url.rsplit(":", 1)[1])
        nginx = start_nginx(nginx_dir, render_nginx(nginx_dir, port, shipped, bare), shipped)
        procs.append(nginx)
        asyncio.run(bench(url, f"http://127.0.0.1:{shipped}/airflow-gw", gateway.pid, args.mb))
    finally:
        stop_all(procs)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

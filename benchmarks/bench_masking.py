"""Masking cost against text size and secret count, and /health while the heaviest hostile bodies are answered.

Part 1 (in process): for 1, 100 and 10,000 secrets and texts of 1 KB and 1 MB, the time to learn the secrets
(build the automata) and to mask the text, per byte and per secret; with ``--compare``, the same for the
masker before issue 18 (one ``str.replace`` pass per secret spelling), loaded from git.

Part 2 (a real gateway process): hostile bodies — a 256 KB ``conf`` with 8,000 password keys (an admin token
and a token not allowed the API), 16,000 URI passwords, 10,000 short secrets, a 1 MB form body — each sent
while ``/health`` is polled every 20 ms; prints each body's status and answer time and /health's worst and
median latency meanwhile.

    .venv/bin/python benchmarks/bench_masking.py [--compare] [--home PATH] [--skip-gateway]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from bench_runner import TOKEN, spawn_gateway, stop_all, wait_ready, workspace

from gateway.masking import Masker

REPO = Path(__file__).resolve().parent.parent
#: The masker as it was before issue 18.
OLD_COMMIT = "ec46e7d"
LIMITED = "bench-limited-token-0123456789"


def old_masker() -> type:
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{OLD_COMMIT}:gateway/masking.py"], capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType("old_masking")
    sys.modules["old_masking"] = module
    exec(compile(source, "old_masking.py", "exec"), module.__dict__)  # the project's own code, from git
    return module.Masker


def text_of(size: int, planted: list[str]) -> str:
    """About ``size`` characters of log-like words, with some of the secrets planted in it."""
    words = [secrets.token_hex(4) for _ in range(64)]
    pieces, length, n = [], 0, 0
    while length < size:
        piece = planted[n % len(planted)] if n % 50 == 0 and planted else words[n % len(words)]
        pieces.append(piece)
        length += len(piece) + 1
        n += 1
    return " ".join(pieces)[:size]


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def learned(maker: type, values: list[str]) -> object:
    """A masker that learned ``values`` and is ready to mask (its automata built: they are built on first use)."""
    masker = maker(values)
    masker.text("warm")
    return masker


def part_one(compare: bool) -> None:
    print("Masking cost (best of 3; build = learning the secrets, mask = one text):")
    print(f"  {'masker':<8} {'secrets':>8} {'text':>6} {'build ms':>9} {'mask ms':>9} {'ns/byte':>8} {'ns/secret':>10}")
    makers: list[tuple[str, type]] = [("now", Masker)] + ([("before", old_masker())] if compare else [])
    for label, maker in makers:
        for count in (1, 100, 10_000):
            values = [f"pw-{secrets.token_hex(8)}" for _ in range(count)]
            for size, size_label in ((1024, "1 KB"), (1 << 20, "1 MB")):
                if label == "before" and count == 10_000 and size > 1024:
                    print(f"  {label:<8} {count:>8} {size_label:>6}  (skipped: minutes)")
                    continue
                text = text_of(size, values[:50])
                build_s = best_of(3, lambda: learned(maker, values))  # noqa: B023
                masker = learned(maker, values)
                mask_s = best_of(3, lambda: masker.text(text))  # type: ignore[attr-defined]  # noqa: B023
                print(
                    f"  {label:<8} {count:>8} {size_label:>6} {build_s * 1000:>9.2f} {mask_s * 1000:>9.2f} "
                    f"{mask_s * 1e9 / size:>8.1f} {mask_s * 1e9 / count:>10.1f}"
                )


def hostile_bodies() -> list[tuple[str, str, dict[str, str], bytes, str]]:
    """(label, token, headers, body, what): the heaviest bodies of the hostile corpus's classes."""
    json_ct = {"Content-Type": "application/json"}
    conf = {f"password_{n}": secrets.token_hex(12) for n in range(8000)}
    trigger = json.dumps({"api": "trigger_dag", "dag_id": "gateway_demo", "conf": conf}).encode()
    uris = {f"k_{n}": f"postgres://u:{secrets.token_hex(6)}@h/x" for n in range(16000)}
    short = {f"token_{n}": str(n) for n in range(10000)}
    allowed = {f"password_{n}": secrets.token_hex(40) for n in range(999)}
    form = urlencode({"api": "trigger_dag", "dag_id": "gateway_demo", "conf": json.dumps(conf)}).encode()
    return [
        ("8,000 password keys (admin)", TOKEN, json_ct, trigger, "trigger_dag conf"),
        ("8,000 password keys (limited token)", LIMITED, json_ct, trigger, "trigger_dag conf"),
        (
            "16,000 URI passwords",
            TOKEN,
            json_ct,
            json.dumps({"api": "trigger_dag", "dag_id": "gateway_demo", "conf": uris}).encode(),
            "conf",
        ),
        (
            "10,000 short secrets",
            TOKEN,
            json_ct,
            json.dumps({"api": "trigger_dag", "dag_id": "gateway_demo", "conf": short}).encode(),
            "conf",
        ),
        (
            "999 password keys (allowed; runs the CLI)",
            TOKEN,
            json_ct,
            json.dumps({"api": "trigger_dag", "dag_id": "bench_no_such_dag", "conf": allowed}).encode(),
            "conf",
        ),
        ("1 MB form body", TOKEN, {"Content-Type": "application/x-www-form-urlencoded"}, form, "form conf"),
    ]


def start_gateway(home: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = {
        "auth": {
            "tokens": [
                {"name": "bench", "token": TOKEN},
                {"name": "limited", "token": LIMITED, "allow": ["version"]},
            ]
        },
        "airflow": {"home": str(home), "env": {"AIRFLOW__CORE__LOAD_EXAMPLES": "False"}},
        "runner": {"mode": "exec"},
        "experimental": {"warm_at_start": False},
        "deploy": {"max_bytes": 4 << 20},
    }
    return spawn_gateway(config, workdir, "masking")


async def health_while(session: aiohttp.ClientSession, url: str, done: asyncio.Event) -> list[float]:
    latencies = []
    while not done.is_set():
        started = time.perf_counter()
        async with session.get(f"{url}/health") as resp:
            await resp.read()
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return latencies


async def part_two(url: str) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        await wait_ready(session, url)
        print("/health while hostile bodies are answered (polled every 20 ms on its own connection):")
        print(f"  {'body':<44} {'size':>8} {'status':>6} {'answer ms':>10} {'/health max ms':>15} {'median':>7}")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as poller:
            for label, token, headers, body, _ in hostile_bodies():
                done = asyncio.Event()
                polling = asyncio.create_task(health_while(poller, url, done))
                await asyncio.sleep(0.1)
                started = time.perf_counter()
                async with session.post(
                    f"{url}/admin/rest_api/api", data=body, headers={**headers, "Authorization": f"Bearer {token}"}
                ) as resp:
                    await resp.read()
                    status = resp.status
                answer_s = time.perf_counter() - started
                await asyncio.sleep(0.1)
                done.set()
                latencies = await polling
                print(
                    f"  {label:<44} {len(body) // 1024:>6} KB {status:>6} {answer_s * 1000:>10.1f} "
                    f"{max(latencies) * 1000:>15.1f} {statistics.median(latencies) * 1000:>7.1f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", action="store_true", help="also time the masker before issue 18")
    parser.add_argument("--home", type=Path, help="an existing AIRFLOW_HOME with the demo DAG serialized")
    parser.add_argument("--skip-gateway", action="store_true", help="part 1 only")
    args = parser.parse_args()
    part_one(args.compare)
    if args.skip_gateway:
        return
    with workspace("bench-masking-", args.home) as (workdir, home):
        proc, url = start_gateway(home, workdir)
        try:
            asyncio.run(part_two(url))
        finally:
            stop_all([proc])


if __name__ == "__main__":
    main()

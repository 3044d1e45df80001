"""``/api/jobs`` within bounds, and a full disk as a 507 that started and left nothing (issue 19).

The list comes a page at a time, newest first, each page full of the jobs the token may see; starting a job
or deploying a DAG on a full state directory or DAGs folder is refused, naming which — with ENOSPC
simulated, and once on real, tiny tmpfs mounts when this machine lets a test mount them.
"""

from __future__ import annotations

import errno
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.job_store import Job
from gateway.job_store.base import CHUNK_BYTES
from gateway.keys import JOBS
from gateway.runner import RunState

from ..support import AUTH, TOKEN
from .conftest import FullDisk

PLUGIN = "/admin/rest_api/api"
CI = {"Authorization": "Bearer ci-token-0123456789"}
TOKENS = {
    "tokens": [
        {"name": "admin", "token": TOKEN},
        {"name": "ci", "token": "ci-token-0123456789", "allow": ["version"]},
    ]
}
GOOD_DAG = "from airflow.sdk import DAG\n"


async def add_jobs(client: TestClient, count: int, owner: Callable[[int], str] = lambda i: "admin") -> list[str]:
    """``count`` finished jobs straight into the store, oldest first; their ids."""
    store = client.app[JOBS].store
    ids = []
    for i in range(count):
        job = Job(f"{i:016x}", "version", "airflow version", owner(i), RunState.SUCCEEDED, 1000.0 + i // 2)
        job.finished_at = time.time()
        await store.create(job)
        ids.append(job.id)
    return ids


async def every_page(client: TestClient, headers: dict[str, str], url: str) -> list[list[str]]:
    pages = []
    while url:
        resp = await client.get(url, headers=headers)
        assert resp.status == 200
        body = await resp.json()
        pages.append([job["id"] for job in body["jobs"]])
        url = body["next"]
    return pages


async def test_the_list_is_paged_newest_first_and_each_page_is_full_of_visible_jobs(make: Any) -> None:
    client = await make(auth=TOKENS)
    ids = await add_jobs(client, 23, owner=lambda i: "ci" if i % 2 else "admin")
    newest_first = sorted(ids, key=lambda job_id: (1000 + int(job_id, 16) // 2, job_id), reverse=True)
    pages = await every_page(client, AUTH, "/api/jobs?limit=5")
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [job for page in pages for job in page] == newest_first  # '*' sees every job, once, in order
    ci_pages = await every_page(client, CI, "/api/jobs?limit=4")
    ci_ids = [job_id for job_id in newest_first if int(job_id, 16) % 2]
    assert [len(page) for page in ci_pages] == [4, 4, 3] and [job for page in ci_pages for job in page] == ci_ids


async def test_a_page_holds_100_jobs_unless_limit_says_otherwise(make: Any) -> None:
    client = await make()
    await add_jobs(client, 150)
    body = await (await client.get("/api/jobs", headers=AUTH)).json()
    assert len(body["jobs"]) == 100 and body["next"].startswith("/api/jobs?limit=100&before=")
    assert set(body["jobs"][0]) >= {"id", "state", "status_url", "log_url", "cancel_url"}  # the old shape
    everything = await (await client.get("/api/jobs", params={"limit": "1000"}, headers=AUTH)).json()
    assert len(everything["jobs"]) == 150 and everything["next"] is None


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"limit": "99999999999999999999"}, "limit"),
        ({"before": "yesterday"}, "before"),
        ({"before": "nan_0123"}, "before"),
        ({"before": ""}, "before"),
    ],
)
async def test_bad_page_arguments_are_400(make: Any, query: dict[str, str], word: str) -> None:
    client = await make()
    resp = await client.get("/api/jobs", params=query, headers=AUTH)
    assert resp.status == 400 and word in (await resp.json())["error"]


# A full disk, simulated.


async def test_a_job_on_a_full_state_dir_is_507_and_nothing_started(make: Any, full_disk: FullDisk) -> None:
    client = await make()
    with full_disk():
        resp = await client.get(PLUGIN, params={"api": "version", "async": "true"}, headers=AUTH)
    body = await resp.json()
    assert resp.status == 507 and "state_dir" in body["output"], body
    assert (await (await client.get("/api/jobs", headers=AUTH)).json())["jobs"] == []
    assert client.app[JOBS]._tasks == {}


def half_open(*args: Any, **kwargs: Any) -> Any:
    """``open`` for the deploy's temporary file on a disk that fills up after half of the file."""
    handle = open(*args, **kwargs)  # noqa: SIM115 (the caller closes it)
    real_write = handle.write

    def write(data: bytes) -> int:
        real_write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    handle.write = write
    return handle


async def checked_fine(*args: Any) -> dict[str, Any]:
    """``dagfiles._check`` without Airflow: the file has no import errors."""
    return {"import_errors": []}


def deploy_form() -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("dag_file", GOOD_DAG, filename="full_disk_dag.py")
    return form


async def test_a_deploy_on_a_full_dags_folder_is_507_and_leaves_no_temporary_file(
    make: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    client = await make(airflow={"env": {"AIRFLOW__CORE__DAGS_FOLDER": str(dags)}})
    monkeypatch.setattr("gateway.dagfiles._check", checked_fine)
    monkeypatch.setattr("gateway.dagfiles.open", half_open, raising=False)
    resp = await client.post(PLUGIN, params={"api": "deploy_dag"}, data=deploy_form(), headers=AUTH)
    body = await resp.json()
    assert resp.status == 507 and "dags_folder" in body["output"], body
    assert list(dags.iterdir()) == []  # neither the file nor its temporary


# A full disk, real: tiny tmpfs mounts (root only).


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``tiny_tmpfs(name)``: a 1 MiB tmpfs mounted under ``tmp_path``, unmounted after the test."""
    mounted: list[Path] = []

    def mount(name: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True)
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip()
            pytest.skip(f"SKIPPED LOUDLY: mounting a tmpfs is not permitted here ({why}); ENOSPC is only simulated")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> None:
    """Write into ``directory`` until its filesystem has no space left."""
    with open(directory / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


async def test_on_real_full_filesystems_jobs_and_deploys_are_507_and_leave_nothing(
    make: Any, tiny_tmpfs: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, dags = tiny_tmpfs("state"), tiny_tmpfs("dags")
    client = await make(state_dir=str(state), airflow={"env": {"AIRFLOW__CORE__DAGS_FOLDER": str(dags)}})
    fill(state)
    resp = await client.get(PLUGIN, params={"api": "version", "async": "true"}, headers=AUTH)
    assert resp.status == 507 and "state_dir" in (await resp.json())["output"]
    assert (await (await client.get("/api/jobs", headers=AUTH)).json())["jobs"] == []
    assert list((state / "jobs").iterdir()) == []
    resp = await client.post(PLUGIN, params={"api": "deploy_dag"}, data=deploy_form(), headers=AUTH)
    assert resp.status == 507 and "state_dir" in (await resp.json())["output"]  # staging the upload
    assert list((state / "staging").iterdir()) == []

    (state / "filler").unlink()
    fill(dags)
    monkeypatch.setattr("gateway.dagfiles._check", checked_fine)
    resp = await client.post(PLUGIN, params={"api": "deploy_dag"}, data=deploy_form(), headers=AUTH)
    assert resp.status == 507 and "dags_folder" in (await resp.json())["output"]
    assert [path.name for path in dags.iterdir()] == ["filler"]


async def test_metrics_count_jobs_by_state_without_listing_them(make: Any) -> None:
    client = await make()
    await add_jobs(client, 3)
    text = await (await client.get("/metrics", headers=AUTH)).text()
    assert 'gateway_jobs{state="succeeded"} 3.0' in text and 'gateway_jobs{state="running"} 0.0' in text


async def test_a_followed_or_replayed_log_is_read_a_chunk_at_a_time(make: Any) -> None:
    client = await make()
    store = client.app[JOBS].store
    job = Job("a" * 16, "version", "airflow version", "admin", RunState.SUCCEEDED, 1.0, finished_at=2.0)
    await store.create(job)
    lines = [{"stream": "stdout", "text": f"{i} " + "x" * 1000} for i in range(1500)]  # 1.5 MB
    await store.append(job.id, lines)
    asked: list[int] = []
    read = store.read

    async def counted(job_id: str, offset: int, max_bytes: int) -> Any:
        asked.append(max_bytes)
        return await read(job_id, offset, max_bytes)

    store.read = counted
    resp = await client.get(f"/api/jobs/{job.id}/log", params={"stream": "true"}, headers=AUTH)
    followed = []
    while raw := await resp.content.readline():  # a reader taking a line at a time
        followed.append(raw)
    assert len(followed) == len(lines) + 1  # every line, then the result
    replay = await (await client.get(f"/api/jobs/{job.id}/log", headers=AUTH)).json()
    assert replay["events"] and len(asked) > 20 and max(asked) <= CHUNK_BYTES

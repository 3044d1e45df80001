"""The job table over each store: states, log replay by offset, live follow, cancel, what a restart finds.

PostgreSQL only: a job is cancelled through another replica's table.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import STATE_DIR, ApiError, StorageFull
from gateway.job_store import Event, FileStore, Job, JobStore
from gateway.job_store.base import CHUNK_BYTES, event_bytes
from gateway.job_table import FINAL_SAVE_ATTEMPTS, Jobs
from gateway.masking import Masker
from gateway.runner import Command, RunState

from ..support import PostgresServer
from .conftest import FullDisk, StoreFactory
from .test_runner_exec import make_runner


@contextlib.asynccontextmanager
async def opened(make_store: StoreFactory, replica: str = "replica-a") -> AsyncIterator[Jobs]:
    jobs = Jobs(make_store(replica), retention_s=3600, poll_s=0.2)
    await jobs.open()
    try:
        yield jobs
    finally:
        await jobs.close()


async def wait_for_state(jobs: Jobs, job_id: str, *states: RunState) -> None:
    for _ in range(400):
        job = await jobs.get(job_id)
        assert job is not None
        if job.state in states:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"job never reached {states}: {await jobs.get(job_id)}")


async def test_a_job_runs_logs_and_replays_from_any_offset(make_store: StoreFactory) -> None:
    async with opened(make_store) as jobs:
        job = await jobs.submit("test", Command(("lines", "3", "0.01")), "admin", make_runner().start)
        assert job.state is RunState.QUEUED
        await wait_for_state(jobs, job.id, RunState.SUCCEEDED)
        job = await jobs.get(job.id)
        assert job.exit_code == 0 and job.finished_at is not None
        events, end = await jobs.read(job, 0)
        assert [e["text"] for e in events] == ["line 0", "line 1", "line 2"]
        first, middle = await jobs.read(job, 0, max_bytes=1)
        assert len(first) == 1
        rest, again = await jobs.read(job, middle)
        assert [e["text"] for e in rest] == ["line 1", "line 2"] and again == end
        assert await jobs.read(job, end) == ([], end)
        followed = [(offset, event["text"]) async for offset, event in jobs.follow(job, 0)]
        assert [text for _, text in followed] == ["line 0", "line 1", "line 2"]
        assert followed[0][0] == middle and followed[-1][0] == end  # each event's offset resumes right after it


async def test_following_a_running_job_sees_lines_as_they_come(make_store: StoreFactory) -> None:
    async with opened(make_store) as jobs:
        job = await jobs.submit("test", Command(("lines", "4", "0.2")), "admin", make_runner().start)
        seen = []
        async for _, event in jobs.follow(job, 0):
            seen.append((event["text"], (await jobs.get(job.id)).finished))
        assert [text for text, _ in seen] == ["line 0", "line 1", "line 2", "line 3"]
        assert seen[0][1] is False  # the first line arrived while the job was still running


async def test_failed_timed_out_and_cancelled_jobs(make_store: StoreFactory) -> None:
    async with opened(make_store) as jobs:
        failed = await jobs.submit("x", Command(("exit", "3")), "admin", make_runner().start)
        slow = await jobs.submit("x", Command(("hang",)), "admin", make_runner(timeout_s=0.5, kill_grace_s=0.2).start)
        hanging = await jobs.submit("x", Command(("hang",)), "admin", make_runner().start)
        await wait_for_state(jobs, failed.id, RunState.FAILED)
        assert (await jobs.get(failed.id)).exit_code == 3
        await wait_for_state(jobs, slow.id, RunState.TIMED_OUT)
        await wait_for_state(jobs, hanging.id, RunState.RUNNING)
        assert (await jobs.cancel(hanging)).state is RunState.CANCELLED
        assert [j.id for j in await jobs.page(100)] == [hanging.id, slow.id, failed.id]


async def test_a_restart_keeps_finished_jobs_and_marks_running_ones_lost(make_store: StoreFactory) -> None:
    async with opened(make_store) as jobs:
        done = await jobs.submit("x", Command(("lines", "1", "0")), "admin", make_runner().start)
        running = await jobs.submit("x", Command(("hang",)), "admin", make_runner().start)
        await wait_for_state(jobs, done.id, RunState.SUCCEEDED)
        await wait_for_state(jobs, running.id, RunState.RUNNING)
    # Leaving the block is what app shutdown does: the hanging run is killed.
    async with opened(make_store, "replica-b") as after:
        assert (await after.get(done.id)).state is RunState.SUCCEEDED
        assert [e["text"] for e in (await after.read(done, 0))[0]] == ["line 0"]
        assert (await after.get(running.id)).state is RunState.LOST


async def test_a_job_log_never_holds_a_secret_of_its_request(make_store: StoreFactory) -> None:
    async with opened(make_store) as jobs:
        command = Command(("echo", "pw=hunter2-secret", "postgres://u:hunter2-secret@db/x"))
        job = await jobs.submit("connections", command, "admin", make_runner().start, Masker(["hunter2-secret"]))
        await wait_for_state(jobs, job.id, RunState.SUCCEEDED)
        events, _ = await jobs.read(job, 0)
        assert events and all("hunter2" not in event["text"] for event in events)
        assert "***" in (await jobs.get(job.id)).command and "hunter2" not in (await jobs.get(job.id)).command
        if make_store.url is None:
            on_disk = "".join(path.read_text() for path in make_store.directory.iterdir())
            assert "hunter2" not in on_disk and "***" in on_disk


async def test_an_offset_must_be_one_a_reader_was_given(make_store: StoreFactory) -> None:
    async with opened(make_store) as jobs:
        job = await jobs.submit("test", Command(("lines", "2", "0")), "admin", make_runner().start)
        await wait_for_state(jobs, job.id, RunState.SUCCEEDED)
        _, end = await jobs.read(job, 0)
        await jobs.check_offset(job, 0)
        await jobs.check_offset(job, end)
        bad = [end + 1, 10**18] + ([1, end - 1] if make_store.url is None else [])  # bytes: mid-event too
        for offset in bad:
            with pytest.raises(ApiError) as refused:
                await jobs.check_offset(job, offset)
            assert refused.value.status == 400


async def test_a_crash_while_running_is_found_lost_and_old_jobs_are_pruned(tmp_path: Path) -> None:
    (tmp_path / "abc.json").write_text(
        '{"id": "abc", "api": "test", "command": "airflow x", "owner": "admin", "state": "running", "created_at": 1}'
    )
    (tmp_path / "abc.log").write_text('{"stream": "stdout", "text": "before the crash"}\n')
    (tmp_path / "old.json").write_text(
        '{"id": "old", "api": "test", "command": "airflow x", "owner": "admin", "state": "succeeded",'
        ' "created_at": 1, "finished_at": 2}'
    )
    (tmp_path / "old.log").write_text("")
    jobs = Jobs(FileStore(tmp_path), retention_s=3600, poll_s=0.2)
    await jobs.open()
    lost = await jobs.get("abc")
    assert lost.state is RunState.LOST
    assert (await jobs.read(lost, 0))[0][0]["text"] == "before the crash"
    assert await jobs.get("old") is None and not (tmp_path / "old.log").exists()
    await jobs.close()


async def test_a_job_is_cancelled_through_another_replica(postgres_server: PostgresServer, tmp_path: Path) -> None:
    shared = StoreFactory(tmp_path, postgres_server.create_database())
    async with opened(shared, "replica-a") as a, opened(shared, "replica-b") as b:
        job = await a.submit("x", Command(("hang",)), "admin", make_runner().start)
        await wait_for_state(b, job.id, RunState.RUNNING)
        cancelled = await b.cancel(await b.get(job.id))
        assert cancelled.state is RunState.CANCELLED
        assert (await a.get(job.id)).state is RunState.CANCELLED


# A full state directory (files store): refused before anything starts; a running job ends failed, saying why.


async def first_line(jobs: Jobs, job: Job) -> asyncio.Task[None]:
    """Once ``job`` logged a line: its task, which ends once the job's end was saved (or given up on)."""
    task = jobs._tasks[job.id]
    async for _ in jobs.follow(job, 0):
        break
    return task


async def test_a_job_that_cannot_be_recorded_is_refused_and_never_started(
    make_store: StoreFactory, full_disk: FullDisk
) -> None:
    if make_store.url is not None:
        pytest.skip("the files store's own writes")
    started: list[Command] = []

    def start(command: Command) -> Any:
        started.append(command)
        return make_runner().start(command)

    async with opened(make_store) as jobs:
        with full_disk(), pytest.raises(StorageFull) as refused:
            await jobs.submit("test", Command(("lines", "1", "0")), "admin", start)
        assert refused.value.status == 507 and "state_dir" in refused.value.message
        assert started == [] and await jobs.page(100) == []  # never listed as queued


async def test_a_job_whose_output_cannot_be_saved_ends_failed_and_is_recorded_once_it_can(
    make_store: StoreFactory, full_disk: FullDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    if make_store.url is not None:
        pytest.skip("the files store's own writes")
    monkeypatch.setattr("gateway.job_table.FINAL_SAVE_FIRST_DELAY_S", 0.0)
    async with opened(make_store) as jobs:
        job = await jobs.submit("test", Command(("lines", "100000", "0.001")), "admin", make_runner().start)
        ended = await first_line(jobs, job)
        with full_disk(saves=2):  # the final save fails twice, then there is room again
            await ended
        assert full_disk.failed_saves == 2
        events, _ = await jobs.read(job, 0)
        assert 0 < len(events) < 100000  # stopped at the first line it could not write
    async with opened(make_store, "replica-b") as after:
        found = await after.get(job.id)
        assert found.state is RunState.FAILED and found.finished_at
        assert found.error == f"Stopped: its output could not be saved ({STATE_DIR} is full)"


async def test_the_final_save_is_tried_a_bounded_number_of_times(
    make_store: StoreFactory, full_disk: FullDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    if make_store.url is not None:
        pytest.skip("the files store's own writes")
    monkeypatch.setattr("gateway.job_table.FINAL_SAVE_FIRST_DELAY_S", 0.0)
    async with opened(make_store) as jobs:
        job = await jobs.submit("test", Command(("lines", "100000", "0.001")), "admin", make_runner().start)
        ended = await first_line(jobs, job)
        with full_disk():  # never any room
            await ended
        assert full_disk.failed_saves == FINAL_SAVE_ATTEMPTS
        assert (await jobs.get(job.id)).state is RunState.FAILED  # what this gateway answers meanwhile


# Followers read a chunk at a time, and only once the last one was taken.


class CountedReads:
    """The store's reads, as asked (``max_bytes``) and as answered (bytes of events)."""

    def __init__(self, store: JobStore) -> None:
        self.asked: list[int] = []
        self.answered: list[int] = []
        self._read = store.read

    async def __call__(self, job_id: str, offset: int, max_bytes: int) -> list[tuple[int, Event]]:
        found = await self._read(job_id, offset, max_bytes)
        self.asked.append(max_bytes)
        self.answered.append(sum(event_bytes(event) for _, event in found))
        return found


async def test_a_slow_follower_of_a_large_log_holds_one_chunk_at_a_time(make_store: StoreFactory) -> None:
    async with opened(make_store) as jobs:
        job = Job("a" * 16, "test", "airflow x", "admin", RunState.RUNNING, created_at=1.0)
        await jobs.store.create(job)
        lines = [{"stream": "stdout", "text": f"{i} " + "x" * 1000} for i in range(3000)]  # 3 MB
        for start in range(0, len(lines), 100):
            await jobs.store.append(job.id, lines[start : start + 100])
        job.state = RunState.SUCCEEDED
        await jobs.store.save(job)
        reads = CountedReads(jobs.store)
        jobs.store.read = reads  # type: ignore[method-assign]
        taken: list[Event] = []
        taken_bytes = 0
        async for _, event in jobs.follow(job, 0):
            # A slow client takes one event at a time: no chunk was read ahead of what it took.
            assert sum(reads.answered[:-1]) <= taken_bytes
            taken.append(event)
            taken_bytes += event_bytes(event)
            await asyncio.sleep(0)
        assert taken == lines
        assert max(reads.asked) <= CHUNK_BYTES and max(reads.answered) <= CHUNK_BYTES
        replayed, _ = await jobs.read(job, 0)  # a replay too asks a chunk at a time
        assert replayed and max(reads.asked) <= CHUNK_BYTES

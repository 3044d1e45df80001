"""The job store contract, the same for files and PostgreSQL: jobs, events by offset, wake-ups, retention.

PostgreSQL only: a second replica sees and cancels the first's jobs, a gone replica's running jobs are
``lost``, and the URL's password never reaches a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway.errors import StorageFull
from gateway.job_store import FileStore, Job, JobStore
from gateway.job_store.base import CHUNK_BYTES, Cursor, event_bytes
from gateway.runner import RunState

from ..support import PostgresServer, free_port, postgres_bindir
from .conftest import FullDisk, StoreFactory

EVENTS = [{"stream": "stdout", "text": f"line {i}"} for i in range(5)] + [{"stream": "stderr", "text": "é ✓ \\" + '"'}]


def new_job(job_id: str, state: RunState = RunState.RUNNING, **fields: Any) -> Job:
    fields = {"owner": "admin", "created_at": time.time()} | fields
    return Job(id=job_id, api="test", command="airflow x", state=state, **fields)


@contextlib.asynccontextmanager
async def opened(store: JobStore, cancelled: list[str] | None = None) -> AsyncIterator[JobStore]:
    await store.open((cancelled if cancelled is not None else []).append)
    try:
        yield store
    finally:
        await store.close()


async def test_jobs_are_kept_listed_newest_first_and_updated(make_store: StoreFactory) -> None:
    async with opened(make_store()) as store:
        first, second = new_job("a" * 16), new_job("b" * 16, daemon=True)
        second.created_at = first.created_at + 1
        await store.create(first)
        await store.create(second)
        assert [job.id for job in await store.page(100)] == [second.id, first.id]
        first.state, first.exit_code, first.finished_at, first.error = RunState.FAILED, 3, time.time(), "exit 3"
        await store.save(first)
        assert await store.get(first.id) == first
        assert (await store.get(second.id)).daemon is True
        assert await store.get("c" * 16) is None


async def test_events_replay_from_any_offset_without_loss_or_repeat(make_store: StoreFactory) -> None:
    async with opened(make_store()) as store:
        job = new_job("a" * 16)
        await store.create(job)
        assert await store.read(job.id, 0, 1 << 20) == [] and await store.end_offset(job.id) == 0
        await store.append(job.id, EVENTS[:2])
        await store.append(job.id, EVENTS[2:])
        everything = await store.read(job.id, 0, 1 << 20)
        assert [event for _, event in everything] == EVENTS
        end = everything[-1][0]
        assert await store.end_offset(job.id) == end
        for index, (offset, _) in enumerate(everything):
            assert await store.check_offset(job.id, offset) is None
            assert [event for _, event in await store.read(job.id, offset, 1 << 20)] == EVENTS[index + 1 :]
        small = await store.read(job.id, 0, 1)  # less room than one event: still one
        assert [event for _, event in small] == EVENTS[:1]
        assert await store.read(job.id, end, 1 << 20) == []
        assert await store.check_offset(job.id, 0) is None
        assert "past the end" in await store.check_offset(job.id, end + 1)


async def test_an_append_or_a_save_wakes_a_follower(make_store: StoreFactory) -> None:
    async with opened(make_store(poll_s=60)) as store:
        job = new_job("a" * 16)
        await store.create(job)
        waiter = store.wakeups.waiter(job.id)
        await store.append(job.id, EVENTS[:1])
        await asyncio.wait_for(waiter.wait(), 30)
        waiter = store.wakeups.waiter(job.id)
        job.state = RunState.SUCCEEDED
        await store.save(job)
        await asyncio.wait_for(waiter.wait(), 30)


async def test_retention_deletes_old_finished_jobs_and_their_events_only(make_store: StoreFactory) -> None:
    async with opened(make_store()) as store:
        old = new_job("a" * 16, RunState.SUCCEEDED, finished_at=time.time() - 100)
        fresh = new_job("b" * 16, RunState.FAILED, finished_at=time.time())
        running = new_job("c" * 16)
        for job in (old, fresh, running):
            await store.create(job)
            await store.append(job.id, EVENTS[:1])
        await store.prune(50)
        await store.prune(50)  # idempotent
        assert {job.id for job in await store.page(100)} == {fresh.id, running.id}
        assert await store.get(old.id) is None


async def test_a_restarted_store_finds_finished_jobs_and_their_events(make_store: StoreFactory) -> None:
    done = new_job("a" * 16, RunState.SUCCEEDED, finished_at=time.time(), exit_code=0)
    async with opened(make_store()) as store:
        await store.create(done)
        await store.append(done.id, EVENTS)
    async with opened(make_store(replica="replica-b")) as again:
        assert await again.get(done.id) == done
        assert [event for _, event in await again.read(done.id, 0, 1 << 20)] == EVENTS


# PostgreSQL: more than one replica.


@pytest.fixture
def shared(postgres_server: PostgresServer, tmp_path: Path) -> StoreFactory:
    """Stores of several replicas on one database."""
    return StoreFactory(tmp_path, postgres_server.create_database())


async def test_another_replica_sees_follows_and_cancels_a_job(shared: StoreFactory) -> None:
    cancelled: list[str] = []
    async with opened(shared("replica-a", poll_s=60), cancelled) as a, opened(shared("replica-b", poll_s=60)) as b:
        job = new_job("a" * 16)
        await a.create(job)
        assert (await b.get(job.id)).state is RunState.RUNNING
        waiter = b.wakeups.waiter(job.id)
        await a.append(job.id, EVENTS[:2])
        await asyncio.wait_for(waiter.wait(), 30)  # woken by NOTIFY: polling is once a minute here
        assert [event for _, event in await b.read(job.id, 0, 1 << 20)] == EVENTS[:2]
        await b.request_cancel(job.id)
        for _ in range(600):
            if cancelled:
                break
            await asyncio.sleep(0.05)
        assert cancelled == [job.id]


async def test_cancel_requests_are_also_found_by_polling(shared: StoreFactory) -> None:
    cancelled: list[str] = []
    async with opened(shared("replica-a", poll_s=0.2), cancelled) as a:
        job = new_job("a" * 16)
        await a.create(job)
        # Marked in the table without a notification, as behind a pooler that drops LISTEN.
        async with await psycopg.AsyncConnection.connect(shared.url, autocommit=True) as conn:
            await conn.execute("UPDATE airflow_rest_gateway.jobs SET cancel_requested = true WHERE id = %s", (job.id,))
        for _ in range(600):
            if cancelled:
                break
            await asyncio.sleep(0.05)
        assert cancelled == [job.id]


async def test_the_running_jobs_of_a_replica_that_is_gone_are_lost_not_the_others(shared: StoreFactory) -> None:
    running, queued = new_job("a" * 16), new_job("b" * 16, RunState.QUEUED)
    async with opened(shared("replica-a")) as a:
        for job in (running, queued):
            await a.create(job)
        async with opened(shared("replica-b")) as b:
            mine = new_job("c" * 16)
            await b.create(mine)
    # a and b are gone (their leases with them); c starts and sweeps.
    async with opened(shared("replica-c")) as c:
        for job in (running, queued, mine):
            found = await c.get(job.id)
            assert found.state is RunState.LOST and "lease" in found.error and found.finished_at
    async with opened(shared("replica-d")) as d, opened(shared("replica-e")) as e:
        alive = new_job("d" * 16)
        await d.create(alive)
        await e.close()  # a second sweep, by a replica that sees d's lease: d's job runs on
        await e.open(lambda _: None)
        assert (await e.get(alive.id)).state is RunState.RUNNING


async def test_a_full_database_is_a_507_and_the_job_is_not_kept(shared: StoreFactory) -> None:
    async with opened(shared("replica-a")) as store:
        # PostgreSQL's own "disk full" (SQLSTATE 53100), raised by the server on every new job.
        async with await psycopg.AsyncConnection.connect(shared.url, autocommit=True) as conn:
            await conn.execute(
                "CREATE FUNCTION airflow_rest_gateway.disk_is_full() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$;"
                " CREATE TRIGGER disk_is_full BEFORE INSERT ON airflow_rest_gateway.jobs"
                " FOR EACH ROW EXECUTE FUNCTION airflow_rest_gateway.disk_is_full()"
            )
        with pytest.raises(StorageFull) as refused:
            await store.create(new_job("a" * 16, RunState.QUEUED))
        assert refused.value.status == 507 and "PostgreSQL" in refused.value.message
        assert await store.page(100) == [] and await store.get("a" * 16) is None  # and the store still answers


async def test_an_unreachable_database_is_a_503_and_its_password_is_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if postgres_bindir() is None:
        pytest.skip("SKIPPED LOUDLY: PostgreSQL is not installed")
    from gateway.job_store.postgres import PostgresStore, StoreUnavailable

    password = "pw-never-logged-4711"
    store = PostgresStore(f"postgresql://gw:{password}@127.0.0.1:{free_port()}/jobs", "replica-a", 30, 1)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreUnavailable) as refused:
        await store.open(lambda _: None)
    assert refused.value.status == 503 and password not in refused.value.message
    assert caplog.records and password not in caplog.text
    await store.close()


# Bounds: the list a page at a time, the log a chunk at a time.


async def test_the_list_comes_in_pages_newest_first_without_loss_or_repeat(make_store: StoreFactory) -> None:
    async with opened(make_store()) as store:
        jobs = [new_job(f"{i:016x}", owner=("ops" if i % 3 == 0 else "admin")) for i in range(11)]
        for index, job in enumerate(jobs):
            job.created_at = 1000.0 + index // 2  # pairs created at the same time: the id decides
            await store.create(job)
        newest_first = sorted(jobs, key=lambda job: (job.created_at, job.id), reverse=True)
        for owner in (None, "ops", "admin"):
            expected = [job.id for job in newest_first if owner is None or job.owner == owner]
            seen: list[str] = []
            before = None
            while page := await store.page(3, before, owner):
                assert len(page) == 3 or len(seen) + len(page) == len(expected)  # full pages, of owner's only
                seen += [job.id for job in page]
                before = Cursor.parse(Cursor.after(page[-1]).token())
            assert seen == expected
        assert await store.page(1000, Cursor(0.5, "0")) == []


async def test_jobs_are_counted_by_state(make_store: StoreFactory) -> None:
    async with opened(make_store()) as store:
        for job in (new_job("a" * 16), new_job("b" * 16), new_job("c" * 16, RunState.FAILED, finished_at=1.0)):
            await store.create(job)
        counts = await store.count_by_state()
        assert set(counts) == set(RunState)
        assert (counts[RunState.RUNNING], counts[RunState.FAILED], counts[RunState.QUEUED]) == (2, 1, 0)


async def test_a_read_holds_one_chunk_whatever_the_log(make_store: StoreFactory) -> None:
    async with opened(make_store()) as store:
        job = new_job("a" * 16)
        await store.create(job)
        lines = [{"stream": "stdout", "text": f"{i:06d} " + "x" * 1000} for i in range(1500)]  # 1.5 MB
        for start in range(0, len(lines), 100):
            await store.append(job.id, lines[start : start + 100])
        offset, back = 0, []
        while found := await store.read(job.id, offset, CHUNK_BYTES):
            assert sum(event_bytes(event) for _, event in found) <= CHUNK_BYTES
            back += [event for _, event in found]
            offset = found[-1][0]
        assert back == lines


@pytest.mark.parametrize("name", ["not-a-cursor", "1_", "_abc", "nan_abc", "inf_abc", "-1.0_abc", "1.0_a/b", "1e400_a"])
def test_a_cursor_is_only_what_a_page_gave(name: str) -> None:
    assert Cursor.parse(name) is None
    assert Cursor.parse(Cursor(1718000000.123456, "ab" * 8).token()) == Cursor(1718000000.123456, "ab" * 8)


# A full state directory (files): a refusal that leaves nothing behind.


def only_files(make_store: StoreFactory) -> FileStore:
    if make_store.url is not None:
        pytest.skip("the files store's own writes")
    store = make_store()
    assert isinstance(store, FileStore)
    return store


async def test_a_job_whose_creation_cannot_be_written_is_not_kept(
    make_store: StoreFactory, full_disk: FullDisk
) -> None:
    async with opened(only_files(make_store)) as store:
        with full_disk(), pytest.raises(StorageFull) as refused:
            await store.create(new_job("a" * 16, RunState.QUEUED))
        assert refused.value.status == 507 and "state_dir" in refused.value.message
        assert await store.page(100) == [] and await store.get("a" * 16) is None
        assert list(make_store.directory.iterdir()) == []  # no log, no metadata, no temporary file


async def test_a_save_or_an_append_that_cannot_be_written_leaves_what_was_there(
    make_store: StoreFactory, full_disk: FullDisk
) -> None:
    async with opened(only_files(make_store)) as store:
        job = new_job("a" * 16)
        await store.create(job)
        await store.append(job.id, EVENTS[:2])
        log_before = (make_store.directory / f"{job.id}.log").read_bytes()
        meta_before = (make_store.directory / f"{job.id}.json").read_bytes()
        with full_disk():
            with pytest.raises(StorageFull):
                await store.append(job.id, EVENTS[2:])
            job.state, job.finished_at = RunState.SUCCEEDED, time.time()
            with pytest.raises(StorageFull):
                await store.save(job)
        assert (make_store.directory / f"{job.id}.log").read_bytes() == log_before
        assert (make_store.directory / f"{job.id}.json").read_bytes() == meta_before
        assert sorted(path.name for path in make_store.directory.iterdir()) == [f"{job.id}.json", f"{job.id}.log"]
        await store.append(job.id, EVENTS[2:])  # room again: the log goes on whole
        assert [event for _, event in await store.read(job.id, 0, 1 << 20)] == EVENTS

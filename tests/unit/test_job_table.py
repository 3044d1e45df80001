"""The job table: states, log replay by offset, cancel, and what a restart finds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.errors import ApiError
from gateway.job_table import Jobs
from gateway.masking import Masker
from gateway.runner import Command, RunState

from .test_runner_exec import make_runner


async def wait_for_state(jobs: Jobs, job_id: str, *states: RunState) -> None:
    for _ in range(400):
        job = jobs.get(job_id)
        assert job is not None
        if job.state in states:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"job never reached {states}: {jobs.get(job_id)}")


async def test_a_job_runs_logs_and_replays_from_any_offset(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path, retention_s=3600)
    jobs.load()
    job = jobs.submit("test", Command(("lines", "3", "0.01")), "admin", make_runner().start)
    assert job.state is RunState.QUEUED
    await wait_for_state(jobs, job.id, RunState.SUCCEEDED)
    assert job.exit_code == 0 and job.finished_at is not None
    events, end = jobs.read(job, 0)
    assert [e["text"] for e in events] == ["line 0", "line 1", "line 2"]
    first, middle = jobs.read(job, 0, max_bytes=40)
    assert len(first) == 1
    rest, again = jobs.read(job, middle)
    assert [e["text"] for e in rest] == ["line 1", "line 2"] and again == end
    assert jobs.read(job, end) == ([], end)
    followed = [(event["text"], after) async for event, after in jobs.follow(job, 0)]
    assert [text for text, _ in followed] == ["line 0", "line 1", "line 2"]
    assert followed[0][1] == middle and followed[-1][1] == end  # each event's resume point
    assert [e["text"] async for e, _ in jobs.follow(job, followed[0][1])] == ["line 1", "line 2"]


async def test_following_a_running_job_sees_lines_as_they_come(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path, retention_s=3600)
    jobs.load()
    job = jobs.submit("test", Command(("lines", "4", "0.2")), "admin", make_runner().start)
    seen = []
    async for event, _ in jobs.follow(job, 0):
        seen.append((event["text"], job.finished))
    assert [text for text, _ in seen] == ["line 0", "line 1", "line 2", "line 3"]
    assert seen[0][1] is False  # the first line arrived while the job was still running


async def test_failed_timed_out_and_cancelled_jobs(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path, retention_s=3600)
    jobs.load()
    failed = jobs.submit("x", Command(("exit", "3")), "admin", make_runner().start)
    slow = jobs.submit("x", Command(("hang",)), "admin", make_runner(timeout_s=0.5, kill_grace_s=0.2).start)
    hanging = jobs.submit("x", Command(("hang",)), "admin", make_runner().start)
    await wait_for_state(jobs, failed.id, RunState.FAILED)
    assert failed.exit_code == 3
    await wait_for_state(jobs, slow.id, RunState.TIMED_OUT)
    await wait_for_state(jobs, hanging.id, RunState.RUNNING)
    await jobs.cancel(hanging)
    assert hanging.state is RunState.CANCELLED
    assert [j.id for j in jobs.newest_first()] == [hanging.id, slow.id, failed.id]


async def test_a_restart_keeps_finished_jobs_and_marks_running_ones_lost(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path, retention_s=3600)
    jobs.load()
    done = jobs.submit("x", Command(("lines", "1", "0")), "admin", make_runner().start)
    running = jobs.submit("x", Command(("hang",)), "admin", make_runner().start)
    await wait_for_state(jobs, done.id, RunState.SUCCEEDED)
    await wait_for_state(jobs, running.id, RunState.RUNNING)
    await jobs.close()  # what app shutdown does: the hanging run is killed

    after = Jobs(tmp_path, retention_s=3600)
    after.load()
    assert after.get(done.id).state is RunState.SUCCEEDED
    assert [e["text"] for e in after.read(after.get(done.id), 0)[0]] == ["line 0"]
    assert after.get(running.id).state is RunState.LOST


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
    jobs = Jobs(tmp_path, retention_s=3600)
    jobs.load()
    assert jobs.get("abc").state is RunState.LOST
    assert jobs.read(jobs.get("abc"), 0)[0][0]["text"] == "before the crash"
    assert jobs.get("old") is None and not (tmp_path / "old.log").exists()


async def test_a_job_log_never_holds_a_secret_of_its_request(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path, retention_s=3600)
    jobs.load()
    command = Command(("echo", "pw=hunter2-secret", "postgres://u:hunter2-secret@db/x"))
    job = jobs.submit("connections", command, "admin", make_runner().start, Masker(["hunter2-secret"]))
    await wait_for_state(jobs, job.id, RunState.SUCCEEDED)
    on_disk = (tmp_path / f"{job.id}.log").read_text() + (tmp_path / f"{job.id}.json").read_text()
    assert "hunter2" not in on_disk and "***" in on_disk
    events, _ = jobs.read(job, 0)
    assert events and all("hunter2" not in event["text"] for event in events)


async def test_an_offset_must_start_an_event_and_lie_within_the_log(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path, retention_s=3600)
    jobs.load()
    job = jobs.submit("test", Command(("lines", "2", "0")), "admin", make_runner().start)
    await wait_for_state(jobs, job.id, RunState.SUCCEEDED)
    _, end = jobs.read(job, 0)
    jobs.check_offset(job, 0)
    jobs.check_offset(job, end)
    for bad in (1, end - 1, end + 1, 10**18):
        with pytest.raises(ApiError) as refused:
            jobs.check_offset(job, bad)
        assert refused.value.status == 400

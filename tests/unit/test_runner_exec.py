"""The exec runner against a fake executable: floods, hangs, crashes, grandchildren, timeouts, cancellation."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from gateway.runner import Command, CommandRunner, ExecRunner, RunnerUnavailable, RunState, collect
from gateway.runner.admission import Admission

from ..support import OWNER_PREFIX, REPO, owned_processes, pid_alive

FAKE = str(REPO / "tests" / "fakes" / "fake_airflow_for_runner_tests.py")


def make_runner(timeout_s: float = 30.0, kill_grace_s: float = 1.0, max_output_bytes: int = 1 << 24) -> CommandRunner:
    backend = ExecRunner(
        executable=FAKE,
        python=sys.executable,
        env={"PATH": "/usr/bin:/bin"},
        timeout_s=timeout_s,
        kill_grace_s=kill_grace_s,
        owner=f"{OWNER_PREFIX}runner-test",
    )
    return CommandRunner(backend, Admission(max_concurrency=4, max_queue=4), max_output_bytes)


async def test_argv_is_passed_as_is_and_stdin_is_devnull() -> None:
    result = await make_runner().run(Command(("echo", "a b", "$(id)", "--", "-x")))
    assert result.state is RunState.SUCCEEDED
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"argv": ["a b", "$(id)", "--", "-x"], "stdin_is_devnull": True}


async def test_exit_code_and_stderr_are_reported() -> None:
    result = await make_runner().run(Command(("exit", "7")))
    assert result.state is RunState.FAILED
    assert result.exit_code == 7
    assert "failing on purpose" in result.stderr


async def test_both_pipes_far_past_their_buffers_do_not_deadlock() -> None:
    result = await make_runner().run(Command(("flood", str(2 * 1024 * 1024))))
    assert result.exit_code == 0
    assert len(result.stdout) >= 2_000_000
    assert len(result.stderr) >= 2_000_000
    assert not result.truncated


async def test_output_past_the_cap_is_dropped_and_flagged_but_the_command_finishes() -> None:
    result = await make_runner(max_output_bytes=100_000).run(Command(("flood", str(1024 * 1024))))
    assert result.exit_code == 0
    assert result.truncated
    assert len(result.stdout) + len(result.stderr) == 100_000


async def test_a_line_longer_than_any_buffer_is_fine() -> None:
    result = await make_runner().run(Command(("longline", str(3 * 1024 * 1024))))
    assert result.exit_code == 0
    assert len(result.stdout) == 3 * 1024 * 1024 + 1


async def test_timeout_kills_the_whole_group_including_grandchildren() -> None:
    result = await make_runner(timeout_s=1.0).run(Command(("hang",)))
    assert result.state is RunState.TIMED_OUT
    assert "started" in result.stdout
    assert owned_processes(f"{OWNER_PREFIX}runner-test") == []


async def test_stopping_a_run_reaches_descendants_that_left_its_group() -> None:
    runner = make_runner(kill_grace_s=0.2)
    async with runner.start(Command(("escape",))) as run:
        async for chunk in run.output():
            assert chunk.data.startswith(b"escaped")
            break
    assert run.state is RunState.CANCELLED
    assert owned_processes(f"{OWNER_PREFIX}runner-test") == []


async def test_sigterm_ignored_escalates_to_sigkill() -> None:
    result = await make_runner(timeout_s=0.5, kill_grace_s=0.5).run(Command(("ignore-term",)))
    assert result.state is RunState.TIMED_OUT
    assert result.exit_code == -9


async def test_grandchild_holding_the_pipe_is_killed_when_the_command_exits() -> None:
    result = await make_runner().run(Command(("leave-grandchild",)))
    assert result.state is RunState.SUCCEEDED
    assert "parent done" in result.stdout
    assert owned_processes(f"{OWNER_PREFIX}runner-test") == []


async def test_a_crash_is_a_failure_with_the_signal_as_exit_code() -> None:
    result = await make_runner().run(Command(("crash",)))
    assert result.state is RunState.FAILED
    assert result.exit_code == -9
    assert "about to crash" in result.stdout


async def test_leaving_the_run_early_cancels_and_reaps_it() -> None:
    runner = make_runner()
    async with runner.start(Command(("hang",))) as run:
        async for chunk in run.output():
            assert chunk.data.startswith(b"started")
            break
    assert run.state is RunState.CANCELLED
    assert owned_processes(f"{OWNER_PREFIX}runner-test") == []


async def test_a_cancelled_request_task_still_reaps_its_process() -> None:
    runner = make_runner()
    started = asyncio.Event()

    async def consume() -> None:
        async with runner.start(Command(("lines", "100", "0.1"))) as run:
            async for _ in run.output():
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert owned_processes(f"{OWNER_PREFIX}runner-test") == []


async def test_lines_arrive_while_the_command_is_still_running() -> None:
    runner = make_runner()
    async with runner.start(Command(("lines", "3", "0.3"))) as run:
        first = await anext(run.output().__aiter__())
        assert first.data.startswith(b"line 0")
        assert run.exit_code is None
        rest = await collect(run, 1 << 20)
    assert rest.exit_code == 0


async def test_missing_executable_is_a_clear_error() -> None:
    backend = ExecRunner(
        executable="/nonexistent/airflow", python=sys.executable, env={}, timeout_s=5, kill_grace_s=1, owner="x"
    )
    runner = CommandRunner(backend, Admission(1, 0), 1024)
    with pytest.raises(RunnerUnavailable, match="/nonexistent/airflow"):
        await runner.run(Command(("version",)))
    assert runner.admission.running == 0


async def test_files_are_materialized_privately_and_removed_after() -> None:
    command = Command(("echo", "{file:data.json}"), files={"data.json": b"{}"})
    result = await make_runner().run(command)
    path = json.loads(result.stdout)["argv"][0]
    assert path.endswith("/data.json")
    assert not await asyncio.to_thread(os.path.exists, path)


def test_display_masks_secrets_and_quotes_for_a_shell() -> None:
    command = Command(("connections", "add", "--conn-uri=postgres://u:pw123@h/db", "--", "my conn"), secrets=("pw123",))
    assert command.display() == "airflow connections add '--conn-uri=postgres://u:***@h/db' -- 'my conn'"


async def test_a_daemon_that_double_forks_is_killed_when_its_command_exits(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    result = await make_runner().run(Command(("daemonize", str(pid_file))))
    assert result.state is RunState.SUCCEEDED and "daemonized" in result.stdout
    assert not pid_alive(int(pid_file.read_text()))


async def test_a_daemon_that_double_forks_is_killed_on_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    result = await make_runner(timeout_s=1.0, kill_grace_s=0.2).run(Command(("daemonize", str(pid_file), "stay")))
    assert result.state is RunState.TIMED_OUT
    assert not pid_alive(int(pid_file.read_text()))

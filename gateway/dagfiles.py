"""Deploying DAG files: checked in a child first, written atomically, only ever inside the DAGs folder.

Order matters. The upload is parsed from a private staging copy, so a file with import errors is
refused and nothing in the DAGs folder changes. A good file is written under a temporary
non-``.py`` name (the dag-processor ignores it) and renamed into place, so nobody reads half a file.
A full disk — the state directory, where uploads are staged, or the DAGs folder — is a 507 naming it,
and leaves no temporary file behind.
Then it is serialized at once, which makes ``list_dags`` and ``trigger_dag`` see it immediately.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

from aiohttp import web

from .catalog import DATA_ENV, Answer, ApiError, Upload, Values
from .errors import DAGS_FOLDER, STATE_DIR, full_is_507
from .keys import DEPLOY_LOCK, RUNNER, SETTINGS
from .output import classify_failure
from .runner import Command, CommandRunner, RunResult, RunState

FILENAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,196}\.py")


def target_path(dags_folder: Path, filename: str) -> Path:
    """Where an upload named ``filename`` goes; refuses anything that is not a plain file name."""
    if not FILENAME.fullmatch(filename or ""):
        raise ApiError(
            400,
            "'dag_file' must be named like my_dag.py (letters, digits, '_', '.', '-'; ending in .py; at most "
            f"200 characters), got {filename!r}",
        )
    target = (dags_folder / filename).resolve()
    if target.parent != dags_folder.resolve():
        raise ApiError(400, f"'dag_file' {filename!r} would be written outside the DAGs folder")
    return target


def helper_json(result: RunResult) -> dict[str, Any]:
    """The JSON object a helper prints last, or an :class:`ApiError` describing why there is none.

    The helpers run the uploaded file's code, and nothing else that could fail on its own: a helper
    that dies, exits early, hangs or prints no answer was ended by that code, so it is the upload's
    fault (400) — unless the runner itself could not run it (503, raised before we get here).
    """
    if result.exit_code == 0 and result.state is RunState.SUCCEEDED:
        for line in reversed(result.stdout.strip().splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    break
    if result.state is RunState.TIMED_OUT:
        message = "importing it took longer than deploy.check_timeout_s"
    elif result.exit_code is not None and result.exit_code < 0:
        message = f"importing it killed the checking process (signal {-result.exit_code})"
    elif result.exit_code == 0:
        message = "importing it ended the checking process before it could answer (exit code 0)"
    else:
        message = classify_failure(result.exit_code, result.stdout, result.stderr).message
    raise ApiError(400, f"Checking the DAG file failed; nothing was deployed: {message}")


def _write_atomically(target: Path, content: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Short and not *.py: the dag-processor ignores it, and no name is too long for the filesystem.
    temporary = target.with_name(f".deploy-{secrets.token_hex(6)}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _stage(staging: Path, upload: Upload) -> Path:
    staging.mkdir(mode=0o700, parents=True)
    staged = staging / upload.filename
    staged.write_bytes(upload.content)
    return staged


async def _check(runner: CommandRunner, staging: Path, upload: Upload, caller: str, timeout_s: float) -> dict[str, Any]:
    with full_is_507(STATE_DIR):
        staged = await asyncio.to_thread(_stage, staging, upload)
    command = Command(("check-dag", str(staged)), helper=True, env=DATA_ENV).run_as(caller)
    return helper_json(await runner.run(command, timeout_s))


def _restore(target: Path, previous: bytes | None) -> None:
    if previous is None:
        target.unlink(missing_ok=True)
    else:
        _write_atomically(target, previous)


async def deploy_dag(app: web.Application, values: Values, caller: str) -> Answer:
    settings = app[SETTINGS]
    runner = app[RUNNER]
    upload: Upload = values["dag_file"]
    if values.get("pause") and values.get("unpause"):
        raise ApiError(400, "Give pause or unpause, not both")
    if not upload.content.strip():
        raise ApiError(400, "'dag_file' is empty")
    if len(upload.content) > settings.deploy.max_bytes:
        raise ApiError(413, f"'dag_file' is larger than {settings.deploy.max_bytes} bytes (deploy.max_bytes)")
    dags_folder = settings.dags_folder
    target = target_path(dags_folder, upload.filename)

    async with app[DEPLOY_LOCK]:
        existed = target.exists()
        if existed and not values.get("force"):
            raise ApiError(
                400, f"The file '{upload.filename}' already exists in the DAGs folder; pass force=true to replace it"
            )
        staging = settings.state_dir / "staging" / secrets.token_hex(8)
        try:
            checked = await _check(runner, staging, upload, caller, settings.deploy.check_timeout_s)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if checked["import_errors"]:
            raise ApiError(
                400,
                f"'{upload.filename}' has import errors; nothing was deployed:\n" + "\n".join(checked["import_errors"]),
            )
        previous = await asyncio.to_thread(target.read_bytes) if existed else None
        with full_is_507(DAGS_FOLDER):
            await asyncio.to_thread(_write_atomically, target, upload.content)
        pause_flag = ("--pause",) if values.get("pause") else ("--unpause",) if values.get("unpause") else ()
        sync = Command(("sync-dag", str(target), *pause_flag), helper=True, env=DATA_ENV).run_as(caller)
        try:
            synced = helper_json(await runner.run(sync, settings.deploy.check_timeout_s))
        except BaseException:
            # The file parsed in the check but not now (its code is not deterministic): put things back.
            await asyncio.to_thread(_restore, target, previous)
            raise
    data = {
        "file": upload.filename,
        "replaced": existed,
        "dag_ids": synced["dag_ids"],
        "is_paused": synced["is_paused"],
    }
    warning = None if synced["dag_ids"] else f"'{upload.filename}' defines no DAG"
    return Answer(200, f"DAG file '{upload.filename}' has been deployed", data=data, warning=warning)

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.job_store import FileStore, JobStore

from ..support import REPO, PostgresServer, postgres_bindir, settings_dict

FAKE = str(REPO / "tests" / "fakes" / "fake_airflow_for_runner_tests.py")


@pytest.fixture
def make(aiohttp_client: Any, tmp_path: Path) -> Any:
    """``await make(section=...)``: the real app with the fake executable (runner edge cases only, no Airflow)."""

    async def make(**sections: Any) -> TestClient:
        data = settings_dict(tmp_path, **sections)
        data["airflow"]["executable"] = FAKE
        data.setdefault("runner", {}).setdefault("mode", "exec")
        # Reads go to the fake executable too: a real Airflow worker has no place in these tests.
        data.setdefault("apis", {}).setdefault("fast_reads", False)
        return await aiohttp_client(create_app(parse_settings(data, environ={})))

    return make


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server for the job store's tests (a database per test)."""
    if postgres_bindir() is None:
        pytest.skip("SKIPPED LOUDLY: PostgreSQL is not installed, the PostgreSQL job store is untested")
    server = PostgresServer()
    yield server
    server.stop()


class StoreFactory:
    """``make_store(replica=..., lease_s=...)``: a new store on one test's one place (a directory or a database);
    stores made twice see the same jobs, as a restarted gateway or a second replica does."""

    def __init__(self, directory: Path, url: str | None) -> None:
        self.directory, self.url = directory, url

    def __call__(self, replica: str = "replica-a", lease_s: float = 30.0, poll_s: float = 0.2) -> JobStore:
        if self.url is None:
            return FileStore(self.directory)
        from gateway.job_store.postgres import PostgresStore

        return PostgresStore(self.url, replica, lease_s, poll_s)


@pytest.fixture(params=["files", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    url = request.getfixturevalue("postgres_server").create_database() if request.param == "postgresql" else None
    return StoreFactory(tmp_path / "jobs", url)


def _half_open(*args: Any, **kwargs: Any) -> Any:
    """``open`` on a disk that fills up: a write puts down half of what it is given, then fails (ENOSPC)."""
    handle = open(*args, **kwargs)  # noqa: SIM115 (the caller closes it)
    if "w" in handle.mode or "a" in handle.mode:
        write = handle.write

        def half(data: Any) -> int:
            write(data[: len(data) // 2])
            handle.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        handle.write = half
    return handle


class FullDisk:
    """``with full_disk():`` the files store's writes find no space after putting down half of what they were
    given — its log appends (``appends``) and its metadata writes (the first ``saves`` of them; None: all)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        #: Metadata writes that failed so far.
        self.failed_saves = 0

    @contextlib.contextmanager
    def __call__(self, appends: bool = True, saves: int | None = None) -> Iterator[None]:
        real_write_text = Path.write_text

        def write_text(path: Path, text: str) -> int:
            if saves is not None and self.failed_saves >= saves:
                return real_write_text(path, text)
            self.failed_saves += 1
            with _half_open(path, "w") as handle:
                return handle.write(text)

        with self._monkeypatch.context() as patch:
            if appends:
                patch.setattr("gateway.job_store.files.open", _half_open, raising=False)
            patch.setattr(Path, "write_text", write_text)
            yield


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> FullDisk:
    return FullDisk(monkeypatch)

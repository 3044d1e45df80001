from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import airflow_release
from gateway.app import build_backend, create_app
from gateway.config import parse_settings
from gateway.runner import WarmRunner
from gateway.worker.client import AirflowWorker

from .support import (
    OWNER_PREFIX,
    PostgresServer,
    assert_nothing_left,
    make_airflow_home,
    postgres_bindir,
    settings_dict,
)


class Homes:
    """The session's Airflow homes, made on first use: one on SQLite, one on a throw-away PostgreSQL server."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._homes: dict[str, Path] = {}
        self.postgres: PostgresServer | None = None

    def get(self, database: str) -> Path:
        """The session's shared home on ``database``."""
        if database not in self._homes:
            self._homes[database] = self.fresh(database)
        return self._homes[database]

    def fresh(self, database: str) -> Path:
        """A home of its own (on PostgreSQL: a database of its own on the session's server)."""
        home = self._tmp.mktemp(f"airflow_home_{database}")
        if database == "postgresql":
            if postgres_bindir() is None:
                pytest.skip("PostgreSQL is not installed (./run.sh test installs Debian's postgresql)")
            self.postgres = self.postgres or PostgresServer()
            return make_airflow_home(home, self.postgres.create_database())
        return make_airflow_home(home)

    def close(self) -> None:
        if self.postgres is not None:
            self.postgres.stop()


@pytest.fixture(scope="session")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homes]:
    made = Homes(tmp_path_factory)
    yield made
    made.close()


#: On the older supported Airflows (3.1, 3.2), the reduced suite (``-m oldest``) runs in the default warm mode
#: on one database: Airflow 3.2's in-process Execution API may serve a request before its start-up has finished
#: (apache/airflow#65945), which breaks ``tasks test`` in a fresh process; the warm runner starts it fully.
ON_OLDEST = airflow_release.series() < airflow_release.NEWEST


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Runner modes, and the databases a module asks for with ``pytest.mark.databases(...)``.

    A module on both databases runs each test in exec and warm mode on SQLite and in warm mode on PostgreSQL.
    """
    marker = metafunc.definition.get_closest_marker("databases")
    databases = marker.args if marker else ("sqlite",)
    if ON_OLDEST:
        databases = databases[:1]
    if "runner_mode" in metafunc.fixturenames:
        modes = ("warm",) if ON_OLDEST else ("exec", "warm")
        combos = [(mode, "sqlite") for mode in modes] if "sqlite" in databases else []
        combos += [("warm", db) for db in databases if db != "sqlite"]
        ids = [mode if db == "sqlite" else f"{mode}-{db}" for mode, db in combos]
        metafunc.parametrize(("runner_mode", "database"), combos, ids=ids)
    elif "database" in metafunc.fixturenames and databases != ("sqlite",):
        metafunc.parametrize("database", databases)


@pytest.fixture
def database() -> str:
    return "sqlite"


@pytest.fixture
def airflow_home(homes: Homes, database: str) -> Path:
    return homes.get(database)


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Any:
    yield
    assert_nothing_left()


@pytest.fixture(scope="session")
async def warm_backends() -> AsyncIterator[dict[str, WarmRunner]]:
    """One warm fork server per database for every warm-mode test of the session (warming up costs about 6 s)."""
    backends: dict[str, WarmRunner] = {}
    yield backends
    for backend in backends.values():
        await backend.close()


@pytest.fixture
async def warm_backend(warm_backends: dict[str, WarmRunner], airflow_home: Path, database: str) -> WarmRunner:
    if database not in warm_backends:
        settings = parse_settings(settings_dict(airflow_home, runner={"mode": "warm"}))
        backend = build_backend(settings, f"{OWNER_PREFIX}shared-warm-{database}")
        assert isinstance(backend, WarmRunner)
        backend.open()
        warm_backends[database] = backend
    return warm_backends[database]


@pytest.fixture(scope="session")
async def airflow_workers() -> AsyncIterator[dict[str, AirflowWorker]]:
    """One Airflow worker (experimental API) per database for the session."""
    workers: dict[str, AirflowWorker] = {}
    yield workers
    for worker in workers.values():
        await worker.close()


@pytest.fixture
async def airflow_worker(airflow_workers: dict[str, AirflowWorker], airflow_home: Path, database: str) -> AirflowWorker:
    if database not in airflow_workers:
        settings = parse_settings(settings_dict(airflow_home))
        airflow_workers[database] = AirflowWorker(
            python=settings.airflow_python,
            env=settings.child_env(os.environ),
            owner=f"{OWNER_PREFIX}shared-worker-{database}",
            startup_timeout_s=120,
        )
    return airflow_workers[database]


@pytest.fixture
def shared_backend(runner_mode: str, request: pytest.FixtureRequest) -> WarmRunner | None:
    return request.getfixturevalue("warm_backend") if runner_mode == "warm" else None


@pytest.fixture
def make_client(
    aiohttp_client: Any, airflow_home: Path, runner_mode: str, shared_backend: WarmRunner | None
) -> Callable[..., Any]:
    """``await make_client(runner={...})``: the real app on the session's Airflow home, in each runner mode.

    Warm-mode apps share the session's fork server unless they configure the runner themselves.
    """

    async def make(**sections: Any) -> TestClient:
        runner = {"mode": runner_mode, **sections.pop("runner", {})}
        settings = parse_settings(settings_dict(airflow_home, runner=runner, **sections))
        backend = shared_backend if set(runner) == {"mode"} else None
        return await aiohttp_client(create_app(settings, backend=backend))

    return make

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import build_backend, create_app
from gateway.config import parse_settings
from gateway.runner import WarmRunner
from gateway.worker.client import AirflowWorker

from .support import OWNER_PREFIX, assert_nothing_left, make_airflow_home, settings_dict


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_airflow_home(tmp_path_factory.mktemp("airflow_home"))


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Any:
    yield
    assert_nothing_left()


@pytest.fixture(scope="session")
async def warm_backend(airflow_home: Path) -> AsyncIterator[WarmRunner]:
    """One warm fork server for every warm-mode test of the session (warming up costs about 6 s)."""
    settings = parse_settings(settings_dict(airflow_home, runner={"mode": "warm"}))
    backend = build_backend(settings, f"{OWNER_PREFIX}shared-warm")
    assert isinstance(backend, WarmRunner)
    backend.open()
    yield backend
    await backend.close()


@pytest.fixture(scope="session")
async def airflow_worker(airflow_home: Path) -> AsyncIterator[AirflowWorker]:
    """One Airflow worker (experimental API) for the session."""
    settings = parse_settings(settings_dict(airflow_home))
    worker = AirflowWorker(
        python=settings.airflow_python,
        env=settings.child_env(os.environ),
        owner=f"{OWNER_PREFIX}shared-worker",
        startup_timeout_s=120,
    )
    yield worker
    await worker.close()


@pytest.fixture(params=["exec", "warm"])
def runner_mode(request: pytest.FixtureRequest) -> str:
    return request.param


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

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import parse_settings

from .support import assert_nothing_left, make_airflow_home, settings_dict


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_airflow_home(tmp_path_factory.mktemp("airflow_home"))


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Any:
    yield
    assert_nothing_left()


@pytest.fixture
def make_client(aiohttp_client: Any, airflow_home: Path) -> Callable[..., Any]:
    """``await make_client(runner={...})``: a test client of the real app on the session's Airflow home."""

    async def make(**sections: Any) -> TestClient:
        settings = parse_settings(settings_dict(airflow_home, **sections))
        return await aiohttp_client(create_app(settings))

    return make

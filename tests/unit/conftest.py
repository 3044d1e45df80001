from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import parse_settings

from ..support import REPO, settings_dict

FAKE = str(REPO / "tests" / "fakes" / "fake_airflow_for_runner_tests.py")


@pytest.fixture
def make(aiohttp_client: Any, tmp_path: Path) -> Any:
    """``await make(section=...)``: the real app with the fake executable (runner edge cases only, no Airflow)."""

    async def make(**sections: Any) -> TestClient:
        data = settings_dict(tmp_path, **sections)
        data["airflow"]["executable"] = FAKE
        data.setdefault("runner", {}).setdefault("mode", "exec")
        return await aiohttp_client(create_app(parse_settings(data, environ={})))

    return make

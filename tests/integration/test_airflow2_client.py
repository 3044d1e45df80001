"""Airflow 2's own experimental-API client (``json_client``), unchanged, against a real gateway on real Airflow 3.

The client comes from the apache-airflow 2.11 wheel, fetched with pip at test time (nothing of Airflow's
is in this repository) and loaded under another package name: Airflow 3 is the installed ``airflow``.
"""

from __future__ import annotations

import builtins
import random
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from ..support import AUTH, GatewayProcess, dag_source, settings_dict

pytestmark = pytest.mark.integration
AIRFLOW_2 = "2.11.0"
WHEEL = f"apache_airflow-{AIRFLOW_2}-py3-none-any.whl"
CLIENT_FILES = ("api_client", "json_client")
SHIM = "airflow2_client"


def _wheel(cache: Path) -> Path:
    """The apache-airflow 2 wheel, downloaded once into pytest's cache."""
    wheel = cache / WHEEL
    if wheel.exists():
        return wheel
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(cache)]
    done = subprocess.run(
        [*pip, f"apache-airflow=={AIRFLOW_2}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 or not wheel.exists():
        pytest.skip(f"SKIPPED LOUDLY: cannot fetch apache-airflow {AIRFLOW_2} from PyPI: {done.stderr[-800:]}")
    return wheel


def load_json_client(wheel: Path) -> ModuleType:
    """``airflow/api/client/json_client.py`` as module ``airflow2_client.json_client``, its source untouched.

    Its one Airflow import, ``from airflow.api.client import api_client``, is answered with the shim
    package (holding the wheel's ``api_client.py``) by the module's own ``__import__``: the installed
    Airflow 3 and ``sys.modules['airflow...']`` are never touched.
    """
    package = ModuleType(SHIM)
    package.__path__ = []
    sys.modules[SHIM] = package
    with zipfile.ZipFile(wheel) as archive:
        sources = {name: archive.read(f"airflow/api/client/{name}.py").decode() for name in CLIENT_FILES}

    def shim_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if name == "airflow.api.client" and level == 0:
            return package
        return builtins.__import__(name, globals, locals, fromlist, level)

    for name in CLIENT_FILES:
        module = ModuleType(f"{SHIM}.{name}")
        module.__dict__["__builtins__"] = {**vars(builtins), "__import__": shim_import}
        exec(compile(sources[name], f"{WHEEL}/airflow/api/client/{name}.py", "exec"), module.__dict__)
        sys.modules[module.__name__] = module
        setattr(package, name, module)
    return package.json_client


@pytest.fixture(scope="module")
def json_client(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    cache = getattr(pytestconfig, "cache", None)  # none under -p no:cacheprovider: a download per session
    directory = cache.mkdir("airflow2-wheel") if cache is not None else tmp_path_factory.mktemp("airflow2-wheel")
    return load_json_client(_wheel(Path(directory)))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, homes: Any) -> Iterator[GatewayProcess]:
    config = settings_dict(homes.get("sqlite"), runner={"mode": "exec"}, experimental={"warm_at_start": True})
    process = GatewayProcess(tmp_path_factory.mktemp("airflow2_client"), config)
    yield process
    process.stop()


@pytest.fixture
def client(json_client: ModuleType, gateway: GatewayProcess) -> Iterator[Any]:
    with httpx.Client(headers=AUTH, timeout=120) as session:
        yield json_client.Client(api_base_url=gateway.url, session=session)


def test_the_client_is_airflow_2s_beside_airflow_3(json_client: ModuleType) -> None:
    import airflow

    assert json_client.Client.trigger_dag.__code__.co_filename == f"{WHEEL}/airflow/api/client/json_client.py"
    assert json_client.Client.__mro__[1].__module__ == f"{SHIM}.api_client"
    assert airflow.__version__.startswith("3.")


def test_trigger_dag_without_conf_and_with_everything(client: Any) -> None:
    message = client.trigger_dag("gw_probe")  # run_id, conf, execution_date all null
    assert message.startswith("Created <DagRun gw_probe")
    when = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(seconds=random.randrange(300_000_000))
    run_id = f"json_client_{random.randrange(10**9)}"
    message = client.trigger_dag("gw_probe", run_id=run_id, conf={"who": "client"}, execution_date=when.isoformat())
    assert run_id in message
    with pytest.raises(OSError, match="already exists"):
        client.trigger_dag("gw_probe", run_id=run_id)


def test_lineage_at_the_triggered_date(client: Any) -> None:
    when = (datetime(2025, 3, 1, tzinfo=UTC) + timedelta(seconds=random.randrange(300_000_000))).replace(microsecond=0)
    client.trigger_dag("gw_assets", execution_date=when.isoformat())
    message = client.get_lineage("gw_assets", when.isoformat())
    assert "2 task(s)" in message and "gw_assets" in message
    with pytest.raises(OSError, match="not found"):
        client.get_lineage("gw_assets", "1990-01-01T00:00:00+00:00")


def test_pools_round_trip(client: Any) -> None:
    name = f"json_client_pool_{random.randrange(10**9)}"
    assert client.create_pool(name, 3, "from the 2.11 client", False) == (name, 3, "from the 2.11 client", False)
    assert client.get_pool(name) == (name, 3, "from the 2.11 client")
    assert (name, 3, "from the 2.11 client") in client.get_pools()
    assert client.delete_pool(name) == (name, 3, "from the 2.11 client")
    with pytest.raises(OSError, match="doesn't exist"):
        client.get_pool(name)


def test_delete_dag(client: Any, gateway: GatewayProcess) -> None:
    dag_id = f"json_client_delete_{random.randrange(10**9)}"
    files = {"dag_file": (f"{dag_id}.py", dag_source(dag_id).encode())}
    deployed = httpx.post(
        f"{gateway.url}/admin/rest_api/api", params={"api": "deploy_dag"}, files=files, headers=AUTH, timeout=120
    )
    assert deployed.status_code == 200, deployed.text
    message = client.delete_dag(dag_id)
    assert message.startswith("Removed ") and message.endswith(" record(s)")
    with pytest.raises(OSError, match="not found"):
        client.delete_dag(dag_id)

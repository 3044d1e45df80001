"""Shared test helpers: real Airflow homes, and the process table checks."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from gateway.runner import OWNER_ENV

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
AIRFLOW = str(BIN / "airflow")
TOKEN = "test-token-abcdefghijklmnop"
HEADER = "rest_api_plugin_http_token"
AUTH = {HEADER: TOKEN}
#: Debian's Chromium, driven by playwright (browser tests); screenshots go to test-artifacts/ (not committed).
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
#: Every gateway app made in this test process tags its children with this prefix.
OWNER_PREFIX = f"gw-{os.getpid()}-"


def dag_source(dag_id: str) -> str:
    """A minimal DAG file defining ``dag_id`` (one EmptyOperator)."""
    return (
        "import pendulum\nfrom airflow.sdk import DAG\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        f"with DAG({dag_id!r}, start_date=pendulum.datetime(2024, 1, 1), schedule=None):\n"
        "    EmptyOperator(task_id='only')\n"
    )


def airflow_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONWARNINGS="ignore",
        AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR",
    )
    return env


def make_airflow_home(home: Path, sql_alchemy_conn: str | None = None) -> Path:
    """A real, migrated AIRFLOW_HOME with the test DAGs serialized: SQLite, or the database at ``sql_alchemy_conn``.

    The connection is written into the home's airflow.cfg (as a deployment would), so every process
    started on this home, by the gateway or by a test, uses it.
    """
    env = airflow_env(home)
    if sql_alchemy_conn:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = sql_alchemy_conn
    (home / "dags").mkdir(parents=True, exist_ok=True)
    for dag in (REPO / "tests" / "dags").glob("*.py"):
        shutil.copy(dag, home / "dags" / dag.name)
    for argv in (["db", "migrate"], ["dags", "reserialize"]):
        done = subprocess.run([AIRFLOW, *argv], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        if sql_alchemy_conn:
            set_airflow_option(home, "database", "sql_alchemy_conn", sql_alchemy_conn)
    return home


def set_airflow_option(home: Path, section: str, key: str, value: str) -> None:
    """Set ``[section] key`` in the home's airflow.cfg, keeping the rest of the file as Airflow wrote it."""
    cfg = home / "airflow.cfg"
    lines = cfg.read_text().splitlines()
    current = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
        elif current == section and stripped.split("=")[0].strip() in (key, f"# {key}"):
            lines[index] = f"{key} = {value}"
            break
    else:
        raise AssertionError(f"[{section}] {key} is not in {cfg}")
    cfg.write_text("\n".join(lines) + "\n")


def postgres_bindir() -> Path | None:
    """Debian's PostgreSQL server binaries (the newest installed major version), if any."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


class PostgresServer:
    """A throw-away PostgreSQL server from Debian's packages: ``initdb`` and ``pg_ctl`` in a temporary
    directory, on loopback, tuned for tests (no fsync). Run as the ``postgres`` user when we are root."""

    def __init__(self) -> None:
        import tempfile

        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL's server binaries are not installed (Debian package postgresql)")
        self.bindir = bindir
        self.directory = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
        self.port = free_port()
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        data = self.directory / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c max_connections=400 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._options = options
        self._run("pg_ctl", "-D", str(data), "-l", str(self.directory / "server.log"), "-o", options, "-w", "start")
        self._databases = 0

    def _run(self, program: str, *args: str) -> str:
        done = subprocess.run(
            [*self._as_postgres, str(self.bindir / program), *args], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{program} failed: {done.stderr[-2000:]}"
        return done.stdout

    def create_database(self) -> str:
        """A new, empty database; its SQLAlchemy URL (psycopg2 for Airflow's sync engine, asyncpg derived)."""
        self._databases += 1
        name = f"airflow_{self._databases}"
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c", f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def pause(self) -> None:
        """Stop the server, keeping its data (a database that went away; :meth:`resume` brings it back)."""
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        data = self.directory / "data"
        log = str(self.directory / "server.log")
        self._run("pg_ctl", "-D", str(data), "-l", log, "-o", self._options, "-w", "start")

    def stop(self) -> None:
        data = self.directory / "data"
        if (data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


def settings_dict(home: Path | None = None, **sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "auth": {"tokens": [{"name": "admin", "token": TOKEN}]},
        "airflow": {"env": {"AIRFLOW__CORE__LOAD_EXAMPLES": "False"}},
        # Most tests never call the experimental API: its worker starts on first use there.
        "experimental": {"warm_at_start": False},
    }
    if home is not None:
        data["airflow"]["home"] = str(home)
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return data


def owned_processes(prefix: str = OWNER_PREFIX) -> list[psutil.Process]:
    """Live processes started by a gateway of this test session (found by their owner tag)."""
    needle = f"{OWNER_ENV}={prefix}".encode()
    found = []
    for pid in psutil.pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if needle in handle.read():
                    found.append(psutil.Process(pid))
        except (OSError, psutil.Error):
            continue
    return found


def zombies() -> list[psutil.Process]:
    """Descendants of this test process that exited and were never reaped.

    Not those under a gateway *process* (``GatewayProcess``) that outlives the test, such as a module's: its
    Airflow services reap their own children in their own time (the scheduler its executor's workers).
    """
    out, theirs = [], set()
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if child.cmdline()[1:3] == ["-m", "gateway"]:
                theirs |= {p.pid for p in child.children(recursive=True)}
    for process in psutil.Process().children(recursive=True):
        try:
            if process.pid not in theirs and process.status() == psutil.STATUS_ZOMBIE:
                out.append(process)
        except psutil.Error:
            continue
    return out


SERVICES = ("gateway.runner.zygote", "gateway.worker.main")


def is_live_service(process: psutil.Process) -> bool:
    """A warm fork server or Airflow worker still owned by this test process (a zygote's children are not)."""
    try:
        return process.ppid() == os.getpid() and any(s in " ".join(process.cmdline()) for s in SERVICES)
    except psutil.Error:
        return False


def assert_nothing_left(timeout_s: float = 3.0) -> None:
    """No process of ours outlives its request (a brief grace for the kernel to finish killing)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in owned_processes() if _alive(p) and not is_live_service(p)] + zombies()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"processes outlived their runs: {[(p.pid, _cmdline(p)) for p in left]}"


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE or process.ppid() == os.getpid()
    except psutil.Error:
        return False


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())[:200]
    except psutil.Error:
        try:
            return f"? ({process.name()}, {process.status()}, parent {process.ppid()})"
        except psutil.Error:
            return "?"


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, already dead and waiting to be reaped, is not alive)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class GatewayProcess:
    """A real ``python -m gateway --config FILE`` process, as production runs it (not the app in this process)."""

    def __init__(self, directory: Path, config: dict[str, Any], start_timeout_s: float = 120.0) -> None:
        import yaml

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "gateway.log"
        self.config_path = directory / "gateway.yaml"
        config = {**config, "server": {**config.get("server", {}), "host": "127.0.0.1", "port": self.port}}
        self.config_path.write_text(yaml.safe_dump(config))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(self.config_path)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_ready(start_timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        import json
        import urllib.request

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited at start:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if json.loads(resp.read())["runner"]["ready"]:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the gateway was not ready within {timeout_s} s")

    def helpers(self) -> list[psutil.Process]:
        """Its fork server and Airflow worker (and anything else it started and still holds)."""
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()


def poll(condition: Any, timeout_s: float, interval_s: float = 0.05) -> bool:
    """Wait until ``condition()`` is true (True) or ``timeout_s`` passed (False)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)
    return True


#: Debian's nginx, for the tests that go through the shipped config (./run.sh test installs it).
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def render_nginx(directory: Path, gateway_port: int, shipped_port: int, bare_port: int) -> Path:
    site = (REPO / "config" / "nginx.conf").read_text()
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{shipped_port};")
    site = site.replace("server 127.0.0.1:8780;", f"server 127.0.0.1:{gateway_port};")
    site += (
        f"\nserver {{\n    listen 127.0.0.1:{bare_port};\n"
        f"    location /airflow-gw/ {{ proxy_pass http://127.0.0.1:{gateway_port}/; }}\n}}\n"
    )
    return nginx_main(directory, site)


def render_nginx_replicas(directory: Path, gateway_ports: tuple[int, int], port: int) -> Path:
    """The shipped two-replica site (config/nginx-replicas.conf) on ``port``, in front of ``gateway_ports``."""
    site = (REPO / "config" / "nginx-replicas.conf").read_text()
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    for shipped, actual in zip((8780, 8781), gateway_ports, strict=True):
        site = site.replace(f"server 127.0.0.1:{shipped} ", f"server 127.0.0.1:{actual} ")
    return nginx_main(directory, site)


def nginx_main(directory: Path, site: str) -> Path:
    """A main nginx.conf running in the foreground from ``directory``, serving ``site``."""
    (directory / "site.conf").write_text(site)
    temp_paths = ""
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / kind).mkdir()
        temp_paths += f"    {kind}_temp_path {directory / kind};\n"
    main = directory / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n"
        + "events { worker_connections 64; }\n"
        + f"http {{\n    access_log off;\n{temp_paths}    include {directory}/site.conf;\n}}\n"
    )
    return main


def start_nginx(directory: Path, conf: Path, port: int) -> subprocess.Popen[bytes]:
    assert NGINX is not None
    check = subprocess.run([NGINX, "-t", "-p", str(directory), "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    nginx = subprocess.Popen([NGINX, "-p", str(directory), "-c", str(conf)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return nginx
        except OSError:
            assert nginx.poll() is None and time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)

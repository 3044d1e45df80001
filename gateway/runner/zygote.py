"""The warm runner's fork server ("zygote"): Airflow imported once, one forked child per command.

Started by the gateway as ``python -m gateway.runner.zygote --socket PATH`` in Airflow's environment.
It imports Airflow, builds the CLI parser, configures the ORM mappers, warms the in-process
execution API, stops every thread it started and freezes the GC heap, then prints ``ready``.

It stays **single-threaded**, which is what makes ``fork()`` safe. One ``selectors`` loop serves the
listening socket and a SIGCHLD wake-up pipe. The protocol runs over ``SOCK_SEQPACKET``, one message
each way:

    gateway → zygote   b"run"  + fds [stdout, stderr, request] (SCM_RIGHTS); the request fd is a memfd
                       holding {"argv": [...], "helper": bool, "env": {...}} (any size: no datagram limit)
    zygote  → gateway  {"pid": N}   as soon as the child leads a process group of its own (after its setsid)
    zygote  → gateway  {"exit": CODE}   when the child has exited (the code from waitpid, never guessed)

SIGUSR1 retires the zygote: it stops accepting and exits once its last child has been reported.

Containment (:mod:`gateway.runner.contain`): the zygote and each child are child subreapers. A child
kills and reaps whatever its command left before it exits; a child killed from outside leaves its
orphans to the zygote, which kills every child of its own that is not a command it forked. When the
gateway dies, however it dies, the zygote gets SIGUSR2 (``PR_SET_PDEATHSIG``), kills every process
below it and exits; SIGTERM does the same.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any

from gateway.runner import contain

MAX_MESSAGE_BYTES = 64
#: Environment variables that change how Airflow logs; a child whose command sets them reconfigures logging.
_LOGGING_ENV_PREFIX = "AIRFLOW__LOGGING__"


def warm() -> dict[str, float]:
    """Pay Airflow's start-up costs once, here, instead of in every command (CLI map §6.5)."""
    timings: dict[str, float] = {}
    started = time.monotonic()

    def mark(step: str) -> None:
        timings[step] = round(time.monotonic() - started, 3)

    import airflow  # noqa: F401
    from airflow import configuration
    from airflow.cli import cli_parser

    cli_parser.get_parser()
    configuration.write_default_airflow_configuration_if_needed()
    mark("parser")

    import sqlalchemy.orm
    from airflow.models import Connection, DagModel, DagRun, Log, Pool, TaskInstance, Variable  # noqa: F401

    sqlalchemy.orm.configure_mappers()
    mark("models")

    import importlib

    for module in (
        "airflow.cli.commands.dag_command",
        "airflow.cli.commands.task_command",
        "airflow.cli.commands.pool_command",
        "airflow.cli.commands.variable_command",
        "airflow.cli.commands.connection_command",
        "airflow.cli.commands.backfill_command",
        "airflow.sdk",
        "airflow.providers.standard.operators.bash",
        "gateway.helpers",
    ):
        try:
            importlib.import_module(module)
        except Exception:  # a missing optional module only costs its import time later
            traceback.print_exc()
    from gateway.helpers import dagbag_module

    dagbag_module()  # airflow.dag_processing.dagbag (Airflow 3.1: airflow.models.dagbag)
    mark("commands")

    try:
        from airflow.utils.db import check_and_run_migrations, synchronize_log_template

        check_and_run_migrations()
        synchronize_log_template()
    except SystemExit:
        pass  # "Database migration required": every command will say so itself
    mark("migrations")

    _warm_dag_sync()
    mark("dag_sync")

    _warm_execution_api()
    mark("execution_api")

    from airflow import settings

    settings.Session.remove()
    settings.engine.dispose()
    extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if extra:
        raise RuntimeError(f"the zygote must be single-threaded before forking; threads left: {extra}")
    gc.collect()
    gc.freeze()
    mark("ready")
    return timings


def _warm_dag_sync() -> None:
    """Compile the SQL that storing a parsed DAG runs (``tasks list``, ``render``, … sync the DAG they parse).

    A synthetic in-memory DAG is synced inside a transaction that is rolled back: the database is not
    changed, but SQLAlchemy's compiled-statement cache, which every child inherits, is filled. No user
    DAG file is imported here: a module cached in the zygote would go stale for its children.
    """
    import pendulum
    from airflow import settings
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models import Log
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    from gateway.helpers import dagbag_module

    DagBag, sync_bag_to_db = dagbag_module().DagBag, dagbag_module().sync_bag_to_db

    with DAG("__gateway_warmup__", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
        EmptyOperator(task_id="noop")
    bag = DagBag(dag_folder=os.devnull, collect_dags=False)
    bag.bag_dag(dag)
    session = settings.Session()
    try:
        # What every CLI command and DAG-reading command writes first: its action-log row, the bundles.
        session.add(Log(event="gateway_warmup"))
        session.flush()
        DagBundlesManager().sync_bundles_to_db(session=session)
        session.flush()  # the bundle rows before the DAG rows that refer to them (Airflow 3.1's order)
        sync_bag_to_db(bag, "dags-folder", None, session=session)
    except Exception:  # best effort: an unusual setup only loses the warm cache
        traceback.print_exc()
    finally:
        session.rollback()
        session.close()


def _warm_execution_api() -> None:
    """Build the in-process execution API once and push one request through it (≈4 s saved per ``tasks test``).

    ``in_process_api_server()`` then hands this warmed instance to every child. The request goes
    through a throw-away client whose thread is joined here: never the cached ``transport``, whose
    event-loop thread would not exist in a forked child.
    """
    try:
        from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
        from airflow.sdk.execution_time import supervisor
        from fastapi.testclient import TestClient
    except ImportError:
        return
    api = InProcessExecutionAPI()
    with TestClient(api.app) as client:
        client.get("/execution/health")
    supervisor.in_process_api_server = lambda: api


class Zygote:
    def __init__(self, socket_path: str, parent_pid: int) -> None:
        self.socket_path = socket_path
        self.listener: socket.socket | None = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(socket_path)
        self.listener.listen(256)
        self.listener.setblocking(False)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.children: dict[int, socket.socket] = {}
        self.retiring = False
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        signal.set_wakeup_fd(self.wake_w)
        for signum in (signal.SIGCHLD, signal.SIGUSR1, signal.SIGTERM, contain.PARENT_DIED):
            signal.signal(signum, lambda *_: None)
        contain.become_subreaper()
        contain.die_with_parent(contain.PARENT_DIED, parent_pid)

    def serve(self) -> None:
        while not (self.retiring and not self.children):
            for key, _ in self.selector.select():
                if key.data == "accept":
                    self._accept()
                else:
                    self._on_signal()

    def _on_signal(self) -> None:
        try:
            received = os.read(self.wake_r, 4096)
        except BlockingIOError:
            received = b""
        if signal.SIGTERM in received or contain.PARENT_DIED in received:
            contain.reap_all()
            if contain.PARENT_DIED in received:  # nobody else is left to remove the socket
                with contextlib.suppress(OSError):
                    os.unlink(self.socket_path)
                    os.rmdir(os.path.dirname(self.socket_path))
            os._exit(0)
        if signal.SIGUSR1 in received and self.listener is not None:
            self.retiring = True
            self.selector.unregister(self.listener)
            self.listener.close()
            self.listener = None
        self._reap()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = self.children.pop(pid, None)
            if conn is not None:
                _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                conn.close()
        # Orphans of a command whose child was killed from outside: nobody else will stop them.
        for pid in contain.children(os.getpid()):
            if pid not in self.children:
                contain.kill_tree(pid, include_root=True)

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(True)
        fds: list[int] = []
        try:
            _, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE_BYTES, 3)
            if len(fds) != 3:
                raise ValueError("expected 3 file descriptors")
            request = _read_request(fds.pop())
        except (OSError, ValueError) as exc:
            for fd in fds:
                os.close(fd)
            _send(conn, {"error": str(exc)})
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        led_r, led_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(led_r)
            self._become_child(conn, fds, request, led_w)
        os.close(led_w)
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        _await_own_group(led_r)
        _send(conn, {"pid": pid})

    def _become_child(self, conn: socket.socket, fds: list[int], request: dict[str, Any], led_w: int) -> None:
        code = 1
        try:
            os.setsid()
            contain.become_subreaper()
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGUSR1, signal.SIGTERM, signal.SIGINT, contain.PARENT_DIED):
                signal.signal(signum, signal.SIG_DFL)
            # "I lead a group of my own, and SIGTERM ends me": the zygote may now give out my pid.
            os.close(led_w)
            self.selector.close()
            if self.listener is not None:
                self.listener.close()
            for other in self.children.values():
                other.close()
            conn.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(fds[0], 1)
            os.dup2(fds[1], 2)
            for fd in (devnull, *fds):
                os.close(fd)
            code = run_command(request["argv"], request.get("helper", False), request.get("env", {}))
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            with contextlib.suppress(BaseException):
                contain.reap_all()
            os._exit(code)


def _await_own_group(led_r: int) -> None:
    """Block until the child has ``setsid``'d (or died): it closes its end of the pipe right after.

    Until then the child is in the zygote's own process group, so a gateway signalling "the run's group"
    would signal the zygote and every other command. The pid is only reported once that cannot happen.
    """
    try:
        os.read(led_r, 1)  # b"" when the child closes its end (PEP 475: retried across signals)
    finally:
        os.close(led_r)


def _read_request(fd: int) -> dict[str, Any]:
    with os.fdopen(fd, "rb") as handle:
        handle.seek(0)
        request = json.loads(handle.read())
    if not isinstance(request, dict) or not isinstance(request.get("argv"), list):
        raise ValueError("a request is an object with an argv list")
    return request


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    # OSError: the gateway hung up; the child's group is its to kill.
    with contextlib.suppress(OSError):
        conn.send(json.dumps(message).encode())


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def run_command(argv: list[str], helper: bool, env: dict[str, str]) -> int:
    """In the forked child: what ``airflow ARGV`` (``airflow.__main__.main``) or a gateway helper would do."""
    import random
    import warnings

    random.seed()
    os.environ.update(env)
    if os.environ.get("PYTHONWARNINGS") == "ignore":
        warnings.simplefilter("ignore")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    from airflow import settings

    settings.engine.dispose(close=False)
    if any(key.startswith(_LOGGING_ENV_PREFIX) for key in env):
        from airflow.logging_config import configure_logging

        configure_logging()
    try:
        if helper:
            from gateway.helpers import main as helper_main

            helper_main(argv)
            return 0
        return _airflow_main(argv)
    except SystemExit as exc:
        return _exit_code(exc)
    except BaseException:
        traceback.print_exc()
        return 1


def _airflow_main(argv: list[str]) -> int:
    from airflow import configuration
    from airflow.cli import cli_parser

    conf = configuration.conf
    if conf.get("core", "security") == "kerberos":
        os.environ["KRB5CCNAME"] = conf.get("kerberos", "ccache")
        os.environ["KRB5_KTNAME"] = conf.get("kerberos", "keytab")
    parser = cli_parser.get_parser()
    sys.argv = ["airflow", *argv]
    args = parser.parse_args(argv)
    if hasattr(args, "output"):  # as Airflow 3.3's __main__ does (3.2 does not): logs never mix with the data
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
    args.func(args)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="gateway.runner.zygote")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args()
    contain.die_with_parent(signal.SIGKILL, args.parent_pid)  # while warming up: nothing to clean yet
    timings = warm()
    zygote = Zygote(args.socket, args.parent_pid)
    print(json.dumps({"ready": True, "pid": os.getpid(), "warm_s": timings}), flush=True)
    zygote.serve()


if __name__ == "__main__":
    main()

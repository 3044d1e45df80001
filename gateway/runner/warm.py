"""The warm runner: commands forked from a pre-imported Airflow process (the zygote) instead of exec'd.

The gateway process never forks Airflow code (it has threads); :mod:`gateway.runner.zygote` is a
separate single-threaded process that this module starts, supervises and replaces:

- it is started at app start-up; ``ready`` turns true when it has warmed up;
- if it dies, runs in flight fail at once (:class:`RunnerUnavailable`, answered as 503) and a new one starts;
- after ``max_runs_per_zygote`` forks, or when airflow.cfg changes, a fresh zygote takes over and the old
  one retires (it finishes the runs it has, then exits).

Each run gets two fresh pipes (stdout, stderr) passed to the zygote with SCM_RIGHTS; the zygote forks a
child onto them and reports its pid, then its exit code. Timeouts and cancellation kill the child's
process group exactly as the exec runner does (:class:`~gateway.runner.group.GroupRun`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from ..aio import cancel_and_wait
from . import contain
from .base import OWNER_ENV, Command, RunnerUnavailable
from .group import GroupRun
from .helper import HelperProcess

log = logging.getLogger(__name__)
RECEIVE_BYTES = 4096
#: How long a cancelled fork still waits for the zygote's pid, to kill the child nobody will follow.
ORPHAN_REPLY_S = 5.0


class WarmRun(GroupRun):
    """A command forked by the zygote. Its exit code arrives over the request's socket."""

    def __init__(
        self,
        conn: socket.socket,
        pid: int,
        pipes: tuple[tuple[asyncio.ReadTransport, asyncio.StreamReader], ...],
        timeout_s: float,
        kill_grace_s: float,
    ) -> None:
        self._conn = conn
        self._transports = [transport for transport, _ in pipes]
        self._code: int | None = None
        super().__init__(pid, pipes[0][1], pipes[1][1], timeout_s, kill_grace_s)

    async def _wait_exit(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            message = await loop.sock_recv(self._conn, RECEIVE_BYTES)
        except OSError:
            message = b""
        if not message:
            # The zygote died: nobody will reap or report this child. Kill its group and say so.
            self.lost = "The warm runner's fork server stopped during this command; it is restarting, retry"
            contain.kill_tree(self.pid, include_root=True)
            self._code = -signal.SIGKILL
            return
        self._code = json.loads(message)["exit"]

    def _returncode(self) -> int | None:
        return self._code

    def _release(self) -> None:
        for transport in self._transports:
            transport.close()
        self._conn.close()


class ForkServer:
    """One fork server (zygote) process, as the gateway sees it."""

    def __init__(self, helper: HelperProcess, socket_path: str, cfg_mtime: float | None) -> None:
        self.helper = helper
        self.socket_path = socket_path
        self.cfg_mtime = cfg_mtime
        self.forks = 0

    @property
    def alive(self) -> bool:
        return self.helper.alive

    def retire(self) -> None:
        """It stops accepting, finishes the runs it has, then exits."""
        self.helper.signal(signal.SIGUSR1)


class WarmRunner:
    """Forks each command from a warm zygote; same contract as :class:`~gateway.runner.exec.ExecRunner`."""

    mode = "warm"

    def __init__(
        self,
        *,
        python: str,
        env: Mapping[str, str],
        timeout_s: float,
        kill_grace_s: float,
        owner: str,
        airflow_cfg: Path,
        max_runs_per_zygote: int,
        startup_timeout_s: float,
    ) -> None:
        self.python = python
        self.env = {**env, OWNER_ENV: owner}
        self.timeout_s = timeout_s
        self.kill_grace_s = kill_grace_s
        self.airflow_cfg = airflow_cfg
        self.max_runs_per_zygote = max_runs_per_zygote
        self.startup_timeout_s = startup_timeout_s
        self.restarts = 0
        self._zygote: ForkServer | None = None
        self._retired: list[ForkServer] = []
        self._ready = asyncio.Event()
        self._replacing: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._dir = tempfile.mkdtemp(prefix="gateway-zygote-")
        self._serial = 0

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def pids(self) -> list[int]:
        """The zygote processes alive now (the current one and any retiring)."""
        return [z.helper.pid for z in (self._zygote, *self._retired) if z is not None and z.alive and z.helper.pid]

    def open(self) -> None:
        """Start warming up in the background; requests wait for ``ready`` (up to ``startup_timeout_s``)."""
        self._supervisor = asyncio.create_task(self._supervise())

    async def close(self) -> None:
        self._closing = True
        await cancel_and_wait(self._supervisor, self._replacing)
        for zygote in (self._zygote, *self._retired):
            if zygote is not None:
                await zygote.helper.stop()
        with suppress(OSError):
            for name in os.listdir(self._dir):
                os.unlink(os.path.join(self._dir, name))
            os.rmdir(self._dir)

    def _cfg_mtime(self) -> float | None:
        try:
            return self.airflow_cfg.stat().st_mtime
        except OSError:
            return None

    async def _spawn(self) -> ForkServer:
        self._serial += 1
        socket_path = os.path.join(self._dir, f"zygote-{self._serial}.sock")
        cfg_mtime = self._cfg_mtime()
        helper = HelperProcess(
            python=self.python,
            module="gateway.runner.zygote",
            args=("--socket", socket_path),
            env=self.env,
            startup_timeout_s=self.startup_timeout_s,
        )
        hello = await helper.start()
        log.info("warm runner ready: pid %s, warm-up %s s", hello["pid"], hello["warm_s"].get("ready"))
        return ForkServer(helper, socket_path, cfg_mtime)

    async def _supervise(self) -> None:
        """Keep one warm zygote: start it, and replace it whenever it dies."""
        first = True
        while not self._closing:
            try:
                self._zygote = await self._spawn()
            except RunnerUnavailable:
                log.exception("the warm runner's fork server did not start; retrying in 1 s")
                await asyncio.sleep(1.0)
                continue
            self._ready.set()
            if not first:
                self.restarts += 1
            first = False
            while True:
                zygote = self._zygote
                await zygote.helper.wait()
                self._retired = [z for z in self._retired if z.alive]
                if self._closing or zygote is self._zygote:
                    break
            if self._closing:
                return
            self._ready.clear()
            log.warning("the warm runner's fork server exited (code %s); restarting", zygote.helper.returncode)

    def _needs_replacing(self, zygote: ForkServer) -> bool:
        return zygote.forks >= self.max_runs_per_zygote or zygote.cfg_mtime != self._cfg_mtime()

    async def _replace(self, old: ForkServer) -> None:
        try:
            new = await self._spawn()
        except RunnerUnavailable:
            log.exception("could not start a replacement zygote; keeping the old one")
            return
        finally:
            self._replacing = None
        if self._closing:
            await new.helper.stop()
            return
        self._zygote = new
        self._retired.append(old)
        old.retire()

    async def _current(self) -> ForkServer:
        try:
            await asyncio.wait_for(self._ready.wait(), self.startup_timeout_s)
        except TimeoutError:
            raise RunnerUnavailable("the warm runner is not ready; retry shortly") from None
        zygote = self._zygote
        assert zygote is not None
        if self._needs_replacing(zygote) and self._replacing is None:
            # The current zygote keeps serving until its successor is warm.
            self._replacing = asyncio.create_task(self._replace(zygote))
        return zygote

    @asynccontextmanager
    async def start(self, command: Command, timeout_s: float | None = None) -> AsyncIterator[WarmRun]:
        zygote = await self._current()
        zygote.forks += 1
        run = await self._fork(zygote, command, timeout_s or self.timeout_s)
        try:
            yield run
        finally:
            await run.close()

    async def _fork(self, zygote: ForkServer, command: Command, timeout_s: float) -> WarmRun:
        loop = asyncio.get_running_loop()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.setblocking(False)
        read_ends: list[int] = []
        try:
            await loop.sock_connect(conn, zygote.socket_path)
            ends = [os.pipe2(os.O_CLOEXEC) for _ in range(2)]
            read_ends = [r for r, _ in ends]
            request = _request_fd(command)
            try:
                socket.send_fds(conn, [b"run"], [*(w for _, w in ends), request])
            finally:
                for fd in (*(w for _, w in ends), request):
                    os.close(fd)
            reply = await _pid_reply(conn)
            if "pid" not in reply:
                raise RunnerUnavailable(f"the warm runner refused the command: {reply.get('error', 'no answer')}")
            pipes = []
            for fd in read_ends:
                reader = asyncio.StreamReader(limit=1 << 20)
                transport, _ = await loop.connect_read_pipe(
                    lambda reader=reader: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
                )
                pipes.append((transport, reader))
            read_ends = []
        except (OSError, ValueError) as exc:
            conn.close()
            raise RunnerUnavailable(f"the warm runner is unavailable ({exc}); retry") from None
        except BaseException:
            conn.close()
            raise
        finally:
            for fd in read_ends:
                os.close(fd)
        return WarmRun(conn, reply["pid"], tuple(pipes), timeout_s, self.kill_grace_s)


async def _pid_reply(conn: socket.socket) -> dict[str, Any]:
    """The zygote's first answer. A caller cancelled while the zygote forks still gets it, and kills the child:
    it was forked for nobody, and would otherwise run its command to the end unwatched."""
    receiving = asyncio.ensure_future(asyncio.get_running_loop().sock_recv(conn, RECEIVE_BYTES))
    try:
        return json.loads(await asyncio.shield(receiving) or b"{}")
    except asyncio.CancelledError:
        with suppress(OSError, ValueError, TimeoutError):
            orphan = json.loads(await asyncio.wait_for(receiving, ORPHAN_REPLY_S) or b"{}").get("pid")
            if isinstance(orphan, int):
                contain.kill_tree(orphan, include_root=True)
        raise


def _request_fd(command: Command) -> int:
    """The command as JSON in a memfd: argv of any length, past any datagram limit."""
    request = json.dumps({"argv": list(command.argv), "helper": command.helper, "env": dict(command.env)}).encode()
    fd = os.memfd_create("gateway-request", os.MFD_CLOEXEC)
    try:
        os.write(fd, request)
    except BaseException:
        os.close(fd)
        raise
    return fd

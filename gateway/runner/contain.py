"""Process containment: nothing a command starts outlives it, and no helper outlives the gateway.

Standard library only, so it also runs as a script: ``python contain.py --parent-pid N -- PROGRAM ARGS``
is the exec runner's leader. It becomes a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): whatever
its program starts and orphans — a daemon that forks, ``setsid``s and forks again — is re-parented to
it instead of to init, so it can still be found and killed when the program ends. It passes the
program's exit status through unchanged, and dies with its parent (``PR_SET_PDEATHSIG``), taking its
whole tree along. The warm runner's forked children and the fork server apply the same functions.

Killing a tree freezes it first (SIGSTOP, repeated until no new process appears), then SIGKILLs it:
a stopped process cannot fork, so nothing slips out between the look and the kill.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Iterable

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
#: The signal a contained leader or fork server gets when its parent dies: it cleans up, then exits.
PARENT_DIED = signal.SIGUSR2


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process (Linux ≥ 3.4)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent(signum: int, parent_pid: int) -> None:
    """Get ``signum`` when the parent dies; exit now if it already has (the race ``prctl`` leaves open)."""
    _prctl(_PR_SET_PDEATHSIG, int(signum))
    if os.getppid() != parent_pid:
        os._exit(1)


def not_dumpable() -> bool:
    """Same-user processes can no longer read this one's memory or ``/proc/PID/environ`` (no core dumps either)."""
    return _prctl(_PR_SET_DUMPABLE, 0)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's), from ``/proc/PID/task/*/children``; [] if it is gone."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                found.extend(int(child) for child in handle.read().split())
        except (OSError, ValueError):
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before children."""
    found: list[int] = []
    queue = children(pid)
    while queue:
        child = queue.pop(0)
        if child not in found:
            found.append(child)
            queue.extend(children(child))
    return found


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def kill_tree(pid: int, include_root: bool = False) -> int:
    """SIGKILL everything below ``pid`` (and ``pid`` itself with ``include_root``); how many were signalled."""
    frozen: set[int] = set()
    if include_root:
        _signal(pid, signal.SIGSTOP)
        frozen.add(pid)
    while True:
        new = [p for p in descendants(pid) if p not in frozen]
        if not new:
            break
        for process in new:
            _signal(process, signal.SIGSTOP)
            frozen.add(process)
    for process in frozen:
        _signal(process, signal.SIGKILL)
    return len(frozen)


def reap_all() -> None:
    """Kill every descendant of this process and wait for its children, until there are none (a subreaper's end)."""
    while True:
        kill_tree(os.getpid())
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def leads_own_group(pid: int) -> bool:
    """Whether ``pid`` leads its process group: only then is "its group" its own and not its parent's."""
    try:
        return os.getpgid(pid) == pid
    except (ProcessLookupError, PermissionError):
        return False


def signal_groups(pids: Iterable[int], signum: int) -> None:
    """``signum`` to the process group of each pid (descendants that ``setsid``'d lead groups of their own)."""
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except (ProcessLookupError, PermissionError):
            continue
    for group in groups:
        try:
            os.killpg(group, signum)
        except (ProcessLookupError, PermissionError):
            continue


def _exit_like(status: int) -> None:
    """End this process the way the program ended: the same exit code, or the same signal."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        with contextlib.suppress(OSError, ValueError):  # SIGKILL and SIGSTOP cannot be (re)set
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def lead(parent_pid: int, argv: list[str]) -> None:
    """Run ``argv`` as a contained program: its leader reaps what it orphans and dies with the gateway."""
    become_subreaper()

    def parent_died(*_: object) -> None:
        reap_all()
        os._exit(128 + PARENT_DIED)

    signal.signal(PARENT_DIED, parent_died)
    die_with_parent(PARENT_DIED, parent_pid)
    # SIGTERM/SIGINT reach the whole group; the program handles them, the leader stays to clean up after it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        program = os.posix_spawnp(
            argv[0],
            argv,
            os.environ,
            setsigdef=(signal.SIGTERM, signal.SIGINT, PARENT_DIED),
        )
    except OSError as exc:
        print(f"cannot start {argv[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        os._exit(127)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(1)
        if pid == program:
            break
    reap_all()
    _exit_like(status)


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[0] != "--parent-pid" or argv[2] != "--":
        print("usage: contain.py --parent-pid PID -- PROGRAM [ARGS...]", file=sys.stderr)
        sys.exit(2)
    lead(int(argv[1]), argv[3:])


if __name__ == "__main__":
    main(sys.argv[1:])

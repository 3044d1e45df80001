"""The Airflow worker: one persistent process with Airflow imported, answering experimental-API operations.

Started by the gateway as ``python -m gateway.worker.main --fd N`` in Airflow's environment,
where fd N is one end of a socketpair. One JSON object a line each way:

    gateway → worker   {"id": 7, "op": "pools", "args": {}}
    worker  → gateway  {"id": 7, "status": 200, "body": [...]}

A reply longer than ``--max-reply-bytes`` is never sent: a 413 reply naming the limit goes instead, so the
gateway's line reader (sized for that limit) always reads whole lines.

Operations run concurrently on a pool of ``--threads`` threads, each in its own DB session and
transaction (Airflow's scoped session is per thread), so reads never wait behind each other or behind
a write; replies go out as they finish, matched by id. It prints one ready line on stdout (see
:mod:`gateway.runner.helper`); after that Python's stdout is per-thread captured output or stderr
(:class:`gateway.worker.reads.ThreadStdout`), so nothing but the protocol is ever written to the socket.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from ..runner import contain


def _answer(request: dict[str, Any], writer: BinaryIO, lock: threading.Lock, max_reply_bytes: int) -> None:
    from . import operations

    try:
        status, body = operations.run(request["op"], request.get("args", {}))
    except Exception as exc:
        traceback.print_exc()  # to the gateway's log, as records (gateway.runner.helper)
        status, body = 500, {"error": f"Internal error in the Airflow worker ({type(exc).__name__}); see the log"}
    line = _reply(request["id"], status, body)
    if len(line) > max_reply_bytes:
        # The gateway reads lines up to its limit: a longer one is refused here, as an answer of its own.
        line = _reply(request["id"], 413, {"error": too_large(max_reply_bytes)})
    with lock:  # one whole line at a time
        writer.write(line)
        writer.flush()


def too_large(max_reply_bytes: int) -> str:
    """The 413's text: it names the limit and the setting that raises it."""
    return (
        f"The answer is larger than the Airflow worker's limit of {max_reply_bytes} bytes "
        "(experimental.max_reply_bytes)"
    )


def _reply(request_id: Any, status: int, body: Any) -> bytes:
    return json.dumps({"id": request_id, "status": status, "body": body}, default=str).encode() + b"\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="gateway.worker.main")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--max-reply-bytes", type=int, default=64 << 20)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args()
    contain.die_with_parent(signal.SIGKILL, args.parent_pid)  # it starts nothing, so it can simply die
    channel = socket.socket(fileno=args.fd)
    reader, writer = channel.makefile("rb"), channel.makefile("wb")

    from . import reads

    reads.install_stdout()  # the real stdout is for the ready line; Python's output goes to captures or stderr

    import sqlalchemy.orm
    from airflow.providers_manager import ProvidersManager

    from . import operations

    ProvidersManager().initialize_providers_configuration()  # once, where each CLI command does it per call
    sqlalchemy.orm.configure_mappers()
    operations.run("pools", {})  # first query: compile and connect now, not on the first request
    operations.run("read", {"argv": ["pools", "list", "-o", "json"]})  # and the CLI's parser and console
    print(json.dumps({"ready": True, "pid": os.getpid()}), file=sys.__stdout__, flush=True)
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=args.threads, thread_name_prefix="op") as pool:
        for line in reader:
            pool.submit(_answer, json.loads(line), writer, lock, args.max_reply_bytes)


if __name__ == "__main__":
    main()

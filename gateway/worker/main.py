"""The Airflow worker: one persistent process with Airflow imported, answering experimental-API operations.

Started by the gateway as ``python -m gateway.worker.main --fd N`` in Airflow's environment,
where fd N is one end of a socketpair. One JSON object a line each way:

    gateway → worker   {"id": 7, "op": "pools", "args": {}}
    worker  → gateway  {"id": 7, "status": 200, "body": [...]}

Operations run one at a time, each in its own DB transaction (SQLite serialises writers anyway).
It prints one ready line on stdout (see :mod:`gateway.runner.helper`); after that Python's stdout is
stderr, so nothing but the protocol is ever written to the socket.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import traceback

from ..runner import contain


def main() -> None:
    parser = argparse.ArgumentParser(prog="gateway.worker.main")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args()
    contain.die_with_parent(signal.SIGKILL, args.parent_pid)  # it starts nothing, so it can simply die
    sys.stdout = sys.stderr  # after the ready line on the real stdout, Python's output goes to stderr
    channel = socket.socket(fileno=args.fd)
    reader, writer = channel.makefile("rb"), channel.makefile("wb")

    import sqlalchemy.orm

    from . import operations

    sqlalchemy.orm.configure_mappers()
    operations.run("pools", {})  # first query: compile and connect now, not on the first request
    print(json.dumps({"ready": True, "pid": os.getpid()}), file=sys.__stdout__, flush=True)
    for line in reader:
        request = json.loads(line)
        try:
            status, body = operations.run(request["op"], request.get("args", {}))
        except Exception as exc:
            traceback.print_exc()
            status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
        writer.write(json.dumps({"id": request["id"], "status": status, "body": body}, default=str).encode() + b"\n")
        writer.flush()


if __name__ == "__main__":
    main()

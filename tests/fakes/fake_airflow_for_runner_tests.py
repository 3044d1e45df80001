#!/usr/bin/env python3
"""NOT AIRFLOW. A stand-in executable for the runner's edge cases: floods, hangs, crashes, grandchildren.

Usage: fake_airflow_for_runner_tests.py MODE [ARGS...]
"""

import json
import os
import signal
import subprocess
import sys
import time


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    out, err = sys.stdout.buffer, sys.stderr.buffer
    if mode == "echo":
        print(json.dumps({"argv": args, "stdin_is_devnull": os.path.samefile("/dev/stdin", os.devnull)}))
    elif mode == "exit":
        print("failing on purpose", file=sys.stderr)
        sys.exit(int(args[0]))
    elif mode == "flood":
        # Both pipes far past their 64 KiB buffers, interleaved: only concurrent reading finishes.
        total, block = int(args[0]), b"x" * 8191 + b"\n"
        for _ in range(total // len(block)):
            out.write(block)
            err.write(block)
        out.flush()
        err.flush()
    elif mode == "longline":
        out.write(b"y" * int(args[0]) + b"\n")
    elif mode == "lines":
        for i in range(int(args[0])):
            print(f"line {i}", flush=True)
            time.sleep(float(args[1]))
    elif mode == "hang":
        # A grandchild in the same process group, then wait forever.
        subprocess.Popen(["sleep", "600"])
        print("started", flush=True)
        time.sleep(600)
    elif mode == "escape":
        # A grandchild in a session of its own (as Airflow's SubprocessHook starts bash), then wait forever.
        subprocess.Popen(["sleep", "600"], start_new_session=True)
        print("escaped", flush=True)
        time.sleep(600)
    elif mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        time.sleep(600)
    elif mode == "leave-grandchild":
        # Exit at once, leaving a grandchild that keeps stdout open.
        subprocess.Popen(["sleep", "600"])
        print("parent done", flush=True)
    elif mode == "daemonize":
        # The classic double fork: a grandchild in a session of its own whose parent exits at once, so the
        # grandchild is orphaned. It writes its pid to ARGS[0] and sleeps; then the command exits.
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                with open(args[0], "w") as handle:
                    handle.write(str(os.getpid()))
                time.sleep(600)
            os._exit(0)
        while not os.path.exists(args[0]):
            time.sleep(0.01)
        print("daemonized", flush=True)
        if len(args) > 1 and args[1] == "stay":
            time.sleep(600)
    elif mode == "crash":
        print("about to crash", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()

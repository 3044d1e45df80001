"""The worker's per-thread stdout: what concurrent reads print never mixes, and nothing else is captured."""

from __future__ import annotations

import io
import threading

from gateway.worker.reads import ThreadStdout


def test_each_thread_captures_only_what_it_prints() -> None:
    fallback = io.StringIO()
    stdout = ThreadStdout(fallback)
    barrier = threading.Barrier(8)
    captured: dict[int, str] = {}

    def read(number: int) -> None:
        with stdout.capture() as printed:
            barrier.wait()  # all eight print at once
            for _ in range(50):
                print(number, file=stdout)
        captured[number] = printed.getvalue()

    threads = [threading.Thread(target=read, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    print("between reads", file=stdout)
    for thread in threads:
        thread.join()
    assert captured == {n: f"{n}\n" * 50 for n in range(8)}
    assert fallback.getvalue() == "between reads\n"
    assert stdout.isatty() is False

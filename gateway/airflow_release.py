"""Which Airflow release the gateway drives, for the few places where the supported releases differ.

The gateway is installed into Airflow's own environment (same image or venv), so the release is read from
that environment's package metadata once, without importing Airflow into the gateway process.
"""

from __future__ import annotations

import functools
from importlib import metadata

#: The oldest and newest release series the gateway supports and tests (setup.py pins the same range).
OLDEST = (3, 1)
NEWEST = (3, 3)


@functools.cache
def series() -> tuple[int, int]:
    """The installed Airflow's (major, minor); the newest supported when Airflow is not in this environment."""
    for package in ("apache-airflow-core", "apache-airflow"):
        try:
            major, minor, *_ = metadata.version(package).split(".")
            return int(major), int(minor)
        except (metadata.PackageNotFoundError, ValueError):
            continue
    return NEWEST


def needs(release: tuple[int, int], what: str) -> str | None:
    """Why ``what`` is not available on the installed release (None when it is)."""
    if series() >= release:
        return None
    have = ".".join(map(str, series()))
    return f"{what} needs Airflow {'.'.join(map(str, release))} or later (this is Airflow {have})"

"""Where jobs are kept: :func:`make_store` picks the files store (one gateway) or PostgreSQL (replicas)."""

from __future__ import annotations

from ..config import Settings
from .base import FINISHED, Event, Job, JobStore
from .files import FileStore

__all__ = ["FINISHED", "Event", "FileStore", "Job", "JobStore", "MissingExtra", "check_extras", "make_store"]


class MissingExtra(Exception):
    """A configured feature whose optional dependency is not installed: the gateway cannot start."""


def check_extras(settings: Settings) -> None:
    """Import what the configured store needs now, before anything starts: a missing one is one line, at once.

    (Found later, inside the app's start-up, it failed among helpers already warming up.)
    """
    if settings.job_store_url is None:
        return
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(
            f"jobs.store is PostgreSQL but psycopg cannot be imported ({exc}); "
            "install it with: pip install 'airflow-rest-gateway[postgres]'"
        ) from None


def make_store(settings: Settings, replica: str) -> JobStore:
    """The store ``jobs.store`` names; ``replica`` identifies this gateway in the shared one (its lease)."""
    if settings.job_store_url is None:
        return FileStore(settings.state_dir / "jobs")
    from .postgres import PostgresStore  # psycopg is only needed for this store

    return PostgresStore(settings.job_store_url, replica, settings.jobs.lease_s, settings.jobs.poll_s)

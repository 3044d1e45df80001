"""Where jobs are kept: :func:`make_store` picks the files store (one gateway) or PostgreSQL (replicas)."""

from __future__ import annotations

from ..config import Settings
from .base import FINISHED, Event, Job, JobStore
from .files import FileStore

__all__ = ["FINISHED", "Event", "FileStore", "Job", "JobStore", "make_store"]


def make_store(settings: Settings, replica: str) -> JobStore:
    """The store ``jobs.store`` names; ``replica`` identifies this gateway in the shared one (its lease)."""
    if settings.job_store_url is None:
        return FileStore(settings.state_dir / "jobs")
    from .postgres import PostgresStore  # psycopg is only needed for this store

    return PostgresStore(settings.job_store_url, replica, settings.jobs.lease_s, settings.jobs.poll_s)

"""The shared job store: PostgreSQL, so every replica answers for every job (docs/replicas.md).

Tables live in a schema of the gateway's own (``airflow_rest_gateway``), created idempotently at start, never
touching Airflow's tables. A job's events carry a sequence number: it is the resume offset (``next_offset``).
Appends and state changes ``NOTIFY`` the channel, which wakes followers on every replica at once; each
replica also re-reads every ``poll_s``, so a missed notification (or PgBouncer's transaction pooling,
where ``LISTEN`` does not work) only costs latency. A cancel request marks the job and notifies; the
replica running it kills it (it also polls its own jobs' flags). Each replica holds a lease, renewed every
third of ``lease_s``; any replica marks the running jobs of an expired lease ``lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection

from ..aio import cancel_and_wait
from ..errors import ApiError, StorageFull
from ..masking import Masker
from ..runner import RunState
from .base import EVENT_OVERHEAD_BYTES, FINISHED, CancelHandler, Cursor, Event, Job, JobStore, Wakeups

log = logging.getLogger(__name__)

SCHEMA = "airflow_rest_gateway"
CHANNEL = "airflow_rest_gateway"
#: Serializes the CREATE ... IF NOT EXISTS of replicas starting together (an arbitrary, fixed key).
SCHEMA_LOCK = 0x6A6F6273
CONNECTIONS = 4
CONNECT_TIMEOUT_S = 10
#: Events a read looks at at most (PostgreSQL then cuts them to about ``max_bytes``, before they are sent).
READ_ROWS = 5000
#: Said by a 507: PostgreSQL's disk is full (SQLSTATE 53100); the database's place is the operator's to know.
DATABASE = "the job store's database (PostgreSQL)"
LEASE_EXPIRED = "The gateway running this job stopped (its lease expired)"
UNFINISHED = [RunState.QUEUED.value, RunState.RUNNING.value]
DONE = [state.value for state in FINISHED]
COLUMNS = "id, api, command, owner, state, created_at, started_at, finished_at, exit_code, error, daemon"
DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.replicas (id text PRIMARY KEY, expires_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA}.jobs (
    id text PRIMARY KEY,
    api text NOT NULL,
    command text NOT NULL,
    owner text NOT NULL,
    state text NOT NULL,
    created_at double precision NOT NULL,
    started_at double precision,
    finished_at double precision,
    exit_code integer,
    error text,
    daemon boolean NOT NULL DEFAULT false,
    replica text NOT NULL,
    cancel_requested boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS jobs_created_at ON {SCHEMA}.jobs (created_at DESC);
CREATE INDEX IF NOT EXISTS jobs_page ON {SCHEMA}.jobs (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_owner_page ON {SCHEMA}.jobs (owner, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_unfinished ON {SCHEMA}.jobs (replica) WHERE state IN ('queued', 'running');
CREATE TABLE IF NOT EXISTS {SCHEMA}.job_events (
    job_id text NOT NULL REFERENCES {SCHEMA}.jobs (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    stream text NOT NULL,
    text text NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""


class StoreUnavailable(ApiError):
    """PostgreSQL cannot be reached: a 503 (what the driver said is logged, masked, never answered)."""

    def __init__(self) -> None:
        super().__init__(503, "The job store (PostgreSQL) is unavailable; try again", {"Retry-After": "2"})


class _Connections:
    """A few autocommit connections, one request at a time each; a broken one is replaced on next use."""

    def __init__(self, url: str, size: int, masker: Masker) -> None:
        self._url = url
        self._masker = masker
        self._idle: asyncio.Queue[AsyncConnection[Any] | None] = asyncio.Queue()
        for _ in range(size):
            self._idle.put_nowait(None)

    async def connect(self) -> AsyncConnection[Any]:
        # No prepared statements: they break behind PgBouncer's transaction pooling.
        return await AsyncConnection.connect(
            self._url, autocommit=True, prepare_threshold=None, connect_timeout=CONNECT_TIMEOUT_S
        )

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        conn = await self._idle.get()
        try:
            if conn is None or conn.broken or conn.closed:
                conn = await self.connect()
            yield conn
        except psycopg.errors.DiskFull:
            raise StorageFull(DATABASE) from None
        except psycopg.OperationalError as exc:
            log.warning("job store: %s", self._masker.text(str(exc)))
            conn = await _discard(conn)
            raise StoreUnavailable from None
        except asyncio.CancelledError:
            # Cancelled mid-query (a client hung up): the connection's state is unknown.
            conn = await _discard(conn)
            raise
        finally:
            self._idle.put_nowait(conn)

    async def close(self) -> None:
        """Close the idle connections (a closed set can be used again: it reconnects)."""
        for _ in range(self._idle.qsize()):
            await _discard(self._idle.get_nowait())
            self._idle.put_nowait(None)


async def _discard(conn: AsyncConnection[Any] | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.close()


class PostgresStore(JobStore):
    kind = "postgresql"

    def __init__(self, url: str, replica: str, lease_s: float, poll_s: float) -> None:
        super().__init__()
        masker = Masker()
        masker.add_uri(url)
        self._masker = masker
        self.replica = replica
        self.lease_s = lease_s
        self.poll_s = poll_s
        self._db = _Connections(url, CONNECTIONS, masker)
        #: This replica's unfinished jobs, with the sequence number of their last event.
        self._last_seq: dict[str, int] = {}
        self._on_cancel: CancelHandler = lambda job_id: None
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self, on_cancel: CancelHandler) -> None:
        self._on_cancel = on_cancel
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in filter(str.strip, DDL.split(";")):
                await conn.execute(statement)
        await self._heartbeat()
        listening = asyncio.Event()
        heartbeat, cancels = self._every(self.lease_s / 3, self._heartbeat), self._every(self.poll_s, self._cancels)
        self._tasks = [asyncio.create_task(loop) for loop in (self._listen(listening), heartbeat, cancels)]
        # Notifications sent before LISTEN are never seen: serve once it listens (or polling covers it).
        await Wakeups.wait(listening, CONNECT_TIMEOUT_S)

    async def close(self) -> None:
        await cancel_and_wait(*self._tasks)
        with contextlib.suppress(ApiError, psycopg.Error):
            await self._execute(f"DELETE FROM {SCHEMA}.replicas WHERE id = %s", (self.replica,))
        await self._db.close()

    async def create(self, job: Job) -> None:
        await self._execute(
            f"INSERT INTO {SCHEMA}.jobs ({COLUMNS}, replica) VALUES ({', '.join(['%s'] * 12)})",
            (*_row(job), self.replica),
        )
        self._last_seq[job.id] = 0  # one of ours once it is stored (a refused insert leaves nothing to poll)

    async def save(self, job: Job) -> None:
        if job.finished:
            self._last_seq.pop(job.id, None)
        state = (job.state.value, job.started_at, job.finished_at, job.exit_code, job.error)
        await self._execute(
            f"WITH saved AS (UPDATE {SCHEMA}.jobs SET state = %s, started_at = %s, finished_at = %s, exit_code = %s,"
            " error = %s WHERE id = %s) SELECT pg_notify(%s, %s)",
            (*state, job.id, CHANNEL, "e:" + job.id),
        )

    async def get(self, job_id: str) -> Job | None:
        rows = await self._fetch(f"SELECT {COLUMNS} FROM {SCHEMA}.jobs WHERE id = %s", (job_id,))
        return _job(rows[0]) if rows else None

    async def page(self, limit: int, before: Cursor | None = None, owner: str | None = None) -> list[Job]:
        where, params = ["true"], []
        if owner is not None:
            where.append("owner = %s")
            params.append(owner)
        if before is not None:
            where.append("(created_at, id) < (%s, %s)")
            params += [before.created_at, before.id]
        rows = await self._fetch(
            f"SELECT {COLUMNS} FROM {SCHEMA}.jobs WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC"
            " LIMIT %s",
            (*params, limit),
        )
        return [_job(row) for row in rows]

    async def count_by_state(self) -> dict[RunState, int]:
        rows = await self._fetch(f"SELECT state, count(*) FROM {SCHEMA}.jobs GROUP BY state")
        return dict.fromkeys(RunState, 0) | {RunState(state): int(count) for state, count in rows}

    async def append(self, job_id: str, events: list[Event]) -> None:
        first = self._last_seq[job_id] + 1
        self._last_seq[job_id] += len(events)
        # PostgreSQL's text holds no NUL character.
        texts = [event["text"].replace("\x00", "\ufffd") for event in events]
        await self._execute(
            f"WITH added AS (INSERT INTO {SCHEMA}.job_events (job_id, seq, stream, text)"
            " SELECT %s, * FROM unnest(%s::bigint[], %s::text[], %s::text[])) SELECT pg_notify(%s, %s)",
            (
                job_id,
                list(range(first, first + len(events))),
                [event["stream"] for event in events],
                texts,
                CHANNEL,
                f"e:{job_id}",
            ),
        )

    async def read(self, job_id: str, offset: int, max_bytes: int) -> list[tuple[int, Event]]:
        """Cut to ``max_bytes`` in SQL: the gateway never receives more than a chunk (and the first event)."""
        rows = await self._fetch(
            "SELECT seq, stream, text FROM (SELECT seq, stream, text, sum(octet_length(text) + %s) OVER"
            f" (ORDER BY seq) - (octet_length(text) + %s) AS before FROM {SCHEMA}.job_events"
            " WHERE job_id = %s AND seq > %s ORDER BY seq LIMIT %s) AS chunk"
            " WHERE before = 0 OR before + octet_length(text) + %s <= %s ORDER BY seq",
            (EVENT_OVERHEAD_BYTES, EVENT_OVERHEAD_BYTES, job_id, offset, READ_ROWS, EVENT_OVERHEAD_BYTES, max_bytes),
        )
        return [(seq, {"stream": stream, "text": text}) for seq, stream, text in rows]

    async def end_offset(self, job_id: str) -> int:
        rows = await self._fetch(f"SELECT coalesce(max(seq), 0) FROM {SCHEMA}.job_events WHERE job_id = %s", (job_id,))
        return int(rows[0][0])

    async def request_cancel(self, job_id: str) -> None:
        await self._execute(
            f"WITH marked AS (UPDATE {SCHEMA}.jobs SET cancel_requested = true WHERE id = %s AND state = ANY(%s))"
            " SELECT pg_notify(%s, %s)",
            (job_id, UNFINISHED, CHANNEL, f"c:{job_id}"),
        )

    async def prune(self, retention_s: float) -> None:
        await self._execute(
            f"DELETE FROM {SCHEMA}.jobs WHERE state = ANY(%s) AND finished_at < extract(epoch FROM now()) - %s",
            (DONE, retention_s),
        )

    async def _heartbeat(self) -> None:
        """Renew this replica's lease; mark the jobs of expired leases ``lost`` (any replica may: idempotent)."""
        await self._execute(
            f"INSERT INTO {SCHEMA}.replicas (id, expires_at) VALUES (%s, now() + make_interval(secs => %s))"
            " ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at",
            (self.replica, self.lease_s),
        )
        await self._execute(
            f"WITH lost AS (UPDATE {SCHEMA}.jobs SET state = %s, error = %s,"
            " finished_at = extract(epoch FROM clock_timestamp()) WHERE state = ANY(%s) AND NOT EXISTS"
            f" (SELECT 1 FROM {SCHEMA}.replicas r WHERE r.id = jobs.replica AND r.expires_at > now()) RETURNING id)"
            " SELECT pg_notify(%s, 'e:' || id) FROM lost",
            (RunState.LOST.value, LEASE_EXPIRED, UNFINISHED, CHANNEL),
        )
        await self._execute(f"DELETE FROM {SCHEMA}.replicas WHERE expires_at < now()")

    async def _cancels(self) -> None:
        """The polling half of cancel: this replica's jobs that someone asked to cancel."""
        if not self._last_seq:
            return
        rows = await self._fetch(
            f"SELECT id FROM {SCHEMA}.jobs WHERE id = ANY(%s) AND cancel_requested", (list(self._last_seq),)
        )
        for (job_id,) in rows:
            self._on_cancel(job_id)

    async def _every(self, interval_s: float, work: Callable[[], Awaitable[None]]) -> None:
        """``work`` every ``interval_s``; a failure is logged and the next round tries again (the lease must go on)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await work()
            except Exception as exc:
                log.warning("job store: %s: %s", type(exc).__name__, self._masker.text(str(exc)))

    async def _listen(self, listening: asyncio.Event) -> None:
        """Wake followers and cancel jobs as notifications come; reconnect after a failure (polling covers the gap)."""
        while True:
            try:
                async with await self._db.connect() as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    listening.set()
                    async for note in conn.notifies():
                        kind, _, job_id = note.payload.partition(":")
                        if kind == "c" and job_id in self._last_seq:
                            self._on_cancel(job_id)
                        self.wakeups.wake(job_id)
            except psycopg.Error as exc:
                log.warning(
                    "job store: LISTEN failed (%s); polling every %s s", self._masker.text(str(exc)), self.poll_s
                )
            await asyncio.sleep(self.lease_s / 3)

    async def _execute(self, query: str, params: tuple[Any, ...] = ()) -> None:
        async with self._db.connection() as conn:
            await conn.execute(query, params)  # type: ignore[arg-type]

    async def _fetch(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        async with self._db.connection() as conn:
            cursor = await conn.execute(query, params)  # type: ignore[arg-type]
            return await cursor.fetchall()


def _row(job: Job) -> tuple[Any, ...]:
    return (
        job.id,
        job.api,
        job.command,
        job.owner,
        job.state.value,
        job.created_at,
        job.started_at,
        job.finished_at,
        job.exit_code,
        job.error,
        job.daemon,
    )


def _job(row: tuple[Any, ...]) -> Job:
    return Job(*row[:4], RunState(row[4]), *row[5:])  # type: ignore[arg-type]

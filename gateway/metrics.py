"""Prometheus metrics: one registry per app (tests make many apps), exposed with prometheus-client.

Requests are counted by a middleware as they end; the state other parts own (admission slots, the
fork server, jobs, the experimental worker) is read at scrape time by a collector, so those parts keep
plain counters and know nothing of Prometheus. Labels are bounded: route family names, API names from
the catalog (``audit.api``, which is never raw user input), HTTP status codes, run and job states.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .families import family_name
from .keys import AIRFLOW_WORKER, AUDIT, JOBS, RUNNER
from .runner import RunState

#: Request durations from a health check to an hour-long wait.
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)
#: The status recorded for a request whose client hung up before it was answered (nginx's convention).
CLIENT_CLOSED = 499


class Metrics:
    """The app's registry and the request metrics; :meth:`watch` adds the state of a running app."""

    def __init__(self) -> None:
        self._state: _StateCollector | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_requests",
            "HTTP requests answered, by route family, API and status",
            ("family", "api", "status"),
            registry=self.registry,
        )
        self.durations = Histogram(
            "gateway_request_duration_seconds",
            "Time from a request's arrival to its answer (for a stream: its end), by route family and API",
            ("family", "api"),
            buckets=DURATION_BUCKETS_S,
            registry=self.registry,
        )

    def watch(self, app: web.Application) -> None:
        """Expose the runner, jobs and worker of ``app`` (called once they exist)."""
        self._state = _StateCollector(app)
        self.registry.register(self._state)

    async def exposition(self) -> bytes:
        """The text a scrape gets. Jobs live in a store that is read asynchronously (PostgreSQL when replicas
        share it), so they are counted here, just before the collector runs."""
        jobs = self._state.app.get(JOBS) if self._state is not None else None
        if jobs is not None:
            self._state.job_counts = await jobs.count_by_state()
        return generate_latest(self.registry)

    def observe(self, request: web.Request, status: int, duration_s: float) -> None:
        record = request.get(AUDIT)
        labels = (family_name(request), (record.api if record else None) or "")
        self.requests.labels(*labels, str(status)).inc()
        self.durations.labels(*labels).observe(duration_s)


def metrics_middleware(metrics: Metrics) -> Callable[[web.Request, Handler], Any]:
    """Counts every request and its duration (outermost: it sees the final status of every answer)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.observe(request, status, time.monotonic() - started)

    return middleware


METRICS = web.AppKey("metrics", Metrics)


class _StateCollector(Collector):
    """Reads the app's own counters and gauges at scrape time."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        #: Jobs by state, counted by :meth:`Metrics.exposition` before each scrape.
        self.job_counts: dict[RunState, int] = dict.fromkeys(RunState, 0)

    def describe(self) -> list[Metric]:
        return []  # families vary with what the app holds; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        app = self.app
        runner = app.get(RUNNER)
        if runner is not None:
            admission = runner.admission
            yield _gauge("gateway_runner_slots_in_use", "Admission slots running a command", admission.running)
            yield _gauge("gateway_runner_slots", "Admission slots (runner.max_concurrency)", admission.max_concurrency)
            yield _gauge("gateway_runner_queue_length", "Commands waiting for a slot", admission.waiting)
            yield _counter("gateway_runner_rejections", "Requests refused with 503 (queue full)", admission.rejected)
            yield _counter("gateway_runner_zygote_restarts", "Warm fork server restarts after it died", runner.restarts)
            yield _counter("gateway_runner_runs_started", "Commands started", runner.started)
            ended = CounterMetricFamily("gateway_runner_runs_ended", "Commands ended, by final state", labels=["state"])
            for state in RunState:
                if state not in (RunState.QUEUED, RunState.RUNNING):
                    ended.add_metric([state.value], runner.ended[state])
            yield ended
            yield _counter(
                "gateway_runner_runs_timed_out",
                "Commands killed past runner.timeout_s",
                runner.ended[RunState.TIMED_OUT],
            )
            yield _counter(
                "gateway_runner_runs_killed_on_disconnect",
                "Commands killed because their client hung up",
                runner.killed_on_disconnect,
            )
        if app.get(JOBS) is not None:
            by_state = GaugeMetricFamily("gateway_jobs", "Background jobs in the job store, by state", labels=["state"])
            for state in RunState:
                by_state.add_metric([state.value], self.job_counts[state])
            yield by_state
        worker = app.get(AIRFLOW_WORKER)
        if worker is not None:
            yield _counter(
                "gateway_experimental_worker_restarts",
                "Experimental API worker restarts after it died",
                worker.restarts,
            )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)

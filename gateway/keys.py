"""Typed keys for application and request state."""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiohttp import web

from .audit import AuditRecord
from .auth import Principal
from .config import Settings
from .job_table import Jobs
from .masking import Masker
from .runner import Backend, CommandRunner, ExecRunner
from .services import AirflowServices
from .worker.client import AirflowWorker

SETTINGS = web.AppKey("settings", Settings)
RUNNER = web.AppKey("runner", CommandRunner)
#: A backend the app uses but does not own (tests share one warm zygote between apps).
SHARED_BACKEND = web.AppKey("shared_backend", Backend)
#: Value of OWNER_ENV in every process this app starts.
OWNER = web.AppKey("owner", str)
#: Deploys are serialized: two uploads of one file name must not interleave.
DEPLOY_LOCK = web.AppKey("deploy_lock", asyncio.Lock)

#: SHA-256 digests of the configured tokens: a request value equal to one is masked like a password.
TOKEN_DIGESTS = web.AppKey("token_digests", frozenset)
JOBS = web.AppKey("jobs", Jobs)
#: The persistent Airflow process that answers the experimental API.
AIRFLOW_WORKER = web.AppKey("airflow_worker", AirflowWorker)
SHARED_AIRFLOW_WORKER = web.AppKey("shared_airflow_worker", AirflowWorker)
#: Daemons (scheduler, triggerer, ...) always run exec'd, outside admission, as jobs.
DAEMONS = web.AppKey("daemons", ExecRunner)
#: Airflow's scheduler, dag-processor, ... when the gateway runs them (``services.run``).
SERVICES = web.AppKey("services", AirflowServices)

PRINCIPAL = web.RequestKey("principal", Principal)
#: The request's secrets: everything it answers, streams or logs is masked with it.
MASKER = web.RequestKey("masker", Masker)
#: The request's audit record, filled in by the handlers (API, argument names, job id).
AUDIT = web.RequestKey("audit", AuditRecord)
#: ``X-Forwarded-Prefix`` from a trusted proxy: links the gateway emits start with it.
FORWARDED_PREFIX = web.RequestKey("forwarded_prefix", str)
#: When the request arrived (the envelope's ``call_time``).
CALL_TIME = web.RequestKey("call_time", datetime)

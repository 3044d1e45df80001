"""``airflow-rest-gateway --config gateway.yaml`` (or ``python -m gateway``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from aiohttp import web

from . import __version__, logs
from .app import create_app
from .audit import AccessLogger
from .config import ConfigError, Settings, load_settings
from .errors import ApiError
from .job_store import MissingExtra, check_extras
from .masking import Masker, token_digest
from .protocol import answer_protocol_errors_as_json
from .runner import contain

log = logging.getLogger("gateway")


def _announce(settings: Settings, host: str, port: int) -> None:
    url = f"http://{host}:{port}{settings.server.base_path}"
    print(
        f"airflow-rest-gateway {__version__} on {url}  (AIRFLOW_HOME={settings.airflow_home}, "
        f"runner: {settings.runner_mode}, jobs: {'postgresql' if settings.job_store_url else 'files'})",
        flush=True,
    )
    print(f"  plugin API: {url}/admin/rest_api/api?api=version   test page: {url}/admin/rest_api/", flush=True)
    if settings.services.run:
        print(f"  Airflow services started beside it: {', '.join(settings.services.run)}", flush=True)
    if settings.auth_disabled:
        print(
            "  auth is DISABLED (auth.disabled: true): anyone who reaches this port can run Airflow commands",
            flush=True,
        )
    elif settings.generated_token:
        # Shown once, here only; it is never logged, and the gateway keeps only its hash.
        print(f"  no token configured; generated for this run: {settings.generated_token}", flush=True)
        print(f"  send it as '{settings.header_name}: <token>' or 'Authorization: Bearer <token>'", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="airflow-rest-gateway", description=__doc__)
    parser.add_argument("--config", default=os.environ.get("GATEWAY_CONFIG"), help="YAML config (env GATEWAY_CONFIG)")
    parser.add_argument("--host", help="override server.host")
    parser.add_argument("--port", type=int, help="override server.port")
    parser.add_argument(
        "--gateway-only",
        action="store_true",
        help="start none of the Airflow services of services.run (as next to an existing Airflow)",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--hash-token", action="store_true", help="print the token_sha256 of the token read from standard input"
    )
    args = parser.parse_args(argv)
    if args.hash_token:
        print(token_digest(sys.stdin.readline().strip()).hex())
        return

    # Children (and DAG code in them) run as the same user: they must not read our memory or environment.
    contain.not_dumpable()
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"airflow-rest-gateway: invalid config: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        check_extras(settings)
    except MissingExtra as exc:
        print(f"airflow-rest-gateway: cannot start: {exc}", file=sys.stderr)
        sys.exit(1)
    secrets_anywhere = Masker(token_digests=frozenset(t.sha256 for t in settings.tokens))
    secrets_anywhere.add_uri(settings.job_store_url)
    logs.configure(settings.log.format, secrets_anywhere)
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    if settings.log_loading:
        log.info(
            "settings: airflow_home=%s dags_folder=%s header=%s tokens=%s runner=%s",
            settings.airflow_home,
            settings.dags_folder,
            settings.header_name,
            [t.name for t in settings.tokens],
            settings.runner,
        )
    if args.gateway_only:
        settings.services = settings.services.model_copy(update={"run": ()})
    for warning in settings.warnings:
        log.warning("%s", warning)
    _announce(settings, host, port)
    settings.generated_token = None
    answer_protocol_errors_as_json()
    try:
        _serve(settings, host, port)
    except ApiError as exc:  # a resource the app needs from the start (the job store) is unavailable
        print(f"airflow-rest-gateway: cannot start: {exc.message}", file=sys.stderr)
        sys.exit(1)


def _serve(settings: Settings, host: str, port: int) -> None:
    # handler_cancellation: a client that hangs up cancels its request, which kills its command's process group.
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        print=None,
        handler_cancellation=True,
        access_log_class=AccessLogger,
        # Compressed request bodies are refused as JSON (bodies.py); decoding them would fail in the parser first.
        auto_decompress=False,
    )


if __name__ == "__main__":
    main()

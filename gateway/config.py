"""Settings: one YAML file, validated at start-up, with the old plugin's airflow.cfg keys as a fallback.

Precedence for every setting: the YAML file, then (for the plugin's four keys only)
``AIRFLOW__REST_API_PLUGIN__*`` environment variables, then the ``[rest_api_plugin]`` section of
``$AIRFLOW_HOME/airflow.cfg``, then the built-in default.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import secrets
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .bodies import parse_bool
from .errors import ApiError
from .masking import token_digest

DEFAULT_HEADER_NAME = "rest_api_plugin_http_token"
DEFAULT_DISABLED_APIS = ("scheduler", "triggerer", "dag_processor", "worker", "flower", "kerberos", "serve_logs")
PLUGIN_SECTION = "rest_api_plugin"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8780, ge=0, le=65535)
    #: Path prefix the gateway is served under (e.g. behind nginx at ``/airflow-gw``).
    base_path: str = ""
    #: Proxies (addresses or CIDR networks) whose ``X-Forwarded-*`` headers are believed.
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (like 10.0.0.0/8)") from None
        return value

    @field_validator("base_path")
    @classmethod
    def _normalise_base_path(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith("/"):
            raise ValueError("must start with '/' (for example /airflow-gw)")
        return value


class TokenSettings(_Model):
    #: Who calls: shown in the audit log, and the ``USER``/``LOGNAME`` of the commands it runs.
    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    #: The hex SHA-256 of the token: nothing in the file can be used to call the gateway.
    token_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    token: str | None = Field(None, repr=False)
    token_env: str | None = None
    token_file: Path | None = None
    #: API names or fnmatch patterns this token may call; ``*`` is everything.
    allow: tuple[str, ...] = ("*",)

    @model_validator(mode="after")
    def _one_source(self) -> TokenSettings:
        given = [k for k in TOKEN_SOURCES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(TOKEN_SOURCES)}")
        return self

    def digest(self, environ: Mapping[str, str]) -> bytes:
        """The token's SHA-256, from the hash itself or from wherever the config says the token lives."""
        if self.token_sha256 is not None:
            return bytes.fromhex(self.token_sha256)
        return token_digest(self._secret(environ))

    def _secret(self, environ: Mapping[str, str]) -> str:
        if self.token is not None:
            value = self.token
        elif self.token_env is not None:
            if self.token_env not in environ:
                raise ConfigError(
                    f"auth.tokens[{self.name}].token_env: environment variable {self.token_env} is not set"
                )
            value = environ[self.token_env]
        else:
            assert self.token_file is not None
            try:
                value = self.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"auth.tokens[{self.name}].token_file: {exc.strerror}: {self.token_file}") from None
        if not value.strip():
            raise ConfigError(f"auth.tokens[{self.name}]: the token is empty (an empty token never disables auth)")
        return value


TOKEN_SOURCES = ("token_sha256", "token", "token_env", "token_file")


class AuthSettings(_Model):
    disabled: bool = False
    header_name: str | None = None
    tokens: tuple[TokenSettings, ...] = ()


class AirflowSettings(_Model):
    home: Path | None = None
    #: Default: the ``airflow`` beside the gateway's interpreter (same venv), else ``airflow`` on PATH.
    executable: str | None = None
    #: Interpreter of Airflow's environment, for the gateway's small in-Airflow helpers.
    python: str | None = None
    env: dict[str, str] = Field(default_factory=dict)


class RunnerSettings(_Model):
    #: ``auto``: ``warm`` when Airflow is importable here, else ``exec``.
    mode: Literal["auto", "warm", "exec"] = "auto"
    max_concurrency: int = Field(4, ge=1)
    max_queue: int = Field(64, ge=0)
    timeout_s: float = Field(300.0, gt=0)
    #: SIGTERM, then SIGKILL this much later: short, so a hung-up client frees its run within 2 s in total.
    kill_grace_s: float = Field(1.0, ge=0)
    max_output_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    #: Warm mode: a fresh fork server replaces the current one after this many commands.
    max_runs_per_zygote: int = Field(1000, ge=1)
    #: Warm mode: how long the fork server may take to warm up (and requests wait for it).
    startup_timeout_s: float = Field(120.0, gt=0)


class ApisSettings(_Model):
    disabled: tuple[str, ...] = DEFAULT_DISABLED_APIS
    #: Read-only APIs (``fast_path`` in the catalog) answered by the Airflow worker without a fork; false: every
    #: call runs the CLI (the parity test compares the two).
    fast_reads: bool = True


class StreamingSettings(_Model):
    #: A heartbeat goes out after this much silence (keep it below the proxy's read timeout).
    heartbeat_s: float = Field(15.0, gt=0)


class JobsSettings(_Model):
    """Where background jobs live: ``files`` (one gateway) or PostgreSQL (replicas share it; docs/replicas.md)."""

    #: Finished jobs (and their logs) are kept this long.
    retention_s: float = Field(7 * 24 * 3600.0, gt=0)
    #: ``files``; ``postgresql://…`` (a secret: never logged); or ``postgresql`` with the URL in store_env/store_file.
    store: str = Field("files", repr=False)
    store_env: str | None = None
    store_file: Path | None = None
    #: PostgreSQL: followers and cancel requests are also checked this often (LISTEN/NOTIFY wakes them sooner).
    poll_s: float = Field(1.0, gt=0)
    #: PostgreSQL: a replica silent this long is gone, and its running jobs are ``lost``.
    lease_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _one_store_source(self) -> JobsSettings:
        sources = [k for k in ("store_env", "store_file") if getattr(self, k) is not None]
        if self.store == "files":
            if sources:
                raise ValueError(f"{sources[0]} needs store: postgresql")
        elif self.store == "postgresql":
            if len(sources) != 1:
                raise ValueError("store: postgresql takes its URL from exactly one of store_env, store_file")
        elif _is_postgres_url(self.store):
            if sources:
                raise ValueError("store is a URL already: drop store_env/store_file")
        else:
            # The value may be a mistyped URL with a password: never echoed.
            raise ValueError("store must be files, postgresql (with store_env or store_file) or a postgresql:// URL")
        return self

    def store_url(self, environ: Mapping[str, str]) -> str | None:
        """The PostgreSQL URL (a secret), or None for the files store."""
        if self.store == "files":
            return None
        if _is_postgres_url(self.store):
            return self.store
        if self.store_env is not None:
            if self.store_env not in environ:
                raise ConfigError(f"jobs.store_env: environment variable {self.store_env} is not set")
            url, where = environ[self.store_env].strip(), "jobs.store_env"
        else:
            assert self.store_file is not None
            try:
                url, where = self.store_file.read_text(encoding="utf-8").strip(), "jobs.store_file"
            except OSError as exc:
                raise ConfigError(f"jobs.store_file: {exc.strerror}: {self.store_file}") from None
        if not _is_postgres_url(url):
            raise ConfigError(f"{where}: the value is not a postgresql:// URL (not shown: it may hold a password)")
        return url


def _is_postgres_url(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))


class ExperimentalSettings(_Model):
    #: Start the Airflow worker with the app (else on the first request it answers).
    warm_at_start: bool = True
    #: Threads of the Airflow worker: how many of its operations (experimental API, plugin reads) run at once.
    threads: int = Field(8, ge=1, le=64)
    #: The largest answer the worker sends back (a larger one is answered 413, naming this limit).
    max_reply_bytes: int = Field(64 << 20, ge=1024, le=1 << 30)


class MetricsSettings(_Model):
    """``GET /metrics`` (Prometheus). It holds counts and API names, never a secret; open by default, like /health."""

    #: True: a scrape needs a token (any configured one), as every API call does.
    require_token: bool = False


class WaitSettings(_Model):
    """``trigger_dag&wait=true``, ``watch_dag_run`` and the experimental API's ``?wait=true``."""

    #: A wait that names no ``wait_timeout_s`` gives up (504) after this long.
    timeout_s: float = Field(3600.0, gt=0)
    #: The longest ``wait_timeout_s`` a call may ask for.
    max_timeout_s: float = Field(24 * 3600.0, gt=0)
    #: How often a wait reads the run's state and new log lines.
    poll_s: float = Field(1.0, gt=0)


Service = Literal["scheduler", "dag-processor", "triggerer", "api-server"]


class ServicesSettings(_Model):
    """Airflow's own services, started beside the gateway and stopped with it: for the demo, or a one-box install.

    In production next to an existing Airflow, leave ``run`` empty (the default): those services are
    someone else's. Each runs as ``airflow <name>`` in Airflow's environment (``airflow.env`` applies:
    set the api-server's port and ``AIRFLOW__CORE__EXECUTION_API_SERVER_URL`` there), is restarted when it
    exits, and logs to ``state_dir/services/<name>.log``.
    """

    run: tuple[Service, ...] = ()
    #: A service that exits is started again after this long.
    restart_delay_s: float = Field(5.0, gt=0)


class DeploySettings(_Model):
    max_bytes: int = Field(1024 * 1024, ge=1)
    #: How long parsing an upload (its import) may take before it is refused (Airflow's own default: 30 s).
    check_timeout_s: float = Field(60.0, gt=0)


class AuditSettings(_Model):
    #: ``log``: the gateway's log (logger ``gateway.audit``); ``off``; or a file that JSON lines are appended to.
    destination: str = "log"


class LogSettings(_Model):
    #: ``text``: ``time LEVEL logger: message`` lines; ``json``: one JSON object per record (access log and
    #: audit records as fields). Either way a record is one line (gateway/logs.py).
    format: Literal["text", "json"] = "text"


class CompatSettings(_Model):
    log_loading: bool | None = None
    filter_loading_messages_in_cli_response: bool | None = None


class FileSettings(_Model):
    """The YAML file's shape; every section optional."""

    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    airflow: AirflowSettings = AirflowSettings()
    runner: RunnerSettings = RunnerSettings()
    apis: ApisSettings = ApisSettings()
    deploy: DeploySettings = DeploySettings()
    wait: WaitSettings = WaitSettings()
    services: ServicesSettings = ServicesSettings()
    streaming: StreamingSettings = StreamingSettings()
    jobs: JobsSettings = JobsSettings()
    experimental: ExperimentalSettings = ExperimentalSettings()
    metrics: MetricsSettings = MetricsSettings()
    audit: AuditSettings = AuditSettings()
    log: LogSettings = LogSettings()
    rest_api_plugin: CompatSettings = CompatSettings()
    state_dir: Path | None = None


class Token:
    """A resolved token: its name, its SHA-256 and what it may call. The gateway never keeps the token itself."""

    __slots__ = ("allow", "name", "sha256")

    def __init__(self, name: str, sha256: bytes, allow: tuple[str, ...]) -> None:
        self.name, self.sha256, self.allow = name, sha256, allow

    def __repr__(self) -> str:
        return f"Token(name={self.name!r}, allow={self.allow!r})"


class Settings:
    """Everything the app needs, resolved: paths absolute, tokens read, fallbacks applied."""

    def __init__(self, file: FileSettings, environ: Mapping[str, str]) -> None:
        self.server = file.server
        self.runner = file.runner
        self.runner_mode = file.runner.mode if file.runner.mode != "auto" else _auto_mode()
        self.deploy = file.deploy
        self.wait = file.wait
        self.services = file.services
        self.streaming = file.streaming
        self.jobs = file.jobs
        self.experimental = file.experimental
        self.metrics = file.metrics
        self.audit = file.audit
        self.log = file.log
        self.disabled_apis = frozenset(file.apis.disabled)
        self.fast_reads = file.apis.fast_reads

        home = file.airflow.home or Path(environ.get("AIRFLOW_HOME", "~/airflow"))
        self.airflow_home = home.expanduser().resolve()
        self.airflow_executable = file.airflow.executable or _airflow_beside_us()
        self.airflow_python = file.airflow.python or _python_beside(self.airflow_executable)
        self.airflow_env = dict(file.airflow.env)
        self.state_dir = (file.state_dir or self.airflow_home / "rest_gateway").expanduser().resolve()

        plugin_cfg = _PluginCompat(self.airflow_home, environ)
        self.header_name = (
            file.auth.header_name or plugin_cfg.get("rest_api_plugin_http_token_header_name") or DEFAULT_HEADER_NAME
        )
        self.log_loading = _first_bool(file.rest_api_plugin.log_loading, plugin_cfg.get("log_loading"), False)
        self.filter_loading_messages = _first_bool(
            file.rest_api_plugin.filter_loading_messages_in_cli_response,
            plugin_cfg.get("filter_loading_messages_in_cli_response"),
            True,
        )
        self.auth_disabled = file.auth.disabled
        self.tokens: tuple[Token, ...] = tuple(Token(t.name, t.digest(environ), t.allow) for t in file.auth.tokens)
        #: Said once at start-up: settings that work but weaken the gateway (plaintext tokens in files).
        self.warnings: list[str] = [
            f"auth.tokens[{t.name}].token is a plaintext token in the config file: anything that can read the file "
            "(DAG code runs as the same user) can use it. Prefer token_sha256 (airflow-rest-gateway --hash-token)."
            for t in file.auth.tokens
            if t.token is not None
        ]
        #: A token made up for this run because none was configured: printed once at start-up, never logged.
        self.generated_token: str | None = None
        if not self.tokens:
            legacy = plugin_cfg.get("rest_api_plugin_expected_http_token")
            if legacy:
                self.tokens = (Token("airflow.cfg", token_digest(legacy), ("*",)),)
                self.warnings.append(
                    "the token comes from airflow.cfg's [rest_api_plugin] section, which DAG code can read; "
                    "prefer auth.tokens with token_sha256"
                )
            elif not self.auth_disabled:
                self.generated_token = secrets.token_urlsafe(24)
                self.tokens = (Token("generated", token_digest(self.generated_token), ("*",)),)
        #: The PostgreSQL job store's URL (a secret), or None: the files store.
        self.job_store_url = file.jobs.store_url(environ)
        if self.job_store_url is not None and self.generated_token is not None:
            raise ConfigError(
                "jobs.store: replicas sharing a PostgreSQL job store must accept the same tokens, and each would "
                "generate its own: configure auth.tokens"
            )
        #: Environment variables holding secrets; children never inherit them.
        secret_envs = [t.token_env for t in file.auth.tokens] + [file.jobs.store_env]
        self.secret_env_names = frozenset(name for name in secret_envs if name)
        self.dags_folder = self._dags_folder(environ)

    def child_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """The environment every Airflow process starts from: ours minus secrets, plus Airflow's home and overrides."""
        env = {k: v for k, v in base.items() if k not in self.secret_env_names and not k.startswith("GATEWAY_")}
        env["AIRFLOW_HOME"] = str(self.airflow_home)
        env.update(self.airflow_env)
        return env

    def _dags_folder(self, environ: Mapping[str, str]) -> Path:
        value = self.airflow_env.get("AIRFLOW__CORE__DAGS_FOLDER") or environ.get("AIRFLOW__CORE__DAGS_FOLDER")
        if not value:
            value = _read_cfg(self.airflow_home).get("core", "dags_folder", fallback=None)
        if not value:
            return self.airflow_home / "dags"
        return Path(value.replace("{AIRFLOW_HOME}", str(self.airflow_home))).expanduser().resolve()


class _PluginCompat:
    """The old plugin's keys: ``AIRFLOW__REST_API_PLUGIN__<KEY>`` env vars win over airflow.cfg."""

    def __init__(self, home: Path, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._cfg = _read_cfg(home)

    def get(self, key: str) -> str | None:
        env_value = self._environ.get(f"AIRFLOW__{PLUGIN_SECTION.upper()}__{key.upper()}")
        if env_value is not None:
            return env_value.strip()
        value = self._cfg.get(PLUGIN_SECTION, key, fallback=None)
        return value.strip() if value is not None else None


def _read_cfg(home: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(home / "airflow.cfg", encoding="utf-8")
    except configparser.Error as exc:
        raise ConfigError(f"{home / 'airflow.cfg'}: {exc}") from None
    return parser


def _first_bool(yaml_value: bool | None, cfg_value: str | None, default: bool) -> bool:
    if yaml_value is not None:
        return yaml_value
    if cfg_value is None or cfg_value == "":
        return default
    try:
        return parse_bool(PLUGIN_SECTION, cfg_value)
    except ApiError:
        raise ConfigError(f"[{PLUGIN_SECTION}] has a value that is not a boolean: {cfg_value!r}") from None


def _auto_mode() -> str:
    import importlib.util

    return "warm" if importlib.util.find_spec("airflow") is not None else "exec"


def _airflow_beside_us() -> str:
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


def _python_beside(executable: str) -> str:
    """Airflow's interpreter: the ``python`` next to the ``airflow`` script, else ours."""
    found = shutil.which(executable)
    if found:
        candidate = Path(found).parent / "python"
        if candidate.exists():
            return str(candidate)
    return sys.executable


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{key}: {message}")
    return "; ".join(lines)


def parse_settings(data: Any, environ: Mapping[str, str] | None = None) -> Settings:
    """Validate an already-loaded mapping (the YAML document) into :class:`Settings`."""
    environ = os.environ if environ is None else environ
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("(top level): the config must be a mapping of sections")
    try:
        file = FileSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None
    return Settings(file, environ)


def load_settings(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the YAML config at ``path`` (no file: every default)."""
    if path is None:
        return parse_settings({}, environ)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_settings(data, environ)

"""The hostile-input table: every case the suite sends, generated systematically.

Each :class:`Case` is one request (or one raw byte stream) and what it must never cause. ``invalid``
cases must be refused with a 4xx before any process starts; every case must keep the invariants
checked in ``test_hostile.py`` (no 5xx, JSON answers, no leaked secrets, no stray files, a live
gateway).

Values that exist only at run time are placeholders, resolved just before a case is sent:
``@@TOKEN:<name>@@`` (a token secret), ``@@JOB@@`` (the admin's background job), ``@@LOGSIZE@@``
and friends (offsets into that job's log), ``@@CONFIG@@`` (the gateway's config file path).
"""

from __future__ import annotations

import datetime
import gzip
import json
import secrets
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from gateway.catalog import APIS, Api, Arg, ArgType, Kind

PLUGIN = "/admin/rest_api/api"
EXP = "/api/experimental"
JOBS = "/api/jobs"
HEADER = "rest_api_plugin_http_token"
JOB = "@@JOB@@"
CONFIG = "@@CONFIG@@"
#: Distinguishes this run's marker files (paths that must never be written).
RUN_TAG = secrets.token_hex(4)
THEFT_MARKER = "GW-HOSTILE-THEFT"
#: In ``secrets``: every password of the corpus.
ALL_PASSWORDS = "@@ALL_PASSWORDS@@"
#: Printed by Airflow's argparse when a value became an option.
HELP_TEXT = "usage: airflow"
#: Prefix of the bulk secrets (10,000 in one request): a leak is any match of :data:`BULK_SECRET`.
BULK_TAG = f"BK{RUN_TAG}"
BULK_SECRET = BULK_TAG + r"[0-9a-f]{13}"


def tok(name: str) -> str:
    return f"@@TOKEN:{name}@@"


class Raw(str):
    """A query value sent exactly as written (already percent-encoded, possibly badly)."""

    __slots__ = ()


@dataclass(frozen=True)
class Part:
    """One multipart part. ``disposition`` (raw bytes) replaces the generated Content-Disposition line."""

    name: str | None
    content: bytes
    filename: str | None = None
    #: RFC 5987 ``filename*=UTF-8''<this>``: already percent-encoded, so it can carry NUL or a newline.
    filename_star: str | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    disposition: bytes | None = None


@dataclass(frozen=True)
class Case:
    id: str
    method: str = "GET"
    path: str = PLUGIN
    #: Pairs; values are percent-encoded when sent, except :class:`Raw` ones.
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    #: A JSON body (``Content-Type: application/json``); ``None`` means none. Use ``body`` for raw JSON text.
    json: Any = None
    #: Multipart parts (``Content-Type: multipart/form-data; boundary=...``).
    parts: tuple[Part, ...] | None = None
    boundary: str = "gwHostileBoundary7MA4YWxkTrZu0gW"
    #: Which token goes in the ``rest_api_plugin_http_token`` header (None: no token header).
    token: str | None = "admin"
    #: Must be refused with a 4xx, and no process may start.
    invalid: bool = False
    #: Must be refused with a 4xx, but finding that out may take a process (a DAG file must be parsed).
    refuse: bool = False
    #: When set, the status must be one of these.
    expect: tuple[int, ...] = ()
    #: Values that must never appear in an answer, a job log or the gateway log.
    secrets: tuple[str, ...] = ()
    #: Texts (placeholders allowed) that must not appear in the answer.
    forbid: tuple[str, ...] = ()
    #: Sent over a raw socket, byte for byte (placeholders allowed): only status < 500 is asserted.
    raw: bytes | None = None
    #: The answer may be a stream (NDJSON); every line must then be JSON.
    stream: bool = False
    #: A 202 job: follow it to its end and read its log (its events must not leak either).
    follow_job: bool = False
    #: Nothing may be added to or changed in the DAGs folder.
    dags_unchanged: bool = False
    #: Absolute paths that must not exist afterwards.
    outside_paths: tuple[str, ...] = ()
    #: Proof that an attack ran: if ``proof[0]`` is in the answer, one of ``proof[1:]`` must be too.
    proof: tuple[str, ...] = ()
    #: The audit record of this request must carry this ``remote`` and the answer's real status.
    audit_remote: str | None = None
    #: The answer must have come within this many seconds.
    within_s: float | None = None
    #: Headers the answer must carry.
    answer_headers: tuple[str, ...] = ()
    #: The request carries many secrets matching :data:`BULK_SECRET` (checked by pattern, not one by one).
    bulk_secrets: bool = False

    @property
    def needs_job(self) -> bool:
        text = self.path + repr(self.query) + repr(self.raw) + repr(self.forbid)
        return any(mark in text for mark in ("@@JOB", "@@LOG", "@@LINE"))

    @property
    def family(self) -> str:
        if self.path.startswith("/admin/rest_api"):
            return "plugin"
        return "other"


# ---------------------------------------------------------------------------------------------------
# Building blocks


def nested_json(depth: int, kind: str = "object") -> str:
    if kind == "object":
        return '{"a": ' * depth + "1" + "}" * depth
    return "[" * depth + "1" + "]" * depth


NESTED_OBJ = nested_json(10_000)
NESTED_ARR = nested_json(10_000, "array")


def json_text(fields: dict[str, Any], raw_fields: dict[str, str] | None = None) -> bytes:
    """A JSON object whose ``raw_fields`` are pasted in verbatim (numbers like 1e400, 10,000-deep nesting)."""
    text = json.dumps(fields)
    for key, fragment in (raw_fields or {}).items():
        joiner = ", " if text != "{}" else ""
        text = text[:-1] + f"{joiner}{json.dumps(key)}: {fragment}" + "}"
    return text.encode()


JSON_CT = (("Content-Type", "application/json"),)
FORM_CT = (("Content-Type", "application/x-www-form-urlencoded"),)


def form_text(fields: Iterable[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in fields).encode()


def dag_source(dag_id: str) -> bytes:
    return (
        "import pendulum\nfrom airflow.sdk import DAG\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        f"with DAG({dag_id!r}, start_date=pendulum.datetime(2024, 1, 1), schedule=None):\n"
        "    EmptyOperator(task_id='only')\n"
    ).encode()


# ---------------------------------------------------------------------------------------------------
# 2. Every argument of every plugin API, with hostile values

#: Valid arguments that make each API's call meaningful: the value under test is the only hostile part.
BASE: dict[str, dict[str, str]] = {
    "render": {"dag_id": "gw_probe", "task_id": "hello", "execution_date": "2024-03-03"},
    "task_failed_deps": {"dag_id": "gw_probe", "task_id": "hello", "execution_date": "2024-03-03"},
    "task_state": {"dag_id": "gw_probe", "task_id": "hello", "execution_date": "2024-03-03"},
    "run": {"dag_id": "gw_probe", "task_id": "hello", "execution_date": "2024-03-03"},
    "test": {"dag_id": "gw_probe", "task_id": "hello", "execution_date": "2024-03-03"},
    "dag_state": {"dag_id": "gw_probe", "execution_date": "2024-03-03"},
    "trigger_dag": {"dag_id": "gw_probe"},
    "list_tasks": {"dag_id": "gw_probe"},
    "backfill": {"dag_id": "gw_probe", "start_date": "2024-01-01"},
    # DAGs nobody else relies on: a wrongly accepted hostile id must not take gw_probe with it.
    "pause": {"dag_id": "gw_assets"},
    "unpause": {"dag_id": "gw_assets"},
    "delete_dag": {"dag_id": "gw_assets"},
    "refresh_dag": {"dag_id": "gw_probe"},
    "clear": {"dag_id": "gw_probe"},
}

#: Arguments that only mean something together with others: (api, arg) -> the companions.
CONTEXT: dict[tuple[str, str], dict[str, str]] = {
    ("variables", "set"): {"set_value": "v"},
    ("variables", "set_value"): {"set": "gw_h_var"},
    ("variables", "cmd"): {"key": "gw_h_var2", "value": "v"},
    ("variables", "key"): {"cmd": "set", "value": "v"},
    ("variables", "value"): {"cmd": "set", "key": "gw_h_var3"},
    ("variables", "description"): {"set": "gw_h_var4", "set_value": "v"},
    ("variables", "json"): {"get": "gw_h_var"},
    ("variables", "default"): {"get": "gw_h_missing"},
    ("variables", "action_on_existing_key"): {"import": '{"gw_h_imp": "1"}'},
    ("connections", "add"): {"conn_id": "@@CONN@@", "conn_type": "http"},
    ("connections", "delete"): {"conn_id": "gw_h_conn_missing"},
    ("connections", "conn_id"): {"add": "", "conn_type": "http"},
    ("connections", "conn_uri"): {"add": "", "conn_id": "@@CONN@@"},
    ("connections", "conn_type"): {"add": "", "conn_id": "@@CONN@@"},
    ("connections", "conn_json"): {"add": "", "conn_id": "@@CONN@@"},
    ("pool", "pool_name"): {"cmd": "set", "slot_count": "2"},
    ("pool", "slot_count"): {"cmd": "set", "pool_name": "gw_h_pool"},
    ("pool", "pool_description"): {"cmd": "set", "pool_name": "gw_h_pool", "slot_count": "2"},
    ("pool", "include_deferred"): {"cmd": "set", "pool_name": "gw_h_pool", "slot_count": "2"},
    ("pool", "cmd"): {"pool_name": "gw_h_pool", "slot_count": "2"},
}
for _name in ("conn_extra", "conn_host", "conn_login", "conn_password", "conn_port", "conn_schema", "conn_description"):
    CONTEXT[("connections", _name)] = {"add": "", "conn_id": "@@CONN@@", "conn_type": "http"}

#: What a hostile value is derived from, per argument name (else per type).
BASE_BY_NAME = {
    "dag_id": "gw_probe",
    "task_id": "hello",
    "conn_id": "gw_h_conn",
    "run_id": "gw_h_run",
    "pool_name": "gw_h_pool",
    "set": "gw_h_var",
    "get": "gw_h_var",
    "delete": "gw_h_var_del",
    "key": "gw_h_var",
    "conn_uri": "http://h.example:80/x",
    "conn_type": "http",
}
BASE_BY_TYPE = {
    ArgType.ID: "gw_h_id",
    ArgType.TEXT: "gw_h_text",
    ArgType.RUN_ID: "gw_h_run",
    ArgType.DATE: "2024-03-03",
    ArgType.DATE_OR_RUN_ID: "2024-03-03",
    ArgType.BOOL: "false",
    ArgType.INT: "1",
    ArgType.JSON_OBJECT: '{"who": "x"}',
    ArgType.JSON_DOCUMENT: '{"gw_h_imp": "1"}',
}


@dataclass(frozen=True)
class Hostile:
    key: str
    value: str
    #: ``query`` (GET), ``form`` (urlencoded POST body), ``json`` (JSON body, value as a string),
    #: ``jsonraw`` (JSON body, ``value`` pasted verbatim as the JSON value).
    transport: str = "query"
    #: True: must be refused before anything runs; None: no opinion on the status.
    invalid: bool | None = True
    forbid: tuple[str, ...] = ()


def common_hostile(base: str, text_like: bool) -> list[Hostile]:
    """The values every argument gets. ``text_like``: free text, where most of them are legitimate data."""
    ok: bool | None = None if text_like else True
    values = [
        Hostile("nl", base + "\n", invalid=ok),
        Hostile("dash_help", "--help", invalid=ok, forbid=(HELP_TEXT,)),
        Hostile("nul", base + "\x00x"),
        Hostile("nul_json", base + "\x00x", transport="json"),
        Hostile("long70k", "a" * 70_000, transport="json"),
        Hostile("rtl", base + "\u202egnp.exe", invalid=ok),
        Hostile("subst", "$(id)", invalid=ok),
        Hostile("dotdot", "../../etc/passwd", invalid=ok),
        Hostile("crlf", base + "\r\nX-Injected: 1", invalid=ok),
    ]
    if not text_like:
        values += [
            Hostile("nl_form", base + "\n", transport="form"),
            Hostile("nl_json", base + "\n", transport="json"),
            Hostile("emoji", base + "\U0001f4a5"),
            Hostile("semi_rm", base + ";rm -rf /"),
            Hostile("backtick", "`id`"),
            Hostile("abs_path", "/etc/passwd"),
            Hostile("long70k_form", "a" * 70_000, transport="form"),
        ]
    else:
        values += [
            Hostile("long65537", "b" * 65_537, transport="json"),
            Hostile("json_list", '["a"]', transport="jsonraw"),
            Hostile("json_obj", '{"a": 1}', transport="jsonraw"),
        ]
    return values


INT_HOSTILE = [
    Hostile("neg1", "-1"),
    Hostile("int63", str(2**63)),
    Hostile("int64", str(2**64)),
    Hostile("e30", "1" + "0" * 30),
    Hostile("e400", "1e400"),
    Hostile("nan", "NaN"),
    Hostile("inf", "inf"),
    Hostile("hex", "0x10"),
    Hostile("frac", "1.5"),
    Hostile("json_int64", str(2**64), transport="jsonraw"),
    Hostile("json_e400", "1e400", transport="jsonraw"),
    Hostile("json_nan", "NaN", transport="jsonraw"),
    Hostile("json_neg1", "-1", transport="jsonraw"),
    Hostile("json_float", "5.0", transport="jsonraw"),
    Hostile("json_true", "true", transport="jsonraw"),
]
DATE_HOSTILE = [
    Hostile("y1_plus5", "0001-01-01T00:00:00+05:00"),
    Hostile("y9999_minus5", "9999-12-31T23:00:00-05:00"),
    Hostile("tz_plus25", "2024-01-01T00:00:00+25:00"),
    Hostile("feb30", "2017-02-30"),
    Hostile("month13", "2024-13-01"),
    Hostile("year0", "0000-01-01"),
    Hostile("hour24", "2024-01-01T24:00:00"),
    Hostile("year5digits", "10000-01-01"),
    Hostile("tz_name", "2024-01-01T00:00:00 Europe/Paris"),
    # ISO 8601's basic format, as a JSON number: a legal date once read as text.
    Hostile("json_number", "20240101", transport="jsonraw", invalid=None),
    Hostile("y1_plus5_json", "0001-01-01T00:00:00+05:00", transport="json"),
]
#: Odd but legal dates: no opinion on the status, but never a 5xx. Only on a few arguments (they run).
DATE_ODD = [
    Hostile("plus_as_space", Raw("2024-01-01T00:00:00+05:00"), invalid=None),
    Hostile("y1_naive", "0001-01-01", invalid=None),
    Hostile("max_utc", "9999-12-31T23:59:59+00:00", invalid=None),
]
RUN_REF_HOSTILE = [
    Hostile("runid_nl", "manual__2024\n"),
    Hostile("runid_nl_json", "manual__2024\n", transport="json"),
    Hostile("runid_251", "r" * 251),
    Hostile("runid_space", "manual x"),
    Hostile("runid_slash", "manual/x"),
]
RUN_ID_HOSTILE = [
    Hostile("len251", "r" * 251),
    Hostile("space", "x y"),
    Hostile("only_nl", "\n"),
    Hostile("json_list", '["x"]', transport="jsonraw"),
]
JSON_HOSTILE = [
    Hostile("nested10k", NESTED_OBJ, transport="json"),
    Hostile("nested10k_obj", NESTED_OBJ, transport="jsonraw"),
    Hostile("nested10k_arr", NESTED_ARR, transport="jsonraw"),
    Hostile("nested10k_form", NESTED_OBJ, transport="form"),
    Hostile("array", "[1, 2]"),
    Hostile("array_json", "[1, 2]", transport="jsonraw"),
    Hostile("null", "null"),
    Hostile("string", '"x"'),
    Hostile("number", "5"),
    Hostile("truncated", '{"a": '),
    Hostile("big300k", json.dumps({"k": "v" * 300_000}), transport="jsonraw"),
]
BOOL_HOSTILE = [
    Hostile("maybe", "maybe"),
    Hostile("two", "2"),
    Hostile("homoglyph", "tru\u0435"),
    Hostile("json_list", "[]", transport="jsonraw"),
    Hostile("json_obj", "{}", transport="jsonraw"),
]
DOC_HOSTILE = [
    Hostile("at_path", "@/etc/passwd"),
    Hostile("file_url", "file:///etc/passwd"),
    Hostile("array", "[1]"),
    Hostile("nested10k", NESTED_OBJ, transport="json"),
    # A big import file is legitimate (uploads may be up to deploy.max_bytes).
    Hostile("big300k", json.dumps({"k": "v" * 300_000}), transport="json", invalid=None),
]


def hostile_values(api: Api, arg: Arg) -> list[Hostile]:
    base = BASE_BY_NAME.get(arg.name, BASE_BY_TYPE.get(arg.type, "x"))
    if api.name in ("pause", "unpause", "delete_dag") and arg.name == "dag_id":
        base = "gw_assets"
    if arg.type is ArgType.CHOICE:
        base = arg.choices[0]
    if arg.name == "set" and api.name == "pool":
        base = "gw_h_pool 3 nightly"
    text_like = arg.type is ArgType.TEXT
    values = common_hostile(base, text_like)
    # Trailing newlines are legitimate where the value is parsed with surrounding spaces ignored.
    if arg.type in (ArgType.DATE, ArgType.DATE_OR_RUN_ID, ArgType.INT, ArgType.BOOL, ArgType.JSON_OBJECT):
        values = [replace(h, invalid=None) if h.key.startswith("nl") else h for h in values]
    if arg.type is ArgType.JSON_DOCUMENT:
        values = [replace(h, invalid=None) if h.key.startswith("nl") else h for h in values]
    if arg.name == "conn_json":
        values = [replace(h, value=h.value.replace(base, '{"conn_type": "http", "host": "h"}')) for h in values]
    extra: list[Hostile] = []
    if arg.type is ArgType.INT:
        extra = INT_HOSTILE
    elif arg.type is ArgType.DATE:
        extra = DATE_HOSTILE + (DATE_ODD if (api.name, arg.name) == ("trigger_dag", "exec_date") else [])
    elif arg.type is ArgType.DATE_OR_RUN_ID:
        # A five-digit "year" is no date, but it is a well-formed run id: no opinion on the status.
        dates = [replace(h, invalid=None) if h.key == "year5digits" else h for h in DATE_HOSTILE]
        extra = dates + RUN_REF_HOSTILE + (DATE_ODD if api.name == "render" else [])
    elif arg.type is ArgType.RUN_ID:
        extra = RUN_ID_HOSTILE
    elif arg.type is ArgType.JSON_OBJECT:
        extra = JSON_HOSTILE
    elif arg.type is ArgType.BOOL:
        extra = BOOL_HOSTILE
    elif arg.type is ArgType.CHOICE:
        extra = [Hostile("upper", base.upper()), Hostile("json_list", json.dumps([base]), transport="jsonraw")]
    elif arg.type is ArgType.JSON_DOCUMENT:
        extra = DOC_HOSTILE
    elif arg.type is ArgType.ID:
        extra = [
            Hostile("len251", "a" * 251),
            Hostile("space", f"{base} x"),
            Hostile("json_list", json.dumps([base]), transport="jsonraw"),
        ]
    return values + extra


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def next(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_{self.n}"


_CONN = _Counter()
_DAG = _Counter()


def _resolve_companions(params: dict[str, str]) -> dict[str, str]:
    return {k: (_CONN.next("gw_h_conn") if v == "@@CONN@@" else v) for k, v in params.items()}


def api_call(
    case_id: str,
    api: str,
    params: dict[str, str],
    hostile_name: str | None = None,
    hostile: Hostile | None = None,
    **case_fields: Any,
) -> Case:
    """One call of ``api`` with ``params``; ``hostile`` (if any) is added as ``hostile_name`` by its transport."""
    transport = hostile.transport if hostile else "query"
    if transport == "query":
        pairs = [("api", api), *params.items()]
        if hostile and hostile_name:
            pairs.append((hostile_name, hostile.value))
        return Case(case_id, query=tuple(pairs), **case_fields)
    if transport == "form":
        fields = list(params.items())
        if hostile and hostile_name:
            fields.append((hostile_name, hostile.value))
        return Case(
            case_id,
            method="POST",
            query=(("api", api),),
            headers=FORM_CT,
            body=form_text(fields),
            **case_fields,
        )
    fields = {"api": api, **params}
    raw_fields = {}
    if hostile and hostile_name:
        if transport == "json":
            fields[hostile_name] = hostile.value
        else:
            raw_fields[hostile_name] = hostile.value
    return Case(case_id, method="POST", headers=JSON_CT, body=json_text(fields, raw_fields), **case_fields)


def argument_cases() -> Iterator[Case]:
    for api in APIS:
        if api.kind is Kind.DAEMON:
            yield from daemon_cases(api)
            continue
        if api.name == "deploy_dag":
            continue  # class 4: uploads
        base = BASE.get(api.name, {})
        for arg in api.args:
            if not arg.accepted:
                for key, value in (("path", "/etc/passwd"), ("word", "x")):
                    yield api_call(
                        f"arg-{api.name}-{arg.name}-refused_{key}", api.name, {**base, arg.name: value}, invalid=True
                    )
                continue
            for hostile in hostile_values(api, arg):
                params = {**base, **CONTEXT.get((api.name, arg.name), {})}
                params.pop(arg.name, None)
                params = _resolve_companions(params)
                yield api_call(
                    f"arg-{api.name}-{arg.name}-{hostile.key}",
                    api.name,
                    params,
                    arg.name,
                    hostile,
                    invalid=bool(hostile.invalid),
                    forbid=hostile.forbid,
                )
        # Arguments no API has; twice the same argument under two spellings.
        yield api_call(f"arg-{api.name}-unknown_arg", api.name, {**base, "gw_h_unknown": "$(id)"}, invalid=True)
        yield api_call(f"arg-{api.name}-unknown_arg_nul", api.name, {**base, "x\x00y": "1"}, invalid=True)
        if any(a.name == "map_index" for a in api.args):
            # A real index on a task that is not mapped: Airflow must say so, never a 5xx.
            yield api_call(f"arg-{api.name}-map_index-5_on_unmapped", api.name, {**base, "map_index": "5"})
    yield api_call(
        "arg-trigger_dag-exec_date-two_spellings",
        "trigger_dag",
        {"dag_id": "gw_probe", "exec_date": "2024-05-01", "execution_date": "2024-05-02"},
        invalid=True,
    )
    yield api_call("arg-dag_id-len250-ok", "list_tasks", {"dag_id": "a" * 250})
    for name in ("-", "--", "-1", "-version"):
        yield api_call(f"arg-list_tasks-dag_id-option_{quote(name)}", "list_tasks", {"dag_id": name}, invalid=True)
    # Boundary of free text: 65,536 characters is the limit, not a refusal.
    yield api_call(
        "arg-variables-set_value-len65536",
        "variables",
        {"set": "gw_h_big"},
        "set_value",
        Hostile("x", "c" * 65_536, transport="json", invalid=None),
    )


def daemon_cases(api: Api) -> Iterator[Case]:
    """Daemon APIs are disabled and must stay so: 403 whatever the arguments (410 for the one that is gone)."""
    expect = (403, 410) if api.gone else (403,)
    yield api_call(f"daemon-{api.name}-async", api.name, {"async": "true"}, invalid=True, expect=expect)
    yield api_call(f"daemon-{api.name}-sync", api.name, {}, invalid=True, expect=expect)
    yield api_call(
        f"daemon-{api.name}-async_json",
        api.name,
        {"async": "yes"},
        None,
        Hostile("x", "", transport="json"),
        invalid=True,
        expect=expect,
    )
    for arg in api.args:
        for key, value in (("nl", "x\n"), ("subst", "$(id)"), ("path", "/tmp/gw_hostile_pid")):
            yield api_call(
                f"daemon-{api.name}-{arg.name}-{key}",
                api.name,
                {"async": "true", arg.name: value},
                invalid=True,
                expect=expect,
            )


# ---------------------------------------------------------------------------------------------------
# 1. Tokens

FAMILIES = {
    "plugin": (PLUGIN, (("api", "version"),)),
    "experimental": (f"{EXP}/pools", ()),
    "jobs": (JOBS, ()),
    "jobstatus": (f"{JOBS}/0123456789abcdef", ()),
}


def token_cases() -> Iterator[Case]:
    variants: list[tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], bool | None]] = [
        # (id, headers, extra query, invalid) — token=None on all: the headers say everything.
        ("missing", (), (), True),
        ("wrong", ((HEADER, "wrong-token-" + "x" * 20),), (), True),
        ("empty", ((HEADER, ""),), (), True),
        ("spaces", ((HEADER, "   "),), (), True),
        ("near_limit_8000", ((HEADER, "t" * 8000),), (), True),
        ("admin_prefix", ((HEADER, "@@TOKENPREFIX:admin@@"),), (), True),
        ("admin_upper", ((HEADER, "@@TOKENUPPER:admin@@"),), (), True),
        ("admin_doubled", ((HEADER, tok("admin") + tok("admin")),), (), True),
        ("admin_plus_junk", ((HEADER, tok("admin") + "x"),), (), True),
        ("latin1_chars", ((HEADER, "caf\u00e9-\u00ff-token"),), (), True),
        ("unicode_chars", ((HEADER, "\u202e\U0001f4a5token"),), (), True),
        ("sha256_of_admin", ((HEADER, "@@TOKENSHA:admin@@"),), (), True),
        ("query_admin", (), ((HEADER, tok("admin")),), True),
        ("query_bearer_style", (), (("access_token", tok("admin")), ("token", tok("admin"))), True),
        ("bearer_ok", (("Authorization", "Bearer " + tok("admin")),), (), None),
        ("bearer_lower", (("Authorization", "bearer " + tok("admin")),), (), None),
        ("bearer_two_spaces", (("Authorization", "Bearer  " + tok("admin")),), (), None),
        ("bearer_tab", (("Authorization", "Bearer\t" + tok("admin")),), (), None),
        ("bearer_trailing_space", (("Authorization", "Bearer " + tok("admin") + " "),), (), None),
        ("bearer_no_space", (("Authorization", "Bearer" + tok("admin")),), (), True),
        ("bearer_empty", (("Authorization", "Bearer "),), (), True),
        ("bearer_only", (("Authorization", "Bearer"),), (), True),
        ("bearer_wrong", (("Authorization", "Bearer nope-" + "y" * 20),), (), True),
        ("bearer_twice", (("Authorization", "Bearer Bearer " + tok("admin")),), (), True),
        ("basic_auth", (("Authorization", "Basic YWRtaW46YWRtaW4="),), (), True),
        ("token_scheme", (("Authorization", "Token " + tok("admin")),), (), True),
        ("header_wrong_bearer_right", ((HEADER, "nope"), ("Authorization", "Bearer " + tok("admin"))), (), None),
        ("header_dash_name", (("rest-api-plugin-http-token", tok("admin")),), (), None),
        ("header_upper_name", ((HEADER.upper(), tok("admin")),), (), None),
        ("cookie", (("Cookie", f"{HEADER}={tok('admin')}"),), (), True),
    ]
    for family, (path, query) in FAMILIES.items():
        for key, headers, extra_query, invalid in variants:
            yield Case(
                f"tok-{family}-{key}",
                path=path,
                query=query + extra_query,
                headers=headers,
                token=None,
                invalid=bool(invalid),
                expect=(403,) if invalid else (),
            )
    # The limited tokens, outside their allow lists: 403 for every API, and nothing runs.
    for api in APIS:
        params = {**BASE.get(api.name, {})}
        method = "POST" if api.methods == ("POST",) else "GET"
        for token, allowed in (("vars_only", "variables"), ("deployer", "deploy_dag")):
            if api.name == allowed:
                continue
            if method == "POST":
                yield Case(
                    f"tok-{token}-calls-{api.name}",
                    method="POST",
                    query=(("api", api.name),),
                    token=token,
                    invalid=True,
                    expect=(403,),
                )
            else:
                yield Case(
                    f"tok-{token}-calls-{api.name}",
                    query=(("api", api.name), *params.items()),
                    token=token,
                    invalid=True,
                    expect=(403,),
                )
    for api_spelling in ("Connections", "CONNECTIONS", " connections", "connections\n", "connections\x00"):
        yield Case(
            f"tok-vars_only-calls-{quote(api_spelling, safe='')}",
            query=(("api", api_spelling), ("list", "")),
            token="vars_only",
            invalid=True,
        )
    yield Case(
        "tok-vars_only-json_body-connections",
        method="POST",
        headers=JSON_CT,
        json={"api": "connections", "list": True},
        token="vars_only",
        invalid=True,
        expect=(403,),
    )
    yield Case(
        "tok-vars_only-query_var_body_conn",
        method="POST",
        query=(("api", "variables"),),
        headers=JSON_CT,
        json={"api": "connections", "list": True},
        token="vars_only",
    )
    yield Case(
        "tok-vars_only-body_var_query_conn",
        method="POST",
        query=(("api", "connections"), ("list", "")),
        headers=JSON_CT,
        json={"api": "variables"},
        token="vars_only",
        invalid=True,
        expect=(403,),
    )
    for token in ("vars_only", "deployer"):
        for name, method, path in (
            ("exp_pools", "GET", f"{EXP}/pools"),
            ("exp_trigger", "POST", f"{EXP}/dags/gw_probe/dag_runs"),
            ("exp_pause", "GET", f"{EXP}/dags/gw_assets/paused/true"),
            ("exp_delete_dag", "DELETE", f"{EXP}/dags/gw_assets"),
            ("exp_create_pool", "POST", f"{EXP}/pools"),
        ):
            body = b'{"name": "gw_h_pool_tok", "slots": 1}' if name == "exp_create_pool" else None
            yield Case(
                f"tok-{token}-{name}",
                method=method,
                path=path,
                body=body,
                headers=JSON_CT if body else (),
                token=token,
                invalid=True,
                expect=(403,),
            )


# ---------------------------------------------------------------------------------------------------
# 3. Bodies


def multipart(parts: Iterable[Part], boundary: str, closing: bool = True) -> bytes:
    out = bytearray()
    for part in parts:
        out += b"--" + boundary.encode() + b"\r\n"
        if part.disposition is not None:
            out += part.disposition + b"\r\n"
        else:
            disposition = "form-data"
            if part.name is not None:
                disposition += f'; name="{part.name}"'
            if part.filename is not None:
                disposition += f'; filename="{part.filename}"'
            if part.filename_star is not None:
                disposition += f"; filename*=UTF-8''{part.filename_star}"
            out += f"Content-Disposition: {disposition}\r\n".encode("utf-8", "surrogateescape")
        if part.content_type:
            out += f"Content-Type: {part.content_type}\r\n".encode()
        for key, value in part.headers:
            out += f"{key}: {value}\r\n".encode()
        out += b"\r\n" + part.content + b"\r\n"
    if closing:
        out += b"--" + boundary.encode() + b"--\r\n"
    return bytes(out)


def body_cases() -> Iterator[Case]:
    bad_json = {
        "malformed": b'{"api": "version",',
        "trailing_garbage": b'{"api": "version"} x',
        "array": b'["version"]',
        "string": b'"version"',
        "null": b"null",
        "number": b"42",
        "true": b"true",
        "nested10k_obj": NESTED_OBJ.encode(),
        "nested10k_arr": NESTED_ARR.encode(),
        "nested10k_in_value": json_text({"api": "version"}, {"x": NESTED_OBJ}),
        "api_not_string_int": b'{"api": 5}',
        "api_list": b'{"api": ["version"]}',
        "api_object": b'{"api": {"name": "version"}}',
        "api_nul": b'{"api": "version\\u0000"}',
        "api_lone_surrogate": b'{"api": "\\ud800"}',
        "key_nul": b'{"api": "version", "\\u0000": "x"}',
        "stream_list": b'{"api": "version", "stream": ["x"]}',
        "async_object": b'{"api": "version", "async": {"a": 1}}',
        "invalid_utf8": b'{"api": "version", "x": "\xff\xfe"}',
        "nan_value": b'{"api": "list_tasks", "dag_id": NaN}',
        "big_number": b'{"api": "list_tasks", "dag_id": 1e400}',
    }
    for key, body in bad_json.items():
        yield Case(f"body-plugin-json-{key}", method="POST", headers=JSON_CT, body=body, invalid=True)
    yield Case("body-plugin-json-utf16", method="POST", headers=JSON_CT, body='{"api": "version"}'.encode("utf-16"))
    yield Case("body-plugin-json-bom", method="POST", headers=JSON_CT, body=b'\xef\xbb\xbf{"api": "version"}')
    yield Case(
        "body-plugin-json-dup_api",
        method="POST",
        headers=JSON_CT,
        body=b'{"api": "version", "api": "rest_api_plugin_version"}',
    )
    for charset in ("bogus", "utf-7", "x" * 200):
        yield Case(
            f"body-plugin-json-charset_{charset[:12]}",
            method="POST",
            headers=(("Content-Type", f"application/json; charset={charset}"),),
            body=b'{"api": "rest_api_plugin_version"}',
        )
        yield Case(
            f"body-plugin-form-charset_{charset[:12]}",
            method="POST",
            headers=(("Content-Type", f"application/x-www-form-urlencoded; charset={charset}"),),
            body=b"api=rest_api_plugin_version",
        )
    yield Case("body-plugin-form-invalid_utf8", method="POST", headers=FORM_CT, body=b"api=list_tasks&dag_id=\xff\xfe")
    yield Case(
        "body-plugin-form-invalid_utf8_pct",
        method="POST",
        headers=FORM_CT,
        body=b"api=list_tasks&dag_id=%ff%fe",
        invalid=True,
    )
    yield Case(
        "body-plugin-form-bad_pct", method="POST", headers=FORM_CT, body=b"api=list_tasks&dag_id=%zz%", invalid=True
    )
    yield Case("body-plugin-form-nul_key", method="POST", headers=FORM_CT, body=b"api=version&a%00b=1", invalid=True)
    yield Case(
        "body-plugin-form-10k_fields",
        method="POST",
        headers=FORM_CT,
        body=b"api=version&" + b"&".join(b"f%d=1" % i for i in range(10_000)),
        invalid=True,
    )
    yield Case("body-plugin-form-no_ct", method="POST", body=b"api=version")
    yield Case(
        "body-plugin-text_plain",
        method="POST",
        headers=(("Content-Type", "text/plain"),),
        body=b'{"api": "version"}',
        invalid=True,
    )
    yield Case(
        "body-plugin-json-3mb",
        method="POST",
        headers=JSON_CT,
        body=json_text({"api": "version", "x": "y" * 3_000_000}),
        invalid=True,
    )
    # Compressed bodies: garbage, and a bomb that would unpack to 50 MB.
    for encoding in ("gzip", "deflate", "br", "zstd", "gzip, gzip", "bogus"):
        yield Case(
            f"body-plugin-encoding-{encoding.replace(', ', '_')}-garbage",
            method="POST",
            headers=(*JSON_CT, ("Content-Encoding", encoding)),
            body=b"\x1f\x8b\x08\x00garbage-not-compressed" * 10,
            invalid=True,
        )
    bomb = gzip.compress(b'{"api": "version", "x": "' + b"0" * 50_000_000 + b'"}', compresslevel=9)
    yield Case(
        "body-plugin-encoding-gzip-bomb_50mb",
        method="POST",
        headers=(*JSON_CT, ("Content-Encoding", "gzip")),
        body=bomb,
        invalid=True,
    )
    yield Case(
        "body-plugin-encoding-deflate-bomb_50mb",
        method="POST",
        headers=(*JSON_CT, ("Content-Encoding", "deflate")),
        body=zlib.compress(b'{"api": "version", "x": "' + b"0" * 50_000_000 + b'"}', 9),
        invalid=True,
    )
    yield Case(
        "body-plugin-encoding-gzip-valid",
        method="POST",
        headers=(*JSON_CT, ("Content-Encoding", "gzip")),
        body=gzip.compress(b'{"api": "rest_api_plugin_version"}'),
    )
    # trigger_dag with a 300 KB conf: refused (413 or another 4xx), never 503/500.
    big_conf = {"k": "v" * 300_000}
    yield Case(
        "body-trigger_dag-conf300k-json",
        method="POST",
        headers=JSON_CT,
        json={"api": "trigger_dag", "dag_id": "gw_probe", "conf": big_conf},
        invalid=True,
    )
    yield Case(
        "body-trigger_dag-conf300k-json_string",
        method="POST",
        headers=JSON_CT,
        json={"api": "trigger_dag", "dag_id": "gw_probe", "conf": json.dumps(big_conf)},
        invalid=True,
    )
    yield Case(
        "body-trigger_dag-conf300k-form",
        method="POST",
        query=(("api", "trigger_dag"),),
        headers=FORM_CT,
        body=form_text([("dag_id", "gw_probe"), ("conf", json.dumps(big_conf))]),
        invalid=True,
    )
    yield Case(
        "body-test-task_params300k-json",
        method="POST",
        headers=JSON_CT,
        json={"api": "test", "dag_id": "gw_probe", "task_id": "hello", "task_params": big_conf},
        invalid=True,
    )

    # Multipart, on deploy_dag (the deployer's API) and on an API that takes no file.
    good = Part("dag_file", dag_source("gw_h_never_deployed"), filename="gw_h_never.py")
    boundary = "gwHostileBoundary7MA4YWxkTrZu0gW"
    shapes: dict[str, tuple[str, bytes]] = {
        "no_boundary": ("multipart/form-data", multipart([good], boundary)),
        "empty_boundary": ('multipart/form-data; boundary=""', multipart([good], boundary)),
        "boundary_2000": (f"multipart/form-data; boundary={'b' * 2000}", multipart([good], "b" * 2000)),
        "boundary_mismatch": ("multipart/form-data; boundary=other", multipart([good], boundary)),
        "nameless_part": (f"multipart/form-data; boundary={boundary}", multipart([Part(None, b"x"), good], boundary)),
        "nameless_file": (
            f"multipart/form-data; boundary={boundary}",
            multipart([Part(None, dag_source("gw_h_nameless"), filename="n.py")], boundary),
        ),
        "no_disposition": (
            f"multipart/form-data; boundary={boundary}",
            multipart([Part("x", b"x", disposition=b"X-Nothing: 1")], boundary),
        ),
        "disposition_garbage": (
            f"multipart/form-data; boundary={boundary}",
            multipart([Part("x", b"x", disposition=b'Content-Disposition: ;;;="')], boundary),
        ),
        "nested_multipart": (
            f"multipart/form-data; boundary={boundary}",
            multipart(
                [Part("dag_file", multipart([good], "inner"), content_type="multipart/mixed; boundary=inner")], boundary
            ),
        ),
        "nul_filename": (
            f"multipart/form-data; boundary={boundary}",
            multipart([Part("dag_file", dag_source("gw_h_nul"), filename_star="gw_h_nul.py%00.txt")], boundary),
        ),
        "nul_filename_raw": (
            f"multipart/form-data; boundary={boundary}",
            multipart([Part("dag_file", dag_source("gw_h_nul2"), filename="gw_h_nul2\x00.py")], boundary),
        ),
        "truncated": (f"multipart/form-data; boundary={boundary}", multipart([good], boundary, closing=False)[:-20]),
        "base64_garbage": (
            f"multipart/form-data; boundary={boundary}",
            multipart(
                [
                    Part(
                        "dag_file",
                        b"!!!not base64!!!",
                        filename="b64.py",
                        headers=(("Content-Transfer-Encoding", "base64"),),
                    )
                ],
                boundary,
            ),
        ),
        "two_dag_files": (
            f"multipart/form-data; boundary={boundary}",
            multipart([good, Part("dag_file", dag_source("gw_h_second"), filename="gw_h_second.py")], boundary),
        ),
        "2000_parts": (
            f"multipart/form-data; boundary={boundary}",
            multipart([Part(f"p{i}", b"1") for i in range(2000)], boundary),
        ),
        "part_charset_bogus": (
            f"multipart/form-data; boundary={boundary}",
            multipart([Part("force", b"true", content_type="text/plain; charset=bogus"), good], boundary),
        ),
        "part_invalid_utf8": (
            f"multipart/form-data; boundary={boundary}",
            multipart([Part("force", b"\xff\xfe"), good], boundary),
        ),
        "empty_body": (f"multipart/form-data; boundary={boundary}", b""),
        "mixed_not_form": (f"multipart/mixed; boundary={boundary}", multipart([good], boundary)),
    }
    for key, (content_type, body) in shapes.items():
        yield Case(
            f"body-deploy-multipart-{key}",
            method="POST",
            query=(("api", "deploy_dag"),),
            headers=(("Content-Type", content_type),),
            body=body,
            token="deployer",
            invalid=True,
            dags_unchanged=True,
        )
        if key in ("no_boundary", "nameless_part", "nested_multipart", "truncated", "2000_parts", "boundary_2000"):
            yield Case(
                f"body-version-multipart-{key}",
                method="POST",
                query=(("api", "rest_api_plugin_version"),),
                headers=(("Content-Type", content_type),),
                body=body,
            )

    # The experimental API reads bodies itself.
    pool_bodies = {
        "slots_e400": b'{"name": "gw_h_pool_x", "slots": 1e400}',
        "slots_only_e400": b'{"slots": 1e400}',
        "slots_nan": b'{"name": "gw_h_pool_x", "slots": NaN}',
        "slots_neg_e400": b'{"name": "gw_h_pool_x", "slots": -1e400}',
        "slots_int64": b'{"name": "gw_h_pool_x", "slots": 18446744073709551616}',
        "slots_e30": b'{"name": "gw_h_pool_x", "slots": 1000000000000000000000000000000}',
        "slots_string_e400": b'{"name": "gw_h_pool_x", "slots": "1e400"}',
        "slots_list": b'{"name": "gw_h_pool_x", "slots": [1]}',
        "slots_float": b'{"name": "gw_h_pool_x", "slots": 2.5}',
        "name_list": b'{"name": ["x"], "slots": 1}',
        "name_nul": b'{"name": "gw_h\\u0000pool", "slots": 1}',
        "name_nl": b'{"name": "gw_h_pool\\n", "slots": 1}',
        "name_300": json.dumps({"name": "p" * 300, "slots": 1}).encode(),
        "description_object": b'{"name": "gw_h_pool_x", "slots": 1, "description": {"a": 1}}',
        "nested10k": json_text({"name": "gw_h_pool_x", "slots": 1}, {"description": NESTED_OBJ}),
        "malformed": b'{"name": ',
        "array": b"[1, 2]",
        "nested10k_top": NESTED_ARR.encode(),
        "invalid_utf8": b'{"name": "\xff", "slots": 1}',
    }
    for key, body in pool_bodies.items():
        # The whole class: a malformed pool is refused (no process is involved on this route anyway).
        valid_ok = key in ("slots_float", "name_nl")
        yield Case(
            f"body-exp-pools-{key}",
            method="POST",
            path=f"{EXP}/pools",
            headers=JSON_CT,
            body=body,
            invalid=not valid_ok,
        )
    trigger_bodies = {
        "conf_array": b'{"conf": [1, 2]}',
        "conf_string_array": b'{"conf": "[1, 2]"}',
        "conf_not_json": b'{"conf": "{not json"}',
        "conf_nested10k": json_text({}, {"conf": NESTED_OBJ}),
        "conf_nested10k_string": json.dumps({"conf": NESTED_OBJ}).encode(),
        "run_id_nl": b'{"run_id": "gw_h_exp_run\\n"}',
        "run_id_list": b'{"run_id": ["x"]}',
        "run_id_nul": b'{"run_id": "gw_h\\u0000run"}',
        "date_y1_plus5": b'{"execution_date": "0001-01-01T00:00:00+05:00"}',
        "date_y9999_minus5": b'{"execution_date": "9999-12-31T23:00:00-05:00"}',
        "date_tz25": b'{"execution_date": "2024-01-01T00:00:00+25:00"}',
        "date_feb30": b'{"execution_date": "2017-02-30"}',
        "date_number": b'{"execution_date": 20240101}',
        "replace_micro_list": b'{"replace_microseconds": [true]}',
        "body_array": b"[{}]",
        "body_nested10k": NESTED_OBJ.encode(),
        "malformed": b'{"conf": ',
        "invalid_utf8": b'{"conf": {"a": "\xff"}}',
    }
    yield Case(
        "body-exp-trigger-conf_300k",
        method="POST",
        path=f"{EXP}/dags/gw_probe/dag_runs",
        headers=JSON_CT,
        body=json.dumps({"conf": big_conf}).encode(),
    )
    for key, body in trigger_bodies.items():
        yield Case(
            f"body-exp-trigger-{key}",
            method="POST",
            path=f"{EXP}/dags/gw_probe/dag_runs",
            headers=JSON_CT,
            body=body,
            invalid=True,
        )
    yield Case(
        "body-exp-trigger-encoding_gzip_garbage",
        method="POST",
        path=f"{EXP}/dags/gw_probe/dag_runs",
        headers=(*JSON_CT, ("Content-Encoding", "gzip")),
        body=b"garbage" * 20,
        invalid=True,
    )


# ---------------------------------------------------------------------------------------------------
# 4. Uploads

THEFT_SOURCE = f'''
import os

found = []
pid, seen = os.getpid(), set()
while pid > 1 and pid not in seen:
    seen.add(pid)
    environ = []
    try:
        with open(f"/proc/{{pid}}/status") as handle:
            ppid = int(next(line for line in handle if line.startswith("PPid:")).split()[1])
        with open(f"/proc/{{pid}}/cmdline", "rb") as handle:
            argv = [a.decode(errors="replace") for a in handle.read().split(b"\\0")]
        found.append(f"pid {{pid}} argv {{argv}}")
        try:
            with open(f"/proc/{{pid}}/environ", "rb") as handle:
                environ = handle.read().decode(errors="replace").split("\\0")
            found.append(f"pid {{pid}} environ {{environ}}")
        except OSError as exc:
            found.append(f"pid {{pid}} environ unreadable: {{exc}}")
        paths = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
        paths += [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
        paths += [e.split("=", 1)[1] for e in environ if e.startswith("GATEWAY_CONFIG=")]
        for path in paths:
            full = os.path.join(os.readlink(f"/proc/{{pid}}/cwd"), path)
            try:
                with open(full) as handle:
                    found.append(f"config {{full}}: " + handle.read())
            except OSError as exc:
                found.append(f"config {{full}} unreadable: {{exc}}")
    except Exception as exc:
        found.append(f"pid {{pid}}: {{exc!r}}")
        break
    pid = ppid
raise Exception("{THEFT_MARKER} " + " | ".join(found))
'''


#: The same theft without walking ancestors: every process of the same user, found in /proc.
SCAN_SOURCE = f'''
import os

found = []
for entry in os.listdir("/proc"):
    if not entry.isdigit():
        continue
    try:
        with open(f"/proc/{{entry}}/cmdline", "rb") as handle:
            argv = [a.decode(errors="replace") for a in handle.read().split(b"\\0")]
    except OSError:
        continue
    for i, arg in enumerate(argv):
        path = argv[i + 1] if arg == "--config" and i + 1 < len(argv) else ""
        path = arg.partition("=")[2] if arg.startswith("--config=") else path
        if path:
            try:
                full = os.path.join(os.readlink(f"/proc/{{entry}}/cwd"), path)
                with open(full) as handle:
                    found.append(f"pid {{entry}} config {{full}}: " + handle.read())
            except OSError as exc:
                found.append(f"pid {{entry}} config {{path}}: {{exc}}")
raise Exception("{THEFT_MARKER} " + " | ".join(found))
'''


def upload(
    case_id: str,
    filename: str | None,
    content: bytes,
    *,
    filename_star: str | None = None,
    query: tuple[tuple[str, str], ...] = (),
    token: str | None = "deployer",
    **fields: Any,
) -> Case:
    part = Part("dag_file", content, filename=filename, filename_star=filename_star, content_type="text/x-python")
    return Case(case_id, method="POST", query=(("api", "deploy_dag"), *query), parts=(part,), token=token, **fields)


def upload_cases() -> Iterator[Case]:
    abs_target = f"/tmp/gw_hostile_abs_{RUN_TAG}.py"
    names = {
        "dotdot": ("../escape.py", None),
        "dotdot_deep": ("../../../../tmp/gw_hostile_escape.py", None),
        "dotdot_encoded": (None, "..%2Fescape_enc.py"),
        "abs": (abs_target, None),
        "abs_star": (None, quote(abs_target, safe="")),
        "trailing_nl": (None, "gw_h_nl.py%0A"),
        "trailing_nl_raw": ("gw_h_nl_raw.py\n", None),
        "crlf": (None, "gw_h_crlf.py%0D%0A"),
        "hidden": (".hidden.py", None),
        "space": ("a b.py", None),
        "nul": (None, "gw_h_nul.py%00"),
        "nul_mid": (None, "gw_h%00.py"),
        "backslash": ("..\\escape_bs.py", None),
        "dash": ("-rf.py", None),
        "no_ext": ("gw_h_noext", None),
        "pyc": ("gw_h_x.pyc", None),
        "py_dir": ("sub/gw_h_sub.py", None),
        "dot_only": (".", None),
        "dotdot_only": ("..", None),
        "empty": ("", None),
        "unicode_rtl": (None, quote("gw_h_\u202eyp.exe", safe="")),
        "unicode_fullwidth_dot": (None, quote("gw_h\uff0epy", safe="")),
        "len300": ("a" * 297 + ".py", None),
    }
    for key, (filename, star) in names.items():
        dag = _DAG.next("gw_h_up")
        yield upload(
            f"upload-name-{key}",
            filename,
            dag_source(dag),
            filename_star=star,
            invalid=True,
            dags_unchanged=True,
            outside_paths=(abs_target, "/tmp/gw_hostile_escape.py"),
        )
    # Legal names at the edge: no opinion on the status, but never a 5xx and never outside the folder.
    dag = _DAG.next("gw_h_up")
    yield upload("upload-name-len252", "g" * 249 + ".py", dag_source(dag), outside_paths=(abs_target,))
    contents = {
        "syntax_error": b"def broken(:\n",
        "exit0": b"import os; os._exit(0)\n",
        "exit3": b"import os; os._exit(3)\n",
        "sys_exit": b"import sys; sys.exit('bye')\n",
        "sigkill_self": b"import os, signal; os.kill(os.getpid(), signal.SIGKILL)\n",
        "sigterm_self": b"import os, signal; os.kill(os.getpid(), signal.SIGTERM)\n",
        "close_stdout": b"import os; os.close(1); os.close(2)\n",
        "print_fake_json": b'print(\'{"dag_ids": ["fake"], "import_errors": []}\')\nraise SystemExit(0)\n',
        "keyboard_interrupt": b"raise KeyboardInterrupt\n",
        "recursion": b"def f():\n    return f()\nf()\n",
        "memory_error": b"raise MemoryError('x')\n",
        "nul_bytes": b"x = 1\x00\n",
        "invalid_utf8": b"x = '\xff\xfe'\n",
        "bom_utf16": "x = 1\n".encode("utf-16"),
        "empty": b"",
        "whitespace": b"   \n\t\n",
        "no_dag": b"x = 1\n",
    }
    for key, content in contents.items():
        # The file is parsed in a child: that is a process, but the answer must be a 4xx and nothing deployed.
        refuse = key not in ("no_dag",)
        invalid = key in ("empty", "whitespace")
        filename = f"gw_h_content_{key}.py"
        yield upload(f"upload-content-{key}", filename, content, refuse=refuse, invalid=invalid, dags_unchanged=refuse)
    # force=true over an existing file with a bad one: the good file stays.
    yield upload(
        "upload-content-syntax_error-force_over_gw_probe",
        "gw_probe.py",
        b"def broken(:\n",
        query=(("force", "true"),),
        refuse=True,
        dags_unchanged=True,
    )
    yield upload(
        "upload-content-exit0-force_over_gw_probe",
        "gw_probe.py",
        b"import os; os._exit(0)\n",
        query=(("force", "true"),),
        refuse=True,
        dags_unchanged=True,
    )
    yield upload("upload-exists-no_force", "gw_probe.py", dag_source("gw_probe"), invalid=True, dags_unchanged=True)
    for key, value in (("maybe", "maybe"), ("nl", "true\n"), ("list", Raw("%5B%5D"))):
        yield upload(
            f"upload-force-{key}",
            "gw_h_force.py",
            dag_source(_DAG.next("gw_h_up")),
            query=(("force", value),),
            invalid=key != "nl",
            dags_unchanged=key != "nl",
        )
    yield upload(
        "upload-pause_and_unpause",
        "gw_h_pu.py",
        dag_source(_DAG.next("gw_h_up")),
        query=(("pause", "true"), ("unpause", "true")),
        invalid=True,
        dags_unchanged=True,
    )
    yield upload(
        "upload-as_vars_only",
        "gw_h_vo.py",
        dag_source(_DAG.next("gw_h_up")),
        token="vars_only",
        invalid=True,
        expect=(403,),
        dags_unchanged=True,
    )
    yield upload(
        "upload-no_token",
        "gw_h_nt.py",
        dag_source(_DAG.next("gw_h_up")),
        token=None,
        invalid=True,
        expect=(403,),
        dags_unchanged=True,
    )
    yield Case(
        "upload-via_query_path",
        method="POST",
        query=(("api", "deploy_dag"), ("dag_file", "/etc/passwd")),
        token="deployer",
        invalid=True,
        dags_unchanged=True,
    )
    yield Case(
        "upload-via_json_string",
        method="POST",
        headers=JSON_CT,
        json={"api": "deploy_dag", "dag_file": dag_source("gw_h_js").decode()},
        token="deployer",
        invalid=True,
        dags_unchanged=True,
    )
    yield Case("upload-via_get", query=(("api", "deploy_dag"),), token="deployer", invalid=True, dags_unchanged=True)
    yield upload("upload-too_big", "gw_h_big.py", b"# " + b"x" * 1_100_000 + b"\n", invalid=True, dags_unchanged=True)
    # The token-theft attack: a DAG file that reads its ancestors' command lines, environments and config.
    yield upload(
        "upload-theft-ancestors_config",
        "gw_h_theft.py",
        THEFT_SOURCE.encode(),
        refuse=True,
        dags_unchanged=True,
        proof=(THEFT_MARKER, CONFIG, "token_sha256", "auth:"),
    )
    yield upload(
        "upload-theft-proc_scan_config",
        "gw_h_theft3.py",
        SCAN_SOURCE.encode(),
        refuse=True,
        dags_unchanged=True,
        proof=(THEFT_MARKER, CONFIG, "token_sha256", "auth:"),
    )
    yield upload(
        "upload-theft-ancestors_config-as_admin",
        "gw_h_theft2.py",
        THEFT_SOURCE.encode(),
        token="admin",
        refuse=True,
        dags_unchanged=True,
        proof=(THEFT_MARKER, CONFIG, "token_sha256", "auth:"),
    )


# ---------------------------------------------------------------------------------------------------
# 5. Jobs and their logs


def job_cases() -> Iterator[Case]:
    ids = {
        "random_hex": "0123456789abcdef",
        "random_word": "nope",
        "dotdot_enc": "..%2F..%2Fetc",
        "dotdot_enc_passwd": "..%2F..%2F..%2Fetc%2Fpasswd",
        "dot_json": "x.json",
        "log_suffix": f"{JOB}.log",
        "json_suffix": f"{JOB}.json",
        "nul": "%00",
        "nul_suffix": f"{JOB}%00",
        "nl": "%0A",
        "nl_suffix": f"{JOB}%0A",
        "space": "%20",
        "len8000": "j" * 8000,
        "unicode": quote("\u202e\U0001f4a5", safe=""),
        "upper": "@@JOBUPPER@@",
        "prefix": "@@JOBPREFIX@@",
        "star": "*",
        "backslash": "..%5C..%5Cetc",
    }
    for key, job_id in ids.items():
        for method, suffix in (("GET", ""), ("GET", "/log"), ("DELETE", "")):
            name = f"job-{key}-{'cancel' if method == 'DELETE' else ('log' if suffix else 'status')}"
            yield Case(name, method=method, path=f"{JOBS}/{job_id}{suffix}", invalid=True, expect=(404, 400))
    log = f"{JOBS}/{JOB}/log"
    offsets = {
        "neg1": "-1",
        "neg_big": "-" + "9" * 30,
        "word": "abc",
        "empty": "",
        "float": "1.5",
        "e3": "1e3",
        "hex": "0x10",
        "plus": "+5",
        "space": " 5",
        "unicode_digit": "\u0663",
        "e30": "1" + "0" * 30,
        "int63": str(2**63),
        "int64": str(2**64),
        "past_end": "@@LOGSIZE+1000@@",
        "at_end": "@@LOGSIZE@@",
        "end_minus1": "@@LOGSIZE-1@@",
        "end_minus2": "@@LOGSIZE-2@@",
        "first_line_end": "@@LINE1@@",
        "first_line_end_minus1": "@@LINE1-1@@",
        "first_line_end_plus1": "@@LINE1+1@@",
    }
    for n in (1, 2, 3, 5, 7, 11, 13, 17, 31, 64):
        offsets[f"mid_{n}"] = str(n)
    for key, value in offsets.items():
        # Offsets that are numbers but no event boundary: answered cleanly (4xx or whole events), never a 5xx.
        invalid = key in ("neg1", "neg_big", "word", "float", "e3", "hex")
        yield Case(f"job-log-offset-{key}", path=log, query=(("offset", value),), invalid=invalid)
    for key in ("mid_3", "mid_7", "past_end", "e30"):
        yield Case(
            f"job-log-offset-{key}-stream", path=log, query=(("offset", offsets[key]), ("stream", "true")), stream=True
        )
    for value in ("maybe", "2", "[]", "true\n", "text", "TEXT"):
        yield Case(
            f"job-log-stream-{quote(value, safe='')}",
            path=log,
            query=(("stream", value),),
            stream=True,
            invalid=value in ("maybe", "2", "[]"),
        )
    yield Case(
        "job-log-accept_sse_offset_mid",
        path=log,
        query=(("offset", "5"),),
        headers=(("Accept", "text/event-stream"),),
        stream=True,
    )
    # Other tokens must neither see nor cancel the admin's job.
    for token in ("vars_only", "deployer"):
        yield Case(f"job-{token}-status", path=f"{JOBS}/{JOB}", token=token, invalid=True, expect=(404,))
        yield Case(f"job-{token}-log", path=log, token=token, invalid=True, expect=(404,))
        yield Case(
            f"job-{token}-log_stream", path=log, query=(("stream", "true"),), token=token, invalid=True, expect=(404,)
        )
        yield Case(
            f"job-{token}-cancel", method="DELETE", path=f"{JOBS}/{JOB}", token=token, invalid=True, expect=(404,)
        )
        yield Case(f"job-{token}-list", path=JOBS, token=token, forbid=(JOB,))
    yield Case("job-no_token-status", path=f"{JOBS}/{JOB}", token=None, invalid=True, expect=(403,))
    yield Case("job-no_token-cancel", method="DELETE", path=f"{JOBS}/{JOB}", token=None, invalid=True, expect=(403,))
    yield Case("job-admin-cancel_finished", method="DELETE", path=f"{JOBS}/{JOB}", invalid=True, expect=(409,))
    for method in ("PUT", "PATCH", "POST"):
        yield Case(f"job-method-{method}", method=method, path=f"{JOBS}/{JOB}", invalid=True)
    yield Case("job-list-query_junk", path=JOBS, query=(("limit", "-1"), ("offset", "x"), ("owner", "admin\x00")))


# ---------------------------------------------------------------------------------------------------
# 6. Connection passwords


def _pw(tag: str) -> str:
    return f"PW{tag}{secrets.token_hex(10)}"


def connection_cases() -> Iterator[Case]:
    shapes: list[tuple[str, str, bool]] = []  # (key, uri with {pw}, refuse)
    shapes += [(f"uri{i}", "postgres://u:{pw}@db:5432/x", False) for i in range(3)]
    shapes += [
        ("uri_bad_ipv6", "postgres://u:{pw}@[bad", True),
        ("uri_no_scheme", "://u:{pw}@", True),
        ("uri_bad_port", "postgres://u:{pw}@host:notaport/x", True),
        ("uri_port_99999", "postgres://u:{pw}@host:99999/x", True),
        ("uri_no_at", "postgres://u:{pw}", True),
        ("uri_no_host", "postgres://u:{pw}@/x", None),
        ("uri_two_at", "postgres://u:{pw}@evil@db:5432/x", None),
        ("uri_pw_in_query", "postgres://db:5432/x?password={pw}", None),
        ("uri_spaces", " postgres://u:{pw}@db:5432/x ", None),
        ("uri_nl", "postgres://u:{pw}@db:5432/x\n", None),
        ("uri_upper_scheme", "POSTGRES://u:{pw}@db:5432/x", None),
        ("uri_no_user", "postgres://:{pw}@db:5432/x", None),
    ]
    for key, template, refuse in shapes:
        for transport in ("query", "form", "json"):
            if transport != "query" and not key.startswith(("uri0", "uri_bad", "uri_no_scheme", "uri_no_at")):
                continue
            pw = _pw(key)
            uri = template.format(pw=pw)
            params = {"add": "", "conn_id": _CONN.next("gw_h_pw"), "conn_uri": uri}
            yield api_call(
                f"conn-{key}-{transport}",
                "connections",
                {k: v for k, v in params.items() if k != "conn_uri"},
                "conn_uri",
                Hostile("x", uri, transport=transport),
                secrets=(pw,),
                refuse=bool(refuse),
            )
    pw = _pw("pct")
    yield api_call(
        "conn-uri_pct_encoded_pw",
        "connections",
        {"add": "", "conn_id": _CONN.next("gw_h_pw")},
        "conn_uri",
        Hostile("x", f"postgres://u:{pw}%40%3A%2F@db:5432/x"),
        secrets=(pw, f"{pw}@:/", f"{pw}%40%3A%2F"),
    )
    for transport in ("query", "form", "json"):
        pw = _pw("field")
        yield api_call(
            f"conn-password_field-{transport}",
            "connections",
            {"add": "", "conn_id": _CONN.next("gw_h_pw"), "conn_type": "postgres", "conn_host": "db"},
            "conn_password",
            Hostile("x", pw, transport=transport),
            secrets=(pw,),
        )
        pw = _pw("json")
        doc = json.dumps({"conn_type": "postgres", "host": "db", "password": pw})
        yield api_call(
            f"conn-conn_json-{transport}",
            "connections",
            {"add": "", "conn_id": _CONN.next("gw_h_pw")},
            "conn_json",
            Hostile("x", doc, transport=transport),
            secrets=(pw,),
        )
    pw = _pw("jsonobj")
    yield api_call(
        "conn-conn_json-json_object",
        "connections",
        {"add": "", "conn_id": _CONN.next("gw_h_pw")},
        "conn_json",
        Hostile("x", json.dumps({"conn_type": "postgres", "password": pw}), transport="jsonraw"),
        secrets=(pw,),
    )
    pw = _pw("jsonbad")
    yield api_call(
        "conn-conn_json-malformed_with_pw",
        "connections",
        {"add": "", "conn_id": _CONN.next("gw_h_pw")},
        "conn_json",
        Hostile("x", '{"conn_type": "postgres", "password": "' + pw + '"'),
        secrets=(pw,),
        invalid=True,
    )
    pw = _pw("jsonarr")
    yield api_call(
        "conn-conn_json-array_with_pw",
        "connections",
        {"add": "", "conn_id": _CONN.next("gw_h_pw")},
        "conn_json",
        Hostile("x", json.dumps([{"password": pw}])),
        secrets=(pw,),
        invalid=True,
    )
    yield api_call(
        "arg-connections-conn_json-no_conn_type",
        "connections",
        {"add": "", "conn_id": _CONN.next("gw_h_conn"), "conn_json": '{"who": "x"}'},
        refuse=True,
    )
    pw = _pw("extra")
    yield api_call(
        "conn-conn_extra-password_key",
        "connections",
        {"add": "", "conn_id": _CONN.next("gw_h_pw"), "conn_type": "http"},
        "conn_extra",
        Hostile("x", json.dumps({"password": pw})),
        secrets=(pw,),
    )
    pw = _pw("dup")
    yield api_call(
        "conn-uri_and_password_twice",
        "connections",
        {"add": "", "conn_id": _CONN.next("gw_h_pw"), "conn_password": pw},
        "conn_uri",
        Hostile("x", f"postgres://u:{pw}@db/x"),
        secrets=(pw,),
    )
    # The same, streamed and as background jobs (the job log on disk must not hold it either).
    for mode, option in (
        ("stream", ("stream", "true")),
        ("stream_text", ("stream", "text")),
        ("async", ("async", "true")),
    ):
        for key, template in (
            ("uri", "postgres://u:{pw}@db:5432/x"),
            ("uri_bad_port", "postgres://u:{pw}@h:np/x"),
            ("uri_no_at", "postgres://u:{pw}"),
            ("password_field", None),
            ("conn_json", None),
        ):
            pw = _pw(f"{mode}{key}")
            params = {"add": "", "conn_id": _CONN.next("gw_h_pw"), option[0]: option[1]}
            if key == "password_field":
                params.update(conn_type="postgres", conn_password=pw)
            elif key == "conn_json":
                params.update(conn_json=json.dumps({"conn_type": "postgres", "password": pw}))
            else:
                params.update(conn_uri=(template or "").format(pw=pw))
            yield api_call(
                f"conn-{key}-{mode}",
                "connections",
                params,
                secrets=(pw,),
                stream=mode.startswith("stream"),
                follow_job=mode == "async",
            )
    # Reading connections back must not reveal what was stored.
    yield api_call("conn-list_after", "connections", {"list": ""}, secrets=(ALL_PASSWORDS,))


# ---------------------------------------------------------------------------------------------------
# 7. Forwarded headers


def forwarded_cases() -> Iterator[Case]:
    xff = {
        "list": "6.6.6.6, 1.2.3.4",
        "empty": "",
        "commas": ",,,",
        "garbage": "garbage",
        "ipv6": "::1",
        "ipv4_port": "1.2.3.4:80",
        "ipv6_port": "[::1]:80",
        "bad_octets": "999.999.999.999",
        "long": ", ".join(["10.0.0.1"] * 500),
        "unicode": "\u00e9\u202e",
        "spoof_trusted": "127.0.0.1",
        "unknown": "unknown",
        "nul_like": "1.2.3.4\t5.6.7.8",
    }
    targets = {
        "plugin": (PLUGIN, (("api", "rest_api_plugin_version"),)),
        "jobs": (JOBS, ()),
        "experimental": (f"{EXP}/test", ()),
    }
    for family, (path, query) in targets.items():
        for key, value in xff.items():
            yield Case(f"fwd-{family}-xff-{key}", path=path, query=query, headers=(("X-Forwarded-For", value),))
    others = {
        "proto-javascript": ("X-Forwarded-Proto", "javascript"),
        "proto-https": ("X-Forwarded-Proto", "https"),
        "proto-list": ("X-Forwarded-Proto", "https, http"),
        "proto-upper": ("X-Forwarded-Proto", "HTTPS"),
        "host-evil": ("X-Forwarded-Host", "evil.example"),
        "host-space": ("X-Forwarded-Host", "a b"),
        "host-port99999": ("X-Forwarded-Host", "x:99999"),
        "host-bad_ipv6": ("X-Forwarded-Host", "[::1"),
        "host-unicode": ("X-Forwarded-Host", "h\u00e9st.example"),
        "host-long": ("X-Forwarded-Host", "h" * 4000),
        "host-list": ("X-Forwarded-Host", "a.example, b.example"),
        "host-empty": ("X-Forwarded-Host", ""),
        "host-at": ("X-Forwarded-Host", "user@evil.example"),
        "host-slash": ("X-Forwarded-Host", "evil.example/path"),
        "prefix-double_slash": ("X-Forwarded-Prefix", "//evil.example"),
        "prefix-dotdot": ("X-Forwarded-Prefix", "/../../"),
        "prefix-space": ("X-Forwarded-Prefix", "/a b"),
        "prefix-rtl": ("X-Forwarded-Prefix", "/\u202e"),
        "prefix-javascript": ("X-Forwarded-Prefix", "javascript:alert(1)"),
        "prefix-long": ("X-Forwarded-Prefix", "/" + "p" * 4000),
        "prefix-pct_crlf": ("X-Forwarded-Prefix", "/%0d%0aSet-Cookie:x"),
        "prefix-quote": ("X-Forwarded-Prefix", '/"><script>alert(1)</script>'),
        "forwarded-rfc7239": ("Forwarded", "for=6.6.6.6;proto=https;host=evil.example"),
        "forwarded-garbage": ("Forwarded", 'for="[::1;;;==='),
        "real_ip": ("X-Real-IP", "6.6.6.6"),
    }
    for family in ("plugin", "jobs"):
        path, query = targets[family]
        for key, header in others.items():
            yield Case(f"fwd-{family}-{key}", path=path, query=query, headers=(header,))
    # Links built from forwarded headers: a job answer and the page.
    for key in ("host-space", "prefix-double_slash", "prefix-long", "host-bad_ipv6"):
        yield Case(
            f"fwd-async_job-{key}",
            query=(("api", "version"), ("async", "true")),
            headers=(others[key],),
            follow_job=True,
        )
    yield Case(
        "fwd-all_at_once",
        query=(("api", "rest_api_plugin_version"),),
        headers=(
            ("X-Forwarded-For", "6.6.6.6, 1.2.3.4"),
            ("X-Forwarded-Proto", "gopher"),
            ("X-Forwarded-Host", "a b"),
            ("X-Forwarded-Prefix", "//evil"),
            ("Forwarded", "for=unknown"),
        ),
    )


# ---------------------------------------------------------------------------------------------------
# 8. HTTP-level abuse over raw sockets


def raw_request(
    method: str,
    target: str,
    headers: Iterable[str] = (),
    body: bytes = b"",
    version: str = "HTTP/1.1",
    token: bool = True,
    close: bool = True,
) -> bytes:
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1"]
    if token:
        lines.append(f"{HEADER}: {tok('admin')}")
    lines += list(headers)
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def raw_cases() -> Iterator[Case]:
    v = f"{PLUGIN}?api=rest_api_plugin_version"
    cases: dict[str, bytes] = {
        "url_100k": raw_request("GET", f"{PLUGIN}?api=version&x={'u' * 100_000}"),
        "path_100k": raw_request("GET", "/" + "p" * 100_000),
        "header_100k": raw_request("GET", v, [f"X-Big: {'h' * 100_000}"]),
        "header_name_100k": raw_request("GET", v, [f"X-{'n' * 100_000}: 1"]),
        "headers_1000": raw_request("GET", v, [f"X-H-{i}: {i}" for i in range(1000)]),
        "method_g_at_t": raw_request("G@T", v),
        "method_lower": raw_request("get", v),
        "method_long": raw_request("M" * 5000, v),
        "method_connect": raw_request("CONNECT", "127.0.0.1:22"),
        "method_trace": raw_request("TRACE", v),
        "method_empty": raw_request("", v),
        "method_nul": raw_request("GE\x00T", v),
        "version_9_9": raw_request("GET", v, version="HTTP/9.9"),
        "version_garbage": raw_request("GET", v, version="HTTP/1.1x"),
        "version_0_9": f"GET {v}\r\n\r\n".encode(),
        "http10_keepalive": raw_request("GET", v, ["Connection: keep-alive"], version="HTTP/1.0", close=False),
        "no_host": f"GET {v} HTTP/1.1\r\n{HEADER}: {tok('admin')}\r\nConnection: close\r\n\r\n".encode(),
        "two_hosts": raw_request("GET", v, ["Host: evil.example"]),
        "absolute_uri": raw_request("GET", f"http://evil.example{v}"),
        "asterisk": raw_request("OPTIONS", "*"),
        "no_leading_slash": raw_request("GET", v.lstrip("/")),
        "nul_in_path": raw_request("GET", "/admin/rest_api/api\x00?api=version"),
        "space_in_path": raw_request("GET", "/admin/rest_api/api x?api=version"),
        "raw_utf8_path": raw_request("GET", "/admin/rest_api/api?api=version&x=\u00e9\u202e"),
        "raw_invalid_utf8_path": b"GET /admin/rest_api/api?api=version&x=\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"{HEADER}: {tok('admin')}\r\nConnection: close\r\n\r\n".encode(),
        "header_no_colon": raw_request("GET", v, ["NoColonHere"]),
        "header_space_name": raw_request("GET", v, ["Bad Name: 1"]),
        "header_space_before_colon": raw_request("GET", v, ["X-Test : 1"]),
        "header_nul_value": raw_request("GET", v, ["X-Test: a\x00b"]),
        "header_obs_fold": raw_request("GET", v, ["X-Test: a", " folded"]),
        "header_bare_cr": raw_request("GET", v, ["X-Test: a\rb"]),
        "lf_only": f"GET {v} HTTP/1.1\nHost: 127.0.0.1\n{HEADER}: {tok('admin')}\nConnection: close\n\n".encode(),
        "empty_request": b"\r\n\r\n",
        "binary_garbage": bytes(range(256)) * 4,
        "tls_client_hello": bytes.fromhex("16030100a5010000a10303") + b"\x00" * 100,
        "http2_preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "h2c_upgrade": raw_request(
            "GET",
            v,
            ["Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA", "Connection: Upgrade, HTTP2-Settings"],
            close=False,
        ),
        "websocket_upgrade": raw_request(
            "GET",
            v,
            [
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version: 13",
            ],
            close=False,
        ),
        "expect_100_huge": raw_request(
            "POST", v, ["Expect: 100-continue", "Content-Length: 999999999999", "Content-Type: application/json"]
        ),
        "expect_bogus": raw_request(
            "POST", v, ["Expect: bogus", "Content-Length: 2", "Content-Type: application/json"], b"{}"
        ),
    }
    json_ct = "Content-Type: application/json"
    chunked = "Transfer-Encoding: chunked"
    cases.update(
        {
            "chunked_bad_size": raw_request("POST", v, [json_ct, chunked], b"zz\r\n{}\r\n0\r\n\r\n"),
            "chunked_size_overflow": raw_request(
                "POST", v, [json_ct, chunked], b"ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n"
            ),
            "chunked_negative": raw_request("POST", v, [json_ct, chunked], b"-2\r\n{}\r\n0\r\n\r\n"),
            "chunked_no_terminator": raw_request("POST", v, [json_ct, chunked], b"2\r\n{}\r\n"),
            "chunked_too_much_data": raw_request("POST", v, [json_ct, chunked], b"2\r\n{}{}{}\r\n0\r\n\r\n"),
            "chunked_extension_junk": raw_request("POST", v, [json_ct, chunked], b"2;\x00;=;\r\n{}\r\n0\r\n\r\n"),
            "chunked_lf_only": raw_request("POST", v, [json_ct, chunked], b"2\n{}\n0\n\n"),
            "chunked_trailer_junk": raw_request("POST", v, [json_ct, chunked], b"2\r\n{}\r\n0\r\nX: \x00\r\n\r\n"),
            "te_chunked_identity": raw_request(
                "POST", v, [json_ct, "Transfer-Encoding: chunked, identity"], b"2\r\n{}\r\n0\r\n\r\n"
            ),
            "te_gzip_chunked": raw_request(
                "POST", v, [json_ct, "Transfer-Encoding: gzip, chunked"], b"2\r\n{}\r\n0\r\n\r\n"
            ),
            "te_twice": raw_request("POST", v, [json_ct, chunked, chunked], b"2\r\n{}\r\n0\r\n\r\n"),
            "te_space_before_colon": raw_request(
                "POST", v, [json_ct, "Transfer-Encoding : chunked"], b"2\r\n{}\r\n0\r\n\r\n"
            ),
            "te_http10": raw_request("POST", v, [json_ct, chunked], b"2\r\n{}\r\n0\r\n\r\n", version="HTTP/1.0"),
            "te_unknown": raw_request("POST", v, [json_ct, "Transfer-Encoding: bogus"], b"{}"),
            "smuggle_cl_te": raw_request(
                "POST",
                v,
                [json_ct, "Content-Length: 4", chunked],
                close=False,
                body=b"0\r\n\r\n" + raw_request("GET", f"{PLUGIN}?api=version"),
            ),
            "smuggle_te_cl": raw_request(
                "POST",
                v,
                [json_ct, chunked, "Content-Length: 100"],
                close=False,
                body=b"0\r\n\r\nGET /api/jobs HTTP/1.1\r\nHost: x\r\n\r\n",
            ),
            "smuggle_cl_cl": raw_request("POST", v, [json_ct, "Content-Length: 2", "Content-Length: 40"], b"{}"),
            "cl_negative": raw_request("POST", v, [json_ct, "Content-Length: -1"], b"{}"),
            "cl_word": raw_request("POST", v, [json_ct, "Content-Length: abc"], b"{}"),
            "cl_float": raw_request("POST", v, [json_ct, "Content-Length: 2.0"], b"{}"),
            "cl_plus": raw_request("POST", v, [json_ct, "Content-Length: +2"], b"{}"),
            "cl_huge": raw_request("POST", v, [json_ct, "Content-Length: 99999999999999999999999"], b"{}"),
            "cl_more_than_sent": raw_request("POST", v, [json_ct, "Content-Length: 1000"], b'{"api": "version"}'),
            "cl_less_than_sent": raw_request("POST", v, [json_ct, "Content-Length: 5"], b'{"api": "version"}'),
            "pipelined_3": raw_request("GET", v, close=False) * 2 + raw_request("GET", v),
            "pipelined_garbage_after": raw_request("GET", v, close=False) + b"\x00\xff garbage\r\n\r\n",
        }
    )
    for key, data in cases.items():
        yield Case(f"raw-{key}", raw=data)
    # Class 1 over raw sockets: what a client library cannot send.
    for family, path in (("plugin", f"{PLUGIN}?api=version"), ("jobs", JOBS), ("experimental", f"{EXP}/pools")):
        for key, value in (
            ("token_100k", b"t" * 100_000),
            ("token_non_utf8", b"\xff\xfe\x80token"),
            ("token_latin1", b"caf\xe9"),
            ("token_nul", b"abc\x00def"),
            ("token_admin_plus_non_utf8", tok("admin").encode() + b"\xff"),
            ("bearer_non_utf8", None),
        ):
            header = b"Authorization: Bearer \xff\xfe" if value is None else HEADER.encode() + b": " + value
            data = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + header + b"\r\nConnection: close\r\n\r\n"
            yield Case(
                f"raw-tok-{family}-{key}",
                raw=data,
                token=None,
                invalid=key != "token_100k",
                expect=() if key == "token_100k" else (400, 403),
            )
    yield Case("raw-job-id_10k", raw=raw_request("GET", f"{JOBS}/{'j' * 10_000}"))
    yield Case("raw-job-log_offset_10k_digits", raw=raw_request("GET", f"{JOBS}/{JOB}/log?offset={'9' * 10_000}"))


# ---------------------------------------------------------------------------------------------------
# Routes, methods and the public pages


def route_cases() -> Iterator[Case]:
    for key, path in {
        "static_dotdot": "/admin/rest_api/static/..%2F..%2Fgateway%2Fconfig.py",
        "static_dotdot_plain": "/admin/rest_api/static/../../../etc/passwd",
        "static_template": "/admin/rest_api/static/index.html",
        "static_nul": "/admin/rest_api/static/page.js%00",
        "static_nl": "/admin/rest_api/static/page.js%0A",
        "static_dot": "/admin/rest_api/static/.",
        "unknown_plugin_path": "/admin/rest_api/apix",
        "unknown_plugin_deep": "/admin/rest_api/api/x/y",
        "unknown_root": "/nope",
        "dotdot_root": "/%2e%2e/%2e%2e/etc/passwd",
        "exp_unknown": f"{EXP}/nope",
        "jobs_deep": f"{JOBS}/a/b/c",
        "health_junk": "/health/x",
        "double_slash": "//admin/rest_api/api",
        "encoded_slash": "/admin%2Frest_api%2Fapi",
    }.items():
        yield Case(f"route-{key}", path=path, query=(("api", "version"),) if "plugin" in key else (), invalid=True)
    yield Case("route-health-query_junk", path="/health", query=(("x", "\x00"), ("y", "$(id)")), token=None)
    for method in ("PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"):
        yield Case(f"route-plugin-method-{method}", method=method, query=(("api", "version"),), invalid=True)
    yield Case("route-plugin-no_api", invalid=True, expect=(400,))
    for key, value in {
        "empty": "",
        "unknown": "nope",
        "nl": "version\n",
        "nul": "version\x00",
        "dash": "--help",
        "subst": "$(id)",
        "long": "v" * 5000,
        "dotdot": "../version",
        "rtl": "version\u202e",
        "unicode_fold": "VERS\u0130ON",
    }.items():
        yield Case(f"route-plugin-api-{key}", query=(("api", value),), invalid=key not in ("nl",))
    yield Case("route-plugin-api_twice", query=(("api", "version"), ("api", "connections")))
    yield Case("route-plugin-api_invalid_utf8", query=(("api", Raw("%FF%FE")),), invalid=True)
    yield Case("route-plugin-api_bad_pct", query=(("api", Raw("%ZZ")),), invalid=True)
    many = tuple((f"k{i}", "") for i in range(1200))
    yield Case("route-plugin-query_1200_pairs", query=(("api", "rest_api_plugin_version"), *many), invalid=True)
    for key, value in {"stream": "maybe", "async": "maybe", "async_list": "[]"}.items():
        yield Case(f"route-plugin-option-{key}", query=(("api", "version"), (key.split("_")[0], value)), invalid=True)
    yield Case(
        "route-plugin-async_and_stream",
        query=(("api", "version"), ("async", "true"), ("stream", "true")),
        follow_job=True,
        stream=True,
    )


# ---------------------------------------------------------------------------------------------------
# The experimental API's path arguments

EXP_IDS: dict[str, str] = {
    "nl": "%0A",
    "nl_suffix": "gw_probe%0A",
    "nul": "%00",
    "nul_suffix": "gw_probe%00x",
    "dash": "--help",
    "len8000": "d" * 8000,
    "rtl": quote("gw_probe\u202e", safe=""),
    "emoji": quote("\U0001f4a5", safe=""),
    "subst": quote("$(id)", safe=""),
    "dotdot_enc": "..%2F..%2Fetc%2Fpasswd",
    "dotdot": "..",
    "space": "gw_probe%20",
    "percent": "%25",
    "invalid_utf8": "%FF%FE",
}


def experimental_cases() -> Iterator[Case]:
    for key, dag in EXP_IDS.items():
        assets = dag.replace("gw_probe", "gw_assets")
        for name, method, path in (
            ("runs", "GET", f"{EXP}/dags/{dag}/dag_runs"),
            ("trigger", "POST", f"{EXP}/dags/{dag}/dag_runs"),
            ("run_state", "GET", f"{EXP}/dags/{dag}/dag_runs/2024-03-03T00:00:00%2B00:00"),
            ("task_info", "GET", f"{EXP}/dags/{dag}/tasks/hello"),
            ("code", "GET", f"{EXP}/dags/{dag}/code"),
            ("paused", "GET", f"{EXP}/dags/{dag}/paused"),
            ("set_paused", "GET", f"{EXP}/dags/{assets}/paused/true"),
            ("delete", "DELETE", f"{EXP}/dags/{assets}"),
            ("lineage", "GET", f"{EXP}/lineage/{dag}/2024-03-03"),
            ("pool", "GET", f"{EXP}/pools/{dag}"),
            ("delete_pool", "DELETE", f"{EXP}/pools/{dag}"),
        ):
            yield Case(f"exp-{name}-dag_id-{key}", method=method, path=path, invalid=True)
    for key, task in {k: EXP_IDS[k] for k in ("nl", "nul", "dash", "dotdot_enc", "len8000")}.items():
        yield Case(f"exp-task_info-task_id-{key}", path=f"{EXP}/dags/gw_probe/tasks/{task}", invalid=True)
        yield Case(
            f"exp-task_instance-task_id-{key}",
            path=f"{EXP}/dags/gw_probe/dag_runs/2024-03-03T00:00:00%2B00:00/tasks/{task}",
            invalid=True,
        )
    dates = {
        "y1_plus5": "0001-01-01T00:00:00%2B05:00",
        "y9999_minus5": "9999-12-31T23:00:00-05:00",
        "tz_plus25": "2024-01-01T00:00:00%2B25:00",
        "feb30": "2017-02-30",
        "year0": "0000-01-01",
        "nl": "2024-03-03%0A",
        "nul": "2024-03-03%00",
        "dash": "--help",
        "word": "yesterday",
        "len8000": "9" * 8000,
        "int64": str(2**64),
        "unicode_digits": quote("\u0662\u0660\u0662\u0664-\u0660\u0663-\u0660\u0663", safe=""),
    }
    for key, date in dates.items():
        for name, path in (
            ("run_state", f"{EXP}/dags/gw_probe/dag_runs/{date}"),
            ("task_instance", f"{EXP}/dags/gw_probe/dag_runs/{date}/tasks/hello"),
            ("lineage", f"{EXP}/lineage/gw_probe/{date}"),
        ):
            yield Case(f"exp-{name}-date-{key}", path=path, invalid=key != "nl")
    for key, value in {
        "bogus": "bogus",
        "nl": "queued\n",
        "nul": "queued\x00",
        "dash": "--help",
        "long": "s" * 5000,
        "list": "queued,running",
    }.items():
        yield Case(
            f"exp-runs-state-{key}",
            path=f"{EXP}/dags/gw_probe/dag_runs",
            query=(("state", value),),
            invalid=key != "nl",
        )
    for key, value in {"upper": "TRUE", "nl": "true%0A", "one": "1", "nul": "true%00", "long": "t" * 5000}.items():
        yield Case(
            f"exp-set_paused-value-{key}", path=f"{EXP}/dags/gw_assets/paused/{value}", invalid=True, expect=(400, 404)
        )
    yield Case("exp-delete_pool-default_pool", method="DELETE", path=f"{EXP}/pools/default_pool", invalid=True)


# ---------------------------------------------------------------------------------------------------


def outcome_cases() -> Iterator[Case]:
    """Valid-looking values Airflow itself refuses or fails on after validation: never a 5xx."""
    probe = {"dag_id": "gw_probe", "task_id": "hello"}
    yield api_call("outcome-backfill-max_active_runs_0", "backfill", {
        "dag_id": "gw_daily", "start_date": "2024-01-01", "max_active_runs": "0"})  # fmt: skip
    yield api_call("outcome-pool-delete_default_pool", "pool", {"delete": "default_pool"}, invalid=True)
    yield api_call("outcome-test-env_path_empty", "test", {**probe, "env_vars": '{"PATH": ""}'})
    yield api_call("outcome-test-params_without_date", "test", {**probe, "task_params": '{"who": "x"}'})
    yield api_call("outcome-test-failing_task", "test", {**probe, "task_id": "fails", "execution_date": "2024-05-06"})
    yield api_call(
        "outcome-render-unknown_task", "render", {**probe, "task_id": "nope", "execution_date": "2024-01-01"}
    )
    yield api_call("outcome-render-unknown_dag", "render", {**probe, "dag_id": "nope", "execution_date": "2024-01-01"})
    yield api_call("outcome-clear-dates_reversed", "clear", {
        "dag_id": "gw_probe", "start_date": "2024-02-01", "end_date": "2024-01-01"})  # fmt: skip
    yield api_call("outcome-connections-delete_missing", "connections", {"delete": "", "conn_id": "gw_h_never_there"})
    yield api_call("outcome-refresh_dag-unknown", "refresh_dag", {"dag_id": "gw_h_nope"})
    yield api_call("outcome-list_tasks-unknown", "list_tasks", {"dag_id": "gw_h_nope"})


# ---------------------------------------------------------------------------------------------------
# 9. Forged log lines: every value the gateway logs, with the control characters that split or rewrite a line

#: The text an attacker wants at the start of a log line of its own.
FORGE_MARK = "gw-forged-line"
_TODAY = datetime.datetime.now(datetime.UTC).date().isoformat()
FORGERIES = {
    # The classic: a fake audit record of the admin token.
    "audit": '1999-01-01 00:00:00,000 INFO gateway.audit: {"token": "admin"}',
    # A well-formed one (today, every field): only where it starts tells it from a real one.
    "audit_today": (
        f'{_TODAY} 00:00:00,000 INFO gateway.audit: {{"route": "{FORGE_MARK}", "remote": "10.66.66.66", '
        f'"at": "{_TODAY}T00:00:00.000+00:00", "token": "admin", "status": 200}}'
    ),
    # An indented line passes for a traceback's continuation.
    "continuation": f"    {FORGE_MARK}: a forged traceback line",
}
#: What a forged line starts with (after any indentation); no line the gateway writes does.
FORGED_STARTS = (
    "1999-01-01 00:00:00,000",
    FORGE_MARK,
    f'{_TODAY} 00:00:00,000 INFO gateway.audit: {{"route": "{FORGE_MARK}"',
)
#: Characters that end, overwrite or rewrite a line in a file or on a terminal.
LOG_CONTROLS = {
    "lf": "\n",
    "cr": "\r",
    "crlf": "\r\n",
    "esc": "\x1b[1A\x1b[2K",
    "nul": "\x00",
    "bs": "\x08" * 16,
    "vt": "\x0b",
    "ff": "\x0c",
    "del": "\x7f",
    "nel": "\u0085",
    "ls": "\u2028",
    "ps": "\u2029",
    "csi": "\u009b2K",
}
#: The ones a client library sends in a header (C0 and DEL only go over a raw socket).
HEADER_CONTROLS = ("nel", "ls", "ps", "csi")
#: Where a path lands in each route family: (before, after) the hostile segment.
FORGE_ROUTES = {
    "plugin": (f"{PLUGIN}/", ""),
    "jobs": (f"{JOBS}/", "/log"),
    "experimental": (f"{EXP}/dags/", "/dag_runs"),
    "unknown": ("/gw_h_nope/", ""),
}


def forged(control: str, forgery: str = "audit", base: str = "gw_h") -> str:
    return base + LOG_CONTROLS[control] + FORGERIES[forgery]


def log_forgery_cases() -> Iterator[Case]:
    version = ("api", "rest_api_plugin_version")
    for family, (before, after) in FORGE_ROUTES.items():
        for control in LOG_CONTROLS:
            path = before + quote(forged(control), safe="") + after
            for token in ("admin", None):
                who = token or "no_token"
                yield Case(f"forge-path-{family}-{control}-{who}", path=path, token=token, invalid=True)
        for forgery in ("audit_today", "continuation"):
            path = before + quote(forged("lf", forgery), safe="") + after
            yield Case(f"forge-path-{family}-lf_{forgery}", path=path, invalid=True)
    for control in LOG_CONTROLS:
        # Argument names are in the audit record; the API's name too.
        for token in ("admin", None):
            who = token or "no_token"
            yield Case(
                f"forge-query_name-{control}-{who}", query=(version, (forged(control), "1")), token=token, invalid=True
            )
        yield Case(
            f"forge-json_key-{control}",
            method="POST",
            headers=JSON_CT,
            json={"api": "rest_api_plugin_version", forged(control): "1"},
            invalid=True,
        )
        yield Case(
            f"forge-form_key-{control}",
            method="POST",
            headers=FORM_CT,
            body=form_text([version, (forged(control), "1")]),
            invalid=True,
        )
        yield Case(f"forge-api_name-{control}", query=(("api", forged(control)),), invalid=True)
        yield Case(
            f"forge-exp_query_name-{control}", path=f"{EXP}/dags/gw_probe/dag_runs", query=((forged(control), "1"),)
        )
    for forgery in ("audit_today", "continuation"):
        yield Case(f"forge-query_name-lf_{forgery}", query=(version, (forged("lf", forgery), "1")), invalid=True)
        yield Case(f"forge-api_name-lf_{forgery}", query=(("api", forged("lf", forgery)),), invalid=True)
    # Headers, from the trusted proxy (the live gateway believes 127.0.0.1): what a client library sends...
    headers = {
        "user_agent": ("User-Agent", "gw_h"),
        "xff": ("X-Forwarded-For", "1.2.3.4"),
        "xfp": ("X-Forwarded-Prefix", "/gw_h"),
        "xfh": ("X-Forwarded-Host", "gw-h.example"),
        "referer": ("Referer", "http://gw-h.example/"),
    }
    for key, (name, base) in headers.items():
        for control in HEADER_CONTROLS:
            for family, path, query in (("plugin", PLUGIN, (version,)), ("jobs", JOBS, ())):
                yield Case(
                    f"forge-header-{key}-{control}-{family}",
                    path=path,
                    query=query,
                    headers=((name, forged(control, base=base)),),
                )
        yield Case(
            f"forge-header-{key}-pct_lf",
            query=(version,),
            headers=((name, base + quote(LOG_CONTROLS["lf"] + FORGERIES["audit"], safe="")),),
        )
    # ... and what only a raw socket sends: C0 controls, DEL, bare CR/LF, C1 as single (non-UTF-8) bytes.
    raw_controls = {k: v for k, v in LOG_CONTROLS.items() if k not in HEADER_CONTROLS}
    raw_controls |= {"c1_byte_nel": "\udc85", "c1_byte_csi": "\udc9b2K"}
    target = f"{PLUGIN}?api=rest_api_plugin_version"
    for key, (name, base) in headers.items():
        if key == "referer":
            continue
        for control, chars in raw_controls.items():
            value = base + chars + FORGERIES["audit"]
            yield Case(f"forge-raw_header-{key}-{control}", raw=raw_request("GET", target, [f"{name}: {value}"]))
    # A multipart part's malformed Content-Disposition: aiohttp warns with it (Python's warnings, not logging).
    # Python prints one warning per distinct text: each case's text is its own.
    for control, chars in LOG_CONTROLS.items():
        for token, query in (("deployer", (("api", "deploy_dag"),)), ("admin", (version,))):
            disposition = f'Content-Disposition: ;;;="gw_h_{token}{chars}{FORGERIES["audit"]}'.encode()
            part = Part("dag_file", dag_source("gw_h_never_deployed"), disposition=disposition)
            yield Case(
                f"forge-multipart_disposition-{control}-{token}",
                method="POST",
                query=query,
                parts=(part,),
                token=token,
                invalid=token == "deployer",
                dags_unchanged=True,
            )
    # Control bytes right in the request line's path (no percent-encoding).
    for control, chars in raw_controls.items():
        if control in ("lf", "cr", "crlf"):
            continue
        for family, (before, after) in FORGE_ROUTES.items():
            path = before + "gw_h" + chars + FORGE_MARK + after
            yield Case(f"forge-raw_path-{family}-{control}", raw=raw_request("GET", path))


# ---------------------------------------------------------------------------------------------------
# 10. Secrets learned from output, in every stream format and in job logs

#: (key, query option, header, stream): every way an answer can come back.
READ_MODES: tuple[tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], bool], ...] = (
    ("plain", (), (), False),
    ("ndjson", (("stream", "true"),), (), True),
    ("text", (("stream", "text"),), (), True),
    ("sse", (), (("Accept", "text/event-stream"),), True),
    ("async", (("async", "true"),), (), False),
)
_RUN = _Counter()


def run_id() -> str:
    return _RUN.next(f"gw_h_run_{RUN_TAG}")


def read_cases(prefix: str, query: tuple[tuple[str, str], ...], secret_values: tuple[str, ...]) -> Iterator[Case]:
    """``query`` read back in every answer format: the secrets it prints never leave in clear."""
    for mode, option, headers, stream in READ_MODES:
        yield Case(
            f"{prefix}-{mode}",
            query=query + option,
            headers=headers,
            secrets=secret_values,
            stream=stream,
            follow_job=mode == "async",
            expect=(202,) if mode == "async" else (200,),
        )


def learned_secret_cases() -> Iterator[Case]:
    # A variable whose name says it is secret: set, then read and exported.
    pw = _pw("learned")
    key = f"db_password_{RUN_TAG}"
    yield api_call("learned-variable-set", "variables", {"set": key, "set_value": pw}, secrets=(pw,), expect=(200,))
    yield from read_cases("learned-variable-get", (("api", "variables"), ("get", key)), (pw,))
    yield from read_cases("learned-variable-export", (("api", "variables"), ("export", "true")), (pw,))
    # A DAG run's conf: triggered with a password, then its state (Airflow prints the conf) read back.
    pw = _pw("runconf")
    run = run_id()
    yield Case(
        "learned-dag_run-trigger",
        method="POST",
        headers=JSON_CT,
        json={"api": "trigger_dag", "dag_id": "gw_probe", "run_id": run, "conf": {"password": pw}},
        secrets=(pw,),
        expect=(200,),
    )
    yield from read_cases(
        "learned-dag_run-dag_state", (("api", "dag_state"), ("dag_id", "gw_probe"), ("execution_date", run)), (pw,)
    )


# ---------------------------------------------------------------------------------------------------
# 11. Password-like keys hide whatever they hold (string, number, list, object, at any depth)


def masked_shape_cases() -> Iterator[Case]:
    def shapes() -> dict[str, tuple[dict[str, Any], tuple[str, ...]]]:
        s1, s2, number = _pw("shape"), _pw("shape2"), secrets.randbelow(10**17) + 10**17
        return {
            "list": ({"password": [s1]}, (s1,)),
            "object": ({"password": {"a": s1}}, (s1,)),
            "nested_list_object": ({"nested": {"api_key": [s1, {"x": s2}]}}, (s1, s2)),
            "number": ({"password": number}, (str(number),)),
            "deep": ({"a": [{"b": {"secret": [[s1]], "c": {"d": {"token": {"e": s2}}}}}]}, (s1, s2)),
            "list_of_objects": ({"credentials": [{"user": "u", "pw": s1}]}, (s1,)),
        }

    for mode in ("sync", "async"):
        for key, (conf, found) in shapes().items():
            fields: dict[str, Any] = {"api": "trigger_dag", "dag_id": "gw_probe", "conf": conf}
            if mode == "async":
                fields["async"] = True
            yield Case(
                f"shape-trigger_dag-conf_{key}-{mode}",
                method="POST",
                headers=JSON_CT,
                json=fields,
                secrets=found,
                follow_job=mode == "async",
                expect=(202,) if mode == "async" else (200,),
            )
    # The same conf as form data (a JSON string), and on the experimental trigger.
    for key, (conf, found) in shapes().items():
        yield Case(
            f"shape-trigger_dag-conf_{key}-form",
            method="POST",
            query=(("api", "trigger_dag"),),
            headers=FORM_CT,
            body=form_text([("dag_id", "gw_probe"), ("conf", json.dumps(conf))]),
            secrets=found,
            expect=(200,),
        )
    for key, (conf, found) in shapes().items():
        yield Case(
            f"shape-exp_trigger-conf_{key}",
            method="POST",
            path=f"{EXP}/dags/gw_probe/dag_runs",
            headers=JSON_CT,
            json={"conf": conf},
            secrets=found,
        )
    for key, (conf, found) in shapes().items():
        params = {"add": "", "conn_id": _CONN.next("gw_h_shape"), "conn_type": "http", "conn_extra": json.dumps(conf)}
        yield api_call(f"shape-conn_extra-{key}", "connections", params, secrets=found, expect=(200,))
    yield api_call("shape-conn-list_after", "connections", {"list": ""}, secrets=(ALL_PASSWORDS,))
    # A variable named like a key, holding JSON: read as JSON (json=true), as text, streamed, exported.
    pw, pw2 = _pw("apikey"), _pw("apikey2")
    name = f"api_key_{RUN_TAG}"
    value = json.dumps({"a": pw, "b": [pw2]})
    yield api_call(
        "shape-variable-set", "variables", {"set": name, "set_value": value}, secrets=(pw, pw2), expect=(200,)
    )
    get = (("api", "variables"), ("get", name))
    yield from read_cases("shape-variable-get_json", (*get, ("json", "true")), (pw, pw2))
    yield from read_cases("shape-variable-get_text", get, (pw, pw2))
    yield from read_cases("shape-variable-export", (("api", "variables"), ("export", "true")), (pw, pw2))


# ---------------------------------------------------------------------------------------------------
# 12. Passwords with quotes, backslashes, newlines, non-ASCII: no recognisable piece of them either

PASSWORD_SPECIALS = {
    "quote": "'",
    "dquote": '"',
    "backslash": "\\",
    "newline": "\n",
    "unicode": "\u00e9\u65e5\u672c",
    "dollar": "$",
    "space": " ",
    "percent": "%",
    "ampersand": "&",
    "crlf": "\r\n",
}


def special_password(key: str) -> tuple[str, tuple[str, ...]]:
    """A password with ``key``'s character in the middle, and its pieces (each long enough to recognise)."""
    left, right = f"PW{secrets.token_hex(10)}", secrets.token_hex(10)
    return left + PASSWORD_SPECIALS[key] + right, (left + PASSWORD_SPECIALS[key] + right, left, right)


def special_password_cases() -> Iterator[Case]:
    for key in PASSWORD_SPECIALS:
        base = {"add": "", "conn_type": "postgres", "conn_host": "db"}
        for transport in ("query", "json"):
            pw, pieces = special_password(key)
            yield api_call(
                f"special-{key}-conn_password-{transport}",
                "connections",
                {**base, "conn_id": _CONN.next("gw_h_sp")},
                "conn_password",
                Hostile("x", pw, transport=transport),
                secrets=pieces,
            )
        pw, pieces = special_password(key)
        yield api_call(
            f"special-{key}-conn_uri-raw",
            "connections",
            {"add": "", "conn_id": _CONN.next("gw_h_sp"), "conn_uri": f"postgres://u:{pw}@db:5432/x"},
            secrets=pieces,
        )
        pw, pieces = special_password(key)
        yield api_call(
            f"special-{key}-conn_uri-pct",
            "connections",
            {"add": "", "conn_id": _CONN.next("gw_h_sp"), "conn_uri": f"postgres://u:{quote(pw, safe='')}@db:5432/x"},
            secrets=(*pieces, quote(pw, safe="")),
        )
        pw, pieces = special_password(key)
        doc = json.dumps({"conn_type": "postgres", "host": "db", "password": pw})
        yield api_call(
            f"special-{key}-conn_json",
            "connections",
            {"add": "", "conn_id": _CONN.next("gw_h_sp"), "conn_json": doc},
            secrets=pieces,
        )
        for mode in ("sync", "async"):
            pw, pieces = special_password(key)
            fields: dict[str, Any] = {"api": "trigger_dag", "dag_id": "gw_probe", "conf": {"password": pw}}
            if mode == "async":
                fields["async"] = True
            yield Case(
                f"special-{key}-conf_password-{mode}",
                method="POST",
                headers=JSON_CT,
                json=fields,
                secrets=pieces,
                follow_job=mode == "async",
                expect=(202,) if mode == "async" else (200,),
            )
        pw, pieces = special_password(key)
        yield api_call(
            f"special-{key}-conn_password-async",
            "connections",
            {**base, "conn_id": _CONN.next("gw_h_sp"), "conn_password": pw, "async": "true"},
            secrets=pieces,
            follow_job=True,
        )
    yield api_call("special-conn-list_after", "connections", {"list": ""}, secrets=(ALL_PASSWORDS,))


# ---------------------------------------------------------------------------------------------------
# 13. Thousands of secrets in one request: refused (413, or 400) at once; permission first


def bulk(n: int) -> list[str]:
    return [f"{BULK_TAG}{i:05x}{secrets.token_hex(4)}" for i in range(n)]


def bulk_secret_cases() -> Iterator[Case]:
    fields: dict[str, Any] = {"bulk_secrets": True, "invalid": True, "within_s": 5.0}
    refused = (400, 413)
    passwords = {f"password_{i}": value for i, value in enumerate(bulk(10_000))}
    uris = {f"k_{i}": f"postgres://u:{value}@h/x" for i, value in enumerate(bulk(16_000))}
    trigger = {"api": "trigger_dag", "dag_id": "gw_probe"}
    for key, conf in (("conf_10k_passwords", passwords), ("conf_16k_uri_passwords", uris)):
        yield Case(
            f"bulk-trigger_dag-{key}-json",
            method="POST",
            headers=JSON_CT,
            json={**trigger, "conf": conf},
            expect=refused,
            **fields,
        )
        yield Case(
            f"bulk-trigger_dag-{key}-json_string",
            method="POST",
            headers=JSON_CT,
            json={**trigger, "conf": json.dumps(conf)},
            expect=refused,
            **fields,
        )
        yield Case(
            f"bulk-trigger_dag-{key}-form",
            method="POST",
            query=(("api", "trigger_dag"),),
            headers=FORM_CT,
            body=form_text([("dag_id", "gw_probe"), ("conf", json.dumps(conf))]),
            expect=refused,
            **fields,
        )
        yield Case(
            f"bulk-trigger_dag-{key}-vars_only",
            method="POST",
            headers=JSON_CT,
            json={**trigger, "conf": conf},
            token="vars_only",
            expect=(403,),
            **fields,
        )
        yield Case(
            f"bulk-exp_trigger-{key}",
            method="POST",
            path=f"{EXP}/dags/gw_probe/dag_runs",
            headers=JSON_CT,
            json={"conf": conf},
            expect=refused,
            **fields,
        )
        yield Case(
            f"bulk-exp_trigger-{key}-vars_only",
            method="POST",
            path=f"{EXP}/dags/gw_probe/dag_runs",
            headers=JSON_CT,
            json={"conf": conf},
            token="vars_only",
            expect=(403,),
            **fields,
        )
    connection = {"api": "connections", "add": "", "conn_id": "gw_h_bulk", "conn_type": "http"}
    for key, extra in (("10k_passwords", passwords), ("16k_uri_passwords", uris)):
        yield Case(
            f"bulk-conn_extra-{key}-json",
            method="POST",
            headers=JSON_CT,
            json={**connection, "conn_extra": extra},
            expect=refused,
            **fields,
        )
        yield Case(
            f"bulk-conn_extra-{key}-form",
            method="POST",
            query=(("api", "connections"),),
            headers=FORM_CT,
            body=form_text([*((k, v) for k, v in connection.items() if k != "api"), ("conn_extra", json.dumps(extra))]),
            expect=refused,
            **fields,
        )
        yield Case(
            f"bulk-conn_extra-{key}-vars_only",
            method="POST",
            headers=JSON_CT,
            json={**connection, "conn_extra": extra},
            token="vars_only",
            expect=(403,),
            **fields,
        )


# ---------------------------------------------------------------------------------------------------
# 14. Short secrets (a digit, "127", "INFO", a quote) are masked as values, never in the log's structure


def short_secret_cases() -> Iterator[Case]:
    fields: dict[str, Any] = {"audit_remote": "127.0.0.1"}
    digits = {f"token_{i}": str(i) for i in range(1000)}
    trigger = {"api": "trigger_dag", "dag_id": "gw_probe"}
    yield Case(
        "short-trigger_dag-conf_1000_digits", method="POST", headers=JSON_CT, json={**trigger, "conf": digits}, **fields
    )
    yield Case(
        "short-exp_trigger-conf_1000_digits",
        method="POST",
        path=f"{EXP}/dags/gw_probe/dag_runs",
        headers=JSON_CT,
        json={"conf": digits},
        **fields,
    )
    shorts = {
        "password_1": ("password", "1"),
        "secret_127": ("secret", "127"),
        "token_info": ("token", "INFO"),
        "password_0": ("password", "0"),
        "password_200": ("password", "200"),
        "password_dquote": ("password", '"'),
        "password_colon": ("password", ":"),
        "password_brace": ("password", "{"),
        "password_comma": ("password", ","),
        "password_dot": ("password", "."),
        "password_t": ("password", "T"),
        "token_admin": ("token", "admin"),
        "secret_status": ("secret", "status"),
        "secret_remote": ("secret", "remote"),
        "api_key_audit": ("api_key", "gateway.audit"),
    }
    for key, (name, value) in shorts.items():
        yield Case(
            f"short-trigger_dag-conf_{key}",
            method="POST",
            headers=JSON_CT,
            json={**trigger, "conf": {name: value}},
            **fields,
        )
        # Cheap: the query value under a password-like name is learned before anything is validated.
        yield Case(f"short-query-{key}", query=(("api", "rest_api_plugin_version"), (name, value)), **fields)
        yield Case(f"short-jobs_query-{key}", path=JOBS, query=((name, value),), **fields)
    yield api_call(
        "short-conn_password_0",
        "connections",
        {"add": "", "conn_id": _CONN.next("gw_h_short"), "conn_type": "http", "conn_password": "0"},
        **fields,
    )


# ---------------------------------------------------------------------------------------------------
# 15. Refuse first, then look: a token without the right learns nothing about the DAG (exists, paused, absent)


def refuse_first_cases() -> Iterator[Case]:
    absent = f"gw_h_nodag_{RUN_TAG}"
    states = (("unpaused", "gw_assets", "unpause"), ("paused", "gw_assets", "pause"), ("absent", absent, None))
    for state, dag, setup in states:
        if setup:
            yield api_call(f"first-setup-{setup}-{dag}", setup, {"dag_id": dag}, expect=(200,))
        for token in ("vars_only", "deployer"):
            common: dict[str, Any] = {"token": token, "invalid": True, "expect": (403,)}
            for key, query in (("wait", (("wait", "true"),)), ("wait_stream", (("wait", "true"), ("stream", "true")))):
                yield Case(
                    f"first-{token}-exp_trigger_{key}-{state}",
                    method="POST",
                    path=f"{EXP}/dags/{dag}/dag_runs",
                    query=query,
                    headers=JSON_CT,
                    body=b"{}",
                    **common,
                )
            yield Case(
                f"first-{token}-exp_trigger-{state}",
                method="POST",
                path=f"{EXP}/dags/{dag}/dag_runs",
                headers=JSON_CT,
                body=b"{}",
                **common,
            )
            for api, params in (
                ("trigger_dag", {"dag_id": dag, "wait": "true"}),
                ("watch_dag_run", {"dag_id": dag, "run_id": "manual__2024-03-03T00:00:00+00:00"}),
                ("dag_state", {"dag_id": dag, "execution_date": "2024-03-03"}),
            ):
                yield api_call(f"first-{token}-{api}-{state}", api, params, **common)
                yield api_call(
                    f"first-{token}-{api}-{state}-json", api, params, None, Hostile("x", "", "json"), **common
                )


# ---------------------------------------------------------------------------------------------------
# 16. Small ones: 4,301-digit numbers (past Python's int/str limit), methods on the jobs collection


def small_hardening_cases() -> Iterator[Case]:
    huge = "9" * 4301
    common: dict[str, Any] = {"invalid": True, "expect": (400,)}
    for api, params in (
        ("trigger_dag", {"dag_id": "gw_probe", "wait": "true"}),
        ("watch_dag_run", {"dag_id": "gw_probe", "run_id": "manual__2024-03-03T00:00:00+00:00"}),
    ):
        for transport in ("query", "form", "json", "jsonraw"):
            yield api_call(
                f"small-{api}-wait_timeout_s_4301_digits-{transport}",
                api,
                params,
                "wait_timeout_s",
                Hostile("x", huge, transport=transport),
                **common,
            )
    yield api_call(
        "small-trigger_dag-wait_timeout_s_4301_digits_neg",
        "trigger_dag",
        {"dag_id": "gw_probe", "wait": "true", "wait_timeout_s": "-" + huge},
        **common,
    )
    for key, value in (("", huge), ("_neg", "-" + huge)):
        yield Case(
            f"small-exp_trigger-wait_timeout_s_4301_digits{key}",
            method="POST",
            path=f"{EXP}/dags/gw_probe/dag_runs",
            query=(("wait", "true"), ("wait_timeout_s", value)),
            headers=JSON_CT,
            body=b"{}",
            **common,
        )
    # Without wait=true the timeout means nothing: no opinion on the status, but never a 5xx.
    yield Case(
        "small-exp_trigger-wait_timeout_s_4301_digits-no_wait",
        method="POST",
        path=f"{EXP}/dags/gw_probe/dag_runs",
        query=(("wait_timeout_s", huge),),
        headers=JSON_CT,
        body=b"{}",
    )
    yield api_call(
        "small-task_state-map_index_4301_digits", "task_state", {**BASE["task_state"], "map_index": huge}, **common
    )
    yield Case("small-job_log-offset_4301_digits", path=f"{JOBS}/{JOB}/log", query=(("offset", huge),))
    for method in ("PUT", "PATCH", "POST", "DELETE"):
        yield Case(
            f"small-jobs_collection-{method}",
            method=method,
            path=JOBS,
            invalid=True,
            expect=(405,),
            answer_headers=("Allow",),
        )
        yield Case(
            f"small-jobs_collection-{method}-no_token",
            method=method,
            path=JOBS,
            token=None,
            invalid=True,
            expect=(403, 405),
        )


def build() -> list[Case]:
    cases = [
        *outcome_cases(),
        *token_cases(),
        *argument_cases(),
        *body_cases(),
        *upload_cases(),
        *connection_cases(),
        *forwarded_cases(),
        *route_cases(),
        *experimental_cases(),
        *raw_cases(),
        *job_cases(),
        *log_forgery_cases(),
        *learned_secret_cases(),
        *masked_shape_cases(),
        *special_password_cases(),
        *bulk_secret_cases(),
        *short_secret_cases(),
        *refuse_first_cases(),
        *small_hardening_cases(),
    ]
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise AssertionError(f"duplicate case id {case.id}")
        seen.add(case.id)
    return cases


CASES: list[Case] = build()
#: Every password the corpus uses (the last test looks for them in every log).
ALL_SECRETS: tuple[str, ...] = tuple(sorted({s for case in CASES for s in case.secrets} - {ALL_PASSWORDS}))

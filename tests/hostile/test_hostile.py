"""Hostile input against a real gateway process on real Airflow: one test per row of ``corpus.CASES``.

Per case: no 5xx (a 503 carries Retry-After); a JSON answer in the route family's shape; ``invalid``
cases refused with a 4xx before any process started; nothing written outside the DAGs folder; no
secret (token or password) in the answer, a job log or the gateway log; ``/health`` still 200, and
answering within a second all the while the case ran (polled on a connection of its own); every line
the case added to the gateway log is one record (or an indented continuation of one) with no control
character, no forged line, and audit records whose JSON holds a real remote, time, status and token name.
Raw-socket cases (HTTP-level abuse) assert status < 500 and a JSON answer that echoes nothing
(``gateway/protocol.py``); what each got is recorded in ``raw_notes.json`` beside the gateway log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import ipaddress
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from multidict import CIMultiDict
from yarl import URL

from .conftest import TOKEN_NAMES, AdminJob, LiveGateway
from .corpus import ALL_PASSWORDS, ALL_SECRETS, BULK_SECRET, CASES, FORGED_STARTS, Case, Raw, multipart

pytestmark = pytest.mark.integration

RAW_TIMEOUT_S = 10.0
RAW_IDLE_S = 0.5
#: A stream of a finished job ends at once; one that does not end is broken (and must not eat the budget).
STREAM_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 60.0
JOB_TIMEOUT_S = 60.0
FINISHED = {"succeeded", "failed", "cancelled", "timed_out", "lost"}
_OFFSET = re.compile(r"@@(LOGSIZE|LINE1)([+-]\d+)?@@")
#: While a case runs, /health is polled this often and must answer 200 within the bound (generous by design).
HEALTH_EVERY_S = 0.1
HEALTH_BOUND_S = 1.0
#: One record of the gateway log (``%(asctime)s %(levelname)s %(name)s: %(message)s``).
_RECORD = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ([\w.-]+): ")
#: No control character in a log line: C0 (but TAB), DEL, C1 (NEL among them), the Unicode line separators.
_LOG_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_ACCESS = re.compile(r'(?P<remote>\S+) "(?P<method>\S+) (?P<path>.*)" \d{3} (?:\d+|-) \d+\.\d{3}s')
_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
_BULK = re.compile(BULK_SECRET.encode())
#: At most this many log problems are listed per case.
LOG_PROBLEMS = 8
_TOKEN = re.compile(r"@@TOKEN(UPPER|SHA|PREFIX)?:(\w+)@@")


@dataclass
class Answer:
    status: int | None
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    body: bytes = b""
    content_type: str = ""
    #: Every status seen (raw sockets may get several answers).
    statuses: list[int] = field(default_factory=list)
    error: str = ""
    #: Further text the case produced (a followed job's status and log).
    extra: list[bytes] = field(default_factory=list)

    def excerpt(self, limit: int = 400) -> str:
        text = self.body[:limit].decode("utf-8", "replace")
        return text + ("…" if len(self.body) > limit else "")


@dataclass
class Ctx:
    gw: LiveGateway
    job: AdminJob | None

    def text(self, value: str) -> str:
        gw = self.gw

        def token(match: re.Match[str]) -> str:
            kind, name = match.group(1), match.group(2)
            secret = gw.tokens[name]
            if kind == "UPPER":
                return secret.upper() if secret.upper() != secret else secret + "X"
            if kind == "SHA":
                return hashlib.sha256(secret.encode()).hexdigest()
            if kind == "PREFIX":
                return secret[:-1]
            return secret

        value = _TOKEN.sub(token, value)
        value = value.replace("@@CONFIG@@", str(gw.config_path))
        if "@@" in value and self.job is not None:
            job = self.job
            upper = job.id.upper() if job.id.upper() != job.id else job.id + "X"
            value = value.replace("@@JOBUPPER@@", upper).replace("@@JOBPREFIX@@", job.id[:-1])
            value = value.replace("@@JOB@@", job.id)

            def offset(match: re.Match[str]) -> str:
                base = job.log_size if match.group(1) == "LOGSIZE" else job.first_line_len
                return str(base + int(match.group(2) or 0))

            value = _OFFSET.sub(offset, value)
        return value

    def raw(self, value: str) -> str:
        return Raw(self.text(value)) if isinstance(value, Raw) else self.text(value)

    def bytes(self, data: bytes) -> bytes:
        if b"@@" not in data:
            return data
        return self.text(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def encode_query(ctx: Ctx, pairs: tuple[tuple[str, str], ...]) -> str:
    out = []
    for key, value in pairs:
        resolved = ctx.raw(value)
        encoded = str(resolved) if isinstance(resolved, Raw) else quote(resolved, safe="")
        out.append(f"{quote(ctx.text(key), safe='')}={encoded}")
    return "&".join(out)


# --------------------------------------------------------------------------------------------------
# Sending


async def send(http: aiohttp.ClientSession, ctx: Ctx, case: Case) -> Answer:
    gw = ctx.gw
    url = gw.url + ctx.text(case.path)
    if case.query:
        url += "?" + encode_query(ctx, case.query)
    headers: CIMultiDict[str] = CIMultiDict()
    if case.token is not None:
        headers[gw.header] = gw.tokens[case.token]
    for key, value in case.headers:
        headers.add(key, ctx.text(value))
    data: bytes | None = None
    if case.body is not None:
        data = ctx.bytes(case.body)
    elif case.json is not None:
        data = json.dumps(case.json).encode()
        headers.setdefault("Content-Type", "application/json")
    elif case.parts is not None:
        data = multipart(case.parts, case.boundary)
        headers.setdefault("Content-Type", f"multipart/form-data; boundary={case.boundary}")
    skip = () if "Content-Type" in headers else ("Content-Type",)
    try:
        async with (
            asyncio.timeout(STREAM_TIMEOUT_S if case.stream else REQUEST_TIMEOUT_S),
            http.request(
                case.method,
                URL(url, encoded=True),
                headers=headers,
                data=data,
                allow_redirects=False,
                skip_auto_headers=skip,
            ) as resp,
        ):
            body = await resp.read()
            return Answer(resp.status, CIMultiDict(resp.headers), body, resp.content_type, [resp.status])
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Answer(None, error=f"{type(exc).__name__}: {exc}")


_STATUS_LINE = re.compile(rb"(?:^|\n)HTTP/\d\.\d (\d{3})[^\n]*\n((?:[^\r\n][^\n]*\n)*)")


async def send_raw(ctx: Ctx, case: Case) -> Answer:
    assert case.raw is not None
    data = ctx.bytes(case.raw)
    received = bytearray()
    error = ""
    try:
        reader, writer = await asyncio.open_connection(ctx.gw.host, ctx.gw.port)
    except OSError as exc:
        return Answer(None, error=f"connect: {exc}")
    try:
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), RAW_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            error = f"write: {type(exc).__name__}"
        # Read until the server closes. Half-closing right away would make aiohttp cancel the request (the
        # client looks gone), so the client says it sends no more only after RAW_IDLE_S of silence.
        deadline = time.monotonic() + RAW_TIMEOUT_S
        half_closed = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                error = error or "timed out waiting for the server to close"
                break
            try:
                chunk = await asyncio.wait_for(reader.read(65536), left if half_closed else min(left, RAW_IDLE_S))
            except TimeoutError:
                if not half_closed and not writer.is_closing() and writer.can_write_eof():
                    half_closed = True
                    try:
                        writer.write_eof()
                    except OSError:
                        break
                    continue
                error = error or "read: timed out"
                break
            except OSError as exc:
                error = error or f"read: {type(exc).__name__}"
                break
            if not chunk:
                break
            received += chunk
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    statuses, content_type, headers = [], "", CIMultiDict[str]()
    for n, match in enumerate(_STATUS_LINE.finditer(bytes(received))):
        statuses.append(int(match.group(1)))
        if n == 0:
            for line in match.group(2).decode("latin-1").splitlines():
                key, _, value = line.partition(":")
                headers.add(key.strip(), value.strip())
            content_type = headers.get("Content-Type", "")
    return Answer(statuses[0] if statuses else None, headers, bytes(received), content_type, statuses, error)


# --------------------------------------------------------------------------------------------------
# Observing the gateway


async def health(http: aiohttp.ClientSession, gw: LiveGateway) -> tuple[int | None, dict[str, Any]]:
    try:
        async with http.get(f"{gw.url}/health") as resp:
            body = await resp.read()
            try:
                return resp.status, json.loads(body)
            except ValueError:
                return resp.status, {}
    except (TimeoutError, aiohttp.ClientError, OSError):
        return None, {}


def _walk(root: Path, skip_top: tuple[str, ...], skip_prefix: tuple[str, ...] = ()) -> set[str]:
    found: set[str] = set()
    if not root.exists():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d not in skip_top]
            filenames = [f for f in filenames if f not in skip_top and not f.startswith(skip_prefix)]
        # File names (symlinks included): a directory the gateway keeps for itself is not a write.
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in filenames + links:
            found.add(os.path.normpath(os.path.join(rel, name)))
    return found


def outside_snapshot(gw: LiveGateway) -> set[str]:
    """Files outside the DAGs folder that a request could create: in AIRFLOW_HOME and in the state dir."""
    home = {f"home/{p}" for p in _walk(gw.airflow_home, ("dags", "logs"), ("airflow.db",))}
    state = {f"state/{p}" for p in _walk(gw.state_dir, ("jobs",))}
    return home | state


def dags_snapshot(gw: LiveGateway) -> dict[str, str]:
    out = {}
    for path in sorted(gw.dags_folder.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        rel = str(path.relative_to(gw.dags_folder))
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


async def follow_job(http: aiohttp.ClientSession, gw: LiveGateway, answer: Answer) -> None:
    """Wait for a 202's job to end; keep its status, its log (via the API) and its log file for the checks."""
    try:
        job_id = json.loads(answer.body)["job_id"]
    except (ValueError, KeyError, TypeError):
        return
    headers = {gw.header: gw.tokens["admin"]}
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        async with http.get(f"{gw.url}/api/jobs/{job_id}", headers=headers) as resp:
            body = await resp.read()
        answer.extra.append(body)
        try:
            if json.loads(body).get("state") in FINISHED:
                break
        except ValueError:
            break
        await asyncio.sleep(0.1)
    async with http.get(f"{gw.url}/api/jobs/{job_id}/log", params={"offset": "0"}, headers=headers) as resp:
        answer.extra.append(await resp.read())
    log_file = gw.state_dir / "jobs" / f"{job_id}.log"
    if log_file.exists():
        answer.extra.append(log_file.read_bytes())


class HealthWatch:
    """Polls ``/health`` while a case runs, from a thread and on a fresh connection each time (so neither
    the test's event loop nor a connection the case broke can hold it up): every poll must answer 200
    within :data:`HEALTH_BOUND_S`. Polls start :data:`HEALTH_EVERY_S` into the case (a case done sooner
    costs nothing: the timed ``/health`` after it covers it); the one in flight at the end is awaited."""

    def __init__(self, gw: LiveGateway) -> None:
        self._address = (gw.host, gw.port)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile-health-watch", daemon=True)
        self._started = 0.0
        self.polls = 0
        self.problems: list[str] = []

    def __enter__(self) -> HealthWatch:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(HEALTH_BOUND_S + 10)

    def _run(self) -> None:
        while not self._stop.wait(HEALTH_EVERY_S):
            started = time.monotonic()
            problem = self._poll()
            took = time.monotonic() - started
            self.polls += 1
            if problem is None and took >= HEALTH_BOUND_S:
                problem = f"took {took:.2f} s"
            if problem is not None:
                self.problems.append(f"/health polled at +{started - self._started:.1f} s {problem}")

    def _poll(self) -> str | None:
        conn = http.client.HTTPConnection(*self._address, timeout=HEALTH_BOUND_S)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            return None if resp.status == 200 else f"answered {resp.status}"
        except TimeoutError:
            return f"did not answer within {HEALTH_BOUND_S:g} s"
        except (OSError, http.client.HTTPException) as exc:
            return f"failed ({type(exc).__name__}: {exc})"
        finally:
            conn.close()


# --------------------------------------------------------------------------------------------------
# The invariants


def _json_lines(body: bytes, content_type: str) -> str | None:
    """None when a stream's body is well formed; else what is wrong with it."""
    text = body.decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if content_type == "text/plain":
        last = lines[-1] if lines else ""
        if not last.startswith("[result] "):
            return f"a text stream must end with its [result] line, ends with {last[:200]!r}"
        lines = [last[len("[result] ") :]]
    elif content_type == "text/event-stream":
        lines = [line[len("data: ") :] for line in lines if line.startswith("data: ")]
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            return f"stream line is not JSON: {line[:200]!r}"
    if not lines:
        return "empty stream"
    return None


def check_answer(case: Case, answer: Answer, family_path: str) -> list[str]:
    problems = []
    status = answer.status
    if status is None:
        if case.raw is None:
            return [f"no HTTP answer ({answer.error})"]
        return problems  # a raw-socket connection closed without an answer is no 5xx
    for seen in answer.statuses or [status]:
        if seen >= 500 and not (seen == 503 and "Retry-After" in answer.headers):
            problems.append(f"status {seen} (5xx{' without Retry-After' if seen == 503 else ''})")
    if case.raw is not None:
        if status >= 400 and answer.content_type.split(";")[0].strip() != "application/json":
            problems.append(f"a protocol error must be JSON (gateway/protocol.py), got {answer.content_type!r}")
        return problems
    if answer.error:
        problems.append(f"answer broken: {answer.error}")
    streamed = case.stream and answer.content_type in ("application/x-ndjson", "text/event-stream", "text/plain")
    body: Any = None
    if streamed:
        wrong = _json_lines(answer.body, answer.content_type)
        if wrong:
            problems.append(wrong)
    elif answer.content_type != "application/json":
        problems.append(f"Content-Type {answer.content_type or '(none)'!r}, not application/json")
    else:
        try:
            body = json.loads(answer.body)
        except ValueError as exc:
            problems.append(f"body is not JSON: {exc}")
    if body is not None:
        if family_path.startswith("/admin/rest_api"):
            if not isinstance(body, dict) or "status" not in body:
                problems.append("plugin answer without 'status'")
            elif body.get("http_response_code") != status:
                problems.append(f"http_response_code {body.get('http_response_code')!r} != HTTP status {status}")
        elif status >= 400 and (not isinstance(body, dict) or "error" not in body):
            problems.append("error answer without an 'error' key")
    return problems


def audit_problems(record: Any) -> list[str]:
    """What is wrong with an audit record's JSON: it must have a route, an ISO 8601 time, an integer status,
    an IP address as remote (or none) and a configured token's name as token (or none)."""
    if not isinstance(record, dict):
        return ["is not a JSON object"]
    problems = []
    if not isinstance(record.get("route"), str):
        problems.append(f"route {record.get('route')!r}")
    status = record.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        problems.append(f"status {status!r}")
    at = record.get("at")
    try:
        if not isinstance(at, str) or not _AT.fullmatch(at):
            raise ValueError(at)
        datetime.fromisoformat(at)
    except ValueError:
        problems.append(f"at {at!r}")
    if "remote" in record:
        try:
            ipaddress.ip_address(record["remote"])
        except ValueError:
            problems.append(f"remote {record['remote']!r}")
    if "token" in record and record["token"] not in TOKEN_NAMES:
        problems.append(f"token {record['token']!r}")
    return problems


def check_log(new_log: bytes, clean_start: bool) -> tuple[list[str], list[dict[str, Any]]]:
    """The problems of the gateway log's new lines, and the audit records among them.

    ``new_log`` is what was appended while the case ran; ``clean_start``: it starts at a line's beginning
    (else its first piece is skipped). What follows the last newline may be a line still being written."""
    problems: list[str] = []
    audits: list[dict[str, Any]] = []
    lines = new_log.split(b"\n")[:-1]
    if not clean_start:
        lines = lines[1:]
    for raw in lines:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", "replace")
            problems.append(f"log line {line[:160]!r} is not UTF-8")
        shown = repr(line[:160]) + ("…" if len(line) > 160 else "")
        if found := _LOG_CONTROL.search(line):
            problems.append(f"log line {shown} holds the control character {found.group()!r}")
        if line.lstrip(" \t").startswith(FORGED_STARTS):
            problems.append(f"log line {shown} is a forged one (it starts with the forgery)")
        head = _RECORD.match(line)
        if head is None:
            if line[:1] not in (" ", "\t"):
                problems.append(f"log line {shown} is neither a record nor an indented continuation of one")
            continue
        logger, message = head.group(2), line[head.end() :]
        if logger == "gateway.audit":
            try:
                record = json.loads(message)
            except ValueError:
                problems.append(f"audit record {shown}: its JSON does not parse")
                continue
            if wrong := audit_problems(record):
                problems.append(f"audit record {shown}: {', '.join(wrong)}")
            else:
                audits.append(record)
        elif logger == "aiohttp.access":
            access = _ACCESS.fullmatch(message)
            if access is None:
                problems.append(f"access line {shown} is not 'REMOTE \"METHOD PATH\" STATUS BYTES SECONDSs'")
            else:
                try:
                    ipaddress.ip_address(access.group("remote"))
                except ValueError:
                    problems.append(f"access line {shown}: remote {access.group('remote')!r} is no IP address")
    if len(problems) > LOG_PROBLEMS:
        problems = [*problems[:LOG_PROBLEMS], f"… {len(problems)} log problems in all"]
    return problems, audits


def remove_if_exists(path: str) -> bool:
    if not os.path.lexists(path):
        return False
    os.unlink(path)
    return True


def read_from(path: Path, offset: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read()


def at_line_start(path: Path, offset: int) -> bool:
    if offset == 0:
        return True
    with open(path, "rb") as handle:
        handle.seek(offset - 1)
        return handle.read(1) == b"\n"


def leaks(secrets: list[str], blobs: dict[str, bytes]) -> list[str]:
    found = []
    for secret in secrets:
        needle = secret.encode()
        for where, blob in blobs.items():
            if needle in blob:
                found.append(f"secret {secret[:6]}… appears in {where}")
    for where, blob in blobs.items():
        # The bulk secrets (thousands per request) are one pattern.
        if bulk := _BULK.search(blob):
            found.append(f"bulk secret {bulk.group()[:10].decode()}… appears in {where}")
    return found


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_hostile(
    case: Case, live_gateway: LiveGateway, http: aiohttp.ClientSession, request: pytest.FixtureRequest
) -> None:
    gw = live_gateway
    assert gw.alive(), "the gateway process is gone"
    job = request.getfixturevalue("admin_job") if case.needs_job else None
    ctx = Ctx(gw, job)

    before_status, before = await health(http, gw)
    assert before_status == 200, f"/health answered {before_status} before the case"
    started_before = before["runner"]["started"]
    files_before = outside_snapshot(gw)
    dags_before = dags_snapshot(gw) if case.dags_unchanged else None
    log_offset = gw.log_path.stat().st_size

    with HealthWatch(gw) as watch:
        sent = time.monotonic()
        answer = await (send_raw(ctx, case) if case.raw is not None else send(http, ctx, case))
        took = time.monotonic() - sent
        if case.follow_job and answer.status == 202:
            await follow_job(http, gw, answer)

    asked = time.monotonic()
    after_status, after = await health(http, gw)
    health_took = time.monotonic() - asked
    # The family is the route that matched the raw path (``%2F`` is not a path separator).
    problems = check_answer(case, answer, ctx.text(case.path))
    if case.raw is not None:
        gw.notes[case.id] = {"statuses": answer.statuses, "content_type": answer.content_type, "error": answer.error}
    status = answer.status
    refused = status is not None and all(400 <= s < 500 for s in answer.statuses or [status])
    if (case.invalid or case.refuse) and not refused:
        problems.append(f"must be refused with a 4xx, got {answer.statuses or status}")
    if case.invalid and after_status == 200 and after["runner"]["started"] != started_before:
        problems.append(f"a process was started ({started_before} -> {after['runner']['started']})")
    if case.expect and status not in case.expect:
        problems.append(f"status {status}, expected one of {case.expect}")
    if after_status != 200:
        problems.append(f"/health answered {after_status} after the case; gateway alive: {gw.alive()}")
    problems += watch.problems[:5]
    if health_took >= HEALTH_BOUND_S:
        problems.append(f"/health after the case took {health_took:.2f} s")
    if case.within_s is not None and took >= case.within_s:
        problems.append(f"answered after {took:.1f} s, not within {case.within_s:g} s")
    problems += [f"no {name} header in the answer" for name in case.answer_headers if name not in answer.headers]

    new_files = outside_snapshot(gw) - files_before
    if new_files:
        problems.append(f"files created outside the DAGs folder: {sorted(new_files)[:10]}")
    problems += [f"{path} exists" for path in case.outside_paths if remove_if_exists(path)]
    if dags_before is not None:
        dags_after = dags_snapshot(gw)
        if dags_after != dags_before:
            added = sorted(set(dags_after) - set(dags_before))
            changed = sorted(k for k in dags_before if dags_after.get(k) != dags_before[k])
            problems.append(f"the DAGs folder changed: added {added[:5]}, changed/removed {changed[:5]}")

    header_blob = "\n".join(f"{k}: {v}" for k, v in answer.headers.items()).encode("utf-8", "surrogateescape")
    if "X-Injected" in answer.headers:
        problems.append("a value became a response header (X-Injected)")
    new_log = read_from(gw.log_path, log_offset)
    log_problems, audits = check_log(new_log, at_line_start(gw.log_path, log_offset))
    problems += log_problems
    if case.audit_remote is not None and not any(
        record.get("remote") == case.audit_remote and record["status"] == status for record in audits
    ):
        seen = [(record.get("remote"), record["status"]) for record in audits]
        problems.append(f"no audit record with remote {case.audit_remote!r} and status {status} (well-formed: {seen})")
    secrets = [ctx.text(s) for s in case.secrets if s != ALL_PASSWORDS] + list(gw.tokens.values())
    if ALL_PASSWORDS in case.secrets:
        secrets += [s for s in ALL_SECRETS if s != ALL_PASSWORDS]
    problems += leaks(
        secrets,
        {
            "the answer": answer.body,
            "the answer's headers": header_blob,
            "the job's status/log": b"\n".join(answer.extra),
            "the gateway log": new_log,
        },
    )
    body_text = answer.body.decode("utf-8", "replace")
    for text in case.forbid:
        if ctx.text(text) in body_text:
            problems.append(f"the answer contains {ctx.text(text)[:40]!r}")
    if case.proof and case.proof[0] in body_text:
        proof = [ctx.text(p) for p in case.proof[1:]]
        if not any(p in body_text for p in proof):
            problems.append(f"the attack's output is in the answer but none of {proof} is (did it run?)")

    if problems:
        pytest.fail(
            f"[{case.id}] status {answer.statuses or status}, Content-Type {answer.content_type!r}"
            + (f" ({answer.error})" if answer.error else "")
            + "\n  - "
            + "\n  - ".join(problems)
            + f"\n  body: {answer.excerpt()}",
            pytrace=False,
        )


def test_zz_no_secret_anywhere_and_gateway_alive(live_gateway: LiveGateway) -> None:
    """Last: no token or password in the gateway's log or in any file of its state dir; it still runs."""
    gw = live_gateway
    notes_path = gw.log_path.with_name("raw_notes.json")
    notes_path.write_text(json.dumps(gw.notes, indent=1, sort_keys=True))
    secrets = list(gw.tokens.values()) + list(ALL_SECRETS)
    blobs = {"the gateway log": gw.log_path.read_bytes()}
    for path in gw.state_dir.rglob("*"):
        if path.is_file():
            blobs[str(path.relative_to(gw.state_dir))] = path.read_bytes()
    found = leaks(secrets, blobs)
    assert gw.alive(), f"the gateway process exited with {gw.proc.returncode}"
    assert not found, "\n".join(found[:50]) + (f"\n… {len(found)} in all" if len(found) > 50 else "")

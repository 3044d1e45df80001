"""The gateway's log: one record per line whatever a client sent, masked, and audit records that stay JSON."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gateway.audit import MAX_LOGGED_ARGS, AuditRecord
from gateway.logs import PREPARED, JsonFormatter, LogFilter, dumps_line, escape
from gateway.masking import CURRENT, Masker

UNSAFE = ["\r", "\n", "\x1b[31m", "\x00", "\x08", "\x0b", "\x0c", "\x7f", "\x85", "\x9b", "\u2028", "\u2029"]
FORGED = '\n1999-01-01 00:00:00,000 INFO gateway.audit: {"token": "admin"}'


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(LogFilter(Masker()))
    root = logging.getLogger("test_logs")
    root.addHandler(handler)
    root.propagate = False
    yield out, handler
    root.removeHandler(handler)


@pytest.mark.parametrize("char", UNSAFE)
def test_no_control_character_survives_escaping(char: str) -> None:
    assert char not in escape(f"a{char}b") and "\t" in escape("a\tb")


def test_a_value_cannot_start_a_line_of_its_own(captured: tuple[io.StringIO, logging.Handler]) -> None:
    out, _ = captured
    log = logging.getLogger("test_logs")
    log.warning("GET %s", "/api/jobs/x" + FORGED + "".join(UNSAFE))
    try:
        raise ValueError("bad" + FORGED)
    except ValueError:
        log.exception("failed")
    lines = out.getvalue().splitlines()
    records = [line for line in lines if not line.startswith(" ")]
    assert len(records) == 2 and all(line[:4].isdigit() for line in records)
    assert all(line.startswith("    ") for line in lines[2:])  # the traceback, indented
    assert not any(char in out.getvalue().replace("\n", "") for char in UNSAFE if char != "\n")


def test_the_filter_masks_the_current_requests_secrets_and_any_query_string(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    out, _ = captured
    log = logging.getLogger("test_logs")
    reset = CURRENT.set(Masker(["s3cr3t-value"]))
    try:
        log.warning("GET /admin/rest_api/api?api=connections&conn_password=%s", "whatever")
        try:
            raise ValueError("bad value s3cr3t-value")
        except ValueError:
            log.exception("failed with %s", "s3cr3t-value")
    finally:
        CURRENT.reset(reset)
    text = out.getvalue()
    assert "s3cr3t-value" not in text and "whatever" not in text
    assert "failed with ***" in text and "ValueError: bad value ***" in text


def test_short_secrets_never_change_an_audit_record() -> None:
    """The record is built from masked values, then serialized; the log filter leaves its structure alone."""
    masker = Masker([str(n) for n in range(1000)] + ["INFO", "admin"])
    record = AuditRecord(route="/admin/rest_api/api", remote="127.0.0.1", token="admin", api="trigger_dag")
    record.args, record.status, record.duration_s = ["conf", "0", "x" + FORGED], 403, 0.012
    fields = record.masked(masker)
    logged = logging.LogRecord("gateway.audit", logging.INFO, __file__, 1, dumps_line(fields), None, None)
    for key, value in {**PREPARED, "gateway_fields": fields}.items():
        setattr(logged, key, value)
    reset = CURRENT.set(masker)
    try:
        assert LogFilter(Masker()).filter(logged)
    finally:
        CURRENT.reset(reset)
    (line,) = logging.Formatter("%(message)s").format(logged).splitlines()
    written = json.loads(line)
    assert written["remote"] == "127.0.0.1" and written["status"] == 403 and written["token"] == "admin"
    assert written["at"][:4].isdigit() and written["args"][:2] == ["conf", "0"]
    assert written["args"][2] == "x" + FORGED.replace("admin", "***")  # a long secret in a name is masked


def test_an_audit_record_keeps_at_most_so_many_argument_names() -> None:
    record = AuditRecord(route="/r", remote=None, args=[f"a{n}" for n in range(MAX_LOGGED_ARGS + 5)])
    assert record.masked(Masker())["args"][-1] == "(and 5 more)"


def test_the_json_format_writes_one_object_per_record() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("gateway", logging.ERROR, __file__, 1, "boom" + FORGED, None, None)
    line = formatter.format(record)
    assert "\n" not in line and json.loads(line)["message"] == "boom" + FORGED
    prepared = logging.LogRecord("aiohttp.access", logging.INFO, __file__, 1, "x", None, None)
    prepared.gateway_fields = {"path": "/p\x7f", "status": 200}
    parsed = json.loads(formatter.format(prepared))
    assert parsed["path"] == "/p\x7f" and parsed["status"] == 200 and "\x7f" not in formatter.format(prepared)

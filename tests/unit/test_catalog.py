"""The catalog: every API's argv, and every refusal, without running anything."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.catalog import APIS, CATALOG, ApiError, ArgType, Kind, Upload, markdown_table, validate
from gateway.catalog.model import MAX_INT_DIGITS, MAX_NUMBER_DIGITS, whole_number
from gateway.runner import Command

from ..support import REPO

SEED_APIS = {
    "version", "rest_api_plugin_version", "render", "variables", "connections", "pause", "unpause",
    "task_failed_deps", "trigger_dag", "test", "dag_state", "run", "list_tasks", "backfill", "list_dags",
    "kerberos", "worker", "flower", "scheduler", "task_state", "pool", "serve_logs", "clear", "deploy_dag",
    "refresh_dag", "refresh_all_dags", "delete_dag", "triggerer", "dag_processor", "watch_dag_run",
}  # fmt: skip


def build(api: str, **raw: Any) -> Command:
    entry = CATALOG[api]
    assert entry.build is not None
    return entry.build(validate(entry, raw))


def test_every_seed_api_and_the_requested_ones_are_in_the_catalog() -> None:
    assert set(CATALOG) == SEED_APIS


@pytest.mark.parametrize(
    ("api", "raw", "argv"),
    [
        ("version", {}, ["version"]),
        ("render", {"dag_id": "d", "task_id": "t", "execution_date": "2017-01-02T03:04:05"},
         ["tasks", "render", "--", "d", "t", "2017-01-02T03:04:05"]),
        ("render", {"dag_id": "d", "task_id": "t", "execution_date": "manual__1", "map_index": "2"},
         ["tasks", "render", "--map-index=2", "--", "d", "t", "manual__1"]),
        ("variables", {}, ["variables", "list", "-o", "json"]),
        ("variables", {"set": "k", "set_value": "-5"}, ["variables", "set", "--", "k", "-5"]),
        ("variables", {"cmd": "set", "key": "k", "value": "v"}, ["variables", "set", "--", "k", "v"]),
        ("variables", {"get": "k", "json": "", "default": "d"}, ["variables", "get", "--default=d", "--", "k"]),
        ("variables", {"delete": "k"}, ["variables", "delete", "--", "k"]),
        ("variables", {"export": ""}, ["variables", "export", "-"]),
        ("connections", {}, ["connections", "list", "-o", "json"]),
        ("connections", {"list": "true"}, ["connections", "list", "-o", "json"]),
        ("connections", {"add": "", "conn_id": "c", "conn_uri": "postgres://u:p@h/db"},
         ["connections", "add", "--conn-uri=postgres://u:p@h/db", "--", "c"]),
        ("connections", {"add": "on", "conn_id": "c", "conn_type": "http", "conn_extra": '{"a": 1}', "conn_port": "80"},
         ["connections", "add", "--conn-type=http", "--conn-port=80", '--conn-extra={"a": 1}', "--", "c"]),
        ("connections", {"delete": "1", "conn_id": "c"}, ["connections", "delete", "--", "c"]),
        ("pause", {"dag_id": "d"}, ["dags", "pause", "-o", "json", "--", "d"]),
        ("unpause", {"dag_id": "d"}, ["dags", "unpause", "-o", "json", "--", "d"]),
        ("task_failed_deps", {"dag_id": "d", "task_id": "t", "execution_date": "2017-01-02"},
         ["tasks", "failed-deps", "--", "d", "t", "2017-01-02T00:00:00"]),
        ("trigger_dag", {"dag_id": "d"}, ["dags", "trigger", "-o", "json", "--", "d"]),
        ("trigger_dag", {"dag_id": "d", "run_id": "r1", "conf": '{"k": "v"}', "exec_date": "2017-01-02T03:04:05+00:00"},
         ["dags", "trigger", "-o", "json", "--run-id=r1", '--conf={"k": "v"}',
          "--logical-date=2017-01-02T03:04:05+00:00", "--", "d"]),
        ("trigger_dag", {"dag_id": "d", "execution_date": "2017-01-02T03:04:05 00:00", "replace_microseconds": "false"},
         ["dags", "trigger", "-o", "json", "--logical-date=2017-01-02T03:04:05+00:00", "--no-replace-microseconds",
          "--", "d"]),
        ("test", {"dag_id": "d", "task_id": "t"}, ["tasks", "test", "--", "d", "t"]),
        ("test", {"dag_id": "d", "task_id": "t", "execution_date": "2017-01-02", "task_params": '{"a": 1}'},
         ["tasks", "test", '--task-params={"a": 1}', "--", "d", "t", "2017-01-02T00:00:00"]),
        ("run", {"dag_id": "d", "task_id": "t", "execution_date": "r"}, ["tasks", "test", "--", "d", "t", "r"]),
        ("dag_state", {"dag_id": "d", "execution_date": "2017-01-02T03:04:05"},
         ["dags", "state", "--", "d", "2017-01-02T03:04:05"]),
        ("list_tasks", {"dag_id": "d"}, ["tasks", "list", "--", "d"]),
        ("list_tasks", {"dag_id": "d", "tree": ""}, ["dags", "show", "--", "d"]),
        ("backfill", {"dag_id": "d", "start_date": "2024-01-01"},
         ["backfill", "create", "--dag-id=d", "--from-date=2024-01-01T00:00:00", "--to-date=2024-01-01T00:00:00"]),
        ("backfill", {"dag_id": "d", "start_date": "2024-01-01", "end_date": "2024-01-03", "dry_run": "yes"},
         ["backfill", "create", "--dag-id=d", "--from-date=2024-01-01T00:00:00", "--to-date=2024-01-03T00:00:00",
          "--dry-run"]),
        ("list_dags", {}, ["dags", "list", "-o", "json"]),
        ("list_dags", {"report": ""}, ["dags", "report", "-o", "json"]),
        ("task_state", {"dag_id": "d", "task_id": "t", "execution_date": "r"}, ["tasks", "state", "--", "d", "t", "r"]),
        ("pool", {}, ["pools", "list", "-o", "json"]),
        ("pool", {"set": "etl 5 nightly jobs"}, ["pools", "set", "--", "etl", "5", "nightly jobs"]),
        ("pool", {"cmd": "set", "pool_name": "etl", "slot_count": "5", "pool_description": "d"},
         ["pools", "set", "--", "etl", "5", "d"]),
        ("pool", {"cmd": "set", "pool_name": "etl", "slot_count": "5", "description": "d", "include_deferred": "on"},
         ["pools", "set", "--include-deferred", "--", "etl", "5", "d"]),
        ("pool", {"get": "etl"}, ["pools", "get", "-o", "json", "--", "etl"]),
        ("pool", {"delete": "etl"}, ["pools", "delete", "--", "etl"]),
        ("clear", {"dag_id": "d"}, ["tasks", "clear", "-y", "--", "d"]),
        ("clear", {"dag_id": "d", "task_regex": "^h", "upstream": "", "only_failed": "1", "no_confirm": ""},
         ["tasks", "clear", "-y", "--task-regex=^h", "--upstream", "--only-failed", "--", "d"]),
        ("clear", {"dag_id": "d", "run_id": "manual__1"}, ["dags", "clear", "-y", "--run-id=manual__1", "--", "d"]),
        ("refresh_all_dags", {}, ["dags", "reserialize"]),
        ("delete_dag", {"dag_id": "d"}, ["dags", "delete", "-y", "--", "d"]),
    ],
)  # fmt: skip
def test_argv(api: str, raw: dict[str, Any], argv: list[str]) -> None:
    assert list(build(api, **raw).argv) == argv


def test_refresh_dag_runs_the_helper() -> None:
    command = build("refresh_dag", dag_id="d")
    assert command.helper and command.argv == ("refresh-dag", "d")


def test_variables_import_takes_a_json_object_or_an_upload_never_a_path() -> None:
    command = build("variables", **{"import": {"a": "1"}})
    assert command.argv == ("variables", "import", "--", "{file:variables.json}")
    assert command.files == {"variables.json": b'{"a": "1"}'}
    command = build("variables", **{"import": Upload("vars.json", b'{"b": 2}')})
    assert command.files == {"variables.json": b'{"b": 2}'}
    with pytest.raises(ApiError, match="not a path on the server"):
        build("variables", **{"import": "/etc/passwd"})


@pytest.mark.parametrize(
    ("api", "raw", "status", "message"),
    [
        ("render", {"dag_id": "d"}, 400, "The argument(s) ['task_id', 'execution_date'] are required"),
        ("render", {"dag_id": "d", "task_id": "t", "execution_date": "x", "bogus": "1"}, 400, "Unknown argument(s)"),
        ("render", {"dag_id": "-rf", "task_id": "t", "execution_date": "2017-01-01"}, 400, "'dag_id' must be"),
        ("render", {"dag_id": "a/../b", "task_id": "t", "execution_date": "2017-01-01"}, 400, "'dag_id' must be"),
        ("render", {"dag_id": "d", "task_id": "t", "execution_date": "--help"}, 400, "must be a date"),
        ("render", {"dag_id": "d", "task_id": "t", "execution_date": "2017-13-45"}, 400, "must be a date"),
        ("render", {"dag_id": "d", "task_id": "t", "execution_date": "2017-01-01", "subdir": "/tmp"}, 400,
         "names a path on the server"),
        ("trigger_dag", {"dag_id": "d", "conf": "[1, 2]"}, 400, "must be a JSON object"),
        ("trigger_dag", {"dag_id": "d", "conf": "{nope"}, 400, "not valid JSON"),
        ("trigger_dag", {"dag_id": "d", "run_id": "-x"}, 400, "not a valid run id"),
        ("trigger_dag", {"dag_id": "d", "exec_date": "yesterday"}, 400, "is not a date"),
        ("trigger_dag", {"dag_id": "d", "replace_microseconds": "maybe"}, 400, "must be a boolean"),
        ("test", {"dag_id": "d", "task_id": "t", "dry_run": ""}, 400, "'dry_run' has no Airflow 3 equivalent"),
        ("run", {"dag_id": "d", "task_id": "t", "execution_date": "r", "mark_success": ""}, 400, "'mark_success'"),
        ("run", {"dag_id": "d", "task_id": "t", "execution_date": "r", "cfg_path": "/x.json"}, 400, "'cfg_path'"),
        ("backfill", {"dag_id": "d"}, 400, "needs 'start_date' or 'end_date'"),
        ("backfill", {"dag_id": "d", "start_date": "2024-01-01", "task_regex": "x"}, 400, "'task_regex' has no"),
        ("variables", {"set": "k"}, 400, "needs 'set_value'"),
        ("variables", {"get": "k", "delete": "k"}, 400, "one action at a time"),
        ("variables", {"export": "/tmp/out.json"}, 400, "must be a boolean"),
        ("variables", {"key": "k", "value": "v"}, 400, "go with cmd=set"),
        ("connections", {"add": ""}, 400, "needs 'conn_id'"),
        ("connections", {"add": "", "conn_id": "c"}, 400, "needs 'conn_uri'"),
        ("pool", {"set": "etl five"}, 400, "'NAME SLOT_COUNT DESCRIPTION'"),
        ("pool", {"cmd": "set", "pool_name": "p"}, 400, "needs 'pool_name' and 'slot_count'"),
        ("pool", {"get": "a", "delete": "b"}, 400, "one action at a time"),
        ("clear", {"dag_id": "d", "task_regex": "("}, 400, "not a valid regular expression"),
        ("clear", {"dag_id": "d", "exclude_subdags": ""}, 400, "SubDAGs were removed"),
        ("variables", {"get": "a\x00b"}, 400, "NUL"),
    ],
)  # fmt: skip
def test_refusals(api: str, raw: dict[str, Any], status: int, message: str) -> None:
    with pytest.raises(ApiError) as refused:
        build(api, **raw)
    assert refused.value.status == status
    assert message in refused.value.message


@pytest.mark.parametrize("value", ["", "true", "1", "yes", "on", "TRUE", True])
def test_true_booleans(value: Any) -> None:
    assert validate(CATALOG["variables"], {"get": "k", "json": value})["json"] is True


@pytest.mark.parametrize("value", ["false", "0", "no", "off", False])
def test_false_booleans(value: Any) -> None:
    assert validate(CATALOG["variables"], {"get": "k", "json": value})["json"] is False


def test_secrets_are_masked_in_the_displayed_command() -> None:
    by_uri = build("connections", add="", conn_id="c", conn_uri="postgres://u:hunter22@h/db")
    by_fields = build("connections", add="", conn_id="c", conn_type="postgres", conn_password="pw-secret")
    shown = by_uri.display() + by_fields.display()
    assert "hunter22" not in shown and "pw-secret" not in shown
    assert "postgres://u:***@h/db" in shown


def test_a_whole_connection_goes_alone() -> None:
    with pytest.raises(ApiError, match="cannot go with conn_password"):
        build("connections", add="", conn_id="c", conn_uri="postgres://u:p@h/db", conn_password="x")
    with pytest.raises(ApiError, match="unknown key"):
        build("connections", add="", conn_id="c", conn_json='{"conn_type": "x", "who": 1}')
    with pytest.raises(ApiError, match="needs a conn_type"):
        build("connections", add="", conn_id="c", conn_json='{"password": "x"}')


def test_every_api_is_consistent() -> None:
    for api in APIS:
        if api.kind in (Kind.QUICK, Kind.LONG) and not api.gone:
            assert api.build is not None, api.name
        names = [a.name for a in api.args] + [alias for a in api.args for alias in a.aliases]
        assert len(names) == len(set(names)), api.name
        for arg in api.args:
            if arg.type in (ArgType.SERVER_PATH, ArgType.REMOVED):
                assert arg.refusal and not arg.required, (api.name, arg.name)


def test_readme_api_table_matches_the_catalog() -> None:
    readme = (REPO / "README.md").read_text()
    assert markdown_table() in readme, "README's API table is stale: paste `python -m gateway.catalog`"


def read(api: str, stdout: str, **raw: Any) -> Any:
    entry = CATALOG[api]
    return entry.parse(validate(entry, raw), stdout).data


def test_pools_are_typed_as_airflow_stores_them() -> None:
    printed = '[{"pool": "p", "slots": "128", "description": "7", "include_deferred": "False", "team_name": null}]\n'
    assert read("pool", printed) == [
        {"pool": "p", "slots": 128, "description": "7", "include_deferred": False, "team_name": None}
    ]
    assert read("pool", printed, get="p")[0]["slots"] == 128


def test_list_dags_is_typed_and_other_fields_stay_text() -> None:
    printed = '[{"dag_id": "d", "owners": ["True"], "is_paused": "False", "max_active_runs": "16", "fileloc": "1"}]'
    assert read("list_dags", printed) == [
        {"dag_id": "d", "owners": ["True"], "is_paused": False, "max_active_runs": 16, "fileloc": "1"}
    ]
    assert read("list_dags", '[{"file": "a.py", "dag_num": "3", "task_num": "6"}]', report="true") == [
        {"file": "a.py", "dag_num": 3, "task_num": 6}
    ]


def test_a_trigger_reports_its_conf_as_stored_and_dates_as_iso_8601() -> None:
    printed = (
        '[{"conf": {"fresh": "True", "n": "1"}, "dag_run_id": "r", "logical_date": "2024-01-02 03:04:05+00:00", '
        '"start_date": null, "state": "queued"}]'
    )
    data = read("trigger_dag", printed, dag_id="d", conf='{"fresh": true, "n": 1}')
    assert data["conf"] == {"fresh": True, "n": 1} and data["conf"]["fresh"] is True
    assert data["logical_date"] == "2024-01-02T03:04:05+00:00" and data["start_date"] is None
    assert data["run_id"] == "r"
    assert read("trigger_dag", printed.replace('{"fresh": "True", "n": "1"}', "{}"), dag_id="d")["conf"] == {}


def test_the_fast_path_is_declared_for_the_read_only_apis_only() -> None:
    assert {api.name for api in APIS if api.fast_path} == {
        "version", "variables", "pool", "connections", "list_dags", "list_tasks", "dag_state", "task_state",
        "task_failed_deps",
    }  # fmt: skip


def test_failed_deps_are_data_in_a_stable_order() -> None:
    ref = {"dag_id": "d", "task_id": "t", "execution_date": "r"}
    printed = (
        "Task instance dependencies not met:\n"
        "Trigger Rule: Task's trigger rule 'all_success' requires: 1 upstream\n"
        "Dag Not Paused: Task's DAG 'd' is paused.\n"
    )
    assert read("task_failed_deps", printed, **ref) == {
        "met": False,
        "failed": [
            {"dep": "Dag Not Paused", "reason": "Task's DAG 'd' is paused."},
            {"dep": "Trigger Rule", "reason": "Task's trigger rule 'all_success' requires: 1 upstream"},
        ],
    }
    met = read("task_failed_deps", "Task instance dependencies are all met.\n", **ref)
    assert met == {"met": True, "failed": []}


@pytest.mark.parametrize(
    ("text", "max_digits", "signed", "number"),
    [
        ("0", 1, False, 0), ("007", 3, False, 7), ("9" * 19, 19, False, 10**19 - 1), ("-5", 1, True, -5),
        ("9" * 20, 19, False, None), ("9" * 4301, 19, False, None), ("9" * 4301, 4300, False, None),
        ("-5", 1, False, None), ("--5", 3, True, None), ("+5", 3, True, None), ("-", 3, True, None),
        ("", 3, False, None), (" 5", 3, False, None), ("5 ", 3, False, None), ("٣", 3, False, None),
        ("1e3", 5, False, None), ("1_000", 5, False, None), ("0x1f", 5, False, None),
    ],
)  # fmt: skip
def test_a_whole_number_has_its_digits_counted_before_it_is_converted(
    text: str, max_digits: int, signed: bool, number: int | None
) -> None:
    assert whole_number(text, max_digits, signed=signed) == number


@pytest.mark.parametrize("given", ["9" * 20, "9" * 4301, " " + "9" * 30 + " ", "1e3", "٣", "+1"])
def test_an_int_argument_that_is_no_whole_number_of_at_most_19_digits_is_a_400(given: str) -> None:
    with pytest.raises(ApiError) as refused:
        validate(CATALOG["render"], {"dag_id": "d", "task_id": "t", "execution_date": "r", "map_index": given})
    assert refused.value.status == 400
    assert f"'map_index' must be a whole number of at most {MAX_INT_DIGITS} digits" in refused.value.message


@pytest.mark.parametrize("number", [10**5000, -(10**5000), 10**MAX_NUMBER_DIGITS], ids=["huge", "-huge", "bound"])
@pytest.mark.parametrize(
    ("api", "raw", "name"),
    [
        ("render", {"dag_id": "d", "task_id": "t", "execution_date": "r"}, "map_index"),  # INT
        ("variables", {"set": "k"}, "set_value"),  # TEXT
        ("render", {"task_id": "t", "execution_date": "r"}, "dag_id"),  # ID
        ("variables", {"get": "k"}, "json"),  # BOOL
        ("trigger_dag", {"dag_id": "d"}, "conf"),  # JSON_OBJECT
    ],
)
def test_a_json_number_of_too_many_digits_is_a_400_for_any_argument(
    api: str, raw: dict[str, Any], name: str, number: int
) -> None:
    """A JSON body's number arrives as a Python int: one past 4,300 digits has no str() (a ValueError, not a 400)."""
    with pytest.raises(ApiError) as refused:
        validate(CATALOG[api], {**raw, name: number})
    assert refused.value.status == 400
    assert refused.value.message == f"'{name}' is a number of more than {MAX_NUMBER_DIGITS} digits"


def test_json_numbers_within_the_bound_are_read_as_their_text() -> None:
    largest = 10**MAX_NUMBER_DIGITS - 1
    assert validate(CATALOG["variables"], {"set": "k", "set_value": largest})["set_value"] == str(largest)
    assert validate(CATALOG["variables"], {"set": "k", "set_value": -largest})["set_value"] == str(-largest)
    values = validate(CATALOG["render"], {"dag_id": 123, "task_id": "t", "execution_date": "r", "map_index": 7})
    assert (values["dag_id"], values["map_index"]) == ("123", 7)

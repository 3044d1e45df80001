from gateway.output import classify_failure, parse_json, split_log_lines

LOG = "2026-11-22T04:26:16.595974Z [info     ] creating dag run  [airflow.serialization] loc=dag.py:615\n"


def test_log_lines_move_out_and_data_lines_all_stay() -> None:
    data, log = split_log_lines(LOG + '[{"a": 1}]\n' + LOG + "success\n")
    assert data == '[{"a": 1}]\nsuccess\n'
    assert log == LOG * 2


def test_json_lists_and_plain_first_lines_survive_the_filter() -> None:
    # The old plugin dropped both of these.
    assert split_log_lines("success\n") == ("success\n", "")
    assert split_log_lines('["a", "b"]\n')[0] == '["a", "b"]\n'


def test_parse_json() -> None:
    assert parse_json(' [{"x": 1}]\n') == [{"x": 1}]
    assert parse_json("3.3.2") is None
    assert parse_json("[not json") is None


def test_known_failures_map_to_4xx_and_the_rest_to_500() -> None:
    tb = "Traceback (most recent call last):\n  ...\nairflow.exceptions.DagNotFound: Dag id x not found in DagModel\n"
    assert classify_failure(1, "", tb).http_status == 404
    assert classify_failure(1, "", tb).message == "airflow.exceptions.DagNotFound: Dag id x not found in DagModel"
    assert classify_failure(1, "", "airflow.exceptions.DagRunAlreadyExists: run exists\n").http_status == 409
    assert classify_failure(1, "", "Variable nope does not exist.\n").http_status == 404
    assert classify_failure(1, "", "Pool nope does not exist\n").http_status == 404
    assert classify_failure(1, "", "Can not find dag 'nope' in database\n").http_status == 404  # tasks state, dags show
    usage = "usage: airflow tasks list [-h] dag_id\nairflow tasks list: error: unrecognized arguments: -o\n"
    failure = classify_failure(2, "", usage)
    assert (failure.http_status, failure.message) == (400, "unrecognized arguments: -o")
    assert classify_failure(1, "", "ZeroDivisionError: division by zero\n").http_status == 500
    integrity = (
        "sqlalchemy.exc.IntegrityError: (sqlite3.IntegrityError) UNIQUE constraint failed: dag_run.logical_date\n"
        "[SQL: INSERT INTO dag_run ...]\n(Background on this error at: https://sqlalche.me/e/21/gkpj)\n"
    )
    failure = classify_failure(1, "", integrity)
    assert failure.http_status == 409 and "UNIQUE constraint failed: dag_run.logical_date" in failure.message
    assert classify_failure(1, "", "").message == "airflow exited with code 1"


DB_DOWN = (
    "Traceback (most recent call last):\n  ...\nsqlalchemy.exc.OperationalError: (psycopg2.OperationalError) "
    'connection to server at "db.internal" (10.1.2.3), port 5432 failed: Connection refused\n'
    "(Background on this error at: https://sqlalche.me/e/20/e3q8)\n"
)


def test_a_database_that_cannot_be_reached_is_a_plain_503_whatever_the_command_concluded() -> None:
    for stderr in (DB_DOWN, DB_DOWN + "Variable x does not exist\n", "sqlite3.OperationalError: database is locked\n"):
        failure = classify_failure(1, "", stderr)
        assert failure.http_status == 503
        assert (
            "db.internal" not in failure.message and "5432" not in failure.message and "sqlalche" not in failure.message
        )


def test_a_tasks_own_database_error_is_its_failure_not_airflows() -> None:
    assert classify_failure(1, "", DB_DOWN, runs_task_code=True).http_status == 500
    assert classify_failure(1, "", "requests.exceptions.ConnectionError: Connection refused\n").http_status == 500

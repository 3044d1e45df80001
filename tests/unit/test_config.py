from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import DEFAULT_HEADER_NAME, ConfigError, load_settings, parse_settings
from gateway.masking import token_digest


def test_defaults_generate_a_token_and_require_it(tmp_path: Path) -> None:
    settings = parse_settings({"airflow": {"home": str(tmp_path)}}, environ={})
    assert settings.server.port == 8780
    assert settings.header_name == DEFAULT_HEADER_NAME
    assert settings.generated_token is not None and len(settings.generated_token) >= 24
    assert len(settings.tokens) == 1 and settings.tokens[0].sha256 == token_digest(settings.generated_token)
    assert settings.runner.max_concurrency == 4
    assert {"scheduler", "worker", "flower", "kerberos", "serve_logs"} <= settings.disabled_apis
    assert settings.dags_folder == tmp_path / "dags"


def test_only_an_explicit_switch_disables_auth(tmp_path: Path) -> None:
    settings = parse_settings({"airflow": {"home": str(tmp_path)}, "auth": {"disabled": True}}, environ={})
    assert settings.auth_disabled and not settings.tokens


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"runner": {"max_concurrency": 0}}, "runner.max_concurrency"),
        ({"runner": {"timeout_s": "soon"}}, "runner.timeout_s"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"server": {"base_path": "gw"}}, "server.base_path"),
        ({"runner": {"max_concurency": 2}}, "runner.max_concurency: unknown key"),
        ({"surver": {}}, "surver: unknown key"),
        ({"auth": {"tokens": [{"name": "a"}]}}, "auth.tokens.0"),
        ({"auth": {"tokens": [{"name": "a", "token": "x", "token_env": "Y"}]}}, "auth.tokens.0"),
        ({"auth": {"tokens": [{"name": "a", "token": "  "}]}}, "auth.tokens[a]: the token is empty"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, data: dict, key: str) -> None:
    data.setdefault("airflow", {"home": str(tmp_path)})
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        parse_settings(data, environ={})


def test_token_from_env_and_file_and_env_is_kept_from_children(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("from-file\n")
    settings = parse_settings(
        {
            "airflow": {"home": str(tmp_path)},
            "auth": {
                "tokens": [
                    {"name": "ci", "token_env": "CI_TOKEN", "allow": ["trigger_dag", "dag_state"]},
                    {"name": "ops", "token_file": str(secret_file)},
                ]
            },
        },
        environ={"CI_TOKEN": "from-env"},
    )
    assert [(t.name, t.sha256) for t in settings.tokens] == [
        ("ci", token_digest("from-env")),
        ("ops", token_digest("from-file")),
    ]
    assert "from-env" not in repr(settings.tokens)
    child = settings.child_env({"CI_TOKEN": "from-env", "PATH": "/bin", "GATEWAY_CONFIG": "x"})
    assert "CI_TOKEN" not in child and "GATEWAY_CONFIG" not in child
    assert child["AIRFLOW_HOME"] == str(tmp_path)


def test_missing_token_env_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CI_TOKEN is not set"):
        parse_settings(
            {"airflow": {"home": str(tmp_path)}, "auth": {"tokens": [{"name": "ci", "token_env": "CI_TOKEN"}]}}, {}
        )


def test_plugin_keys_come_from_airflow_cfg_and_env(tmp_path: Path) -> None:
    (tmp_path / "airflow.cfg").write_text(
        "[core]\ndags_folder = {AIRFLOW_HOME}/my_dags\n"
        "[rest_api_plugin]\nrest_api_plugin_http_token_header_name = x-airflow-token\n"
        "rest_api_plugin_expected_http_token = from-cfg\nfilter_loading_messages_in_cli_response = False\n"
    )
    settings = parse_settings({"airflow": {"home": str(tmp_path)}}, environ={})
    assert settings.header_name == "x-airflow-token"
    assert [(t.name, t.sha256) for t in settings.tokens] == [("airflow.cfg", token_digest("from-cfg"))]
    assert settings.filter_loading_messages is False
    assert settings.dags_folder == tmp_path / "my_dags"

    env = {
        "AIRFLOW__REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "from-env",
        "AIRFLOW__REST_API_PLUGIN__LOG_LOADING": "true",
    }
    settings = parse_settings({"airflow": {"home": str(tmp_path)}}, environ=env)
    assert settings.tokens[0].sha256 == token_digest("from-env")
    assert settings.log_loading is True

    yaml_wins = parse_settings({"airflow": {"home": str(tmp_path)}, "auth": {"header_name": "x-yaml"}}, environ=env)
    assert yaml_wins.header_name == "x-yaml"


def test_an_empty_plugin_token_does_not_turn_auth_off(tmp_path: Path) -> None:
    (tmp_path / "airflow.cfg").write_text("[rest_api_plugin]\nrest_api_plugin_expected_http_token =\n")
    settings = parse_settings({"airflow": {"home": str(tmp_path)}}, environ={})
    assert settings.generated_token and not settings.auth_disabled


def test_load_settings_reports_yaml_errors(tmp_path: Path) -> None:
    bad = tmp_path / "gw.yaml"
    bad.write_text("runner: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="No such file"):
        load_settings(tmp_path / "missing.yaml")


def test_a_bad_config_exits_non_zero_before_listening(tmp_path: Path) -> None:
    bad = tmp_path / "gw.yaml"
    bad.write_text(f"airflow: {{home: {tmp_path}}}\nrunner: {{max_queue: -1}}\n")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(bad), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "runner.max_queue" in done.stderr


def test_a_token_can_be_configured_as_its_hash_only() -> None:
    digest = token_digest("s3cret-token-value")
    settings = parse_settings({"auth": {"tokens": [{"name": "ci", "token_sha256": digest.hex()}]}}, environ={})
    assert [(t.name, t.sha256) for t in settings.tokens] == [("ci", digest)]
    assert settings.warnings == []


def test_a_plaintext_token_in_the_file_works_but_is_warned_about() -> None:
    settings = parse_settings({"auth": {"tokens": [{"name": "ci", "token": "plain"}]}}, environ={})
    assert settings.tokens[0].sha256 == token_digest("plain")
    assert len(settings.warnings) == 1 and "token_sha256" in settings.warnings[0]
    assert "plain" not in settings.warnings[0].replace("plaintext", "")


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ([{"name": "ci", "token_sha256": "abc"}], "token_sha256"),
        ([{"name": "ci", "token_sha256": "0" * 64, "token": "x"}], "exactly one of"),
        ([{"name": "ci\n", "token": "x"}], "name"),
        ([{"name": "a b", "token": "x"}], "name"),
    ],
)
def test_bad_token_entries_are_refused_naming_the_key(tokens: list[dict[str, str]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings({"auth": {"tokens": tokens}}, environ={})


def test_trusted_proxies_take_addresses_and_networks() -> None:
    settings = parse_settings({"server": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8", "::1"]}}, environ={})
    assert settings.server.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")
    with pytest.raises(ConfigError, match="trusted_proxies"):
        parse_settings({"server": {"trusted_proxies": ["proxy.local"]}}, environ={})


def test_hash_token_prints_the_digest_to_configure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--hash-token"], input="abc\n", capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == token_digest("abc").hex()


JOB_STORE_URL = "postgresql://gw:pw-of-the-job-store@db.internal/airflow"


@pytest.mark.parametrize(
    "jobs",
    [
        {"store": "mysql://gw:pw-of-the-job-store@db/x"},
        {"store": "files", "store_env": "X"},
        {"store": "postgresql"},
        {"store": "postgresql", "store_env": "X", "store_file": "/f"},
        {"store": JOB_STORE_URL, "store_env": "X"},
        {"poll_s": 0},
        {"lease_s": -1},
    ],
)
def test_a_bad_job_store_is_refused_without_echoing_it(tmp_path: Path, jobs: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_settings({"airflow": {"home": str(tmp_path)}, "jobs": jobs}, environ={})
    assert str(refused.value).startswith("jobs") and "pw-of-the-job-store" not in str(refused.value)


def test_the_job_store_url_comes_from_the_file_an_environment_variable_or_a_file(tmp_path: Path) -> None:
    tokens = {"tokens": [{"name": "admin", "token_sha256": "0" * 64}]}
    assert parse_settings({"auth": tokens}, environ={}).job_store_url is None
    direct = parse_settings({"auth": tokens, "jobs": {"store": JOB_STORE_URL}}, environ={})
    assert direct.job_store_url == JOB_STORE_URL
    env = {"GW_JOBS_URL": JOB_STORE_URL, "PATH": "/bin"}
    from_env = parse_settings({"auth": tokens, "jobs": {"store": "postgresql", "store_env": "GW_JOBS_URL"}}, env)
    assert from_env.job_store_url == JOB_STORE_URL
    assert "GW_JOBS_URL" not in from_env.child_env(env)  # commands (and DAG code) never see it
    secret = tmp_path / "url"
    secret.write_text(JOB_STORE_URL + "\n")
    from_file = parse_settings({"auth": tokens, "jobs": {"store": "postgresql", "store_file": str(secret)}}, {})
    assert from_file.job_store_url == JOB_STORE_URL
    for jobs, environ in (
        ({"store": "postgresql", "store_env": "UNSET"}, {}),
        ({"store": "postgresql", "store_env": "BAD"}, {"BAD": "not a url pw-of-the-job-store"}),
        ({"store": "postgresql", "store_file": str(tmp_path / "missing")}, {}),
    ):
        with pytest.raises(ConfigError) as refused:
            parse_settings({"auth": tokens, "jobs": jobs}, environ=environ)
        assert "jobs.store_" in str(refused.value) and "pw-of-the-job-store" not in str(refused.value)


def test_a_shared_job_store_with_a_generated_token_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_settings({"jobs": {"store": JOB_STORE_URL}}, environ={})
    assert "configure auth.tokens" in str(refused.value) and "pw-of-the-job-store" not in str(refused.value)
    assert parse_settings({"jobs": {"store": JOB_STORE_URL}, "auth": {"disabled": True}}, environ={}).job_store_url


def test_replicas_without_tokens_or_without_their_database_do_not_start(tmp_path: Path) -> None:
    """Exit 2 (configure tokens) before anything; exit 1 when PostgreSQL cannot be reached; the URL shown nowhere."""
    from ..support import free_port

    url = f"postgresql://gw:pw-of-the-job-store@127.0.0.1:{free_port()}/airflow"
    for auth, status, says in (
        ("{}", 2, "configure auth.tokens"),
        ("{tokens: [{name: a, token_sha256: '" + "0" * 64 + "'}]}", 1, "job store (PostgreSQL) is unavailable"),
    ):
        config = tmp_path / "gw.yaml"
        config.write_text(
            f"airflow: {{home: {tmp_path}, executable: /bin/false}}\nrunner: {{mode: exec}}\n"
            f"experimental: {{warm_at_start: false}}\nauth: {auth}\njobs: {{store: '{url}'}}\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "--config", str(config), "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == status, done.stderr
        assert says in done.stderr
        assert "pw-of-the-job-store" not in done.stdout + done.stderr

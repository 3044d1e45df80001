from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import DEFAULT_HEADER_NAME, ConfigError, load_settings, parse_settings


def test_defaults_generate_a_token_and_require_it(tmp_path: Path) -> None:
    settings = parse_settings({"airflow": {"home": str(tmp_path)}}, environ={})
    assert settings.server.port == 8780
    assert settings.header_name == DEFAULT_HEADER_NAME
    assert settings.token_generated
    assert len(settings.tokens) == 1 and len(settings.tokens[0].secret) >= 24
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
    assert [(t.name, t.secret) for t in settings.tokens] == [("ci", "from-env"), ("ops", "from-file")]
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
    assert [(t.name, t.secret) for t in settings.tokens] == [("airflow.cfg", "from-cfg")]
    assert settings.filter_loading_messages is False
    assert settings.dags_folder == tmp_path / "my_dags"

    env = {
        "AIRFLOW__REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "from-env",
        "AIRFLOW__REST_API_PLUGIN__LOG_LOADING": "true",
    }
    settings = parse_settings({"airflow": {"home": str(tmp_path)}}, environ=env)
    assert settings.tokens[0].secret == "from-env"
    assert settings.log_loading is True

    yaml_wins = parse_settings({"airflow": {"home": str(tmp_path)}, "auth": {"header_name": "x-yaml"}}, environ=env)
    assert yaml_wins.header_name == "x-yaml"


def test_an_empty_plugin_token_does_not_turn_auth_off(tmp_path: Path) -> None:
    (tmp_path / "airflow.cfg").write_text("[rest_api_plugin]\nrest_api_plugin_expected_http_token =\n")
    settings = parse_settings({"airflow": {"home": str(tmp_path)}}, environ={})
    assert settings.token_generated and not settings.auth_disabled


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

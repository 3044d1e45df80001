"""The masker: every spelling of a secret is hidden, configured tokens are found by their digest, short secrets
never touch structure, password-like keys mask whatever they hold, the cost is linear, nothing raises."""

from __future__ import annotations

import json
import shlex

import pytest

from gateway.masking import (
    MASK,
    MAX_REQUEST_SECRETS,
    Masker,
    TooManySecrets,
    sensitive_values,
    token_digest,
    uri_password,
)
from gateway.runner import Command


@pytest.mark.parametrize(
    ("uri", "password"),
    [
        ("postgres://u:pw@db:5432/x", "pw"),
        ("postgres://u:p%40ss@db/x", "p%40ss"),
        ("postgres://u:PW@[bad", "PW"),
        ("://u:PW@", "PW"),
        ("postgres://u:PW@host:notaport/x", "PW"),
        ("postgres://u:with@at@db/x", "with@at"),
        ("postgres://nopassword@db/x", None),
        ("postgres://db/x", None),
        ("not a uri", None),
    ],
)
def test_the_password_of_a_uri_is_found_even_when_the_uri_is_malformed(uri: str, password: str | None) -> None:
    assert uri_password(uri) == password


def test_every_spelling_of_a_secret_is_masked() -> None:
    masker = Masker(["p@ss word/é"])
    for spelling in ("p@ss word/é", "p%40ss%20word%2F%C3%A9", "p%40ss+word%2F%C3%A9", "p@ss word/\\u00e9"):
        assert masker.text(f"before {spelling} after") == "before *** after"


def test_values_are_masked_deeply_and_keys_too() -> None:
    masker = Masker(["hunter2"])
    masked = masker.value({"a": ["x hunter2", {"hunter2": ("hunter2",)}], "n": 5, "b": None})
    assert masked == {"a": ["x ***", {"***": ["***"]}], "n": 5, "b": None}


@pytest.mark.parametrize(
    "held",
    [["S3cretValue"], {"a": "S3cretValue"}, 12345678, ["x", {"deep": ["S3cretValue"]}], "S3cretValue"],
)
def test_a_password_like_key_masks_whatever_it_holds(held: object) -> None:
    masker = Masker()
    document = {"conf": {"nested": {"db_password": held}}, "other": "kept"}
    assert masker.value(document) == {"conf": {"nested": {"db_password": MASK}}, "other": "kept"}
    masker.add_sensitive_values(document)
    printed = json.dumps(document)
    assert "S3cretValue" not in masker.text(printed) and "12345678" not in masker.text(printed)


def test_printed_values_under_password_like_keys_are_masked_unknown() -> None:
    masker = Masker()
    text = """{"password": ["a", "b"], "api_key": 7, 'token': 'x'} PASSWORD=hunter&x=1 "secret": {"k": "v"}"""
    shown = masker.text(text)
    assert shown == """{"password": "***", "api_key": "***", 'token': '***'} PASSWORD=***&x=1 "secret": "***\""""
    assert masker.text("see postgres://user:pw@db/x") == "see postgres://user:***@db/x"


def test_password_like_keys_anywhere_in_json_are_secrets() -> None:
    masker = Masker()
    masker.add_sensitive_values(
        {"conn_type": "x", "password": "pass1", "extra": '{"api_key": "key22", "nested": {"client_secret": "sec33"}}'}
    )
    assert masker.text("pass1 key22 sec33 x") == "*** *** *** x"
    assert set(sensitive_values({"token": ["a1", {"b": 2}], "uri": "http://u:pw9@h"})) == {"a1", "2", "pw9"}


def test_a_configured_token_is_found_by_its_digest_alone() -> None:
    token = "Zq8-T0ken_value-123456"
    masker = Masker(token_digests=frozenset({token_digest(token)}))
    assert masker.text(f"admin: {{tok: {token}}} TOKEN {token}\n") == "admin: {tok: ***} TOKEN ***\n"
    assert masker.text("other-long-word-123456 stays") == "other-long-word-123456 stays"


def test_a_token_that_is_not_utf8_still_hashes() -> None:
    assert len(token_digest("\udcff\udcfe")) == 32


def test_a_short_secret_is_masked_only_where_it_is_the_whole_value() -> None:
    masker = Masker(["p", "0", "127"])
    assert masker.text("p") == MASK and masker.text(" 127\n") == MASK
    assert masker.text("http_response_code 0 127.0.0.1 2026-01-04T00:00:00") == (
        "http_response_code 0 127.0.0.1 2026-01-04T00:00:00"
    )
    assert masker.value({"p": "p", "exit_code": 0, "remote": "127.0.0.1"}) == {
        "p": MASK,
        "exit_code": 0,
        "remote": "127.0.0.1",
    }
    assert masker.key("p") == "p"


def test_a_long_number_that_is_a_secret_is_masked_but_not_other_numbers() -> None:
    masker = Masker(["123456"])
    assert masker.value({"slots": 123456, "exit_code": 1}) == {"slots": MASK, "exit_code": 1}


@pytest.mark.parametrize(
    "password", ["it'sA1b2C3d4", 'dq"A1b2C3d4', "back\\slashA1b2", "new\nlineA1b2C3", "é日本A1b2C3"]
)
def test_a_password_is_never_split_by_how_the_gateway_renders_it(password: str) -> None:
    masker = Masker([password])
    command = Command(("connections", "add", f"--conn-password={password}", "--", "c"))
    shown = command.display(masker)
    assert shown == shlex.join(("airflow", "connections", "add", "--conn-password=***", "--", "c"))
    for rendering in (password, json.dumps(password), repr(password)):
        assert password not in masker.text(rendering)
    for piece in password.replace("\\", "'").replace("\n", "'").replace('"', "'").split("'"):
        if len(piece) >= 5:
            assert piece not in masker.text(f"x {password} y")


def test_a_secret_printed_across_lines_is_masked_line_by_line() -> None:
    masker = Masker(["first-half-AAAA\nsecond-half-BBBB"])
    assert masker.text("first-half-AAAA") == MASK and masker.text("second-half-BBBB") == MASK


def test_a_request_may_carry_only_so_many_secrets() -> None:
    masker = Masker()
    with pytest.raises(TooManySecrets) as refused:
        masker.add_all((f"secret-{n:06d}" for n in range(MAX_REQUEST_SECRETS + 1)), MAX_REQUEST_SECRETS)
    assert refused.value.status == 413
    assert masker.text("secret-000001") == "secret-000001"  # nothing was learned from a refused request
    masker.add_all((f"secret-{n:06d}" for n in range(MAX_REQUEST_SECRETS)), MAX_REQUEST_SECRETS)
    assert masker.text("secret-000001") == MASK


def test_learning_a_line_masks_what_it_showed_in_later_lines() -> None:
    masker = Masker()
    masker.learn_line('{"password": ["abcdefg1"], "token": "hijklmn2"}')
    assert masker.text("later abcdefg1 and hijklmn2") == "later *** and ***"


def test_a_stream_split_never_cuts_a_known_secret() -> None:
    masker = Masker(["SECRET-VALUE-42"])
    text = "x" * 20 + "SECRET-VALUE-42" + "y" * 3
    ready, rest = masker.masked_prefix(text, keep_chars=5)
    assert ready == "x" * 20 and rest.startswith("SECRET-VALUE-42")


def test_secrets_learned_one_by_one_are_all_masked() -> None:
    """Learned one at a time between masks (a live stream), they end up in a few automata (the cost is measured
    by benchmarks/bench_masking.py)."""
    masker = Masker()
    for n in range(MAX_REQUEST_SECRETS):
        masker.add(f"learned-{n:05d}")
        assert masker.text(f"x learned-{n:05d} y") == "x *** y"
    text = "".join(f"learned-{n:05d} " for n in range(MAX_REQUEST_SECRETS)) * 3
    assert set(masker.text(text).split()) == {MASK}


def test_masking_never_raises() -> None:
    masker = Masker(["secret-value"])
    assert masker.text("\udcff secret-value") in ("\udcff ***", MASK)

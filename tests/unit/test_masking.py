"""The masker: every spelling of a secret is hidden, configured tokens are found by their digest, nothing raises."""

from __future__ import annotations

import io
import logging

import pytest

from gateway.masking import CURRENT, LogFilter, Masker, token_digest, uri_password


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


def test_password_like_keys_anywhere_in_json_are_secrets() -> None:
    masker = Masker()
    masker.add_sensitive_values(
        {"conn_type": "x", "password": "p1", "extra": '{"api_key": "k2", "nested": {"client_secret": "s3"}}'}
    )
    assert masker.text("p1 k2 s3 x") == "*** *** *** x"


def test_a_configured_token_is_found_by_its_digest_alone() -> None:
    token = "Zq8-T0ken_value-123456"
    masker = Masker(token_digests=frozenset({token_digest(token)}))
    assert masker.text(f'admin: {{token: "{token}"}} TOKEN={token}\n') == 'admin: {token: "***"} TOKEN=***\n'
    assert masker.text("other-long-word-123456 stays") == "other-long-word-123456 stays"


def test_a_token_that_is_not_utf8_still_hashes() -> None:
    assert len(token_digest("\udcff\udcfe")) == 32


def test_the_log_filter_masks_the_current_requests_secrets_and_any_query_string() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(LogFilter())
    logger = logging.getLogger("test_masking")
    logger.addHandler(handler)
    logger.propagate = False
    reset = CURRENT.set(Masker(["s3cr3t"]))
    try:
        logger.warning("GET /admin/rest_api/api?api=connections&conn_password=%s", "whatever")
        try:
            raise ValueError("bad value s3cr3t")
        except ValueError:
            logger.exception("failed with %s", "s3cr3t")
    finally:
        CURRENT.reset(reset)
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "s3cr3t" not in text and "whatever" not in text
    assert "failed with ***" in text and "ValueError: bad value ***" in text


def test_a_short_secret_is_masked_where_it_stands_alone_but_not_inside_words() -> None:
    masker = Masker(["p"])
    assert masker.text("postgres://u:p@db/x http_response_code") == "postgres://u:***@db/x http_response_code"
    assert masker.value({"http_response_code": "p"}) == {"http_response_code": "***"}

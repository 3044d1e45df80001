"""Strict JSON for request bodies: malformed, deep or non-finite input is a 400, never a crash."""

from __future__ import annotations

import pytest

from gateway.bodies import MAX_JSON_DEPTH, loads
from gateway.errors import ApiError


@pytest.mark.parametrize(
    "text",
    [
        "{bad",
        '{"slots": 1e400}',
        '{"x": NaN}',
        '{"x": -Infinity}',
        "[" * 10_000 + "]" * 10_000,
        "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
        b"\xff\xfe{}",
        "1" * 5000,
    ],
)
def test_bad_json_is_a_400(text: str | bytes) -> None:
    with pytest.raises(ApiError) as refused:
        loads(text)
    assert refused.value.status == 400


def test_good_json_passes() -> None:
    assert loads('{"a": [1, 2.5, {"b": null}]}') == {"a": [1, 2.5, {"b": None}]}
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads(nested) is not None

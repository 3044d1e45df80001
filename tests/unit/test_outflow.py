"""Output on its way out: masked line by line, in order; a data command's lines only once its secrets are known."""

from __future__ import annotations

import json

from gateway.masking import MASK, Masker
from gateway.outflow import MAX_LINE_CHARS, MAX_MASKED_LINE_BYTES, MaskedOutput
from gateway.runner import Chunk


def chunks(text: str, size: int = 7) -> list[Chunk]:
    data = text.encode()
    return [Chunk("stdout", data[i : i + size]) for i in range(0, len(data), size)]


def test_a_data_commands_lines_leave_only_after_its_output_taught_the_masker() -> None:
    masker = Masker()
    output = MaskedOutput(masker, hold=True)
    document = json.dumps({"db_password_x": "hunter2-the-secret", "other": "kept"}, indent=2)
    released = [line for chunk in chunks(document) for line in output.feed(chunk)]
    assert released == []

    def learn(stdout: str) -> None:
        masker.add(json.loads(stdout)["db_password_x"])

    lines = [text for _, text in output.finish(learn)]
    assert "\n".join(lines) == document.replace("hunter2-the-secret", MASK)


def test_a_live_line_is_masked_with_what_it_shows_itself_and_what_came_before() -> None:
    output = MaskedOutput(Masker(["request-secret"]), hold=False)
    text = 'start request-secret\n{"token": "token-from-output"}\nlater token-from-output\nend'
    released = [line for chunk in chunks(text) for line in output.feed(chunk)] + output.finish()
    assert [t for _, t in released] == ["start ***", '{"token": "***"}', "later ***", "end"]


def test_an_over_long_line_is_cut_but_never_inside_a_known_secret() -> None:
    secret = "S" * 10 + "-the-long-secret-" + "T" * 10
    output = MaskedOutput(Masker([secret]), hold=False)
    text = "x" * (MAX_MASKED_LINE_BYTES - 20) + secret + "y" * 100 + "\n"
    released = [t for chunk in chunks(text, 65536) for _, t in output.feed(chunk)] + [t for _, t in output.finish()]
    joined = "".join(released)
    assert secret[:12] not in joined and secret[-12:] not in joined and MASK in joined
    assert max(len(t) for t in released) <= MAX_LINE_CHARS


def test_what_is_held_past_its_limit_is_dropped_and_flagged() -> None:
    output = MaskedOutput(Masker(), hold=True, max_held_bytes=10)
    for chunk in chunks("0123\n4567\n89ab\n"):
        output.feed(chunk)
    assert [t for _, t in output.finish()] == ["0123", "4567"] and output.truncated

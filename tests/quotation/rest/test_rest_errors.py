"""Error answers are read whatever their body: Upbit JSON, plain text, HTML, garbage."""

from __future__ import annotations

import pytest

from quotation.rest.answers import (
    AnswerKind,
    ErrorBody,
    ban_duration,
    classify_status,
    parse_error_body,
    retry_after_seconds,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, AnswerKind.OK),
        (204, AnswerKind.OK),
        (400, AnswerKind.INVALID),
        (404, AnswerKind.INVALID),
        (401, AnswerKind.INVALID),
        (418, AnswerKind.BANNED),
        (429, AnswerKind.RATE_LIMITED),
        (500, AnswerKind.SERVER),
        (503, AnswerKind.SERVER),
        (302, AnswerKind.SERVER),
    ],
)
def test_each_status_has_one_meaning(status: int, kind: AnswerKind) -> None:
    assert classify_status(status) is kind


def test_upbits_json_envelope_gives_name_and_message() -> None:
    body = parse_error_body(b'{"error":{"name":404,"message":"Code not found"}}')
    assert body == ErrorBody(message="Code not found", name="404", is_json=True)


def test_a_string_error_name_is_kept_as_text() -> None:
    body = parse_error_body('{"error":{"name":"invalid_query_payload","message":"bad"}}')
    assert body.name == "invalid_query_payload"


def test_the_plain_text_429_body_is_its_own_message() -> None:
    assert parse_error_body(b"Too many API requests.") == ErrorBody("Too many API requests.")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"<html><body>502 Bad Gateway</body></html>",
        b"[1,2]",
        b'{"error": null}',
        b'{"error": {"name": 1}}',
        b"null",
        b'"just a string"',
    ],
)
def test_any_body_gives_a_message_without_raising(raw: bytes) -> None:
    body = parse_error_body(raw)
    assert isinstance(body.message, str)


def test_a_long_body_is_shortened() -> None:
    assert len(parse_error_body("x" * 10_000).message) <= 300


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("Too many requests. Blocked for 30 seconds.", 30.0),
        ("blocked 2 min", 120.0),
        ("Blocked for 1.5 s", 1.5),
        ("차단 10분", 600.0),
        ("ban 1 hour", 3600.0),
    ],
)
def test_a_ban_length_is_read_from_the_message(message: str, seconds: float) -> None:
    assert ban_duration(ErrorBody(message), {}) == seconds


def test_a_ban_length_is_read_from_retry_after_and_the_longest_wins() -> None:
    assert ban_duration(ErrorBody("Blocked for 30 seconds."), {"Retry-After": "45"}) == 45.0
    assert ban_duration(ErrorBody("no number here"), {"Retry-After": "12"}) == 12.0


def test_a_ban_without_a_stated_length_gives_none() -> None:
    assert ban_duration(ErrorBody("Too many requests."), {}) is None
    assert ban_duration(ErrorBody("teapot 418"), {}) is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), (" 1.5 ", 1.5), ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("-4", None)],
)
def test_retry_after_is_read_in_seconds_only(value: str, seconds: float | None) -> None:
    assert retry_after_seconds({"Retry-After": value}) == seconds

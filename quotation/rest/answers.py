"""Reading Upbit's error answers, which may be JSON or plain text, without ever failing.

Upbit answers errors as ``{"error": {"name": 400, "message": "..."}}`` (``name``
is the HTTP status on quotation endpoints, a string code elsewhere), but a 429
body is the plain text ``Too many API requests.`` and proxies in between may
answer HTML. These functions are pure and never raise: whatever the body (nested
deeper than any decoder follows, invalid UTF-8, a message that is not text), they give a
readable message of at most 300 characters, and for a 418 the ban length if the answer
states one.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

__all__ = [
    "AnswerKind",
    "ErrorBody",
    "ban_duration",
    "classify_status",
    "parse_error_body",
    "retry_after_seconds",
]

_MAX_TEXT = 300
_DURATION_RE = re.compile(
    r"(\d+(?:\.\d+)?)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|초|분|시간)(?![a-z])",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "초": 1.0, "분": 60.0, "시": 3600.0}
_MAX_BAN = 7 * 24 * 3600.0


class AnswerKind(enum.Enum):
    """What an HTTP status means to the client."""

    OK = "ok"
    INVALID = "invalid"
    """400/404 (and other 4xx but 418/429): the caller's request; never retried."""
    RATE_LIMITED = "rate_limited"
    BANNED = "banned"
    SERVER = "server"
    """5xx, or anything unexpected (1xx/3xx)."""


def classify_status(status: int) -> AnswerKind:
    """The kind of an HTTP status code."""
    if 200 <= status < 300:
        return AnswerKind.OK
    if status == 429:
        return AnswerKind.RATE_LIMITED
    if status == 418:
        return AnswerKind.BANNED
    if 400 <= status < 500:
        return AnswerKind.INVALID
    return AnswerKind.SERVER


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """An error answer's content: Upbit's ``name`` and ``message`` if it was JSON."""

    message: str
    """Upbit's message, or the (shortened) text of a non-JSON body."""
    name: str | None = None
    """Upbit's ``error.name`` as text (``'404'``, ``'invalid_query_payload'``), if any."""
    is_json: bool = False


def _text_of(body: bytes | str) -> str:
    if isinstance(body, bytes):
        # Only the start is ever shown: decoding a whole (up to max_body_bytes) body is waste.
        return body[: _MAX_TEXT * 8].decode("utf-8", errors="replace")
    return body[: _MAX_TEXT * 8]


def _shorten(text: str) -> str:
    text = " ".join(text[: _MAX_TEXT * 8].split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _scalar(value: object) -> str | None:
    """``value`` as text if it is a JSON string or number, else ``None`` (never ``repr`` of
    a container, which can nest deeper than ``repr`` follows)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def parse_error_body(body: bytes | str) -> ErrorBody:
    """The message of an error body, JSON (Upbit's envelope or not) or text; never raises.

    Whatever goes wrong decoding the JSON (too deep, not UTF-8, not JSON) leaves the body's
    text, shortened; a ``message`` or ``name`` that is not a string or number is not used.
    """
    text = _shorten(_text_of(body))
    try:
        decoded = orjson.loads(body)  # depth-limited (1024): deep nesting is a ValueError
    except (ValueError, TypeError, RecursionError):
        return ErrorBody(message=text)
    if isinstance(decoded, dict):
        error = decoded.get("error", decoded)
        if isinstance(error, dict):
            message = _scalar(error.get("message"))
            name = _scalar(error.get("name"))
            return ErrorBody(
                message=_shorten(message) if message is not None else text,
                name=None if name is None else _shorten(name),
                is_json=True,
            )
        if isinstance(error, str):
            return ErrorBody(message=_shorten(error), is_json=True)
    return ErrorBody(message=text, is_json=True)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """A ``Retry-After`` header in seconds (HTTP dates are ignored), else ``None``."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not 0 <= seconds <= _MAX_BAN:
        return None
    return seconds


def ban_duration(body: ErrorBody, headers: Mapping[str, str]) -> float | None:
    """How long a 418 ban lasts, from ``Retry-After`` or the message; ``None`` if unsaid.

    Reads messages such as ``Too many requests. Blocked for 30 seconds.``,
    ``blocked 2 min`` or ``10분``; the longest stated duration wins.
    """
    from_header = retry_after_seconds(headers)
    durations = [] if from_header is None else [from_header]
    for number, unit in _DURATION_RE.findall(body.message):
        seconds = float(number) * _UNIT_SECONDS[unit[0].lower()]
        if 0 < seconds <= _MAX_BAN:
            durations.append(seconds)
    return max(durations) if durations else None

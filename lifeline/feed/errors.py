"""The one exception tree of the shared feed (``lifeline.feed``).

::

    FeedError                  base of every error the shared feed raises
    ├── FeedUnavailable        Redis could not be reached or did not answer within its
    │   │                      bounded timeout (``operation`` names what was tried)
    │   └── LeaderSilent       Redis answers but the lease holder's heartbeat is too old
    │                          or missing: nobody is publishing (``holder``, ``age``)
    ├── FeedCommandError       Redis answered with an error (a script error, a key of the
    │                          wrong type): a bug or a foreign key, never retried blindly
    ├── LeaseLost              a fenced write or a renewal was refused: the lease key no
    │                          longer holds this holder's token (``key``, ``token``)
    ├── CodecError             one stream entry or snapshot cannot be decoded (``kind``,
    │                          ``field``): the reader skips it and goes on
    └── FeedSettingsError      an impossible feed setting (``key``, ``value``)

Redis' own exceptions never leave this package: every call goes through
:func:`lifeline.feed.redis_io.call`, which turns them into the errors above.

A feed setting's range is checked by :func:`check_setting`: the one range check of the
project (:func:`quotation.values.check`: NaN, the infinities and booleans refused, integers
where asked) raising :class:`FeedSettingsError` with the setting's key.
"""

from __future__ import annotations

from quotation.errors import InvalidValue
from quotation.values import check

__all__ = [
    "CodecError",
    "FeedCommandError",
    "FeedError",
    "FeedSettingsError",
    "FeedUnavailable",
    "LeaderSilent",
    "LeaseLost",
    "check_setting",
]


class FeedError(Exception):
    """Base class of the shared feed's errors."""


class FeedUnavailable(FeedError):
    """Redis is unreachable or timed out; ``operation`` is what was tried (``xread``, …)."""

    def __init__(self, message: str, *, operation: str) -> None:
        super().__init__(message)
        self.operation = operation


class LeaderSilent(FeedUnavailable):
    """The lease has a holder (``holder``, ``None`` if it is unknown) but its heartbeat is
    older than its bound or missing (``age`` seconds, ``None`` if missing): the feed is not
    being published. A :class:`FeedUnavailable`, so a host serves from its own tree."""

    def __init__(self, message: str, *, holder: str | None, age: float | None) -> None:
        super().__init__(message, operation="leader heartbeat")
        self.holder = holder
        self.age = age


class FeedCommandError(FeedError):
    """Redis answered an error to ``operation`` (wrong key type, script error, …)."""

    def __init__(self, message: str, *, operation: str) -> None:
        super().__init__(message)
        self.operation = operation


class LeaseLost(FeedError):
    """The lease ``key`` no longer holds ``token``: this holder may not renew or write."""

    def __init__(self, message: str, *, key: str, token: int) -> None:
        super().__init__(message)
        self.key = key
        self.token = token


class CodecError(FeedError):
    """An entry that cannot be decoded: ``kind`` (``ticker``, … or ``None`` if unknown) and
    ``field`` (the model field at fault, ``None`` if the entry is not even readable)."""

    def __init__(self, message: str, *, kind: str | None, field: str | None) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


class FeedSettingsError(FeedError):
    """A feed setting that cannot work: ``key`` (``feed.leader_ttl``) and its ``value``."""

    def __init__(self, message: str, *, key: str, value: object) -> None:
        super().__init__(message)
        self.key = key
        self.value = value


def check_setting(key: str, value: object, *, above: float | None = None,
                  at_least: float | None = None, at_most: float | None = None,
                  integer: bool = False) -> None:
    """:func:`quotation.values.check` of the feed setting ``key`` (``feed.leader_ttl``):
    :class:`FeedSettingsError` naming ``key`` (in ``key`` and the message) and the value,
    from the :class:`~quotation.errors.InvalidValue` it raised."""
    try:
        check(key, value, above=above, at_least=at_least, at_most=at_most, integer=integer)
    except InvalidValue as exc:
        raise FeedSettingsError(str(exc), key=key, value=value) from exc

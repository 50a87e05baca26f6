"""The one exception tree of the ``quotation`` package.

::

    QuotationError                 base of everything raised here
    ├── InvalidValue               a setting is impossible (a config or constructor value:
    │                              ``field``, ``value``); also a ``ValueError``
    ├── InvalidRequest             the caller's mistake: bad request parameter, unknown market
    │                              (Upbit 400/404 "Code not found"); never a router failure
    ├── RateLimited                HTTP 429: that group is paused (``group``, ``retry_after``)
    ├── Banned                     HTTP 418: every REST call is paused until ``until``
    ├── ServerError                HTTP 5xx (``status``)
    ├── TransportError             timeout, connection refused or reset, black hole
    │   └── IncompleteAnswer       a call's deadline (``RestConfig.call_deadline``) passed before
    │                              all its requests were answered (``partial``, ``expected``)
    ├── FormatError                a payload that is really malformed (``payload``, ``field``)
    │   └── BodyTooLarge           an answer longer than ``RestConfig.max_body_bytes`` (``limit``,
    │                              ``received``), on the wire or decoded
    └── WebSocketError             an error frame or a dead connection on the WebSocket
        ├── SubscriptionError      Upbit's error frames: WRONG_FORMAT, NO_TICKET, NO_TYPE,
        │                          NO_CODES, INVALID_PARAM (``code``)
        └── FrameTooLarge          a frame's header declared over ``max_frame_bytes``
                                   (``declared``, ``limit``); in ``quotation.websocket.transport``,
                                   also a websocket-client ``WebSocketPayloadException``

Every error carries its context as attributes, so callers never parse messages.
"""

from __future__ import annotations

__all__ = [
    "Banned",
    "BodyTooLarge",
    "FormatError",
    "IncompleteAnswer",
    "InvalidRequest",
    "InvalidValue",
    "QuotationError",
    "RateLimited",
    "ServerError",
    "SubscriptionError",
    "TransportError",
    "WebSocketError",
]


class QuotationError(Exception):
    """Base class of every error raised by the ``quotation`` package."""


class InvalidValue(QuotationError, ValueError):
    """A setting is impossible: ``field`` names it (dotted for nested ones, e.g.
    ``liveness.ping_interval``), ``value`` is what was given.

    Raised by the frozen settings dataclasses (``RestConfig``, ``WebSocketConfig``,
    ``Backoff``, ...) when they are built, through :mod:`quotation.values`; the config loader
    turns it into a ``ConfigError`` with the full key path. Request parameters raise
    :class:`InvalidRequest` instead.
    """

    def __init__(self, message: str, *, field: str, value: object) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class InvalidRequest(QuotationError):
    """The request is invalid: ``parameter`` names what was wrong, ``value`` what was given.

    Raised before any network call where the client can tell, and for Upbit's own
    400 answers and its 404 ``Code not found`` (``status`` is then set).
    """

    def __init__(
        self,
        message: str,
        *,
        parameter: str | None = None,
        value: object = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.value = value
        self.status = status


class RateLimited(QuotationError):
    """HTTP 429 for ``group``; the client pauses that group for ``retry_after`` seconds."""

    def __init__(self, message: str, *, group: str | None, retry_after: float) -> None:
        super().__init__(message)
        self.group = group
        self.retry_after = retry_after


class Banned(QuotationError):
    """HTTP 418: the IP is blocked; ``until`` is the monotonic time the ban ends.

    ``duration`` is the ban length in seconds as read from the answer (or assumed).
    """

    def __init__(self, message: str, *, until: float, duration: float) -> None:
        super().__init__(message)
        self.until = until
        self.duration = duration


class ServerError(QuotationError):
    """HTTP 5xx (or any other unexpected status) from the server."""

    def __init__(self, message: str, *, status: int, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class TransportError(QuotationError):
    """The request did not complete: timeout, refused, reset, or no answer at all."""


class IncompleteAnswer(TransportError):
    """A call's deadline passed (``deadline`` seconds) before all of its answer came.

    ``partial`` is what was fetched so far, in the order the call returns it (candles oldest
    first, tickers and order books in the server's order), as a tuple; it is never returned
    as if it were the whole answer. ``expected`` is how many were asked for (candles:
    ``count``, fewer may exist; market lists: the number of markets; a single request: 0
    when the count is not known, e.g. ``get_markets``).
    """

    def __init__(
        self, message: str, *, partial: tuple[object, ...], expected: int, deadline: float
    ) -> None:
        super().__init__(message)
        self.partial = partial
        self.expected = expected
        self.deadline = deadline


class FormatError(QuotationError):
    """A payload that is really malformed: ``payload`` names which, ``field`` which field."""

    def __init__(self, message: str, *, payload: str, field: str | None = None) -> None:
        super().__init__(message)
        self.payload = payload
        self.field = field


class BodyTooLarge(FormatError):
    """An answer's body is longer than ``limit`` (``RestConfig.max_body_bytes``) bytes.

    Counted as it streams in, both on the wire (compressed) and decoded, so a gzip bomb or a
    body that never ends is cut off; the message names the path. ``received`` is the decoded
    body bytes the client held when it stopped: ``limit + 1`` once it read past the limit,
    less when the declared ``Content-Length`` or the wire bytes alone were over it.
    """

    def __init__(self, message: str, *, payload: str, limit: int, received: int) -> None:
        super().__init__(message, payload=payload)
        self.limit = limit
        self.received = received


class WebSocketError(QuotationError):
    """The WebSocket connection failed or the server sent an error."""


class SubscriptionError(WebSocketError):
    """An Upbit error frame (``code`` is ``WRONG_FORMAT``, ``NO_TICKET``, ``INVALID_PARAM``, …)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code

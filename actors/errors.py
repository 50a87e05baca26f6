"""The one exception tree of the ``actors`` package (besides fault injection's own).

::

    ActorError                 base of the errors the data-plane actors raise themselves
    └── NotCached              the WebSocket fallback cannot answer from its realtime cache:
                               nothing (or not enough) of ``kind`` for ``market`` arrived yet,
                               or the kind/interval is not streamed; also a ``LookupError``
                               (``kind``, ``market``, ``wanted``, ``available``)
    └── RequestExpired         a request's ``deadline`` passed before the actor took it up:
                               answered at once, no REST call (``deadline``, ``now``); also
                               a ``TimeoutError``

Errors of the Upbit protocol (``RateLimited``, ``Banned``, ``ServerError``,
``TransportError``, ``FormatError``, ``InvalidRequest``) are ``quotation.errors`` and reach
the asker unchanged; injected faults are :mod:`actors.faults`' ``FaultError`` family. An
actor never answers an empty reply as if it were data: it raises one of these instead.
"""

from __future__ import annotations

__all__ = ["ActorError", "NotCached", "RequestExpired", "check_deadline"]


class ActorError(Exception):
    """Base class of the errors raised by the data-plane actors themselves."""


class NotCached(ActorError, LookupError):
    """The realtime cache cannot answer: ``kind`` of ``market`` is missing or too short.

    ``wanted`` is how many items were asked for, ``available`` how many the cache holds
    (0 when nothing arrived yet, or the kind is not streamed at all).
    """

    def __init__(self, message: str, *, kind: str, market: str, wanted: int, available: int
                 ) -> None:
        super().__init__(message)
        self.kind = kind
        self.market = market
        self.wanted = wanted
        self.available = available


class RequestExpired(ActorError, TimeoutError):
    """A request's ``deadline`` (monotonic seconds, the actor's clock) had passed at ``now``
    when the actor took it up: nobody waits for it any more, so no REST call was made."""

    def __init__(self, message: str, *, deadline: float, now: float) -> None:
        super().__init__(message)
        self.deadline = deadline
        self.now = now


def check_deadline(request: object, deadline: float | None, now: float) -> float | None:
    """Seconds left before ``deadline`` at ``now`` (``None``: no deadline); raise
    :class:`RequestExpired` naming ``request`` when none are left."""
    if deadline is None:
        return None
    left = deadline - now
    if left <= 0:
        raise RequestExpired(
            f"{type(request).__name__} expired {-left:.3f} s before it was taken up "
            "(nobody waits for it any more): not sent", deadline=deadline, now=now)
    return left

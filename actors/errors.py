"""The one exception tree of the ``actors`` package (besides fault injection's own).

::

    ActorError                 base of the errors the data-plane actors raise themselves
    └── NotCached              the WebSocket fallback cannot answer from its realtime cache:
                               nothing (or not enough) of ``kind`` for ``market`` arrived yet,
                               or the kind/interval is not streamed; also a ``LookupError``
                               (``kind``, ``market``, ``wanted``, ``available``)

Errors of the Upbit protocol (``RateLimited``, ``Banned``, ``ServerError``,
``TransportError``, ``FormatError``, ``InvalidRequest``) are ``quotation.errors`` and reach
the asker unchanged; injected faults are :mod:`actors.faults`' ``FaultError`` family. An
actor never answers an empty reply as if it were data: it raises one of these instead.
"""

from __future__ import annotations

__all__ = ["ActorError", "NotCached"]


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

"""The messages the data-plane actors take and give: frozen, slotted, nothing mutable crosses.

A host's request reaches an actor as one of the four request types (markets already
validated by the caller: an invalid request never gets this far); the actor answers with a
:class:`Reply` that says where the data came from (:class:`Source`) and when the exchange
produced it, so the facade can give the host a true ``age``. Each request may carry a
``deadline`` (monotonic seconds on the tree's clock, the asker's, not part of its equality):
past it the asker no longer waits, and an actor answers it at once with
:class:`~actors.errors.RequestExpired` instead of calling REST (a request buffered while the
actor restarted, or queued behind a slow one, is not replayed through the shared limiter).
Control messages switch the WebSocket fallback on and off and drive the health probe.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from quotation.models import Candle, CandleInterval, Orderbook, Ticker, Trade
from quotation.rest.ratelimit import GroupStatus
from quotation.websocket.cache import StreamItem
from quotation.websocket.status import WebSocketStatus

__all__ = [
    "Activate",
    "CandlesRequest",
    "Deactivate",
    "FallbackReport",
    "HealthRequest",
    "LaneRequest",
    "Listen",
    "Listener",
    "MarketData",
    "OrderbookRequest",
    "Pin",
    "Probe",
    "ProbeReport",
    "ProbeRequest",
    "Reply",
    "Request",
    "RestHealth",
    "RouterStatus",
    "Source",
    "StreamBatch",
    "TickerRequest",
    "TradesRequest",
    "WsHealth",
    "produced_at",
]


class Source(enum.StrEnum):
    """Where an answer came from (compares equal to its string, as the facade promises)."""

    SMART_ROUTER_WEBSOCKET = "smart_router/websocket"
    SMART_ROUTER_REST = "smart_router/rest"
    REST_FALLBACK = "rest_fallback"
    WS_FALLBACK = "ws_fallback"
    LAST_KNOWN_GOOD = "last_known_good"


@dataclass(frozen=True, slots=True)
class TickerRequest:
    """The latest ticker of each market, in the order asked."""

    markets: tuple[str, ...]
    deadline: float | None = field(default=None, compare=False)
    """Monotonic seconds (the tree's clock) after which nobody waits for the answer: the actor
    answers :class:`~actors.errors.RequestExpired` at once, no REST call (``None``: no
    deadline). Not compared: identical requests with other deadlines are still identical."""


@dataclass(frozen=True, slots=True)
class CandlesRequest:
    """``count`` candles of ``market`` at ``interval``, oldest first, ending at ``to`` (now)."""

    market: str
    interval: CandleInterval
    count: int
    to: datetime | None = None
    deadline: float | None = field(default=None, compare=False)
    """Monotonic seconds (the tree's clock) after which nobody waits for the answer: the actor
    answers :class:`~actors.errors.RequestExpired` at once, no REST call (``None``: no
    deadline). Not compared: identical requests with other deadlines are still identical."""


@dataclass(frozen=True, slots=True)
class TradesRequest:
    """The ``count`` most recent trades of ``market``, newest first as Upbit serves them."""

    market: str
    count: int
    deadline: float | None = field(default=None, compare=False)
    """Monotonic seconds (the tree's clock) after which nobody waits for the answer: the actor
    answers :class:`~actors.errors.RequestExpired` at once, no REST call (``None``: no
    deadline). Not compared: identical requests with other deadlines are still identical."""


@dataclass(frozen=True, slots=True)
class OrderbookRequest:
    """The current order book of each market, in the order asked."""

    markets: tuple[str, ...]
    deadline: float | None = field(default=None, compare=False)
    """Monotonic seconds (the tree's clock) after which nobody waits for the answer: the actor
    answers :class:`~actors.errors.RequestExpired` at once, no REST call (``None``: no
    deadline). Not compared: identical requests with other deadlines are still identical."""


Request = TickerRequest | CandlesRequest | TradesRequest | OrderbookRequest
"""A host's read, as an actor receives it."""

MarketData = Ticker | Candle | Trade | Orderbook
"""One item of a reply."""


@dataclass(frozen=True, slots=True)
class Reply:
    """An actor's answer: the items, their source, and when the exchange produced them.

    ``produced_at`` is the exchange's time (UTC epoch seconds) the answer stands for, so
    the facade can tell a host the data's true age: see :func:`produced_at`. ``None`` for an
    empty reply.
    """

    data: tuple[MarketData, ...]
    source: Source
    produced_at: float | None

    @classmethod
    def of(
        cls, data: Sequence[MarketData], source: Source, *, as_of: float | None = None
    ) -> Reply:
        """A reply stamped ``as_of`` (UTC epoch seconds) if given, else from its items.

        A REST answer for a series (candles, trades) passes the moment it was answered:
        the exchange produced that answer then, however old its newest trade is.
        """
        items = tuple(data)
        return cls(items, source, as_of if as_of is not None else produced_at(items))


@dataclass(frozen=True, slots=True)
class Activate:
    """Fallback on: keep the realtime streams of ``symbols`` live."""

    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Deactivate:
    """Fallback off: drop every subscription and close the connection."""


Listener = Callable[[tuple[StreamItem, ...]], None]
"""Takes the realtime items an actor admitted (see :class:`Listen`)."""


@dataclass(frozen=True, slots=True)
class Pin:
    """Smart router: keep ``markets`` subscribed whatever the demand (``candles``: their
    1-minute candles too); replaces the previous Pin, ``Pin(())`` unpins all."""

    markets: tuple[str, ...]
    candles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Listen:
    """Hand every realtime item admitted to ``listener`` (thread-safe, never blocking; ``None``:
    stop); the smart router calls it on its delivery thread, the WebSocket fallback on its own."""

    listener: Listener | None


@dataclass(frozen=True, slots=True)
class HealthRequest:
    """How are you? Answered with the actor's health snapshot (e.g. :class:`RestHealth`)."""


@dataclass(frozen=True, slots=True)
class LaneRequest:
    """REST fallback: lend your lane (answered with its
    :class:`~actors.rest_fallback.RestLane`, a thread-safe handle the facade calls in the
    host's thread while that instance runs; closed when it stops)."""


@dataclass(frozen=True, slots=True)
class RestHealth:
    """The REST fallback's health at ``now``: its last answers, failures in a row, any ban.

    Times are monotonic seconds on the actor's clock (the limiter's unless one was given).
    ``InvalidRequest`` never counts as a failure; every other error of a request does.
    ``banned_until`` and ``paused_groups`` come from the shared limiter's status.
    """

    now: float
    last_success_at: float | None
    last_failure_at: float | None
    consecutive_failures: int
    last_error: str | None
    banned_until: float | None
    paused_groups: tuple[str, ...]

    @property
    def failing(self) -> bool:
        """The last request failed (a probe counts these)."""
        return self.consecutive_failures > 0

    @property
    def banned(self) -> bool:
        """Every REST call is paused by a 418 until ``banned_until``."""
        return self.banned_until is not None


@dataclass(frozen=True, slots=True)
class WsHealth:
    """The WebSocket fallback's health at ``now`` (monotonic seconds, the client's clock).

    ``active`` is False while it stands by; then ``connection.state`` is IDLE with no
    subscriptions: idle by design, not down. ``last_item_at`` is when the last item was
    admitted to its cache; ``messages_failed`` and ``messages_malformed`` count items an
    injected fault at ``ws_message`` kept out of it, ``dropped`` batches it could not take.
    """

    now: float
    active: bool
    symbols: tuple[str, ...]
    connection: WebSocketStatus
    last_item_at: float | None
    messages_failed: int
    messages_malformed: int
    dropped: int

    @property
    def idle_by_design(self) -> bool:
        """Standing by on purpose: not activated, so no connection is wanted."""
        return not self.active and self.connection.subscriptions == 0


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """A health probe's read: the ticker of ``market`` through REST (never a cache).

    ``evidence_within``: seconds; when the router's last REST call succeeded at most this
    long ago and none failed since, that answer is the probe's answer and no call is made
    (the router's own traffic proves its REST path, and a probe must not fail because that
    traffic has used up the shared rate budget it would wait in). ``0``: always a call.
    ``deadline`` (monotonic): past it the probe is answered with ``RequestExpired``, never
    sent (one left queued behind a hang is not replayed later).
    """

    market: str
    evidence_within: float = 0.0
    deadline: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RouterStatus:
    """The smart router's answer to :class:`HealthRequest` at ``now`` (its monotonic clock).

    ``degraded``: it wants a WebSocket (``subscribed`` is not empty) but the connection is
    down, so every request goes to REST; ``reason`` says why. A connection idle because
    nothing is hot is not degraded. Counters since the actor started: ``rest_calls`` made,
    ``ws_answers`` and ``coalesced`` answers given without one, ``messages_failed`` and
    ``messages_malformed`` WebSocket items an injected ``ws_message`` fault kept off the board.
    """

    now: float
    degraded: bool
    reason: str | None
    subscribed: tuple[str, ...]
    connection: WebSocketStatus
    rest_calls: int
    ws_answers: int
    coalesced: int
    messages_failed: int
    messages_malformed: int


@dataclass(frozen=True, slots=True)
class StreamBatch:
    """WebSocket items handed from the client's delivery thread, received by ``received_at``."""

    items: tuple[StreamItem, ...]
    received_at: float


@dataclass(frozen=True, slots=True)
class Probe:
    """Health probe: probe now and report (asked, the :class:`ProbeReport` is the answer)."""


@dataclass(frozen=True, slots=True)
class FallbackReport:
    """The fallbacks as one probe found them; ``None``: not checked (or the probe failed).

    ``rest_banned_until``: the monotonic end of a REST ban (418), from the probe's error or
    the shared limiter. The fields match ``lifeline.health.FallbackHealth``.
    """

    rest_ok: bool | None = None
    rest_error: str | None = None
    rest_banned_until: float | None = None
    ws_ok: bool | None = None
    ws_error: str | None = None


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """One health probe at ``at`` (monotonic seconds on the probe's clock).

    ``router_ok`` is ``None`` when the probe itself failed (``probe_error``, e.g. an injected
    fault): nothing is known of the router then, so it is not blamed. ``latency``: seconds
    the router took to answer or fail (``None``: it did not within the deadline, or was not
    asked). ``consecutive_failures`` are failed router probes in a row; ``since_last_success``
    counts from ``last_success_at``, or from the probe's start before any success. ``rss_mb``
    (MiB, ``None`` where unknown) and ``cpu_percent`` (of one core since the last sample)
    describe the process; ``headroom`` is the shared limiter's groups, by name.
    """

    at: float
    router_ok: bool | None
    router_error: str | None
    probe_error: str | None
    latency: float | None
    consecutive_failures: int
    since_last_success: float
    last_success_at: float | None
    fallbacks: FallbackReport
    rss_mb: float | None
    cpu_percent: float | None
    headroom: tuple[GroupStatus, ...]

    def available(self, group: str) -> int | None:
        """Requests ``group`` may send right now, ``None`` if the limiter has not seen it."""
        for status in self.headroom:
            if status.group == group:
                return status.available
        return None


def produced_at(items: Sequence[MarketData]) -> float | None:
    """The exchange's time an answer stands for (UTC epoch seconds), ``None`` when empty.

    Snapshots (tickers, order books) are each stamped by the exchange: the answer is as old
    as its OLDEST snapshot, so one stale market makes the whole answer stale. A series
    (candles, trades) stands as of its NEWEST item: its history is history, not staleness.
    """
    if not items:
        return None
    snapshots = [item.timestamp for item in items if isinstance(item, Ticker | Orderbook)]
    if snapshots:
        return min(snapshots).timestamp()
    return max(
        (item.last_trade_time if isinstance(item, Candle) else item.timestamp).timestamp()
        for item in items
        if isinstance(item, Candle | Trade)
    )

"""The WebSocket client's configuration: one frozen dataclass, validated once.

Every default is stated here once and is Upbit's production value: the public
endpoint, Upbit's connect and message limits, the keepalive thresholds of
:class:`~quotation.websocket.liveness.LivenessConfig` and the reconnect backoff
:data:`RECONNECT_BACKOFF` (a :class:`~quotation.backoff.Backoff`). A wrong value raises
:class:`~quotation.errors.InvalidValue` naming the field; the subscriptions are request
parameters and raise :class:`~quotation.errors.InvalidRequest`.

``subscriptions`` defaults to none: a client without subscriptions starts idle
and connects only once it is given some (``WebSocketClient.set_subscriptions``),
which is how the WebSocket fallback stands by. A non-empty set is validated as
the wire will see it (no data type twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quotation.backoff import Backoff, Jitter
from quotation.errors import InvalidRequest, InvalidValue
from quotation.redact import redact_url, redacted_repr
from quotation.values import check, check_all
from quotation.websocket.liveness import LivenessConfig
from quotation.websocket.pacing import UPBIT_CONNECT_LIMITS, UPBIT_MESSAGE_LIMITS, RateWindow
from quotation.websocket.subscription import Subscription, WsFormat, build_request
from quotation.websocket.transport import MAX_FRAME_BYTES

__all__ = ["RECONNECT_BACKOFF", "UPBIT_WEBSOCKET_URL", "WebSocketConfig"]

UPBIT_WEBSOCKET_URL = "wss://api.upbit.com/websocket/v1"

RECONNECT_BACKOFF = Backoff(initial=0.5, multiplier=2.0, cap=30.0, jitter=Jitter.FULL)
"""The wait before reconnecting after n failed connections in a row: uniform up to
``min(30, 0.5 * 2 ** n)`` seconds (``delay(n + 1, random())``), so a fleet of clients
that lost the same server spreads its reconnects instead of storming it."""


@dataclass(frozen=True, slots=True)
class WebSocketConfig:
    """Everything about one client, parsed once. Defaults are Upbit's production values."""

    subscriptions: tuple[Subscription, ...] = ()
    """What to subscribe at start; empty: the client stays idle (no connection) until
    ``set_subscriptions`` gives it a non-empty set."""
    url: str = UPBIT_WEBSOCKET_URL
    format: WsFormat = WsFormat.DEFAULT
    connect_timeout: float = 10.0
    """Seconds for TCP connect, TLS and the HTTP upgrade together (not per read)."""
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    backoff: Backoff = RECONNECT_BACKOFF
    """The wait before each reconnect; a ``config.yaml`` section gives only the keys that
    differ from :data:`RECONNECT_BACKOFF`."""
    healthy_after: float = 30.0
    """Seconds a connection must stay subscribed with liveness OK before the failure count
    (and so the backoff) resets; a connection that delivers data and drops sooner is still
    a failure in a row."""
    connect_limits: tuple[RateWindow, ...] = UPBIT_CONNECT_LIMITS
    message_limits: tuple[RateWindow, ...] = UPBIT_MESSAGE_LIMITS
    delivery_capacity: int = 100_000
    """Items that may wait for consumers before new ones are dropped (and counted)."""
    recent_trades: int = 1000
    """Trades kept per market in the cache."""
    candles_per_interval: int = 500
    dedup_capacity: int = 20_000
    """Trade ids remembered per market for de-duplication."""
    gap_fill_page_size: int = 200
    gap_fill_max_pages: int = 10
    gap_fill_hold_capacity: int = 5_000
    """Trades of one market held back while its gap fill is pending; beyond, the fill is
    abandoned (its hole marked with a ``TradeGap``) and the held trades are delivered."""
    gap_fill_queue_capacity: int = 1_000
    """Gap fills that may wait for the gap-fill worker; beyond, the hole is marked at once."""
    gap_fill_min_interval: float = 10.0
    """At most one REST gap fill per market per this many seconds (client clock; 0: no limit).

    A hole found sooner waits, the market's trades held behind it, and later holes join
    it; then one fill covers them all. 10 s: the interval runs from the market's previous
    fill, so the first hole after a normal stretch fills at once and only a connection
    breaking again within 10 s (flapping) waits; the price is at most 10 s of delay on that
    market's trades (the default ``pong_timeout``, what detecting a dead transport takes
    anyway; well within ``gap_fill_hold_capacity``: 5,000 held trades are 500 trades/s for
    10 s), and REST gap-fill traffic is bounded by
    ``gap_fill_max_pages`` requests per market per 10 s, usually one, whatever the
    reconnect rate (Upbit allows 10 quotation requests/s per IP)."""
    max_frame_bytes: int = MAX_FRAME_BYTES
    """The largest frame (or fragmented message) accepted, in payload bytes; 1 MiB.

    Upbit's largest real frame is a 30-level orderbook, about 4 KB in DEFAULT format (a
    ``JSON_LIST`` frame a few of those): 1 MiB is a margin of over 200 times, yet bounds
    what a hostile server can make the client buffer. Checked on the frame header, before
    the payload is read; a frame over it closes the connection (status 1009) and the
    client reconnects (``CloseReason.FRAME_TOO_LARGE``, counted as a failure). At least
    125: every control frame must fit. Only the default connector applies it; a custom
    ``connector`` sets its own (``open_connection(..., max_frame_bytes=)``)."""
    max_items_per_frame: int = 5_000
    """The most objects one ``JSON_LIST`` / ``SIMPLE_LIST`` frame may carry.

    Upbit's list frames carry a handful of messages; a list over the limit is rejected
    whole as one malformed frame (one count, one log line), not item by item."""

    def __post_init__(self) -> None:
        if not isinstance(self.subscriptions, tuple):
            raise InvalidRequest(
                "subscriptions must be a tuple of Subscription",
                parameter="subscriptions",
                value=self.subscriptions,
            )
        if self.subscriptions:
            # Validates the set (no type twice) the way the wire will see it.
            build_request(self.subscriptions, ticket="check", fmt=self.format)
        if not (isinstance(self.url, str) and self.url.startswith(("ws://", "wss://"))):
            shown = redact_url(self.url) if isinstance(self.url, str) else self.url
            raise InvalidValue(f"url must be a ws:// or wss:// URL, got {shown!r}",
                               field="url", value=self.url)
        check_all(self, ("connect_timeout", "healthy_after"), above=0)
        check("gap_fill_min_interval", self.gap_fill_min_interval, at_least=0)
        check_all(
            self,
            (
                "delivery_capacity",
                "recent_trades",
                "candles_per_interval",
                "dedup_capacity",
                "gap_fill_max_pages",
                "gap_fill_hold_capacity",
                "gap_fill_queue_capacity",
                "max_items_per_frame",
            ),
            at_least=1,
            integer=True,
        )
        # At most 500: Upbit's trades/ticks maximum per page.
        check("gap_fill_page_size", self.gap_fill_page_size, at_least=1, at_most=500, integer=True)
        # At least 125 bytes: the largest control frame (close, ping, pong) must fit.
        check("max_frame_bytes", self.max_frame_bytes, at_least=125, integer=True)

    def __repr__(self) -> str:
        return redacted_repr(self, "url")  # credentials in the url are never shown

"""The frozen records the simulator's engine hands out, and the event it publishes per trade.

The records hold plain wire-ready values (prices as ``float``, times as integer
milliseconds since the epoch, UTC) with Upbit's field names, so the REST and
WebSocket sides can render them without converting datetimes on the hot path.
They are immutable and safe to pass between threads.

:class:`MarketEvent` is what :meth:`MarketEngine.add_listener` callbacks receive:
one per new trade, carrying the trade and the state of its market right after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from quotation.models import CandleInterval, Change, Side

__all__ = [
    "STREAMED_INTERVALS",
    "MarketEvent",
    "SimCandle",
    "SimOrderbook",
    "SimOrderbookUnit",
    "SimTicker",
    "SimTrade",
]

STREAMED_INTERVALS: tuple[CandleInterval, ...] = tuple(
    interval for interval in CandleInterval if interval.ws_type is not None
)
"""The intervals Upbit streams on the WebSocket (``candle.1s`` … ``candle.240m``)."""


@dataclass(frozen=True, slots=True)
class SimTrade:
    """One trade of the simulated market (REST ``trades/ticks`` / WebSocket ``trade``)."""

    market: str
    sequential_id: int
    timestamp: int
    """Trade time, ms since the epoch (UTC)."""
    trade_price: float
    trade_volume: float
    ask_bid: Side
    prev_closing_price: float
    change_price: float
    """Signed, against ``prev_closing_price`` (as REST trades send it)."""
    change: Change
    best_ask_price: float
    best_ask_size: float
    best_bid_price: float
    best_bid_size: float


@dataclass(frozen=True, slots=True)
class SimTicker:
    """The ticker of one market right after its latest trade."""

    market: str
    trade_timestamp: int
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    prev_closing_price: float
    change: Change
    change_price: float
    """Absolute."""
    change_rate: float
    """Absolute."""
    signed_change_price: float
    signed_change_rate: float
    trade_volume: float
    acc_trade_price: float
    acc_trade_price_24h: float
    acc_trade_volume: float
    acc_trade_volume_24h: float
    highest_52_week_price: float
    highest_52_week_date: str
    """``yyyy-MM-dd``."""
    lowest_52_week_price: float
    lowest_52_week_date: str
    timestamp: int
    """When this ticker was produced, ms."""
    ask_bid: Side
    acc_ask_volume: float
    acc_bid_volume: float
    market_state: str = "ACTIVE"


@dataclass(frozen=True, slots=True)
class SimCandle:
    """One candle bucket (only buckets with at least one trade exist)."""

    market: str
    interval: CandleInterval
    start: int
    """Bucket start, ms since the epoch (UTC): ``candle_date_time_utc``."""
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    timestamp: int
    """Time of the last tick inside the bucket, ms."""
    candle_acc_trade_price: float
    candle_acc_trade_volume: float
    prev_closing_price: float | None = None
    """Day/week/month/year candles: close of the previous bucket, when one exists."""


@dataclass(frozen=True, slots=True)
class SimOrderbookUnit:
    """One row of the book; index 0 of :attr:`SimOrderbook.units` is the best level."""

    ask_price: float
    bid_price: float
    ask_size: float
    bid_size: float


@dataclass(frozen=True, slots=True)
class SimOrderbook:
    """A top-N book snapshot around the last price (30 native-tick levels by default)."""

    market: str
    timestamp: int
    total_ask_size: float
    total_bid_size: float
    units: tuple[SimOrderbookUnit, ...]
    level: float = 0
    """Price aggregation applied (0 = native tick)."""


@dataclass(frozen=True, slots=True)
class MarketEvent:
    """Published once per new trade, on the simulator's event-loop thread.

    ``candles`` holds the updated candle of every WebSocket-streamed interval
    (:data:`STREAMED_INTERVALS`, in that order) for the trade's market. The book
    is a pure function of the trade, so it is built by ``book_of`` on the first
    read of :attr:`orderbook` (most events are never asked for one) and kept.
    """

    trade: SimTrade
    ticker: SimTicker
    candles: tuple[SimCandle, ...]
    book_of: Callable[[], SimOrderbook] = field(repr=False, compare=False)
    _book: SimOrderbook | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def market(self) -> str:
        return self.trade.market

    @property
    def orderbook(self) -> SimOrderbook:
        """The book right after the trade (built on first read, then kept)."""
        book = self._book
        if book is None:
            book = self.book_of()
            object.__setattr__(self, "_book", book)  # a cache: the event stays immutable
        return book

    def candle(self, interval: CandleInterval) -> SimCandle | None:
        """The updated candle of ``interval`` (``None`` if that interval is not streamed)."""
        for candle in self.candles:
            if candle.interval is interval:
                return candle
        return None

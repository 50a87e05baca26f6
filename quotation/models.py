"""The canonical market-data model: what REST and WebSocket payloads become.

Every value is a frozen, slotted dataclass, except ``OrderbookLevel``, a frozen
``msgspec.Struct`` (equal, hashable and printed like the dataclasses; see its note);
nothing here is mutable, so objects can cross threads and actors freely. Timestamps
are timezone-aware UTC ``datetime`` objects. Prices and volumes are ``float`` because
Upbit sends JSON doubles; tick sizes, which Upbit sends as strings, are ``Decimal``.

Field names follow Upbit's REST names where Upbit has one, so the Upbit
documentation reads straight onto the model. Where Upbit's payloads disagree
with each other the model picks one meaning and says so:

* ``change_price`` is always absolute and ``signed_change_price`` always signed
  (REST trades send a signed ``change_price``, WebSocket trades an absolute one).
* Candles are keyed by ``start`` (the bucket start, from ``candle_date_time_utc``,
  which has no zone suffix and is UTC); ``last_trade_time`` is Upbit's candle
  ``timestamp`` (the last tick inside the bucket, not the bucket start).
* ``stream_type`` is ``None`` for REST answers, SNAPSHOT/REALTIME for WebSocket.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import msgspec

__all__ = [
    "Candle",
    "CandleInterval",
    "Change",
    "Market",
    "Orderbook",
    "OrderbookInstrument",
    "OrderbookLevel",
    "Side",
    "StreamType",
    "Ticker",
    "Trade",
    "TradeGap",
]


class Side(enum.Enum):
    """Which side took the trade: ``ASK`` = a sell hit the bid, ``BID`` = a buy lifted the ask."""

    ASK = "ASK"
    BID = "BID"


class Change(enum.Enum):
    """Direction against the previous UTC-day close."""

    RISE = "RISE"
    EVEN = "EVEN"
    FALL = "FALL"


class StreamType(enum.Enum):
    """WebSocket message kind: the first snapshot or a realtime update."""

    SNAPSHOT = "SNAPSHOT"
    REALTIME = "REALTIME"


class CandleInterval(enum.Enum):
    """Every candle interval Upbit serves; the value is the short name used in config."""

    SECOND_1 = "1s"
    MINUTE_1 = "1m"
    MINUTE_3 = "3m"
    MINUTE_5 = "5m"
    MINUTE_10 = "10m"
    MINUTE_15 = "15m"
    MINUTE_30 = "30m"
    MINUTE_60 = "60m"
    MINUTE_240 = "240m"
    DAY = "1d"
    WEEK = "1w"
    MONTH = "1M"
    YEAR = "1y"

    @property
    def rest_path(self) -> str:
        """The REST path under ``/v1``, e.g. ``/candles/minutes/5``."""
        return _REST_PATHS[self]

    @property
    def minutes(self) -> int | None:
        """The ``unit`` of a minute interval, else ``None``."""
        return _MINUTE_UNITS.get(self)

    @property
    def ws_type(self) -> str | None:
        """The WebSocket type (``candle.1s`` … ``candle.240m``), or ``None`` if not streamed."""
        return _WS_TYPES.get(self)

    @property
    def fixed_length(self) -> timedelta | None:
        """The bucket length for fixed-size intervals (seconds to days), else ``None``."""
        return _FIXED_LENGTHS.get(self)

    @classmethod
    def from_ws_type(cls, ws_type: str) -> CandleInterval:
        """The interval of a WebSocket type such as ``candle.5m``; ``ValueError`` if unknown."""
        try:
            return _BY_WS_TYPE[ws_type]
        except KeyError:
            raise ValueError(f"unknown candle type {ws_type!r}") from None


_MINUTE_UNITS: dict[CandleInterval, int] = {
    CandleInterval.MINUTE_1: 1,
    CandleInterval.MINUTE_3: 3,
    CandleInterval.MINUTE_5: 5,
    CandleInterval.MINUTE_10: 10,
    CandleInterval.MINUTE_15: 15,
    CandleInterval.MINUTE_30: 30,
    CandleInterval.MINUTE_60: 60,
    CandleInterval.MINUTE_240: 240,
}
_REST_PATHS: dict[CandleInterval, str] = {
    CandleInterval.SECOND_1: "/candles/seconds",
    **{interval: f"/candles/minutes/{unit}" for interval, unit in _MINUTE_UNITS.items()},
    CandleInterval.DAY: "/candles/days",
    CandleInterval.WEEK: "/candles/weeks",
    CandleInterval.MONTH: "/candles/months",
    CandleInterval.YEAR: "/candles/years",
}
_WS_TYPES: dict[CandleInterval, str] = {
    CandleInterval.SECOND_1: "candle.1s",
    **{interval: f"candle.{unit}m" for interval, unit in _MINUTE_UNITS.items()},
}
_BY_WS_TYPE: dict[str, CandleInterval] = {value: key for key, value in _WS_TYPES.items()}
_FIXED_LENGTHS: dict[CandleInterval, timedelta] = {
    CandleInterval.SECOND_1: timedelta(seconds=1),
    **{interval: timedelta(minutes=unit) for interval, unit in _MINUTE_UNITS.items()},
    CandleInterval.DAY: timedelta(days=1),
    CandleInterval.WEEK: timedelta(days=7),
}


@dataclass(frozen=True, slots=True)
class Market:
    """A trading pair from ``/v1/market/all``.

    ``warning`` and ``cautions`` are only known when asked with ``is_details=true``
    (else ``None``); ``cautions`` holds the caution flags that are set.
    """

    market: str
    korean_name: str
    english_name: str
    warning: bool | None = None
    cautions: frozenset[str] | None = None

    @property
    def quote_currency(self) -> str:
        """``KRW`` for ``KRW-BTC``."""
        return self.market.split("-", 1)[0]

    @property
    def base_currency(self) -> str:
        """``BTC`` for ``KRW-BTC``."""
        return self.market.split("-", 1)[1]


@dataclass(frozen=True, slots=True)
class Ticker:
    """The current price of one market (REST ``/v1/ticker`` or WebSocket ``ticker``)."""

    market: str
    trade_price: float
    opening_price: float
    high_price: float
    low_price: float
    prev_closing_price: float
    change: Change
    change_price: float
    """Absolute change against ``prev_closing_price``."""
    change_rate: float
    signed_change_price: float
    signed_change_rate: float
    trade_volume: float
    acc_trade_price: float
    acc_trade_price_24h: float
    acc_trade_volume: float
    acc_trade_volume_24h: float
    highest_52_week_price: float
    highest_52_week_date: date | None
    lowest_52_week_price: float
    lowest_52_week_date: date | None
    trade_time: datetime
    """When the last trade happened (Upbit's ``trade_timestamp``)."""
    timestamp: datetime
    """When Upbit produced this ticker."""
    stream_type: StreamType | None = None
    ask_bid: Side | None = None
    """WebSocket only: the side of the last trade."""
    acc_ask_volume: float | None = None
    acc_bid_volume: float | None = None
    market_state: str | None = None


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV bucket. Buckets with no trade do not exist (Upbit leaves gaps)."""

    market: str
    interval: CandleInterval
    start: datetime
    """Bucket start in UTC (``candle_date_time_utc``)."""
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    """The close."""
    candle_acc_trade_volume: float
    candle_acc_trade_price: float
    last_trade_time: datetime
    """Upbit's candle ``timestamp``: the last tick inside the bucket."""
    prev_closing_price: float | None = None
    change_price: float | None = None
    change_rate: float | None = None
    converted_trade_price: float | None = None
    first_day_of_period: date | None = None
    stream_type: StreamType | None = None


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade (REST ``/v1/trades/ticks`` or WebSocket ``trade``).

    ``sequential_id`` is unique per market but not ordered: de-duplicate by it,
    order by ``timestamp``.
    """

    market: str
    sequential_id: int
    timestamp: datetime
    trade_price: float
    trade_volume: float
    ask_bid: Side
    prev_closing_price: float
    change_price: float
    """Absolute change against ``prev_closing_price``."""
    signed_change_price: float
    change: Change
    best_ask_price: float | None = None
    best_ask_size: float | None = None
    best_bid_price: float | None = None
    best_bid_size: float | None = None
    stream_type: StreamType | None = None


class OrderbookLevel(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """One row of the book: the ask and the bid at the same depth.

    A frozen ``msgspec.Struct``, not a dataclass: a 100-market REST book holds 3,000 of them,
    and msgspec decodes a JSON body straight into them (``quotation._rest_fast``) for less than
    ``orjson.loads`` alone costs, where building frozen dataclasses cost 0.33 µs each. It
    compares, hashes and prints like the dataclasses; use ``msgspec.structs`` (``asdict``,
    ``replace``, ``fields``) instead of the ``dataclasses`` helpers. ``gc=False``: it holds
    floats only. ``forbid_unknown_fields``: a unit with a key the model does not know is not
    decoded by msgspec (which would skip its value unchecked) but by the orjson path.
    """

    ask_price: float
    ask_size: float
    bid_price: float
    bid_size: float


@dataclass(frozen=True, slots=True)
class Orderbook:
    """A full top-N snapshot (WebSocket updates are snapshots too, never deltas)."""

    market: str
    timestamp: datetime
    total_ask_size: float
    total_bid_size: float
    levels: tuple[OrderbookLevel, ...]
    """Index 0 is the best level."""
    level: float = 0.0
    """The price aggregation applied (0 = native tick)."""
    stream_type: StreamType | None = None

    @property
    def best_ask(self) -> float | None:
        return self.levels[0].ask_price if self.levels else None

    @property
    def best_bid(self) -> float | None:
        return self.levels[0].bid_price if self.levels else None


@dataclass(frozen=True, slots=True)
class OrderbookInstrument:
    """Tick size and supported aggregation levels of one market."""

    market: str
    quote_currency: str
    tick_size: Decimal
    supported_levels: tuple[Decimal, ...]


@dataclass(frozen=True, slots=True)
class TradeGap:
    """A hole in one market's trade stream that could not be filled (marked, never hidden).

    Trades strictly between the trade ``after_sequential_id`` (at ``after``) and
    the trade ``before_sequential_id`` (at ``before``) may be missing; ``reason``
    says why they could not be fetched (e.g. the REST error).
    """

    market: str
    after: datetime
    before: datetime
    after_sequential_id: int
    before_sequential_id: int
    reason: str

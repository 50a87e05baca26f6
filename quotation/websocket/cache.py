"""The realtime cache: the latest value of every stream, each with the time it was received.

:class:`StreamCache` keeps, per market, the latest ticker and orderbook, the
most recent trades (bounded), candles upserted by bucket start (bounded per
interval, the last update of a bucket wins), and the trade gaps that could not
be filled. Every value is wrapped in :class:`Cached` with its receive time on
the client's monotonic clock, so a caller asks ``entry.age(clock.monotonic())``
and decides itself whether it is fresh enough: a quiet market is not an error.

Thread-safe: the WebSocket receive thread writes, any thread or actor reads.
Values are immutable, so readers get them without copies.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime
from threading import Lock
from typing import Generic, TypeVar

from quotation.models import Candle, CandleInterval, Orderbook, Ticker, Trade, TradeGap
from quotation.values import check
from quotation.websocket.subscription import DataType

__all__ = ["Cached", "StreamCache", "StreamItem"]

T = TypeVar("T")

StreamItem = Ticker | Trade | Orderbook | Candle | TradeGap
"""What the WebSocket client delivers: canonical models, plus gap markers."""

_CANDLE_TYPES: dict[CandleInterval, DataType] = {
    interval: DataType(interval.ws_type)
    for interval in CandleInterval
    if interval.ws_type is not None
}


@dataclass(frozen=True, slots=True)
class Cached(Generic[T]):
    """A cached value and when it was received (monotonic seconds)."""

    value: T
    received_at: float

    def age(self, now: float) -> float:
        """Seconds since it was received, at monotonic time ``now``."""
        return now - self.received_at


class StreamCache:
    """Latest ticker/orderbook per market, recent trades, candles by start, gaps."""

    def __init__(
        self, *, max_trades: int = 1000, max_candles: int = 500, max_gaps: int = 100
    ) -> None:
        check("max_trades", max_trades, at_least=1, integer=True)
        check("max_candles", max_candles, at_least=1, integer=True)
        check("max_gaps", max_gaps, at_least=1, integer=True)
        self._max_trades = max_trades
        self._max_candles = max_candles
        self._max_gaps = max_gaps
        self._lock = Lock()
        self._tickers: dict[str, Cached[Ticker]] = {}
        self._orderbooks: dict[str, Cached[Orderbook]] = {}
        self._trades: dict[str, deque[Cached[Trade]]] = {}
        self._candles: dict[tuple[str, CandleInterval], OrderedDict[datetime, Cached[Candle]]] = {}
        self._gaps: dict[str, deque[TradeGap]] = {}
        self._updated: dict[tuple[DataType, str], float] = {}

    # -- writing (the receive thread) ------------------------------------------------

    def put(self, item: StreamItem, received_at: float) -> None:
        """Store one item received at ``received_at``."""
        with self._lock:
            if isinstance(item, Trade):
                trades = self._trades.get(item.market)
                if trades is None:
                    trades = self._trades[item.market] = deque(maxlen=self._max_trades)
                trades.append(Cached(item, received_at))
                self._updated[DataType.TRADE, item.market] = received_at
            elif isinstance(item, Ticker):
                self._tickers[item.market] = Cached(item, received_at)
                self._updated[DataType.TICKER, item.market] = received_at
            elif isinstance(item, Orderbook):
                self._orderbooks[item.market] = Cached(item, received_at)
                self._updated[DataType.ORDERBOOK, item.market] = received_at
            elif isinstance(item, Candle):
                self._put_candle(item, received_at)
            elif isinstance(item, TradeGap):
                gaps = self._gaps.get(item.market)
                if gaps is None:
                    gaps = self._gaps[item.market] = deque(maxlen=self._max_gaps)
                gaps.append(item)
            else:
                raise TypeError(f"cannot cache {type(item).__name__}")

    def _put_candle(self, candle: Candle, received_at: float) -> None:
        key = (candle.market, candle.interval)
        buckets = self._candles.get(key)
        if buckets is None:
            buckets = self._candles[key] = OrderedDict()
        buckets[candle.start] = Cached(candle, received_at)
        if len(buckets) > self._max_candles:
            oldest = min(buckets)
            del buckets[oldest]
        data_type = _CANDLE_TYPES.get(candle.interval)
        if data_type is not None:
            self._updated[data_type, candle.market] = received_at

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._tickers.clear()
            self._orderbooks.clear()
            self._trades.clear()
            self._candles.clear()
            self._gaps.clear()
            self._updated.clear()

    # -- reading (any thread) ------------------------------------------------------------

    def ticker(self, market: str) -> Cached[Ticker] | None:
        """The latest ticker of ``market``, or ``None`` if none arrived yet."""
        with self._lock:
            return self._tickers.get(market)

    def orderbook(self, market: str) -> Cached[Orderbook] | None:
        """The latest orderbook of ``market``, or ``None``."""
        with self._lock:
            return self._orderbooks.get(market)

    def trades(self, market: str, count: int | None = None) -> list[Cached[Trade]]:
        """The most recent trades of ``market`` in arrival order (oldest first)."""
        with self._lock:
            trades = list(self._trades.get(market, ()))
        return trades if count is None else trades[-count:] if count > 0 else []

    def last_trade(self, market: str) -> Cached[Trade] | None:
        """The trade that arrived last for ``market``, or ``None``."""
        with self._lock:
            trades = self._trades.get(market)
            return trades[-1] if trades else None

    def candles(self, market: str, interval: CandleInterval) -> list[Cached[Candle]]:
        """The cached candles of ``market`` / ``interval``, oldest bucket first."""
        with self._lock:
            buckets = self._candles.get((market, interval))
            if not buckets:
                return []
            return [buckets[start] for start in sorted(buckets)]

    def candle(self, market: str, interval: CandleInterval) -> Cached[Candle] | None:
        """The newest bucket of ``market`` / ``interval``, or ``None``."""
        with self._lock:
            buckets = self._candles.get((market, interval))
            return buckets[max(buckets)] if buckets else None

    def gaps(self, market: str) -> list[TradeGap]:
        """Trade holes that could not be filled, oldest first."""
        with self._lock:
            return list(self._gaps.get(market, ()))

    def updated_at(self, data_type: DataType, market: str) -> float | None:
        """When data of ``data_type`` for ``market`` last arrived (monotonic), or ``None``."""
        with self._lock:
            return self._updated.get((data_type, market))

    def stale(self, now: float, max_age: float) -> list[tuple[DataType, str]]:
        """Every (data type, market) whose last update is older than ``max_age`` at ``now``."""
        with self._lock:
            return [key for key, at in self._updated.items() if now - at > max_age]

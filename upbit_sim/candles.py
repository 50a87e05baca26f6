"""Candle buckets and the incremental candle series of one market and interval.

A series is updated in time order (each trade, or each synthetic pre-history
day, touches only the newest bucket or opens a new one), and answered by
bisection, so neither updating nor querying costs time proportional to history.
Buckets are UTC-aligned: seconds and minutes on the epoch, days at 00:00 UTC,
weeks on Mondays, months and years on their first day.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime

from quotation.models import CandleInterval
from upbit_sim.records import SimCandle

__all__ = ["CandleSeries", "bucket_bounds"]

_DAY_MS = 86_400_000
_FIXED_MS: dict[CandleInterval, int] = {
    interval: int(length.total_seconds() * 1000)
    for interval in CandleInterval
    if (length := interval.fixed_length) is not None and interval is not CandleInterval.WEEK
}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def bucket_bounds(interval: CandleInterval, ts_ms: int) -> tuple[int, int]:
    """``[start, end)`` in ms of the ``interval`` bucket holding ``ts_ms`` (UTC)."""
    length = _FIXED_MS.get(interval)
    if length is not None:
        start = ts_ms - ts_ms % length
        return start, start + length
    day = ts_ms - ts_ms % _DAY_MS
    if interval is CandleInterval.WEEK:
        # 1970-01-01 was a Thursday: Monday is three days before it.
        start = day - ((day // _DAY_MS + 3) % 7) * _DAY_MS
        return start, start + 7 * _DAY_MS
    moment = datetime.fromtimestamp(day / 1000, tz=UTC)
    if interval is CandleInterval.MONTH:
        first = moment.replace(day=1)
        nxt = (
            first.replace(year=first.year + 1, month=1)
            if first.month == 12
            else (first.replace(month=first.month + 1))
        )
        return _ms(first), _ms(nxt)
    first = moment.replace(month=1, day=1)
    return _ms(first), _ms(first.replace(year=first.year + 1))


class _Bucket:
    """A mutable candle while it is being built (internal to :class:`CandleSeries`)."""

    __slots__ = ("close", "high", "low", "open", "price", "timestamp", "volume")

    def __init__(self, price: float, volume: float, amount: float, timestamp: int) -> None:
        self.open = self.high = self.low = self.close = price
        self.volume = volume
        self.price = amount
        self.timestamp = timestamp

    def clone(self) -> _Bucket:
        twin = _Bucket(self.open, self.volume, self.price, self.timestamp)
        twin.high, twin.low, twin.close = self.high, self.low, self.close
        return twin


class CandleSeries:
    """Every non-empty bucket of one market and interval, oldest first."""

    __slots__ = ("_buckets", "_end", "_last", "_length", "_starts", "interval", "market")

    def __init__(self, market: str, interval: CandleInterval) -> None:
        self.market = market
        self.interval = interval
        self._starts: list[int] = []
        self._buckets: list[_Bucket] = []
        self._end = -1  # end of the newest bucket; -1 while empty, so nothing folds in
        self._last: _Bucket | None = None
        self._length = _FIXED_MS.get(interval, 0)  # 0: calendar bucket (week, month, year)

    def __len__(self) -> int:
        return len(self._starts)

    def add(
        self,
        ts_ms: int,
        *,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        price: float,
    ) -> None:
        """Fold an aggregate (a trade has ``open == high == low == close``) into its bucket.

        Aggregates must arrive in time order; an older one than the newest bucket is
        folded into the newest bucket's figures without moving its bounds.
        """
        if ts_ms < self._end and self._last is not None:
            bucket = self._last
            bucket.high = max(bucket.high, high)
            bucket.low = min(bucket.low, low)
            bucket.close = close
            bucket.volume += volume
            bucket.price += price
            bucket.timestamp = max(bucket.timestamp, ts_ms)
            return
        bucket = _Bucket(open_, volume, price, ts_ms)
        bucket.high, bucket.low, bucket.close = high, low, close
        self._open(ts_ms, bucket)

    def add_trade(self, ts_ms: int, price: float, volume: float, amount: float) -> None:
        """Fold one trade into its bucket (the hot path: trades of a market come in time order)."""
        bucket = self._last
        if ts_ms < self._end and bucket is not None:
            if price > bucket.high:  # an if/elif pair: a new high cannot be a new low
                bucket.high = price
            elif price < bucket.low:
                bucket.low = price
            bucket.close = price
            bucket.volume += volume
            bucket.price += amount
            bucket.timestamp = ts_ms
            return
        self._open(ts_ms, _Bucket(price, volume, amount, ts_ms))

    def _open(self, ts_ms: int, bucket: _Bucket) -> None:
        """Start a new newest bucket holding ``ts_ms``."""
        length = self._length
        if length:
            start = ts_ms - ts_ms % length
            self._end = start + length
        else:
            start, self._end = bucket_bounds(self.interval, ts_ms)
        self._starts.append(start)
        self._buckets.append(bucket)
        self._last = bucket

    def copy(self) -> CandleSeries:
        """An independent copy (buckets are shared except the newest, the only one that changes)."""
        clone = CandleSeries(self.market, self.interval)
        clone._starts = list(self._starts)
        clone._buckets = list(self._buckets)
        clone._end = self._end
        if clone._buckets:
            clone._last = clone._buckets[-1] = clone._buckets[-1].clone()
        return clone

    def latest(self) -> SimCandle | None:
        """The newest candle, or ``None`` if the series is empty."""
        if not self._starts:
            return None
        return self._snapshot(len(self._starts) - 1)

    def before(self, to_ms: int | None, count: int) -> list[SimCandle]:
        """Up to ``count`` candles whose start is strictly before ``to_ms``, newest first."""
        end = len(self._starts) if to_ms is None else bisect.bisect_left(self._starts, to_ms)
        first = max(0, end - count)
        return [self._snapshot(index) for index in range(end - 1, first - 1, -1)]

    def at(self, start_ms: int) -> SimCandle | None:
        """The candle starting exactly at ``start_ms``, if it exists."""
        index = bisect.bisect_left(self._starts, start_ms)
        if index < len(self._starts) and self._starts[index] == start_ms:
            return self._snapshot(index)
        return None

    def _snapshot(self, index: int) -> SimCandle:
        bucket = self._buckets[index]
        prev_close = self._buckets[index - 1].close if index > 0 else None
        return SimCandle(
            market=self.market,
            interval=self.interval,
            start=self._starts[index],
            opening_price=bucket.open,
            high_price=bucket.high,
            low_price=bucket.low,
            trade_price=bucket.close,
            timestamp=bucket.timestamp,
            candle_acc_trade_price=bucket.price,
            candle_acc_trade_volume=bucket.volume,
            prev_closing_price=prev_close,
        )

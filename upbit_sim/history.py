"""Synthetic market history before the generated trades: a year of daily candles per market.

The days are a seeded random walk backwards from the market's start price, so
the last synthetic close is exactly where the trade history begins; weeks,
months and years are folded from the days. The result depends only on the
seed, the market, the first day of trade history and the pace, so it is
computed once per process and shared (tests start many simulators); callers
take :meth:`CandleSeries.copy` of the series before adding trades to them.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass

from quotation.models import CandleInterval
from upbit_sim.candles import CandleSeries
from upbit_sim.catalogue import MarketInfo, round_to_tick

__all__ = ["PREHISTORY_INTERVALS", "Prehistory", "prehistory"]

PREHISTORY_INTERVALS: tuple[CandleInterval, ...] = (
    CandleInterval.DAY,
    CandleInterval.WEEK,
    CandleInterval.MONTH,
    CandleInterval.YEAR,
)
"""The candle intervals the synthetic days fill."""

_DAY_MS = 86_400_000
_WEEK52_MS = 364 * _DAY_MS
_CACHE_SIZE = 2048


@dataclass(frozen=True, slots=True)
class Prehistory:
    """One market's synthetic candles, its random stream after them, and its 52-week range."""

    series: tuple[CandleSeries, ...]
    """One series per :data:`PREHISTORY_INTERVALS` (shared: copy before changing)."""
    rng_state: tuple[object, ...]
    high52: tuple[float, int]
    """(price, day start ms) of the highest high in the 52 weeks before the first day."""
    low52: tuple[float, int]


_cache: dict[tuple[int, str, int, int, float], Prehistory] = {}
_cache_lock = threading.Lock()


def prehistory(
    seed: int, info: MarketInfo, rng: random.Random, *, first_day: int, days: int, rate: float
) -> Prehistory:
    """The ``days`` days before ``first_day`` (ms, UTC midnight) of ``info``'s market.

    ``rng`` is the market's own stream at its start; the returned ``rng_state`` is
    where that stream stands afterwards. ``rate`` (trades per second) scales volumes.
    """
    key = (seed, info.market, first_day, days, rate)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is None:
        cached = _generate(info, rng, first_day, days, rate)
        with _cache_lock:
            if len(_cache) >= _CACHE_SIZE:
                _cache.clear()
            _cache[key] = cached
    return cached


def _generate(
    info: MarketInfo, rng: random.Random, first_day: int, days: int, rate: float
) -> Prehistory:
    quote = info.quote
    sigma = min(0.06, info.volatility * math.sqrt(24))
    closes = [info.start_price]
    for _ in range(days):
        closes.append(round_to_tick(quote, closes[-1] / math.exp(rng.gauss(0.0, sigma))))
    closes.reverse()  # closes[0] is the open of the oldest day, closes[-1] the start price
    per_day = max(1.0, rate * 86_400)
    cutoff = first_day - _WEEK52_MS  # whole days, so the result depends on the day only
    high52 = low52 = info.start_price
    high_day = low_day = first_day
    series = tuple(CandleSeries(info.market, interval) for interval in PREHISTORY_INTERVALS)
    for offset in range(days):
        day = first_day - (days - offset) * _DAY_MS
        open_, close = closes[offset], closes[offset + 1]
        wiggle = sigma * rng.random()
        high = max(round_to_tick(quote, max(open_, close) * (1 + wiggle)), open_, close)
        low = min(
            round_to_tick(quote, min(open_, close) * (1 - wiggle * rng.random())), open_, close
        )
        volume = info.typical_volume * per_day * (0.6 + 0.8 * rng.random())
        ts = day + _DAY_MS - 1 - int(rng.random() * 600_000)
        amount = volume * (open_ + close) / 2
        for one in series:
            one.add(ts, open_=open_, high=high, low=low, close=close, volume=volume, price=amount)
        if day >= cutoff:
            if high > high52:
                high52, high_day = high, day
            if low < low52:
                low52, low_day = low, day
    return Prehistory(series, rng.getstate(), (high52, high_day), (low52, low_day))

"""Order books around the last trade: tick-aligned, best bid < best ask, last price at the touch.

A book is a pure function of the market's last trade and a seed, so the same
trade always shows the same book: after a buy (``BID``) the last price is the
best ask, after a sell (``ASK``) it is the best bid. Deeper levels step away by
whole ticks of their own price band. Aggregated books (``level`` on KRW
markets) round the touch outwards to the level and step by it.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal

from quotation.models import Side
from upbit_sim.catalogue import decimals_of, tick_band
from upbit_sim.records import SimOrderbook, SimOrderbookUnit

__all__ = ["MAX_DEPTH", "build_orderbook", "touch"]

MAX_DEPTH = 30
_RELATIVE_GAP = 4e-5
"""Mean distance between levels as a fraction of price (in ticks, at least one)."""


def _step_up(quote: str, price: float, ticks: int) -> float:
    tick, digits = tick_band(quote, price)
    candidate = round(price + ticks * tick, digits)
    if ticks == 1 or tick_band(quote, candidate)[0] == tick:
        return candidate
    for _ in range(ticks):  # crossing into a coarser band: one tick at a time
        tick, digits = tick_band(quote, price)
        price = round(price + tick, digits)
    return price


def _step_down(quote: str, price: float, ticks: int) -> float:
    tick, digits = tick_band(quote, price * (1 - 1e-12))
    candidate = round(price - ticks * tick, digits)
    if candidate > 0 and (ticks == 1 or tick_band(quote, candidate)[0] == tick):
        return candidate
    for _ in range(ticks):  # crossing into a finer band: one tick at a time
        tick, digits = tick_band(quote, price * (1 - 1e-12))
        lower = round(price - tick, digits)
        if lower <= 0:
            break
        price = lower
    return price


def touch(
    quote: str, last_price: float, last_side: Side, typical_volume: float, rng: random.Random
) -> tuple[float, float, float, float]:
    """The top of the book right after a trade: ``(best_ask, ask_size, best_bid, bid_size)``.

    After a buy (``BID``) the last price is the best ask, after a sell the best bid;
    the other side lies a random number of ticks away (at least one).
    """
    tick = tick_band(quote, last_price)[0]
    gap_mean = max(1.0, _RELATIVE_GAP * last_price / tick)
    spread = 1 + int(rng.expovariate(1.0 / gap_mean)) if gap_mean > 1.0 else 1
    if last_side is Side.BID:
        best_ask, best_bid = last_price, _step_down(quote, last_price, spread)
    else:
        best_bid, best_ask = last_price, _step_up(quote, last_price, spread)
    ask_size = round(typical_volume * 3.0 * rng.random() ** 3, 8) or 1e-8
    bid_size = round(typical_volume * 3.0 * rng.random() ** 3, 8) or 1e-8
    return best_ask, ask_size, best_bid, bid_size


def build_orderbook(
    *,
    market: str,
    best_ask: float,
    best_ask_size: float,
    best_bid: float,
    best_bid_size: float,
    typical_volume: float,
    seed: int,
    timestamp: int,
    count: int = MAX_DEPTH,
    level: float = 0,
) -> SimOrderbook:
    """The ``count``-level book of ``market`` under the given touch (deeper levels seeded)."""
    quote = market.split("-", 1)[0]
    rng = random.Random(seed)
    tick = tick_band(quote, best_ask)[0]
    gap_mean = max(1.0, _RELATIVE_GAP * best_ask / tick)
    asks: list[float] = [best_ask]
    bids: list[float] = [best_bid]
    ask_sizes: list[float] = [best_ask_size]
    bid_sizes: list[float] = [best_bid_size]
    scale = 1.0
    if level > 0:
        digits = decimals_of(Decimal(repr(level)))
        bids = [round(math.floor(best_bid / level) * level, digits)]
        asks = [round(math.ceil(best_ask / level) * level, digits)]
        if asks[0] <= bids[0]:
            asks[0] = round(bids[0] + level, digits)
        for index in range(1, MAX_DEPTH):
            asks.append(round(asks[0] + index * level, digits))
            lower = round(bids[0] - index * level, digits)
            if lower > 0:
                bids.append(lower)
        scale = max(1.0, level / tick) ** 0.5
        ask_sizes, bid_sizes = [], []
    else:
        for _ in range(1, MAX_DEPTH):
            gap = 1 + int(rng.expovariate(1.0 / gap_mean)) if gap_mean > 1.0 else 1
            asks.append(_step_up(quote, asks[-1], gap))
            lower = _step_down(quote, bids[-1], gap)
            if lower < bids[-1]:
                bids.append(lower)
    depth = min(count, len(asks), len(bids))
    size = typical_volume * scale * 3.0
    draw = rng.random
    while len(ask_sizes) < depth:  # a cheap heavy-tailed size: mostly small, sometimes large
        ask_sizes.append(round(size * draw() ** 3, 8) or 1e-8)
        bid_sizes.append(round(size * draw() ** 3, 8) or 1e-8)
    units = tuple(
        SimOrderbookUnit(asks[index], bids[index], ask_sizes[index], bid_sizes[index])
        for index in range(depth)
    )
    return SimOrderbook(
        market=market,
        timestamp=timestamp,
        total_ask_size=round(sum(unit.ask_size for unit in units), 8),
        total_bid_size=round(sum(unit.bid_size for unit in units), 8),
        units=units,
        level=level,
    )

"""The simulated exchange: seeded markets whose random-walk trades drive every other view.

Each trade updates, in one place and under one lock, its market's trade log,
ticker figures (UTC-day open/high/low/acc, rolling 24 h, 52 weeks), one candle
series per interval and the top of its order book; REST and WebSocket answers
are read from that state, so they agree with each other by construction.

Determinism: every market draws from its own random stream (seeded by the
engine seed and the market code) and a scheduler stream picks which market
trades next, so for a seed the sequence of trades (market, price, volume, side)
is always the same, whatever order markets are first read in. Only timestamps
come from the injected clock. A market's history (synthetic daily candles for
about a year, then ``history_seconds`` of trades ending when the engine was
created, at no more than the default pace) is generated the first time the
market is touched, outside the lock, or for all markets by :meth:`preload`.

Listeners (:meth:`MarketEngine.add_listener`) get one :class:`MarketEvent` per
new trade, on the event loop the engine is bound to (the simulator's), after
the trade is visible to readers.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import functools
import itertools
import logging
import math
import random
import threading
from collections.abc import Callable, Sequence

from quotation.clock import Clock, SystemClock
from quotation.models import CandleInterval, Change, Side
from quotation.values import check
from upbit_sim.candles import CandleSeries, bucket_bounds
from upbit_sim.catalogue import MarketInfo, build_catalogue, round_to_tick
from upbit_sim.history import prehistory
from upbit_sim.orderbook import MAX_DEPTH, build_orderbook, touch
from upbit_sim.records import (
    STREAMED_INTERVALS,
    MarketEvent,
    SimCandle,
    SimOrderbook,
    SimTicker,
    SimTrade,
)
from upbit_sim.wire import date_utc

__all__ = ["DEFAULT_HISTORY_SECONDS", "Listener", "MarketEngine"]

logger = logging.getLogger(__name__)

Listener = Callable[[MarketEvent], None]

_DAY_MS = 86_400_000
_CHUNK = 64
"""Trades generated per hold of the engine lock by :meth:`MarketEngine.step`."""
_HISTORY_PACE = 4.0
"""Trades per second (all markets) of the generated history, at most."""
DEFAULT_HISTORY_SECONDS = 12_600.0
"""Seconds of trades generated before the engine starts (3.5 h): enough that a busy market
has 200 one-minute candles, the most a candles request returns, from the first request."""
_SID_PER_MS = 1_000_000
"""``sequential_id = timestamp_ms * 10**6 + market_index * 1000 + n``: unique across markets."""


def _change(price: float, prev_close: float) -> Change:
    if price > prev_close:
        return Change.RISE
    if price < prev_close:
        return Change.FALL
    return Change.EVEN


class _MarketState:
    """Everything mutable about one market (guarded by the engine lock)."""

    def __init__(self, info: MarketInfo, index: int, seed: int) -> None:
        self.info = info
        self.index = index
        self.quote = info.quote
        self.rng = random.Random(f"market/{seed}/{info.market}")
        self.trades: list[SimTrade] = []
        self.times: list[int] = []
        self.sids: list[int] = []
        self.series = {interval: CandleSeries(info.market, interval) for interval in CandleInterval}
        self.series_list = tuple(self.series.values())
        self.last_price = info.start_price
        self.last_ts = 0
        self.seq_ms = -1
        self.seq_n = 0
        # UTC-day figures
        self.day_start = 0
        self.day_end = 0
        self.prev_close = info.start_price
        self.open = info.start_price
        self.high = info.start_price
        self.low = info.start_price
        self.acc_price = 0.0
        self.acc_volume = 0.0
        self.acc_ask = 0.0
        self.acc_bid = 0.0
        # rolling 24 h window over ``trades[win_index:]``
        self.win_index = 0
        self.win_price = 0.0
        self.win_volume = 0.0
        # 52 weeks
        self.high52 = info.start_price
        self.high52_ts = 0
        self.low52 = info.start_price
        self.low52_ts = 0
        self.sigma = info.volatility
        self.book: SimOrderbook | None = None


class MarketEngine:
    """Seeded markets and their trades; every public method is thread-safe."""

    def __init__(
        self,
        seed: int,
        *,
        clock: Clock | None = None,
        history_seconds: float = DEFAULT_HISTORY_SECONDS,
        trades_per_second: float = 10.0,
        prehistory_days: int = 400,
        max_trades_per_market: int = 200_000,
    ) -> None:
        check("history_seconds", history_seconds, at_least=0)
        check("trades_per_second", trades_per_second, above=0)
        check("prehistory_days", prehistory_days, at_least=0, integer=True)
        self.seed = seed
        self._clock: Clock = clock or SystemClock()
        self._history_ms = int(history_seconds * 1000)
        self.trades_per_second = trades_per_second
        self._prehistory_days = prehistory_days
        self._max_trades = max(1000, max_trades_per_market)
        self._catalogue = build_catalogue(seed)
        self._infos = {info.market: info for info in self._catalogue}
        self._index = {info.market: index for index, info in enumerate(self._catalogue)}
        self._codes = [info.market for info in self._catalogue]
        self._cum_weights = list(itertools.accumulate(info.activity for info in self._catalogue))
        self._total_activity = self._cum_weights[-1]
        self._scheduler = random.Random(f"scheduler/{seed}")
        self._lock = threading.RLock()
        self._states: dict[str, _MarketState] = {}
        self._gates: dict[str, threading.Lock] = {}
        self._t0 = self.now_ms()
        self._listeners: tuple[Listener, ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- wiring -------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The engine clock's wall time in ms."""
        return int(self._clock.time() * 1000)

    def bind_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Deliver listener events on ``loop`` from now on; ``None`` calls listeners directly."""
        with self._lock:
            self._loop = loop

    def add_listener(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(event)`` for every new trade; returns a function that removes it."""
        with self._lock:
            self._listeners = (*self._listeners, callback)

        def remove() -> None:
            with self._lock:
                self._listeners = tuple(cb for cb in self._listeners if cb is not callback)

        return remove

    # -- catalogue ----------------------------------------------------------------------------

    def markets(self) -> list[MarketInfo]:
        """Every listed market, KRW first, then BTC, then USDT."""
        return list(self._catalogue)

    def has_market(self, market: str) -> bool:
        return market in self._infos

    def info(self, market: str) -> MarketInfo:
        """The listing of ``market``; ``KeyError`` if it is not listed."""
        return self._infos[market]

    def rate_of(self, market: str) -> float:
        """Mean trades per second of ``market`` while auto-trading."""
        return self.trades_per_second * self._infos[market].activity / self._total_activity

    def preload(self) -> None:
        """Generate every market's history now (about a second) instead of on first use.

        Lazy generation keeps tests fast, but the first touch of a busy market costs tens of
        milliseconds; benchmarks and long-running simulators preload to keep latency flat.
        """
        self._ensure_all(self._codes)

    def ready(self, market: str) -> bool:
        """Whether ``market``'s history exists already (reading it will not generate it)."""
        return market in self._states

    def ensure(self, markets: Sequence[str]) -> None:
        """Generate the history of ``markets`` now if needed (safe from any thread)."""
        self._ensure_all(markets)

    def _history_rate(self, market: str) -> float:
        """Trades per second of ``market`` in the generated history (at most the default pace,
        so a fast-trading simulator does not start by generating hours of dense history)."""
        return self.rate_of(market) * min(1.0, _HISTORY_PACE / self.trades_per_second)

    # -- reads --------------------------------------------------------------------------------

    def ticker(self, market: str) -> SimTicker:
        """The current ticker of ``market`` (``KeyError`` if not listed)."""
        self._ensure(market)
        with self._lock:
            state = self._state(market)
            return self._ticker(state, self.now_ms())

    def tickers(self, markets: Sequence[str]) -> list[SimTicker]:
        for market in markets:
            self._ensure(market)
        with self._lock:
            now = self.now_ms()
            return [self._ticker(self._state(market), now) for market in markets]

    def trades(self, market: str) -> list[SimTrade]:
        """The full trade log of ``market`` (as kept), oldest first."""
        self._ensure(market)
        with self._lock:
            return list(self._state(market).trades)

    def latest_trade(self, market: str) -> SimTrade | None:
        self._ensure(market)
        with self._lock:
            trades = self._state(market).trades
            return trades[-1] if trades else None

    def trades_page(
        self,
        market: str,
        count: int,
        *,
        before_ms: int | None = None,
        since_ms: int | None = None,
        cursor: int | None = None,
    ) -> list[SimTrade]:
        """Up to ``count`` trades, newest first, older than ``before_ms`` and ``cursor``
        (a ``sequential_id``, exclusive) and not older than ``since_ms``."""
        self._ensure(market)
        with self._lock:
            state = self._state(market)
            upper = len(state.trades)
            if before_ms is not None:
                upper = min(upper, bisect.bisect_left(state.times, before_ms))
            if cursor is not None:
                upper = min(upper, bisect.bisect_left(state.sids, cursor))
            lower = 0 if since_ms is None else bisect.bisect_left(state.times, since_ms)
            first = max(lower, upper - count)
            return state.trades[first:upper][::-1]

    def candles(
        self, market: str, interval: CandleInterval, count: int = 1, to_ms: int | None = None
    ) -> list[SimCandle]:
        """Up to ``count`` candles starting strictly before ``to_ms`` (or all), newest first."""
        self._ensure(market)
        with self._lock:
            return self._state(market).series[interval].before(to_ms, count)

    def candle_at(self, market: str, interval: CandleInterval, start_ms: int) -> SimCandle | None:
        self._ensure(market)
        with self._lock:
            return self._state(market).series[interval].at(start_ms)

    def orderbook(self, market: str, count: int = MAX_DEPTH, level: float = 0) -> SimOrderbook:
        """The book of ``market`` now: ``count`` levels, aggregated to ``level`` (0 = native)."""
        self._ensure(market)
        with self._lock:
            state = self._state(market)
            now = self.now_ms()
            if level > 0 or count < MAX_DEPTH:
                return self._build_book(state, now, count, level)
            return dataclasses.replace(self._current_book(state), timestamp=now)

    # -- generation ---------------------------------------------------------------------------

    def step(self, n: int = 1) -> list[SimTrade]:
        """Generate ``n`` trades now on markets picked by activity (deterministic per seed)."""
        return self._trade_now(self._pick(n))

    def _pick(self, n: int) -> list[str]:
        """The next ``n`` markets to trade, from the scheduler's seeded stream."""
        with self._lock:
            draw = self._scheduler.random
            total = self._total_activity
            weights = self._cum_weights
            last = len(self._codes) - 1
            return [
                self._codes[min(last, bisect.bisect_right(weights, draw() * total))]
                for _ in range(n)
            ]

    def step_market(self, market: str, n: int = 1) -> list[SimTrade]:
        """Generate ``n`` trades now on ``market`` (``KeyError`` if not listed)."""
        if market not in self._infos:
            raise KeyError(market)
        return self._trade_now([market] * n)

    async def run_auto_trade(self, stop: asyncio.Event, tick_seconds: float = 0.05) -> None:
        """Trade at ``trades_per_second`` on average until ``stop`` is set (run on the loop)."""
        carry = 0.0
        last = self._clock.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_seconds)
            now = self._clock.monotonic()
            carry += (now - last) * self.trades_per_second
            last = now
            due = min(int(carry), int(self.trades_per_second * 2) + 1)
            carry -= int(carry)
            if due and not stop.is_set():
                picks = self._pick(due)
                missing = [market for market in dict.fromkeys(picks) if market not in self._states]
                if missing:  # generate history off the loop so answers are not held up
                    await asyncio.to_thread(self._ensure_all, missing)
                self._trade_now(picks)

    def _trade_now(self, markets: Sequence[str]) -> list[SimTrade]:
        """Trade ``markets`` in order, a chunk per lock hold so readers are never kept out long.

        Events are queued on the bound loop while the lock is held, so listeners see them
        in trade order whichever thread traded; without a loop they are called right away.
        """
        trades: list[SimTrade] = []
        for market in dict.fromkeys(markets):
            self._ensure(market)
        for first in range(0, len(markets), _CHUNK):
            with self._lock:
                listeners = self._listeners
                now = self.now_ms()
                events: list[MarketEvent] = []
                for market in markets[first : first + _CHUNK]:
                    state = self._state(market)
                    trade = self._new_trade(state, now)
                    trades.append(trade)
                    if listeners:
                        events.append(self._event(state, trade))
                if events:
                    self._publish(listeners, events)
        return trades

    def _publish(self, listeners: tuple[Listener, ...], events: list[MarketEvent]) -> None:
        loop = self._loop
        if loop is None:
            self._dispatch(listeners, events)
            return
        try:
            loop.call_soon_threadsafe(self._dispatch, listeners, events)
        except RuntimeError:  # the loop closed under us: the simulator is stopping
            logger.debug("event loop closed; %d market events dropped", len(events))

    @staticmethod
    def _dispatch(listeners: tuple[Listener, ...], events: list[MarketEvent]) -> None:
        for event in events:
            for callback in listeners:
                try:
                    callback(event)
                except Exception:
                    logger.exception("market event listener %r failed", callback)

    def _event(self, state: _MarketState, trade: SimTrade) -> MarketEvent:
        candles = tuple(
            candle
            for interval in STREAMED_INTERVALS
            if (candle := state.series[interval].latest()) is not None
        )
        return MarketEvent(
            trade=trade,
            ticker=self._ticker(state, trade.timestamp),
            candles=candles,
            book_of=functools.partial(_book_after, state.info, trade, trade.timestamp),
        )

    # -- state --------------------------------------------------------------------------------

    def _ensure(self, market: str) -> None:
        """Generate ``market``'s history if needed, without holding the engine lock.

        A market's history depends only on the seed, the market and the engine's start,
        so it is built outside the lock (readers and traders of other markets go on) and
        published under it; a per-market gate makes a second thread wait instead of
        building it twice.
        """
        if market in self._states:
            return
        info = self._infos[market]
        with self._lock:
            if market in self._states:
                return
            gate = self._gates.setdefault(market, threading.Lock())
        with gate:
            if market in self._states:
                return
            state = self._materialize(info)
            with self._lock:
                self._states[market] = state
                self._gates.pop(market, None)

    def _ensure_all(self, markets: Sequence[str]) -> None:
        for market in markets:
            self._ensure(market)

    def _state(self, market: str) -> _MarketState:
        """The state of ``market`` (call with the lock held, after :meth:`_ensure`)."""
        state = self._states.get(market)
        if state is None:
            state = self._materialize(self._infos[market])
            self._states[market] = state
        return state

    def _materialize(self, info: MarketInfo) -> _MarketState:
        state = _MarketState(info, self._index[info.market], self.seed)
        per_hour = max(1.0, self._history_rate(info.market) * 3600)
        state.sigma = info.volatility / math.sqrt(per_hour)
        history_start = self._t0 - self._history_ms
        first_day = history_start - history_start % _DAY_MS
        self._prehistory(state, first_day)
        state.day_start, state.day_end = first_day, first_day + _DAY_MS
        state.prev_close = state.open = state.high = state.low = state.last_price
        rate = self._history_rate(info.market) / 1000.0
        t = history_start + state.rng.expovariate(rate)
        while t < self._t0:
            self._new_trade(state, int(t))
            t += state.rng.expovariate(rate)
        return state

    def _prehistory(self, state: _MarketState, first_day: int) -> None:
        """Synthetic day/week/month/year candles before the trade history (see ``history``)."""
        if self._prehistory_days == 0:
            return
        past = prehistory(
            self.seed,
            state.info,
            state.rng,
            first_day=first_day,
            days=self._prehistory_days,
            rate=self._history_rate(state.info.market),
        )
        for series in past.series:
            state.series[series.interval] = series.copy()
        state.rng.setstate(past.rng_state)
        state.high52, state.high52_ts = past.high52
        state.low52, state.low52_ts = past.low52
        state.series_list = tuple(state.series.values())

    def _new_trade(self, state: _MarketState, ts: int) -> SimTrade:
        """Draw the next trade of ``state``'s walk at ``ts`` and fold it into every view."""
        rng = state.rng
        info = state.info
        side = Side.BID if rng.random() < 0.5 else Side.ASK
        drift = -0.02 * math.log(state.last_price / info.start_price) * state.sigma
        price = round_to_tick(
            state.quote, state.last_price * math.exp(rng.gauss(drift, state.sigma))
        )
        volume = round(info.typical_volume * rng.lognormvariate(0.0, 1.0), 8) or 1e-8
        best_ask, ask_size, best_bid, bid_size = touch(
            state.quote, price, side, info.typical_volume, rng
        )
        ts = max(ts, state.last_ts)
        if ts == state.seq_ms:
            state.seq_n += 1
        else:
            state.seq_ms, state.seq_n = ts, 0
        sid = ts * _SID_PER_MS + state.index * 1000 + state.seq_n % 1000
        if ts >= state.day_end:
            state.day_start, state.day_end = bucket_bounds(CandleInterval.DAY, ts)
            state.prev_close = state.last_price
            state.open = state.high = state.low = price
            state.acc_price = state.acc_volume = state.acc_ask = state.acc_bid = 0.0
        amount = price * volume
        trade = SimTrade(
            market=info.market,
            sequential_id=sid,
            timestamp=ts,
            trade_price=price,
            trade_volume=volume,
            ask_bid=side,
            prev_closing_price=state.prev_close,
            change_price=round(price - state.prev_close, 10),
            change=_change(price, state.prev_close),
            best_ask_price=best_ask,
            best_ask_size=ask_size,
            best_bid_price=best_bid,
            best_bid_size=bid_size,
        )
        if not state.trades:
            state.open = state.high = state.low = price
        state.trades.append(trade)
        state.times.append(ts)
        state.sids.append(sid)
        state.last_price, state.last_ts = price, ts
        state.high = max(state.high, price)
        state.low = min(state.low, price)
        state.acc_price += amount
        state.acc_volume += volume
        if side is Side.ASK:
            state.acc_ask += volume
        else:
            state.acc_bid += volume
        state.win_price += amount
        state.win_volume += volume
        if price > state.high52:
            state.high52, state.high52_ts = price, ts
        if price < state.low52:
            state.low52, state.low52_ts = price, ts
        for series in state.series_list:
            series.add_trade(ts, price, volume, amount)
        state.book = None
        if len(state.trades) > self._max_trades:
            self._trim(state)
        return trade

    def _trim(self, state: _MarketState) -> None:
        drop = len(state.trades) // 10
        del state.trades[:drop], state.times[:drop], state.sids[:drop]
        state.win_index -= drop
        if state.win_index < 0:
            state.win_index = 0
            state.win_price = sum(t.trade_price * t.trade_volume for t in state.trades)
            state.win_volume = sum(t.trade_volume for t in state.trades)

    def _evict_window(self, state: _MarketState, now: int) -> None:
        horizon = now - _DAY_MS
        trades = state.trades
        while state.win_index < len(trades) and trades[state.win_index].timestamp <= horizon:
            old = trades[state.win_index]
            state.win_price -= old.trade_price * old.trade_volume
            state.win_volume -= old.trade_volume
            state.win_index += 1

    def _ticker(self, state: _MarketState, now: int) -> SimTicker:
        self._evict_window(state, now)
        price = state.last_price
        if now >= state.day_end:  # no trade yet today: a fresh UTC day at the last price
            prev_close = opening = high = low = price
            acc_price = acc_volume = acc_ask = acc_bid = 0.0
        else:
            prev_close, opening, high, low = state.prev_close, state.open, state.high, state.low
            acc_price, acc_volume = state.acc_price, state.acc_volume
            acc_ask, acc_bid = state.acc_ask, state.acc_bid
        last = state.trades[-1] if state.trades else None
        signed = round(price - prev_close, 10)
        rate = round(signed / prev_close, 10) if prev_close else 0.0
        return SimTicker(
            market=state.info.market,
            trade_timestamp=last.timestamp if last else self._t0,
            opening_price=opening,
            high_price=high,
            low_price=low,
            trade_price=price,
            prev_closing_price=prev_close,
            change=_change(price, prev_close),
            change_price=abs(signed),
            change_rate=abs(rate),
            signed_change_price=signed,
            signed_change_rate=rate,
            trade_volume=last.trade_volume if last else 0.0,
            acc_trade_price=acc_price,
            acc_trade_price_24h=max(0.0, state.win_price),
            acc_trade_volume=acc_volume,
            acc_trade_volume_24h=max(0.0, state.win_volume),
            highest_52_week_price=state.high52,
            highest_52_week_date=date_utc(state.high52_ts or state.day_start),
            lowest_52_week_price=state.low52,
            lowest_52_week_date=date_utc(state.low52_ts or state.day_start),
            timestamp=max(now, last.timestamp if last else now),
            ask_bid=last.ask_bid if last else Side.BID,
            acc_ask_volume=acc_ask,
            acc_bid_volume=acc_bid,
        )

    def _current_book(self, state: _MarketState) -> SimOrderbook:
        if state.book is None:
            last = state.trades[-1] if state.trades else None
            state.book = self._build_book(state, last.timestamp if last else self._t0)
        return state.book

    def _build_book(
        self, state: _MarketState, timestamp: int, count: int = MAX_DEPTH, level: float = 0
    ) -> SimOrderbook:
        info = state.info
        if state.trades:
            return _book_after(info, state.trades[-1], timestamp, count, level)
        # a market that has not traded yet: quote around its start price
        rng = random.Random(f"book/{self.seed}/{info.market}")
        top = touch(state.quote, state.last_price, Side.BID, info.typical_volume, rng)
        return build_orderbook(
            market=info.market,
            best_ask=top[0],
            best_ask_size=top[1],
            best_bid=top[2],
            best_bid_size=top[3],
            typical_volume=info.typical_volume,
            seed=state.index,
            timestamp=timestamp,
            count=count,
            level=level,
        )


def _book_after(
    info: MarketInfo, trade: SimTrade, timestamp: int, count: int = MAX_DEPTH, level: float = 0
) -> SimOrderbook:
    """The book of ``info``'s market right after ``trade``: a pure function of the trade."""
    return build_orderbook(
        market=info.market,
        best_ask=trade.best_ask_price,
        best_ask_size=trade.best_ask_size,
        best_bid=trade.best_bid_price,
        best_bid_size=trade.best_bid_size,
        typical_volume=info.typical_volume,
        seed=trade.sequential_id,
        timestamp=timestamp,
        count=count,
        level=level,
    )

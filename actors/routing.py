"""The smart router's rules: which channel answers a request, and which markets to subscribe.

Pure: no I/O, no clock of their own; every function takes ``now`` (monotonic seconds), so
each rule is tested with plain numbers. The router (:mod:`actors.smart_router`) and the
host's facade (through :mod:`actors.snapshots`) only carry them out.

Channel choice, one rule for the whole request (simple and explainable)::

    snapshots (tickers, order books)
        every market has a WebSocket entry received no longer than max_cache_age
        ago and stamped by the exchange no longer than max_cache_age
        before the wall clock (exchange lag, a replay after a
        reconnect), and the router's WebSocket is healthy       → WEBSOCKET
        otherwise                                               → REST (all markets, one call)
    series (recent trades; 1-minute candles)
        the WebSocket is healthy, the market's stream was heard from
        within max_cache_age, the request ends now (no ``to``)
        and the cache holds at least ``count`` items            → WEBSOCKET
        otherwise                                               → REST

A series cache holds only what arrived since the market was subscribed (or since its last
unfillable hole), so "holds enough" means the newest ``count`` items are all there.

Demand (which markets are worth a WebSocket subscription)::

    hot      at least hot_threshold requests within the last hot_window seconds
    kept     a subscribed market stays until cold_after seconds pass without a request
             or a read of it from the cache (hysteresis: a market does not flap in and out
             at the threshold; a market the host reads only from the cache, in its own
             thread, never reaches the router, so those reads count as demand too)
    bounded  at most max_hot_markets; new hot markets take free places, busiest first

Coalescing: a REST answer is reused for an identical request only while it is at most
``coalesce_window`` seconds old (:func:`coalesces`): the requests queued behind that call.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from quotation.values import check

__all__ = [
    "Channel",
    "DataKind",
    "Demand",
    "RoutingRules",
    "choose_channel",
    "choose_series_channel",
    "coalesces",
    "is_current",
    "is_fresh",
]


class Channel(enum.Enum):
    """Where the smart router takes an answer from."""

    REST = "rest"
    WEBSOCKET = "websocket"


class DataKind(enum.Enum):
    """What a request reads: two snapshots (one entry per market) and two series."""

    TICKER = "ticker"
    ORDERBOOK = "orderbook"
    TRADES = "trades"
    CANDLES_1M = "candles_1m"

    @property
    def is_series(self) -> bool:
        return self in (DataKind.TRADES, DataKind.CANDLES_1M)


@dataclass(frozen=True, slots=True)
class RoutingRules:
    """The router's thresholds; every default is stated here once."""

    max_cache_age: float = 2.0
    """Seconds a WebSocket entry counts as fresh (tickers and order books update several
    times a second on a traded market, so 2 s is a quiet market or a broken stream)."""
    hot_threshold: int = 3
    """Requests for a market within ``hot_window`` that make it worth subscribing."""
    hot_window: float = 10.0
    """The sliding window (seconds) ``hot_threshold`` is counted in."""
    max_hot_markets: int = 50
    """Most markets subscribed at once (one connection carries them all)."""
    cold_after: float = 300.0
    """Seconds without a request after which a subscribed market is dropped."""
    coalesce_window: float = 0.1
    """Seconds a REST answer is reused for identical requests queued behind it."""

    def __post_init__(self) -> None:
        check("max_cache_age", self.max_cache_age, above=0)
        check("hot_threshold", self.hot_threshold, at_least=1, integer=True)
        check("hot_window", self.hot_window, above=0)
        check("max_hot_markets", self.max_hot_markets, at_least=0, integer=True)
        check("cold_after", self.cold_after, above=0)
        check("coalesce_window", self.coalesce_window, at_least=0)


def is_fresh(
    received_at: float | None, ws_healthy: bool, now: float, rules: RoutingRules
) -> bool:
    """Whether a WebSocket entry received at ``received_at`` (``None``: none) may answer at
    ``now``: the WebSocket is healthy and the entry is at most ``max_cache_age`` old."""
    if not ws_healthy or received_at is None:
        return False
    return 0 <= now - received_at <= rules.max_cache_age


def is_current(stamped_at: float | None, wall: float, rules: RoutingRules) -> bool:
    """Whether an entry the exchange stamped at ``stamped_at`` (UTC epoch seconds; ``None``:
    none) is recent enough at wall time ``wall``: at most ``max_cache_age`` old (a stamp
    ahead of ``wall``, clock skew, counts as just stamped)."""
    return stamped_at is not None and wall - stamped_at <= rules.max_cache_age


def choose_channel(
    kind: DataKind,
    markets: Iterable[str],
    received_at: Mapping[str, float],
    *,
    ws_healthy: bool,
    now: float,
    rules: RoutingRules,
    stamped_at: Mapping[str, float] | None = None,
    wall: float | None = None,
) -> Channel:
    """The channel of a ticker or order-book request: WEBSOCKET only if every market is fresh.

    ``received_at`` maps a market to when (monotonic seconds) its WebSocket entry of ``kind``
    arrived; a market absent from it has none. With ``stamped_at`` (a market to its entry's
    exchange stamp, UTC epoch seconds) and ``wall`` (the wall time of ``now``), each entry
    must also be :func:`is_current`; without them only receive times count. An empty request
    goes to REST (the caller never sends one; REST then says what is wrong). ``ValueError``
    for a series ``kind`` (:func:`choose_series_channel` decides those).
    """
    if kind.is_series:
        raise ValueError(f"choose_channel decides snapshots, not {kind.value}")
    wanted = tuple(markets)
    if not wanted:
        return Channel.REST
    for market in wanted:
        if not is_fresh(received_at.get(market), ws_healthy, now, rules):
            return Channel.REST
        if stamped_at is not None and wall is not None and not is_current(
                stamped_at.get(market), wall, rules):
            return Channel.REST
    return Channel.WEBSOCKET


def choose_series_channel(
    kind: DataKind,
    count: int,
    cached: int,
    heard_at: float | None,
    *,
    ws_healthy: bool,
    now: float,
    rules: RoutingRules,
    ends_now: bool = True,
) -> Channel:
    """The channel of a trades or 1-minute-candles request of ``count`` items.

    ``cached`` is how many items the WebSocket cache holds for the market (contiguous, since
    its subscription or last unfillable hole); ``heard_at`` when (monotonic) the market's
    stream last delivered anything (``None``: never). A request for history
    (``ends_now=False``, a candle ``to``) always goes to REST. ``ValueError`` for a snapshot
    ``kind``.
    """
    if not kind.is_series:
        raise ValueError(f"choose_series_channel decides series, not {kind.value}")
    if not ends_now or count < 1 or cached < count:
        return Channel.REST
    return Channel.WEBSOCKET if is_fresh(heard_at, ws_healthy, now, rules) else Channel.REST


def coalesces(answered_at: float, now: float, rules: RoutingRules) -> bool:
    """Whether a REST answer received at ``answered_at`` may answer an identical request."""
    return 0 <= now - answered_at <= rules.coalesce_window


class Demand:
    """Requests per market in a sliding window, and the markets worth subscribing.

    A small state object owned by one actor (not thread-safe). Memory is bounded: per market
    at most ``hot_threshold`` request times are kept, and a market neither subscribed nor
    asked for within ``max(hot_window, cold_after)`` is forgotten by :meth:`hot_markets`.
    """

    __slots__ = ("_last", "_recent", "_rules", "_subscribed")

    def __init__(self, rules: RoutingRules) -> None:
        self._rules = rules
        self._recent: dict[str, deque[float]] = {}
        self._last: dict[str, float] = {}
        self._subscribed: tuple[str, ...] = ()

    def record(self, markets: Iterable[str], now: float) -> None:
        """One request for ``markets`` at ``now``."""
        limit = self._rules.hot_threshold
        for market in markets:
            times = self._recent.get(market)
            if times is None:
                times = self._recent[market] = deque(maxlen=limit)
            times.append(now)
            self._last[market] = now

    def count(self, market: str, now: float) -> int:
        """Requests for ``market`` within the window ending at ``now`` (at most the threshold)."""
        since = now - self._rules.hot_window
        return sum(1 for at in self._recent.get(market, ()) if at >= since)

    def is_hot(self, market: str, now: float) -> bool:
        return self.count(market, now) >= self._rules.hot_threshold

    def hot_markets(self, now: float, read_at: Mapping[str, float] | None = None
                    ) -> tuple[str, ...]:
        """The markets to subscribe at ``now``, in the order they became hot; updates state.

        Subscribed markets asked for, or read from the cache (``read_at``: a market to when
        it was last read, monotonic), within ``cold_after`` stay; the rest are dropped; hot
        markets are added, most recently asked first, while places are free.
        """
        rules = self._rules
        never = -float("inf")
        reads: Mapping[str, float] = read_at if read_at is not None else {}
        kept = [m for m in self._subscribed
                if now - max(self._last.get(m, never), reads.get(m, never)) < rules.cold_after]
        free = rules.max_hot_markets - len(kept)
        if free > 0:
            candidates = sorted(
                (m for m in self._recent if m not in kept and self.is_hot(m, now)),
                key=lambda m: (-self._last[m], m),
            )
            kept.extend(candidates[:free])
        self._subscribed = tuple(kept[: rules.max_hot_markets])
        self._forget(now)
        return self._subscribed

    @property
    def subscribed(self) -> tuple[str, ...]:
        """The set :meth:`hot_markets` returned last."""
        return self._subscribed

    def _forget(self, now: float) -> None:
        horizon = max(self._rules.hot_window, self._rules.cold_after)
        keep = set(self._subscribed)
        for market in [m for m, at in self._last.items() if m not in keep and now - at > horizon]:
            del self._last[market]
            self._recent.pop(market, None)

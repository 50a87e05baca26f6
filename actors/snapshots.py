"""What the smart router's WebSocket knows, published for readers on any thread without a lock.

:class:`SnapshotBoard` holds one immutable :class:`Snapshot`: per market the latest ticker and
order book with their receive times, the recent trades (contiguous: since the market was
subscribed or since its last unfillable hole), when the market's stream was last heard
from, and whether the router's WebSocket is healthy. Writers (the router's WebSocket
consumer thread and the router actor) build a new snapshot and swap one reference
(copy-on-write, under a writers' lock); readers take the reference once and never lock, so
a host's thread can answer a fresh price without a hop to the actor.

Readers apply the same rules as the router (:mod:`actors.routing`): :meth:`SnapshotBoard.answer`
gives the reply the router would give from its WebSocket side, or ``None`` when the router
would go to REST (then ask the router). Receive times are the router's monotonic clock when
its consumer took the item from the client's delivery thread (at most one delivery batch
after the socket read). A ticker or order book is fresh only if it is both received and
stamped by the exchange within ``max_cache_age``: the exchange age is judged on the board's
wall clock (``clock.time()``, read once per answer), so an item the exchange stamped long ago
and delivered just now (exchange lag, a replay after a reconnect) is not served as fresh.
An item stamped ahead of the wall clock (clock skew) counts as just stamped.

Demand the router never sees: a host's read answered here (in its own thread) is noted with
:meth:`SnapshotBoard.note_read`, one plain dict store per market, no lock (a float written
racily: the router only needs a recent one); the router reads :attr:`SnapshotBoard.read_at`
when it evaluates demand, so a market read only from the cache is not dropped as cold.

One writer at a time: a router instance takes a writer token with :meth:`SnapshotBoard.claim`
when it starts (the board is emptied for it) and passes it to every write; a newer claim
supersedes the older token, whose writes are then ignored (one int compare). So an instance
its supervisor abandoned (hung past its liveness deadline) that unblocks later cannot clear
its successor's markets and entries when it closes, and its WebSocket client, still running
until it closes, cannot publish over its successor's. ``writer=None`` writes unconditionally
(a board with a single writer, and tests).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, TypeVar

from actors.messages import OrderbookRequest, Reply, Request, Source, TickerRequest, TradesRequest
from actors.routing import Channel, DataKind, RoutingRules, choose_series_channel
from quotation.clock import Clock, SystemClock
from quotation.models import Orderbook, Ticker, Trade, TradeGap
from quotation.values import check
from quotation.websocket.cache import Cached, StreamItem

__all__ = ["DEFAULT_MAX_TRADES", "Snapshot", "SnapshotBoard", "Stamped"]

V = TypeVar("V")

DEFAULT_MAX_TRADES = 500
"""Trades kept per market: Upbit's largest ``trades/ticks`` count, so any trades request can
be answered from a full window."""

@dataclass(frozen=True, slots=True)
class Stamped(Cached[V]):
    """A board entry: the item, when it was received (monotonic) and, computed once when it
    is published, the exchange time it stands for (UTC epoch seconds), so that a reader's
    answer costs one lookup per market."""

    produced_at: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything on the board at one moment (immutable; mappings are read-only views)."""

    tickers: Mapping[str, Stamped[Ticker]]
    orderbooks: Mapping[str, Stamped[Orderbook]]
    trades: Mapping[str, tuple[Trade, ...]]
    """Per market, oldest first (arrival order), contiguous."""
    heard_at: Mapping[str, float]
    """When anything of the market last arrived (monotonic)."""
    markets: frozenset[str]
    """The markets the router subscribes; items of others are ignored."""
    ws_healthy: bool

    @classmethod
    def empty(cls) -> Snapshot:
        """Nothing known, no market accepted, the WebSocket not healthy."""
        nothing: Mapping[str, Any] = MappingProxyType({})
        return cls(nothing, nothing, nothing, nothing, frozenset(), False)


class SnapshotBoard:
    """The router's published WebSocket knowledge; see the module docstring."""

    def __init__(self, *, max_trades: int = DEFAULT_MAX_TRADES, clock: Clock | None = None
                 ) -> None:
        check("max_trades", max_trades, at_least=1, integer=True)
        self._max_trades = max_trades
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._write = threading.Lock()
        self._snapshot = Snapshot.empty()
        self._writer = 0
        self._reads: dict[str, float] = {}
        self._read_view: Mapping[str, float] = MappingProxyType(self._reads)

    # -- reading (any thread, no lock) ---------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot (one reference read)."""
        return self._snapshot

    @property
    def ws_healthy(self) -> bool:
        return self._snapshot.ws_healthy

    def answer(self, request: Request, now: float, rules: RoutingRules) -> Reply | None:
        """The router's WebSocket answer to ``request`` at ``now``, or ``None`` (ask it).

        Tickers and order books when every market is fresh; trades when the window holds
        ``count`` and the market's stream is fresh; candles never (the router does not
        subscribe candles: a live candle stream cannot tell a missed bucket from a quiet one).
        """
        if isinstance(request, TickerRequest | OrderbookRequest):
            found = self.fresh(request, now, rules.max_cache_age)
            if found is None:
                return None
            return Reply(found[0], Source.SMART_ROUTER_WEBSOCKET, found[1])
        snap = self._snapshot
        if isinstance(request, TradesRequest):
            trades = snap.trades.get(request.market, ())
            channel = choose_series_channel(
                DataKind.TRADES, request.count, len(trades), snap.heard_at.get(request.market),
                ws_healthy=snap.ws_healthy, now=now, rules=rules)
            if channel is Channel.REST:
                return None
            newest_first = tuple(reversed(trades[-request.count:]))
            return Reply.of(newest_first, Source.SMART_ROUTER_WEBSOCKET)
        return None

    def fresh(self, request: TickerRequest | OrderbookRequest, now: float, max_cache_age: float
              ) -> tuple[tuple[Ticker, ...] | tuple[Orderbook, ...], float] | None:
        """The items and exchange stamp (the OLDEST item's, as :func:`~actors.messages.produced_at`)
        of the router's WebSocket answer to a snapshot ``request`` at ``now``, or ``None``.

        The hot path of :meth:`answer` for a host's thread: the rule of
        :func:`~actors.routing.choose_channel` (every market has an entry received within
        ``max_cache_age`` before ``now`` and stamped by the exchange within ``max_cache_age``
        before the board's wall clock, and the WebSocket is healthy; an empty request never)
        carried out with one lookup per market and the stamps computed at publish time.
        """
        snap = self._snapshot
        if not snap.ws_healthy:
            return None
        entries: Mapping[str, Stamped[Any]] = (
            snap.tickers if isinstance(request, TickerRequest) else snap.orderbooks)
        markets = request.markets
        stamped_after = self._clock.time() - max_cache_age
        if len(markets) == 1:
            entry = entries.get(markets[0])
            if (entry is None or not 0 <= now - entry.received_at <= max_cache_age
                    or entry.produced_at < stamped_after):
                return None
            return (entry.value,), entry.produced_at
        if not markets:
            return None
        items = []
        oldest = float("inf")
        for market in markets:
            entry = entries.get(market)
            if (entry is None or not 0 <= now - entry.received_at <= max_cache_age
                    or entry.produced_at < stamped_after):
                return None
            items.append(entry.value)
            oldest = min(oldest, entry.produced_at)
        return tuple(items), oldest

    def note_read(self, markets: tuple[str, ...], now: float) -> None:
        """A host read ``markets`` from the board at ``now`` (monotonic, the router's clock):
        one dict store per market, no lock (any thread; the last writer wins)."""
        reads = self._reads
        for market in markets:
            reads[market] = now

    @property
    def read_at(self) -> Mapping[str, float]:
        """A market to when a host last read it from the board (a live read-only view)."""
        return self._read_view

    # -- writing (the router's consumer thread and the router) ---------------------------

    def claim(self) -> int:
        """A new writer token, superseding every earlier one; the board starts empty for it."""
        with self._write:
            self._writer += 1
            self._snapshot = Snapshot.empty()
            self._reads.clear()
            return self._writer

    def owns(self, writer: int | None) -> bool:
        """Whether writes with ``writer`` take effect (``None``: always)."""
        return writer is None or writer == self._writer

    def publish(self, items: Iterable[StreamItem], received_at: float, *,
                writer: int | None = None) -> int:
        """Put ``items`` (oldest first) on the board as received at ``received_at``.

        Items of markets not subscribed are ignored; a :class:`TradeGap` empties its
        market's trade window (what follows is contiguous again). Returns how many were taken
        (0 from a superseded ``writer``).
        """
        with self._write:
            if writer is not None and writer != self._writer:
                return 0
            snap = self._snapshot
            tickers = dict(snap.tickers)
            orderbooks = dict(snap.orderbooks)
            trades: dict[str, list[Trade]] = {}
            heard = dict(snap.heard_at)
            taken = 0
            for item in items:
                market = item.market
                if market not in snap.markets:
                    continue
                if isinstance(item, Ticker):
                    tickers[market] = Stamped(item, received_at, item.timestamp.timestamp())
                elif isinstance(item, Orderbook):
                    orderbooks[market] = Stamped(item, received_at, item.timestamp.timestamp())
                elif isinstance(item, Trade):
                    window = trades.get(market)
                    if window is None:
                        window = trades[market] = list(snap.trades.get(market, ()))
                    window.append(item)
                elif isinstance(item, TradeGap):
                    trades[market] = []
                else:
                    continue  # candles: not kept on the board
                heard[market] = received_at
                taken += 1
            if not taken:
                return 0
            merged = dict(snap.trades)
            for market, window in trades.items():
                merged[market] = tuple(window[-self._max_trades:])
            self._snapshot = replace(
                snap,
                tickers=MappingProxyType(tickers),
                orderbooks=MappingProxyType(orderbooks),
                trades=MappingProxyType(merged),
                heard_at=MappingProxyType(heard),
            )
            return taken

    def set_markets(self, markets: Iterable[str], *, writer: int | None = None) -> None:
        """Accept items of ``markets`` only; everything known of the others is forgotten
        (a market subscribed again starts a new trade window). Ignored from a superseded
        ``writer``."""
        wanted = frozenset(markets)
        with self._write:
            if writer is not None and writer != self._writer:
                return
            snap = self._snapshot

            self._snapshot = replace(
                snap,
                tickers=_only(snap.tickers, wanted),
                orderbooks=_only(snap.orderbooks, wanted),
                trades=_only(snap.trades, wanted),
                heard_at=_only(snap.heard_at, wanted),
                markets=wanted,
            )
            for market in [m for m in list(self._reads) if m not in wanted]:
                self._reads.pop(market, None)  # a racing note_read may put it back: harmless

    def set_ws_healthy(self, healthy: bool, *, writer: int | None = None) -> None:
        """Publish whether the router's WebSocket is healthy (unhealthy: nothing is fresh).
        Ignored from a superseded ``writer``."""
        with self._write:
            if writer is not None and writer != self._writer:
                return
            if self._snapshot.ws_healthy != healthy:
                self._snapshot = replace(self._snapshot, ws_healthy=healthy)

    def clear(self, *, writer: int | None = None) -> None:
        """Forget everything (the router stopped): every read is ``None`` until it publishes.
        Ignored from a superseded ``writer``."""
        with self._write:
            if writer is not None and writer != self._writer:
                return
            self._snapshot = Snapshot.empty()


def _only(mapping: Mapping[str, V], markets: frozenset[str]) -> Mapping[str, V]:
    return MappingProxyType({m: v for m, v in mapping.items() if m in markets})


"""The WebSocket fallback actor: stands by idle, streams the trading symbols while activated.

:class:`WsFallback` builds its :class:`~quotation.websocket.WebSocketClient` in ``on_start``
with NO subscriptions, so it stays IDLE: no connection, no connect slot (docs/websocket.md,
"Standing by"). :class:`~actors.messages.Activate` subscribes ticker, trade, 1-minute candles
and orderbook for the given symbols; :class:`~actors.messages.Deactivate` empties the set, a
deliberate close (not a failure), and the client is IDLE again. ``on_stop`` and
``on_failure`` stop the client (its threads and socket), so nothing outlives the actor.

The realtime cache and the ``ws_message`` fault point. The client has no hook before its
own cache, only a consumer callback after it (on its delivery thread). The actor registers
one that tells itself each batch (:class:`~actors.messages.StreamBatch`, stamped with the
client's monotonic clock at hand-over), and on its own thread passes every item through
``ws_message`` into a cache of its own (a :class:`~quotation.websocket.StreamCache` bounded
like the client's). Requests are answered from that cache, so a message a fault spoiled
(``corrupt`` → FormatError, counted ``messages_malformed``) or failed (``raise``, counted
``messages_failed``) is never served, and a ``crash``, ``hang`` or ``delay`` strikes the
actor, as the fault contract says for a tell point. At most :data:`MAX_PENDING_BATCHES`
batches wait in its inbox; beyond that batches are dropped and counted (``dropped``), so a
hung actor cannot grow without bound. The cache is emptied on Deactivate and on an
Activate that changes the symbols: data from before a pause would hide the hole.

Messages (asked; :mod:`actors.messages`)::

    Activate(symbols) / Deactivate()      → None
    Listen(listener)                      → None; ``listener`` then gets every item admitted
                                            to the cache (on the actor's thread, in order;
                                            it must not block; what it raises is logged)
    TickerRequest, OrderbookRequest       → Reply(source=ws_fallback), stamped by the oldest
                                            cached snapshot's exchange timestamp
    TradesRequest                         → the newest ``count`` cached trades, newest first
    CandlesRequest (1m only)              → the newest ``count`` cached 1-minute candles
                                            (before ``to`` if given), oldest first; a series
                                            is stamped by its newest exchange time
    HealthRequest                         → WsHealth (client.status(), active, symbols, ...)
    anything else                         → TypeError naming it

A market, kind or interval the cache cannot answer in full is :class:`~actors.errors.NotCached`
(never an empty or short reply presented as data): not (yet) received, fewer trades or
candles cached than asked, a trade window across an unfilled gap (``TradeGap``), or a candle
interval other than 1 minute. Fault points (actor ``ws_fallback``): ``start``, ``request``,
``normalize`` (on the cached items before the reply; ``corrupt`` → ``FormatError`` to the
asker), ``ws_message`` (above). A crash at an ask point goes to the asker and the actor dies
of it (``CrashNow``).

Logging (logger ``actors.ws_fallback``): INFO on start, stop, activate and deactivate; DEBUG
for items a fault kept out of the cache.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any

import pykka

from actors.errors import NotCached
from actors.faults import ActorName, CrashNow, FaultBoard, FaultPoint, InjectedCrash, InjectedFault
from actors.messages import (
    Activate,
    CandlesRequest,
    Deactivate,
    HealthRequest,
    Listen,
    Listener,
    MarketData,
    OrderbookRequest,
    Reply,
    Request,
    Source,
    StreamBatch,
    TickerRequest,
    TradesRequest,
    WsHealth,
)
from actors.revalidate import checked
from quotation.clock import Clock, SystemClock
from quotation.errors import FormatError
from quotation.models import Candle, CandleInterval, Orderbook, Ticker, Trade
from quotation.websocket import (
    DataType,
    StreamCache,
    StreamItem,
    Subscription,
    WebSocketClient,
    WebSocketConfig,
)
from quotation.websocket.cache import Cached
from quotation.websocket.gapfill import TradeSource

__all__ = ["MAX_PENDING_BATCHES", "STOP_TIMEOUT", "STREAMED", "WsFallback"]

logger = logging.getLogger(__name__)

_ME = ActorName.WS_FALLBACK

STREAMED: tuple[DataType, ...] = (
    DataType.TICKER, DataType.TRADE, DataType.CANDLE_1M, DataType.ORDERBOOK)
"""What an activated fallback subscribes for its symbols."""

MAX_PENDING_BATCHES = 1_000
"""Most WebSocket batches waiting in the actor's inbox; later ones are dropped and counted."""

STOP_TIMEOUT = 5.0
"""Real seconds ``on_stop``/``on_failure`` give each client thread to end."""


class WsFallback(pykka.ThreadingActor):
    """The direct WebSocket client as an actor: idle until activated, a realtime cache."""

    def __init__(
        self,
        ws_config: WebSocketConfig,
        *,
        trade_source: TradeSource | None = None,
        faults: FaultBoard | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self._config = replace(ws_config, subscriptions=())  # stands by until Activate
        self._trade_source = trade_source
        self._faults = faults if faults is not None else FaultBoard()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._cache = StreamCache(
            max_trades=ws_config.recent_trades, max_candles=ws_config.candles_per_interval)
        self._client: WebSocketClient | None = None
        self._remove_consumer: Callable[[], None] | None = None
        self._symbols: tuple[str, ...] = ()
        self._listener: Listener | None = None
        self._last_item_at: float | None = None
        self._failed = 0
        self._malformed = 0
        self._lock = threading.Lock()  # the two below are shared with the delivery thread
        self._pending = 0
        self._dropped = 0

    @property
    def client(self) -> WebSocketClient | None:
        """Its WebSocket client while started; ``None`` before ``on_start`` and once stopped."""
        return self._client

    # -- lifecycle -------------------------------------------------------------------------

    def on_start(self) -> None:
        self._faults.at(_ME, FaultPoint.START)
        client = WebSocketClient(self._config, clock=self._clock, trade_source=self._trade_source)
        self._remove_consumer = client.add_consumer(self._hand_over)
        self._client = client
        client.start()
        logger.info("WebSocket fallback started (standing by)")

    def on_stop(self) -> None:
        self._stop_client()
        logger.info("WebSocket fallback stopped")

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop_client()

    def _stop_client(self) -> None:
        client, self._client = self._client, None
        remove, self._remove_consumer = self._remove_consumer, None
        if remove is not None:
            remove()
        if client is not None and not client.stop(STOP_TIMEOUT):
            logger.warning("WebSocket fallback: a client thread outlived stop(%s)", STOP_TIMEOUT)

    def _hand_over(self, items: tuple[StreamItem, ...]) -> None:
        """The client's consumer (delivery thread): tell the actor, never wait for it."""
        with self._lock:
            if self._pending >= MAX_PENDING_BATCHES:
                self._dropped += 1
                return
            self._pending += 1
        try:
            self.actor_ref.tell(StreamBatch(items, self._clock.monotonic()))
        except pykka.ActorDeadError:
            with self._lock:
                self._pending -= 1

    # -- messages --------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        match message:
            case StreamBatch():
                self._admit(message)
                return None
            case TickerRequest() | CandlesRequest() | TradesRequest() | OrderbookRequest():
                return self._answer(message)
            case Activate(symbols):
                self._activate(symbols)
                return None
            case Deactivate():
                self._deactivate()
                return None
            case Listen(listener):
                self._listener = listener
                return None
            case HealthRequest():
                return self._health()
            case CrashNow():
                raise message.error()
            case _:
                raise TypeError(f"WsFallback does not take {type(message).__name__}")

    def _activate(self, symbols: tuple[str, ...]) -> None:
        subscriptions = [Subscription.of(kind, symbols) for kind in STREAMED]  # InvalidRequest
        if tuple(symbols) == self._symbols:
            return
        self._started().set_subscriptions(subscriptions)
        self._cache.clear()
        self._symbols = tuple(symbols)
        logger.info("WebSocket fallback activated for %s", ", ".join(symbols))

    def _deactivate(self) -> None:
        if not self._symbols:
            return
        self._started().set_subscriptions([])
        self._cache.clear()
        self._symbols = ()
        logger.info("WebSocket fallback deactivated")

    def _admit(self, batch: StreamBatch) -> None:
        """Each item through ``ws_message`` into the cache (a tell: a crash kills the actor)."""
        with self._lock:
            self._pending -= 1
        if not self._symbols:
            return  # left over from before Deactivate
        admitted_items: list[StreamItem] = []
        for item in batch.items:
            try:
                admitted = checked(self._faults, _ME, FaultPoint.WS_MESSAGE, (item,))
            except InjectedFault as error:
                self._failed += 1
                logger.debug("WebSocket item failed at ws_message: %s", error)
                continue
            except FormatError as error:
                self._malformed += 1
                logger.debug("WebSocket item malformed at ws_message: %s", error)
                continue
            self._cache.put(admitted[0], batch.received_at)
            self._last_item_at = batch.received_at
            admitted_items.append(admitted[0])
        listener = self._listener
        if listener is not None and admitted_items:
            try:
                listener(tuple(admitted_items))
            except Exception:  # the host's side must never crash the fallback
                logger.exception("WebSocket fallback: the stream listener failed")
    def _answer(self, request: Request) -> Reply:
        try:
            self._faults.at(_ME, FaultPoint.REQUEST)
            items = checked(self._faults, _ME, FaultPoint.NORMALIZE, self._read(request))
        except InjectedCrash as crash:
            self.actor_ref.tell(CrashNow.of(crash))
            raise
        return Reply.of(items, Source.WS_FALLBACK)

    def _read(self, request: Request) -> list[MarketData]:
        match request:
            case TickerRequest(markets):
                return [self._latest(self._cache.ticker(m), "ticker", m) for m in markets]
            case OrderbookRequest(markets):
                return [self._latest(self._cache.orderbook(m), "orderbook", m) for m in markets]
            case TradesRequest(market, count):
                return list(self._trades(market, count))
            case CandlesRequest(market, interval, count, to):
                return list(self._candles(market, interval, count, to))
        raise TypeError(f"not a request: {type(request).__name__}")  # pragma: no cover

    @staticmethod
    def _latest(entry: Cached[Ticker] | Cached[Orderbook] | None, kind: str, market: str
                ) -> Ticker | Orderbook:
        if entry is None:
            raise NotCached(f"no {kind} of {market} received yet",
                            kind=kind, market=market, wanted=1, available=0)
        return entry.value

    def _trades(self, market: str, count: int) -> Sequence[Trade]:
        cached = self._cache.trades(market)
        if len(cached) < count:
            raise NotCached(f"{len(cached)} trades of {market} cached, {count} asked",
                            kind="trade", market=market, wanted=count, available=len(cached))
        newest = [entry.value for entry in reversed(cached[-count:])]
        # A hole lies just before its trade ``before_sequential_id``: a window holding that
        # trade and anything older crosses it (ids are no order, so compare identities).
        crossing = {trade.sequential_id for trade in newest[:-1]}
        for gap in self._cache.gaps(market):
            if gap.before_sequential_id in crossing:
                raise NotCached(
                    f"the {count} newest trades of {market} span an unfilled gap "
                    f"({gap.reason})",
                    kind="trade", market=market, wanted=count, available=0)
        return newest

    def _candles(self, market: str, interval: CandleInterval, count: int, to: datetime | None
                 ) -> Sequence[Candle]:
        kind = f"candle.{interval.value}"
        if interval is not CandleInterval.MINUTE_1:
            raise NotCached(f"only 1-minute candles are streamed, not {interval.value}",
                            kind=kind, market=market, wanted=count, available=0)
        candles = [entry.value for entry in self._cache.candles(market, interval)]
        if to is not None:
            candles = [candle for candle in candles if candle.start < to]
        if len(candles) < count:
            raise NotCached(f"{len(candles)} {kind} candles of {market} cached, {count} asked",
                            kind=kind, market=market, wanted=count, available=len(candles))
        return candles[-count:]

    def _health(self) -> WsHealth:
        client = self._started()
        with self._lock:
            dropped = self._dropped
        return WsHealth(
            now=client.clock.monotonic(),
            active=bool(self._symbols),
            symbols=self._symbols,
            connection=client.status(),
            last_item_at=self._last_item_at,
            messages_failed=self._failed,
            messages_malformed=self._malformed,
            dropped=dropped,
        )

    def _started(self) -> WebSocketClient:
        if self._client is None:  # pykka delivers no message before on_start succeeded
            raise RuntimeError("WsFallback is not started")
        return self._client

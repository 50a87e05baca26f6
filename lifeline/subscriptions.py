"""Realtime subscriptions: the host's callbacks fed from whichever WebSocket serves the level.

::

    sub = system.subscribe("trade", ["KRW-BTC"], callback)   # callback(Update)
    sub.close()                                              # idempotent

Where the items come from: at levels 0 and 1 the smart router's WebSocket (the facade pins
the subscribed markets on it, :class:`~actors.messages.Pin`), at levels 2 and 3 the WebSocket
fallback (activated with ``fallback.symbols`` plus every subscribed market). Both actors hand
what they admitted (after their ``ws_message`` fault point) to :meth:`Dispatcher.offer`,
which only appends to a bounded queue: an actor is never held up by a host's callback.
Router items are taken only while the level is 0 or 1 (the router is trusted), fallback
items at any level (it streams only while activated).

ONE dispatcher thread per system delivers, in arrival order, each item to every open
subscription of its kind and market as an :class:`Update` (the item, its source, the level
when it arrived, its exchange age). The queue holds :data:`QUEUE_CAPACITY` items; when it is
full the OLDEST item is dropped and counted (``dropped``), and one WARNING is logged per
burst (until the queue runs empty again). A callback that raises (anything, a
``SystemExit`` too: the one delivery thread must live on) is counted (``failures``) and
logged with its traceback once per burst (the first failure after a success), the others
still get the item. A slow callback delays the others (one
thread) but never an actor: past the queue's capacity the oldest items are dropped.

Guarantees, per market, for all subscriptions of a system together:

* trades are delivered at most once: the dispatcher remembers the last
  :data:`REMEMBERED_TRADES` ``sequential_id``s of each market and drops a trade seen
  before, whichever source sent it (both may stream the same trades during a switch);
* realtime trades come in the exchange's order; a connection's first trade is a SNAPSHOT
  (the latest trade when it subscribed) and may overtake one traded just before it;
* tickers, order books and candles never go back in exchange time: an item older than the
  last delivered of its kind and market (or equal to it) is dropped;
* across a level change, nothing is lost where both sources overlap: going down (2 → 0)
  the router has streamed the pinned markets since it started and the fallback streams
  until it is deactivated after the change, so both cover the switch; going up (0 → 2) the
  router's items stop being taken at the change and the fallback's begin once it has
  connected, so trades in between (about a connection's set-up) are missed — at most once,
  not exactly once. Trade gaps the WebSocket client could not fill are not delivered.
"""

from __future__ import annotations

import abc
import enum
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Any, Generic, TypeVar

from actors.messages import Source
from lifeline.answer import AnswerSource
from lifeline.levels import Level
from quotation.clock import Clock
from quotation.errors import InvalidRequest
from quotation.models import Candle, CandleInterval, Orderbook, Ticker, Trade
from quotation.websocket import StreamItem

__all__ = [
    "QUEUE_CAPACITY",
    "REMEMBERED_TRADES",
    "Dispatcher",
    "SeenTrades",
    "StreamKind",
    "Subscription",
    "Update",
    "exchange_time",
    "is_newer",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

QUEUE_CAPACITY = 10_000
"""Items waiting for the dispatcher thread; past it the oldest is dropped."""
REMEMBERED_TRADES = 4_096
"""Trade ids remembered per market for de-duplication."""
STOP_TIMEOUT = 5.0
"""Real seconds ``stop()`` waits for the dispatcher thread."""


class StreamKind(enum.StrEnum):
    """What a subscription streams (compares equal to its string)."""

    TICKER = "ticker"
    TRADE = "trade"
    ORDERBOOK = "orderbook"
    CANDLE_1M = "candle.1m"

    @classmethod
    def of(cls, kind: object) -> StreamKind:
        """``kind`` as a StreamKind; :class:`InvalidRequest` naming ``kind`` if it is none."""
        try:
            return cls(str(kind)) if isinstance(kind, str) else cls(kind)  # type: ignore[arg-type]
        except ValueError:
            names = ", ".join(repr(k.value) for k in cls)
            raise InvalidRequest(f"unknown stream kind {kind!r} (one of {names})",
                                 parameter="kind", value=kind) from None


def kind_of(item: StreamItem) -> StreamKind | None:
    """The stream kind of an item (``None``: not delivered, e.g. a trade gap)."""
    if isinstance(item, Trade):
        return StreamKind.TRADE
    if isinstance(item, Ticker):
        return StreamKind.TICKER
    if isinstance(item, Orderbook):
        return StreamKind.ORDERBOOK
    if isinstance(item, Candle) and item.interval is CandleInterval.MINUTE_1:
        return StreamKind.CANDLE_1M
    return None


@dataclass(frozen=True, slots=True)
class Update(Generic[T]):
    """One realtime item for a subscription: like an ``Answer``, for a single item.

    ``level`` is the level when the item arrived; ``age`` seconds since the exchange
    produced it (its timestamp; a candle's last trade), at delivery.
    """

    data: T
    source: AnswerSource
    level: Level
    age: float


class SeenTrades:
    r"""The last :data:`REMEMBERED_TRADES` ``sequential_id``\ s of each market: whether a
    trade is new (remembered if so), or one already seen (a duplicate)."""

    def __init__(self) -> None:
        self._ids: dict[str, tuple[deque[int], set[int]]] = {}

    def add(self, trade: Trade) -> bool:
        """True (and remembered) if ``trade`` was not seen yet; False for a duplicate."""
        order, seen = self._ids.setdefault(trade.market, (deque(), set()))
        if trade.sequential_id in seen:
            return False
        order.append(trade.sequential_id)
        seen.add(trade.sequential_id)
        if len(order) > REMEMBERED_TRADES:
            seen.discard(order.popleft())
        return True


class Subscription(abc.ABC):
    """An open subscription; :meth:`close` ends it (idempotent; after it returns no callback
    of it starts, and one in progress has finished unless ``close`` is called from it).

    The base of every subscription a system hands out: the dispatcher's own (made by
    :meth:`Dispatcher.add`) and ``mode: shared``'s (:class:`lifeline.feed.host.SharedSubscription`,
    fed by two dispatchers in turn). A subclass implements :meth:`close` and calls the host's
    callback only through :meth:`_call` (counted, a raise logged once per burst).
    """

    def __init__(self, kind: StreamKind, markets: tuple[str, ...],
                 callback: Callable[[Update[Any]], object]) -> None:
        self.kind = kind
        self.markets = markets
        self._callback = callback
        self._closed = False
        self._failing = False
        self.delivered = 0
        """Updates handed to the callback (it returned)."""
        self.failures = 0
        """Calls of the callback that raised."""

    @property
    def closed(self) -> bool:
        return self._closed

    @abc.abstractmethod
    def close(self) -> None:
        """End the subscription (idempotent)."""

    def _call(self, update: Update[Any]) -> bool:
        """Hand ``update`` to the callback; ``True`` if it returned. A raise (anything, a
        ``SystemExit`` too: the delivering thread must live on) is counted in ``failures`` and
        logged with its traceback once per burst (the first failure after a success), never
        propagated."""
        try:
            self._callback(update)
        except BaseException:  # a host's callback: logged and counted, the thread lives on
            self.failures += 1
            if not self._failing:
                self._failing = True
                logger.exception("subscriptions: a callback of %r raised (logged once per "
                                 "burst of failures; %d so far)", self, self.failures)
            return False
        if self._failing:
            self._failing = False
            logger.info("subscriptions: the callback of %r returns again (%d failures so far)",
                        self, self.failures)
        self.delivered += 1
        return True

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.kind.value} {','.join(self.markets)} {state}>"


class _Dispatched(Subscription):
    """A :class:`Dispatcher`'s own subscription (closed through it)."""

    def __init__(self, dispatcher: Dispatcher, kind: StreamKind, markets: tuple[str, ...],
                 callback: Callable[[Update[Any]], object]) -> None:
        super().__init__(kind, markets, callback)
        self._dispatcher = dispatcher

    def close(self) -> None:
        if not self._closed:
            self._dispatcher.remove(self)


_Entry = tuple[StreamItem, AnswerSource, Level]


class Dispatcher:
    """The bounded queue and the one thread that calls the subscriptions' callbacks.

    ``level()`` is read when items are offered (the router's are dropped at level 2 and 3);
    ``on_change()`` is called (on the caller's thread) whenever the subscribed markets change.
    """

    def __init__(self, clock: Clock, level: Callable[[], Level], *,
                 on_change: Callable[[], None] | None = None,
                 capacity: int = QUEUE_CAPACITY, name: str = "lifeline-dispatcher") -> None:
        self._clock = clock
        self._level = level
        self._on_change = on_change
        self._capacity = capacity
        self._queue: deque[_Entry] = deque()
        self._ready = threading.Condition()
        self._deliver = threading.RLock()  # held around each callback; close() waits on it
        self._subs: tuple[Subscription, ...] = ()
        self._wanted: frozenset[tuple[StreamKind, str]] = frozenset()
        self._trade_ids = SeenTrades()
        self._last: dict[tuple[StreamKind | None, str], StreamItem] = {}
        self._stopped = False
        self._bursting = False
        self.dropped = 0
        """Items dropped because the queue was full (oldest first)."""
        self.duplicates = 0
        """Items dropped as already delivered (trade ids) or older than the last delivered."""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- subscriptions (any thread) -------------------------------------------------------

    def add(self, kind: StreamKind, markets: tuple[str, ...],
            callback: Callable[[Update[Any]], object]) -> Subscription:
        sub = _Dispatched(self, kind, markets, callback)
        with self._ready:
            if self._stopped:
                raise RuntimeError("the dispatcher is stopped")
            self._set((*self._subs, sub))
        self._changed()
        return sub

    def remove(self, sub: Subscription) -> None:
        with self._deliver, self._ready:
            if sub._closed:
                return
            sub._closed = True
            self._set(tuple(s for s in self._subs if s is not sub))
        self._changed()

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return self._subs

    def markets(self, *kinds: StreamKind) -> tuple[str, ...]:
        """The markets subscribed (for any of ``kinds``, or any kind), first seen first."""
        return tuple(dict.fromkeys(m for s in self._subs if not kinds or s.kind in kinds
                                   for m in s.markets))

    def _set(self, subs: tuple[Subscription, ...]) -> None:
        self._subs = subs
        self._wanted = frozenset((s.kind, m) for s in subs for m in s.markets)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    # -- the actors' side (any thread, never blocks for long) -----------------------------

    def offer(self, items: Iterable[StreamItem], source: AnswerSource) -> None:
        """Queue the subscribed ones among ``items`` (oldest first) as coming from ``source``."""
        level = self._level()
        if source is Source.SMART_ROUTER_WEBSOCKET and level > Level.DEGRADED:
            return  # the router is not trusted: the fallback streams
        wanted = self._wanted
        taken = [item for item in items
                 if (kind := kind_of(item)) is not None and (kind, item.market) in wanted]
        if not taken:
            return
        with self._ready:
            if self._stopped:
                return
            for item in taken:
                if len(self._queue) >= self._capacity:
                    self._queue.popleft()
                    self.dropped += 1
                    if not self._bursting:
                        self._bursting = True
                        logger.warning("subscriptions: callbacks fall behind, dropping the "
                                       "oldest updates (queue of %d full)", self._capacity)
                self._queue.append((item, source, level))
            self._ready.notify()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Close every subscription and end the thread (items still queued are dropped)."""
        with self._ready:
            self._stopped = True
            self._queue.clear()
            self._ready.notify_all()
        for sub in self._subs:
            self.remove(sub)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- the dispatcher's thread ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stopped:
                    if self._bursting:
                        self._bursting = False
                        logger.info("subscriptions: caught up (%d updates dropped so far)",
                                    self.dropped)
                    self._ready.wait()
                if self._stopped:
                    return
                item, source, level = self._queue.popleft()
            if self._fresh(item):
                self._fan_out(item, source, level)

    def _fresh(self, item: StreamItem) -> bool:
        """Whether ``item`` is new (see the module docstring); remembers it if so."""
        if isinstance(item, Trade):
            if not self._trade_ids.add(item):
                self.duplicates += 1
                return False
            return True
        key = (kind_of(item), item.market)
        last = self._last.get(key)
        if last is not None and not is_newer(item, last):
            self.duplicates += 1
            return False
        self._last[key] = item
        return True

    def _fan_out(self, item: StreamItem, source: AnswerSource, level: Level) -> None:
        kind = kind_of(item)
        update = Update(item, source, level, max(0.0, self._clock.time() - exchange_time(item)))
        for sub in self._subs:
            if sub.kind is not kind or item.market not in sub.markets:
                continue
            with self._deliver:
                if sub.closed:
                    continue
                sub._call(update)  # a raise: counted and logged, the others still get it


def is_newer(item: StreamItem, last: StreamItem) -> bool:
    """Whether a ticker, order book or candle ``item`` may follow ``last`` (the one delivered
    before it, same kind and market): later in exchange time, or as late and not the same
    item (a snapshot and its realtime twin are the same)."""
    if _order(item) != _order(last):
        return _order(item) > _order(last)
    return not _same(item, last)


def exchange_time(item: StreamItem) -> float:
    """When the exchange produced ``item`` (UTC epoch seconds; a candle: its last trade)."""
    if isinstance(item, Candle):
        return item.last_trade_time.timestamp()
    if isinstance(item, Trade | Ticker | Orderbook):
        return item.timestamp.timestamp()
    return 0.0  # pragma: no cover (gaps are never offered)


def _order(item: StreamItem) -> tuple[float, float]:
    if isinstance(item, Candle):
        return (item.start.timestamp(), item.last_trade_time.timestamp())
    return (exchange_time(item), 0.0)


def _same(a: StreamItem, b: StreamItem) -> bool:
    """Equal but for how the stream labelled them (snapshot or realtime)."""
    if type(a) is not type(b) or "stream_type" not in {f.name for f in fields(a)}:
        return a == b
    unlabelled: dict[str, Any] = {"stream_type": None}
    return bool(replace(a, **unlabelled) == replace(b, **unlabelled))

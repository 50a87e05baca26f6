"""``MarketDataSystem``: the one facade a trading host holds (issue 9's fixed API).

::

    system = MarketDataSystem.from_config("config.yaml")   # a path, or a LifelineConfig
    with system:                                           # start() ... stop()
        a = system.get_ticker(["KRW-BTC", "KRW-ETH"])      # Answer[list[Ticker]]
        a.data; a.source; a.level; a.age; a.stale

Routing of one read (the level is read once, at the call's start, and named in the answer):

1. validate (``quotation.rest.validation``): ``InvalidRequest`` at once, no actor touched;
2. Level 0/1: a fresh :class:`~actors.snapshots.SnapshotBoard` entry answers in the caller's
   thread (no hop); otherwise the router is asked and waited for ``router_timeout``; if it
   raises, crashed, is restarting or has not answered by then, the same request goes to the
   REST fallback too and the first good answer of the two wins; while the router circuit
   breaker (:mod:`lifeline.breaker`) is open, after ``trip_after`` router failures in a row,
   requests skip the router and go straight to the REST fallback until its one trial
   (in the caller's thread on the fallback's lane when it is free,
   :class:`~actors.rest_fallback.RestLane`: no thread hop; else one ask). The REST call made
   at ``router_timeout`` takes the lane the same way; a router answer arriving during it
   still wins, returned once that call ends;
3. Level 2: tickers and order books from the WebSocket fallback's cache when fresh (exchange
   age ≤ the routing rules' ``max_cache_age``), else the REST fallback;
4. Level 3: tickers and order books from the WebSocket fallback's cache when fresh (same
   rule: a REST ban leaves it streaming), source ``ws_fallback``, ``stale=False``; REST is
   not tried;
5. otherwise (Level 3, or every live source above failed): the newer of the last known good
   data and a cache answer that was not fresh, with its true age and ``stale=True`` up to
   ``max_stale_age``, else :class:`MarketDataUnavailable`. A cache answer that is not fresh
   is never served as fresh nor kept as last known good.

Realtime data (:mod:`lifeline.subscriptions`): ``subscribe(kind, markets, callback)`` pins the
markets on the router (:class:`~actors.messages.Pin`, re-sent whenever a router instance
starts) and, while the WebSocket fallback is activated (levels 2 and 3), adds them to its
``Activate`` set; both actors hand their items to the system's one dispatcher thread
(:class:`~actors.messages.Listen`, likewise re-sent to every new instance), which calls the
host's callbacks with an :class:`~lifeline.subscriptions.Update`.

Every call returns or raises within ``request_deadline`` (real seconds, measured on the
monotonic clock of the process). Each request sent to an actor carries that deadline
(``deadline``, on the system's clock): an actor that takes it up later (it was buffered while
the actor restarted, or queued behind a slow call) answers
:class:`~actors.errors.RequestExpired` at once and sends nothing; that answer is one more
failed source here, like any other. Every good live answer is remembered as last known good.
The host API depends only on this class, not on the tree behind it: ``feed.mode: shared`` (many
hosts reading one supervised feed over Redis, :mod:`lifeline.feed.host`) slots in behind the
same calls: a follower host answers from the feed and falls back to this routing for what
the feed does not keep, or when Redis is lost (Level ≥ 1, "shared feed lost"), within the
same deadline (the routing gets what the feed's part left of it; a silent Redis costs one
socket timeout, 1 s, so a ``request_deadline`` under that is overrun by the rest of it).
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import pykka

from actors.faults import FaultBoard, FaultsDisabled
from actors.messages import (
    Activate,
    CandlesRequest,
    Deactivate,
    HealthRequest,
    LaneRequest,
    Listen,
    OrderbookRequest,
    Pin,
    ProbeRequest,
    Reply,
    Request,
    RouterStatus,
    Source,
    TickerRequest,
    TradesRequest,
)
from actors.rest_fallback import RestLane
from actors.routing import RoutingRules
from actors.snapshots import SnapshotBoard
from lifeline.alerts import Alerter, AlerterStats
from lifeline.answer import Answer, age_of, answer_of, new_answer
from lifeline.breaker import BreakerView, Route, RouterBreaker
from lifeline.config import LifelineConfig, load_config
from lifeline.errors import LifelineError, MarketDataUnavailable, SystemNotRunning
from lifeline.escalation import LogEscalation
from lifeline.health import FeedLost
from lifeline.keeper import LevelKeeper
from lifeline.last_good import KIND_NAMES, LastKnownGood, kind_of
from lifeline.levels import Level, LevelChange, LevelRules
from lifeline.request_stats import RequestStats
from lifeline.settings import FeedMode
from lifeline.subscriptions import Dispatcher, StreamKind, Subscription, Update
from lifeline.tree import (
    FALLBACK_SUP,
    HEALTH_PROBE,
    REST_FALLBACK,
    ROOT,
    ROUTER_SUP,
    SMART_ROUTER,
    WS_FALLBACK,
    Tree,
    TreeParts,
    build_tree,
    recovery_backoff,
)
from quotation.clock import Clock, SystemClock
from quotation.errors import InvalidRequest
from quotation.models import Candle, Orderbook, Ticker, Trade
from quotation.rest.validation import (
    validate_candle_count,
    validate_candle_to,
    validate_interval,
    validate_market,
    validate_markets,
    validate_trades_count,
)
from quotation.websocket import WebSocketStatus
from supervisors import (
    ChildExited,
    ChildHandle,
    ChildInfo,
    ChildRestarted,
    ChildStarted,
    ChildState,
    ChildType,
    ChildUnavailable,
    Escalated,
    ExitReason,
    SupervisionEvent,
)
from supervisors.messages import WhichChildren

if TYPE_CHECKING:
    from lifeline.feed.host import SharedHost, SharedSubscription
    from quotation.rest.ratelimit import RateLimiter

__all__ = ["START_TIMEOUT", "STATUS_TIMEOUT", "STOP_TIMEOUT", "ChildStatus", "MarketDataSystem",
           "SystemStatus"]

logger = logging.getLogger(__name__)

START_TIMEOUT = 30.0
"""Real seconds ``start()`` waits for the whole tree to run."""
STOP_TIMEOUT = 30.0
"""Real seconds ``stop()`` gives the tree (each child is bounded by its own ``shutdown``)."""
STATUS_TIMEOUT = 1.0
"""Real seconds ``status()`` waits for each supervisor's ``which_children``."""
_UNAVAILABLE = "unavailable"
_SPIN = 0.002
"""Real seconds before the router's deadline the wait for it stops sleeping and yields in a
loop instead: a timed sleep of 0.2 s overshoots by 0.2-0.4 ms on a loaded machine (timer
slack), which would delay the REST fallback by as much; the yield loop ends within ~50 µs."""
_MEMO_SIZE = 1024
"""Validated market lists remembered per snapshot kind (emptied when full)."""
_LIVE = Source.SMART_ROUTER_WEBSOCKET


@dataclass(frozen=True, slots=True)
class ChildStatus:
    """One child of the tree: its state, the restarts seen since start, its own children."""

    id: str
    state: str
    """A :class:`~supervisors.ChildState` value, or ``unavailable`` (did not answer)."""
    restarts: int = 0
    children: tuple[ChildStatus, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "restarts": self.restarts,
                "children": {child.id: child.to_dict() for child in self.children}}


@dataclass(frozen=True, slots=True)
class SystemStatus:
    """The system at one moment (``to_dict()`` is JSON-able)."""

    level: Level
    mode: str
    running: bool
    children: tuple[ChildStatus, ...]
    """Root's children, each with its own (router_sup → smart_router, fallback_sup →
    rest_fallback and ws_fallback, health_probe)."""
    restarts: dict[str, int] = field(default_factory=dict)
    """``supervisor/child`` → restarts seen since start."""
    data_ages: dict[str, float | None] = field(default_factory=dict)
    """``kind/market`` → age (s) of the last known good data."""
    headroom: dict[str, int] = field(default_factory=dict)
    """Shared limiter: group → requests it may send now."""
    banned_until: float | None = None
    changes: tuple[LevelChange, ...] = ()
    """The latest level changes (at most :data:`~lifeline.keeper.CHANGES_KEPT`)."""
    changes_total: int = 0
    """Level changes since start, including those no longer in ``changes``."""
    change_pairs: dict[tuple[Level, Level], int] = field(default_factory=dict)
    """``(old, new)`` → level changes since start (the metrics' counters)."""
    next_recovery_at: float | None = None
    router_breaker: BreakerView | None = None
    """The router circuit breaker (:mod:`lifeline.breaker`): routing, not level."""
    recovery_attempts: int = 0
    """Recovery attempts since start: root restarting router_sup, tree rebuilds, and the
    level keeper restarting a running but untrusted router (:mod:`lifeline.keeper`)."""
    callbacks_dropped: int = 0
    """Level changes dropped undelivered to the host's ``on_level_change`` callbacks (one hung
    while more than :data:`~lifeline.keeper.HOST_CHANGES_QUEUED` waited)."""
    feed: dict[str, Any] = field(default_factory=lambda: dict(_LOCAL_FEED))
    """The shared feed (``feed.mode``): ``mode``, ``role`` (``leader``, ``follower``, or
    ``local``: ``mode: local``, or the feed lost), ``leader`` (the lease holder's id),
    ``lease_age``, ``lag`` (s since Redis wrote the newest entry read), ``takeovers``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": int(self.level),
            "level_name": self.level.name.lower(),
            "mode": self.mode,
            "running": self.running,
            "children": {child.id: child.to_dict() for child in self.children},
            "restarts": dict(self.restarts),
            "data_ages": dict(self.data_ages),
            "limiter": {"headroom": dict(self.headroom), "banned_until": self.banned_until},
            "changes": [{"old": int(c.old), "new": int(c.new), "reason": c.reason, "at": c.at,
                         "cause": None if c.cause is None else c.cause.value}
                        for c in self.changes],
            "changes_total": self.changes_total,
            "next_recovery_at": self.next_recovery_at,
            "router_breaker": (None if self.router_breaker is None
                               else self.router_breaker.to_dict()),
            "recovery_attempts": self.recovery_attempts,
            "callbacks_dropped": self.callbacks_dropped,
            "feed": dict(self.feed),
        }


_LOCAL_FEED: dict[str, Any] = {"mode": "local", "role": "local", "leader": None,
                               "lease_age": None, "lag": None, "takeovers": 0}
"""``status().feed`` in ``mode: local``."""


class MarketDataSystem:
    """Market data for a trading host, with the exit strategy behind it (module docstring)."""

    def __init__(self, config: LifelineConfig, *, clock: Clock | None = None) -> None:
        self._config = config
        self._clock: Clock = clock if clock is not None else SystemClock()
        fb, router = config.fallback, config.supervision.router
        self._rules = LevelRules(
            failure_threshold=fb.failure_threshold, no_success_timeout=fb.no_success_timeout,
            recovery_successes=fb.recovery_successes, memory_limit_mb=fb.memory_limit_mb,
            intensity=router.intensity, period=router.period, recovery=recovery_backoff(config))
        self._routing = RoutingRules()
        self._breaker = RouterBreaker.from_settings(fb)
        self._max_cache_age = self._routing.max_cache_age
        self._tickers: dict[object, TickerRequest] = {}
        self._orderbooks: dict[object, OrderbookRequest] = {}
        self._faults = FaultBoard(enabled=config.faults.enabled, clock=self._clock)
        self._snapshots = SnapshotBoard()
        self._last_good = LastKnownGood()
        self._keeper = LevelKeeper(self._rules, self._clock, effects=self._effects,
                                   websocket_degraded=self._router_degraded,
                                   recover=self._recycle_router)
        self._dispatcher = Dispatcher(self._clock, lambda: self._keeper.level,
                                      on_change=self._subscriptions_changed)
        self._control = threading.Lock()  # orders Pin / Activate / Deactivate as decided
        self._fallback_on = False
        self._stopped = False
        self._claimed = False
        """Whether a start() is under way or done (a second one is refused)."""
        self._launched = False
        """Whether start() got as far as starting threads (a failed start then stops)."""
        self._tree: Tree | None = None
        self._restarts: dict[str, int] = {}
        self._started = threading.Event()
        self._gave_up: ExitReason | None = None
        self._lock = threading.Lock()
        self._parts: TreeParts | None = None
        self._rebuilds = 0
        """Trees rebuilt since the router was last trusted (the rebuild backoff's attempt)."""
        self._rebuilt = 0
        """Trees rebuilt since start (recovery attempts besides root restarting router_sup)."""
        self._stats = RequestStats()
        self._lane: RestLane | None = None
        """The REST fallback instance's lane (:class:`~actors.rest_fallback.RestLane`), asked
        of each new instance; ``None`` until it answers."""
        self._lane_asked = -float("inf")
        """When (real monotonic) the lane was last asked for (one ask in flight at a time)."""
        self._keeper.add_callback(self._level_changed)
        self._alerter = Alerter.from_environment(self._clock, level=lambda: self._keeper.level)
        self._escalation = LogEscalation(self._clock, schedule=self._keeper.call_at,
                                         window=config.operator.debug_window)
        self._keeper.add_callback(self._alerter.level_changed)
        self._keeper.add_callback(self._escalation.level_changed)
        self._feed: SharedHost | None = None
        """``feed.mode: shared``: the leader, follower and watch (built by start())."""
        self._waiting: list[SharedSubscription] = []
        """``feed.mode: shared``: subscriptions made before start(), adopted by the feed then."""
        self._subscribing = threading.Lock()  # orders _feed's setting and _waiting

    @classmethod
    def from_config(cls, source: str | os.PathLike[str] | LifelineConfig, *,
                    clock: Clock | None = None) -> MarketDataSystem:
        """A system from a ``config.yaml`` path or a parsed :class:`LifelineConfig`."""
        config = source if isinstance(source, LifelineConfig) else load_config(Path(source))
        return cls(config, clock=clock)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """Start the tree; returns once every child runs (Level 0, or the level it found).
        :class:`LifelineError` before anything is built or stopped if the system is already
        started or was stopped."""
        self._claim()
        try:
            self._launch()
        except BaseException:
            if self._launched:  # no thread left behind (a new system is needed: stopped)
                self.stop()
            else:  # nothing runs (e.g. a bad limiter setting): start() may be tried again
                with self._lock:
                    self._claimed = False
            raise
        if not self._started.wait(timeout) or self._gave_up is not None:
            reason = self._gave_up
            self.stop()
            raise LifelineError(f"the market data tree did not start: {reason or 'timed out'}")
        self._keeper.settle(timeout)  # the level now says what the tree found (e.g. 2)
        self._wire(SMART_ROUTER)
        self._wire(WS_FALLBACK)
        tree = self._tree
        if tree is not None:
            self._ask_lane(tree)
        if self._config.feed.mode is FeedMode.SHARED:
            try:
                self._start_feed()
            except BaseException:
                self.stop()  # no tree, thread or connection left behind
                raise

    def _limiter(self) -> RateLimiter:
        """The REST limiter: per process, or (``mode: shared``) one budget across hosts in
        Redis (:class:`~quotation.rest.ratelimit_redis.RedisRateLimiter`: a conservative
        local share while Redis is unreachable)."""
        settings = self._config.upbit.rate_limit
        feed = self._config.feed
        if feed.mode is not FeedMode.SHARED:
            return settings.build(self._clock)
        from quotation.rest.ratelimit_redis import RedisRateLimiter  # noqa: PLC0415 (redis)
        return RedisRateLimiter(feed.redis_url, self._clock, settings.per_second,
                                prefix=feed.stream_prefix, window=settings.window,
                                margin=settings.margin)

    def _start_feed(self) -> None:
        """``mode: shared``: the leader, the follower and the watch, beside the tree."""
        from lifeline.feed.follower import default_host_id  # noqa: PLC0415
        from lifeline.feed.host import SharedHost  # noqa: PLC0415 (redis, shared mode only)
        fb = self._config.fallback
        feed = SharedHost(self._config.feed, _LocalSide(self), clock=self._clock,
                          owner=_feed_owner(default_host_id()), symbols=fb.symbols,
                          interval=min(fb.probe_interval, self._config.feed.leader_ttl / 3),
                          on_lost=self._feed_lost, local_subscribe=self._local_subscribe,
                          request_deadline=fb.request_deadline)
        with self._subscribing:
            self._feed = feed
            waiting, self._waiting = self._waiting, []
        for sub in waiting:  # subscribed before start(): the same objects, served from now
            if not sub.closed:
                feed.adopt(sub)
        feed.start()  # opens the adopted subscriptions' sources

    def _feed_lost(self, lost: bool) -> None:
        """The shared feed was lost (Redis unreachable) or is back: Level ≥ 1 meanwhile."""
        self._keeper.observe(FeedLost(self._clock.monotonic(), lost))

    def _claim(self) -> None:
        """start()'s checks, before anything is built (``mode: shared``'s limiter opens
        Redis connections): a refused start has nothing to undo and stops nothing."""
        with self._lock:
            if self._stopped:
                raise LifelineError("a stopped system cannot start again: make a new one")
            if self._claimed:
                raise LifelineError("the system is already started")
            self._claimed = True

    def _launch(self) -> None:
        """Start the keeper, the dispatcher, the alerter and build the tree (``_launched``
        once any of them may run; after :meth:`_claim`)."""
        with self._lock:
            if self._stopped:  # stop() since the claim
                raise LifelineError("a stopped system cannot start again: make a new one")
            parts = TreeParts(self._clock, self._limiter(), self._faults, self._snapshots)
            self._launched = True
            self._keeper.start()
            self._dispatcher.start()
            self._alerter.start(parts.limiter.banned_until)
            self._parts = parts
            self._tree = self._build(parts)

    def stop(self, *, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the tree (children in reverse order, bounded) and the keeper. Every injected
        fault is cleared first: a hang without duration would otherwise hold an actor's
        thread for ever, and its ``on_stop`` would never run."""
        self._faults.clear_all()
        with self._subscribing:
            feed, self._feed = self._feed, None
            waiting, self._waiting = self._waiting, []
        for sub in waiting:  # never started: nothing to open, closed
            sub.close()
        if feed is not None:
            feed.stop()  # first: the lease released while the tree still runs
        with self._lock:
            tree, self._tree = self._tree, None
            self._stopped = True
        if tree is None:
            self._keeper.stop(timeout)
            self._escalation.restore()
            self._alerter.stop()
            self._dispatcher.stop()
            self._close_limiter()
            return
        try:
            tree.root.stop(timeout=timeout)
        except pykka.Timeout:
            logger.warning("market data tree did not stop within %s s", timeout)
        self._keeper.stop(timeout)
        self._escalation.restore()  # after the keeper: no level change escalates again
        self._alerter.stop()
        self._dispatcher.stop()
        self._snapshots.clear()
        self._close_limiter()

    def _close_limiter(self) -> None:
        """``mode: shared``: close the Redis limiter's connections (the process limiter has
        none)."""
        parts = self._parts
        close = getattr(parts.limiter, "close", None) if parts is not None else None
        if callable(close):
            close()

    def __enter__(self) -> MarketDataSystem:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- the host's reads ------------------------------------------------------------------

    def get_ticker(self, markets: str | list[str] | tuple[str, ...]) -> Answer[list[Ticker]]:
        key = _memo_key(markets)
        request = None if key is None else self._tickers.get(key)
        if request is None:
            request = TickerRequest(validate_markets(markets))
            _memo_put(self._tickers, key, request)
        return cast("Answer[list[Ticker]]", self._serve(request))

    def get_orderbook(self, markets: str | list[str] | tuple[str, ...]
                      ) -> Answer[list[Orderbook]]:
        key = _memo_key(markets)
        request = None if key is None else self._orderbooks.get(key)
        if request is None:
            request = OrderbookRequest(validate_markets(markets))
            _memo_put(self._orderbooks, key, request)
        return cast("Answer[list[Orderbook]]", self._serve(request))

    def get_candles(self, market: str, interval: object, count: int = 200,
                    to: datetime | str | None = None) -> Answer[list[Candle]]:
        sent_to = validate_candle_to(to)
        request = CandlesRequest(
            validate_market(market), validate_interval(interval), validate_candle_count(count),
            None if sent_to is None
            else datetime.strptime(sent_to, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC))
        return cast("Answer[list[Candle]]", self._serve(request))

    def get_trades(self, market: str, count: int = 100) -> Answer[list[Trade]]:
        request = TradesRequest(validate_market(market), validate_trades_count(count))
        return cast("Answer[list[Trade]]", self._serve(request))

    # -- realtime --------------------------------------------------------------------------

    def subscribe(self, kind: str, markets: str | list[str] | tuple[str, ...],
                  callback: Callable[[Update[Any]], object]) -> Subscription:
        """Call ``callback(Update)`` for every new ``kind`` item of ``markets``
        (:mod:`lifeline.subscriptions`) until ``close()``; kinds ``ticker``, ``trade``,
        ``orderbook``, ``candle.1m``. ``InvalidRequest`` at once for an unknown kind or a bad
        market, ``TypeError`` for a callback that is not callable. In ``feed.mode: shared``
        a :class:`~lifeline.feed.host.SharedSubscription`; one made before :meth:`start` is
        taken on by the feed at start (the same object; nothing is delivered before)."""
        stream = StreamKind.of(kind)
        wanted = validate_markets(markets)
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r:.80}")
        if self._stopped:
            raise SystemNotRunning("the market data system is stopped")
        if self._config.feed.mode is not FeedMode.SHARED:
            return self._dispatcher.add(stream, wanted, callback)
        from lifeline.feed.host import SharedSubscription  # noqa: PLC0415 (shared mode only)
        with self._subscribing:
            feed = self._feed
            if feed is None:  # before start(): adopted by the feed at start (same object)
                sub = SharedSubscription(stream, wanted, callback)
                self._waiting.append(sub)
                return sub
        return feed.subscribe(stream.value, wanted, callback)

    def _local_subscribe(self, kind: str, markets: tuple[str, ...],
                         callback: Callable[[Update[Any]], object]) -> Subscription:
        """A subscription on this host's own tree (``mode: shared``: the leader's, and the
        host's own while it leads or the feed is lost)."""
        return self._dispatcher.add(StreamKind.of(kind), markets, callback)

    def _pin(self) -> Pin:
        dispatcher = self._dispatcher
        return Pin(dispatcher.markets(StreamKind.TICKER, StreamKind.TRADE, StreamKind.ORDERBOOK),
                   dispatcher.markets(StreamKind.CANDLE_1M))

    def _fallback_symbols(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self._config.fallback.symbols,
                                    *self._dispatcher.markets())))

    def _subscriptions_changed(self) -> None:
        tree = self._tree
        if tree is None:
            return  # start() pins what is subscribed by then
        with self._control:
            _tell(tree.router, self._pin())
            if self._fallback_on:
                _tell(tree.ws, Activate(self._fallback_symbols()))

    def _wire(self, child_id: str) -> None:
        """Tell a (new) instance of the router or the WebSocket fallback what it must know."""
        tree = self._tree
        if tree is None:
            return
        offer = self._dispatcher.offer
        with self._control:
            if child_id == SMART_ROUTER:
                _tell(tree.router, Listen(partial(offer, source=Source.SMART_ROUTER_WEBSOCKET)))
                _tell(tree.router, self._pin())
            else:
                _tell(tree.ws, Listen(partial(offer, source=Source.WS_FALLBACK)))
                if self._fallback_on:
                    _tell(tree.ws, Activate(self._fallback_symbols()))

    # -- state -----------------------------------------------------------------------------

    @property
    def level(self) -> Level:
        return self._keeper.level

    @property
    def config(self) -> LifelineConfig:
        return self._config

    @property
    def faults(self) -> FaultBoard:
        """The actors' fault board (``inject``, ``clear_all``); ``FaultsDisabled`` unless
        ``faults.enabled`` is true."""
        if not self._faults.enabled:
            raise FaultsDisabled()
        return self._faults

    def alert_stats(self) -> AlerterStats:
        """Alerts raised, suppressed, held back, sent (:mod:`lifeline.alerts`)."""
        return self._alerter.stats()

    def on_level_change(self, callback: Callable[[LevelChange], None]) -> None:
        """Call ``callback(LevelChange)`` on every level change, in order, on a delivery
        thread of its own (:class:`lifeline.keeper.HostCallbacks`): a slow or hanging callback
        delays no level change and no effect; while one hangs, the latest
        :data:`~lifeline.keeper.HOST_CHANGES_QUEUED` changes wait and older ones are dropped
        (``status().callbacks_dropped``)."""
        self._keeper.add_host_callback(callback)

    def status(self) -> SystemStatus:
        tree = self._tree
        children: tuple[ChildStatus, ...] = ()
        headroom: dict[str, int] = {}
        banned: float | None = None
        if tree is not None:
            try:
                infos = tree.root.which_children(timeout=STATUS_TIMEOUT)
            except (pykka.Timeout, pykka.ActorDeadError):  # gone or busy: say so, never hang
                children = (ChildStatus(ROOT, _UNAVAILABLE),)
            else:
                children = tuple(self._child_status(tree.root.child(info.id), ROOT, info)
                                 for info in infos)
            limiter = tree.parts.limiter.status()
            headroom = {name: group.available for name, group in limiter.groups.items()}
            banned = limiter.banned_until
        return SystemStatus(
            level=self.level, mode=self._config.feed.mode.value, running=tree is not None,
            children=children,
            restarts=dict(self._restarts), data_ages=self._last_good.ages(self._clock.time()),
            headroom=headroom, banned_until=banned, changes=self._keeper.changes,
            changes_total=self._keeper.change_count,
            change_pairs=self._keeper.change_pairs,
            next_recovery_at=self._keeper.next_recovery_at(),
            router_breaker=self._breaker.view(self._clock.monotonic()),
            recovery_attempts=(self._restarts.get(f"{ROOT}/{ROUTER_SUP}", 0) + self._rebuilt
                               + self._keeper.recovery_attempts),
            callbacks_dropped=self._keeper.host_callbacks.dropped,
            feed=self._feed_status())

    def _feed_status(self) -> dict[str, Any]:
        feed = self._feed
        if feed is None:
            return dict(_LOCAL_FEED, mode=self._config.feed.mode.value)
        return feed.status()

    @property
    def request_stats(self) -> RequestStats:
        """The host's reads counted per thread, no lock (:mod:`lifeline.request_stats`)."""
        return self._stats

    def websocket_status(self, timeout: float = STATUS_TIMEOUT
                         ) -> dict[str, WebSocketStatus | None]:
        """The WebSocket clients' counters of the router and the WebSocket fallback (their
        ``HealthRequest`` answers, each bounded by ``timeout``; ``None``: no answer). Since
        each actor instance started: a restart starts them from zero."""
        tree = self._tree
        found: dict[str, WebSocketStatus | None] = {SMART_ROUTER: None, WS_FALLBACK: None}
        if tree is None:
            return found
        for name, child in ((SMART_ROUTER, tree.router), (WS_FALLBACK, tree.ws)):
            try:
                health = child.ask(HealthRequest(), timeout=timeout)
            except Exception as exc:  # noqa: BLE001 (busy, restarting, crashed: nothing learnt)
                logger.debug("websocket_status: %s did not answer: %r", name, exc)
                health = None
            found[name] = getattr(health, "connection", None)
        return found

    def check_child(self, child_id: str, *, timeout: float = STATUS_TIMEOUT) -> object:
        """One real read through ``smart_router`` (a probe of ``fallback.probe_market``, REST,
        never a cache) or ``rest_fallback`` (its ticker), or the ``HealthRequest`` answer of
        ``ws_fallback``; bounded by ``timeout``. Raises what the child raised,
        ``pykka.Timeout``, ``ChildUnavailable`` or :class:`SystemNotRunning`. For the daily
        self-check and the status checklist (:mod:`lifeline.selfcheck`)."""
        tree = self._tree
        if tree is None:
            raise SystemNotRunning("the market data system is not running: start() it")
        market = self._config.fallback.probe_market
        asks: dict[str, tuple[ChildHandle, object]] = {
            SMART_ROUTER: (tree.router, ProbeRequest(market)),
            REST_FALLBACK: (tree.rest, TickerRequest((market,))),
            WS_FALLBACK: (tree.ws, HealthRequest()),
            f"{REST_FALLBACK}/health": (tree.rest, HealthRequest()),
        }
        if child_id not in asks:
            raise ValueError(f"check_child: no check for {child_id!r} (known: "
                             f"{', '.join(asks)})")
        child, message = asks[child_id]
        return child.ask(message, timeout=timeout)

    def self_check_failed(self, what: str, detail: str) -> None:
        """Alert the operator (log and webhooks, :mod:`lifeline.alerts`): a self-check of
        ``what`` failed."""
        self._alerter.self_check_failed(what, detail)

    def _child_status(self, handle: ChildHandle, supervisor: str, info: ChildInfo
                      ) -> ChildStatus:
        nested: tuple[ChildStatus, ...] = ()
        if info.type is ChildType.SUPERVISOR and info.state is ChildState.RUNNING:
            try:
                infos = handle.ask(WhichChildren(), timeout=STATUS_TIMEOUT)
            except (pykka.Timeout, pykka.ActorDeadError, ChildUnavailable):
                nested = ()
            else:
                nested = tuple(self._child_status(handle.child(each.id), info.id, each)
                               for each in infos)
        return ChildStatus(info.id, info.state.value,
                           self._restarts.get(f"{supervisor}/{info.id}", 0), nested)

    # -- routing ---------------------------------------------------------------------------

    def _serve(self, request: Request, *, shared: bool = True) -> Answer[list[Any]]:
        began = time.perf_counter()
        feed = self._feed if shared else None
        try:
            answer = self._route(request) if feed is None else self._shared(feed, request)
        except BaseException as exc:
            self._stats.failed(KIND_NAMES[type(request)], exc, time.perf_counter() - began)
            raise
        self._stats.answered(KIND_NAMES[type(request)], answer.source, answer.stale,
                             time.perf_counter() - began)
        return answer

    def _shared(self, feed: SharedHost, request: Request) -> Answer[list[Any]]:
        """``mode: shared``: the feed's answer, else the tree's within what is left of the
        one deadline of the read (what the feed took, a silent Redis: one socket timeout, is
        not given to the tree again)."""
        until = time.monotonic() + self._config.fallback.request_deadline
        answer = feed.read(request)
        if answer is None:
            answer = self._route(request, until=until)
            if feed.lost and answer.level < Level.DEGRADED:
                answer = replace(answer, level=Level.DEGRADED)  # before the keeper's
        elif not answer.stale:  # the feed's good answer: last known good, as the tree's
            self._last_good.remember(request, Reply.of(answer.data, Source.LAST_KNOWN_GOOD))
        return answer

    def _route(self, request: Request, *, until: float | None = None) -> Answer[list[Any]]:
        """The tree's answer by ``until`` (real monotonic; default ``request_deadline`` from
        now), else the last known good data, else :class:`MarketDataUnavailable`."""
        tree = self._tree
        if tree is None:
            raise SystemNotRunning("the market data system is not running: start() it")
        level = self._keeper.level
        snapshot = isinstance(request, TickerRequest | OrderbookRequest)
        if level <= Level.DEGRADED and isinstance(request, TickerRequest | OrderbookRequest):
            # the hot path: a fresh board entry answers in the caller's thread, no hop
            now = self._clock.monotonic()
            found = self._snapshots.fresh(request, now, self._max_cache_age)
            if found is not None:
                items, stamp = found
                self._snapshots.note_read(request.markets, now)  # demand the router keeps
                self._last_good.keep(KIND_NAMES[type(request)], items)
                return new_answer(list(items), _LIVE, level,
                                  max(0.0, self._clock.time() - stamp), False)
        seconds = self._config.fallback.request_deadline
        if until is not None:
            seconds = max(0.0, until - time.monotonic())
        deadline = time.monotonic() + seconds
        request = _due(request, self._clock.monotonic() + seconds)  # actors drop it after
        errors: list[BaseException] = []
        reply: Reply | None = None
        old: Reply | None = None  # a WebSocket-fallback cache answer, not fresh: stale only
        if level <= Level.DEGRADED:
            if not snapshot:  # trades from the board's window, in this thread
                now = self._clock.monotonic()
                reply = self._snapshots.answer(request, now, self._routing)
                if reply is not None:
                    self._snapshots.note_read(_markets_of(request), now)
            if reply is None:
                reply = self._hedged(tree, request, deadline, errors)
        elif level is Level.FALLBACK:
            reply, old = self._from_fallbacks(tree, request, deadline, errors)
        elif snapshot:  # level 3: a REST ban leaves the WebSocket fallback streaming
            reply, old = self._from_ws_cache(tree, request, deadline, errors)
        if reply is not None:
            self._last_good.remember(request, reply)
            return self._answer(reply, level)
        return self._stale(request, level, errors, old)

    def _hedged(self, tree: Tree, request: Request, deadline: float,
                errors: list[BaseException]) -> Reply | None:
        """Level 0/1 past the cache: the router with the hedge, or, while the breaker is
        open, the REST fallback alone (one ask, one wait). The breaker learns the router's
        part: good within ``router_timeout``, failed (raised, crashed, unavailable, or no
        answer by then), or neither (``InvalidRequest``)."""
        breaker = self._breaker
        route = breaker.route(self._clock.monotonic())
        if route is Route.REST:
            return self._from_rest(tree, request, deadline, errors)
        trial = route is Route.TRIAL
        reported = False
        try:
            router_until = min(deadline, time.monotonic() + self._config.fallback.router_timeout)
            hedge = _Hedge(tree.rest, request)
            hedge.ask_router(tree.router)
            if not hedge.wait(router_until, precise=True):
                # at router_timeout (nothing if the router's failure sent it): on the lane in
                # this thread when it is free, else one ask
                hedge.rest_here(self._lane)
                verdict = hedge.router_verdict
                hedge.wait(deadline, precise=False)
            else:
                verdict = hedge.router_verdict
            now = self._clock.monotonic()
            if verdict == _ROUTER_GOOD:
                breaker.success(now, trial=trial)
            elif verdict == _ROUTER_INVALID:
                breaker.neutral(now, trial=trial)
            else:  # failed, or no answer within router_timeout
                breaker.failure(now, trial=trial)
            reported = True
        finally:
            if not reported:  # something raised first: give the trial back, never stuck
                breaker.neutral(self._clock.monotonic(), trial=trial)
        return hedge.outcome(errors)

    def _from_ws_cache(self, tree: Tree, request: Request, deadline: float,
                       errors: list[BaseException]) -> tuple[Reply | None, Reply | None]:
        """(a fresh answer, an old one) from the WebSocket fallback's cache, at most one of
        them: fresh by exchange age (≤ ``max_cache_age``), asked for at most
        ``router_timeout``; tickers and order books only."""
        if not isinstance(request, TickerRequest | OrderbookRequest):
            return None, None
        until = min(deadline, time.monotonic() + self._config.fallback.router_timeout)
        cached = _ask_one(tree.ws, request, until, errors)
        if cached is None:
            return None, None
        age = age_of(cached.produced_at, self._clock)
        if age is not None and age <= self._routing.max_cache_age:
            return cached, None
        return None, cached

    def _from_fallbacks(self, tree: Tree, request: Request, deadline: float,
                        errors: list[BaseException]) -> tuple[Reply | None, Reply | None]:
        """Level 2: (a good answer, an old cache answer to serve as stale if none)."""
        fresh, old = self._from_ws_cache(tree, request, deadline, errors)
        if fresh is not None:
            return fresh, None
        return self._from_rest(tree, request, deadline, errors), old

    def _from_rest(self, tree: Tree, request: Request, deadline: float,
                   errors: list[BaseException]) -> Reply | None:
        """The REST fallback's reply, asked from this (the host's) thread: on its lane when
        it is free (:class:`~actors.rest_fallback.RestLane`: the call made here, no thread
        hop), else one ask and one wait, as :func:`_ask_one`."""
        lane = self._lane
        if lane is None or not lane.open:
            self._ask_lane(tree)
        else:
            try:
                reply = lane.fetch(request)
            except InvalidRequest:
                raise
            except Exception as exc:  # noqa: BLE001 (the fallback failed: as an ask's failure)
                errors.append(exc)
                return None
            if reply is not None:
                return reply
        return _ask_one(tree.rest, request, deadline, errors)

    def _ask_lane(self, tree: Tree) -> None:
        """Ask the REST fallback for its lane, without waiting (the answer is kept on the
        actor's thread); at most one ask per ``request_deadline``."""
        now = time.monotonic()
        if now - self._lane_asked < self._config.fallback.request_deadline:
            return
        self._lane_asked = now
        try:
            tree.rest.ask_future(LaneRequest(), future=_Notifying(self._lane_lent))
        except ChildUnavailable as exc:  # a new instance is asked when it starts
            logger.debug("could not ask the REST fallback for its lane: %s", exc)

    def _lane_lent(self, value: Any, error: BaseException | None) -> None:
        """(The REST fallback's thread.) Keep its lane; a failed ask is retried after the
        guard (or when a new instance starts)."""
        if isinstance(value, RestLane) and value.open:
            self._lane = value

    def _stale(self, request: Request, level: Level, errors: list[BaseException],
               old: Reply | None = None) -> Answer[list[Any]]:
        """The newer of the last known good data and ``old`` (a WebSocket-fallback cache
        answer that was not fresh), ``stale=True`` up to ``max_stale_age``, else
        :class:`MarketDataUnavailable`. ``old`` is never kept as last known good."""
        kept = self._last_good.recall(request)
        if old is not None and old.produced_at is not None and (
                kept is None or kept.produced_at is None
                or old.produced_at > kept.produced_at):
            kept = old
        limit = self._config.fallback.max_stale_age
        age = None if kept is None else age_of(kept.produced_at, self._clock)
        if kept is not None and age is not None and age <= limit:
            return Answer(list(kept.data), kept.source, level, age, True)
        markets = _markets_of(request)
        had = "nothing kept" if age is None else f"last known good data is {age:.1f} s old"
        last = f"; last error: {errors[-1]!r}" if errors else ""
        raise MarketDataUnavailable(
            f"no fresh {kind_of(request)} of {', '.join(markets)} at level {int(level)} "
            f"and {had} (max_stale_age {limit:g} s){last}",
            kind=kind_of(request), markets=markets, age=age, max_stale_age=limit,
        ) from (errors[-1] if errors else None)

    def _answer(self, reply: Reply, level: Level) -> Answer[list[Any]]:
        return answer_of(reply, level, self._clock)  # the slots filled directly

    # -- the tree's side -------------------------------------------------------------------

    def _on_event(self, event: SupervisionEvent) -> None:
        self._keeper.on_event(event)
        self._alerter.supervision_event(event)
        match event:
            case ChildStarted(supervisor=s, child_id=c) | ChildRestarted(supervisor=s, child_id=c
                                                                         ) if (s, c) in _WIRED:
                self._wire(c)
            case ChildStarted(supervisor=s) if s == ROOT:
                if self._tree_started_all(event.child_id):
                    self._started.set()
            case Escalated(supervisor=s) if s == ROOT:
                self._started.set()
            case ChildRestarted(supervisor=s, child_id=c) | ChildExited(
                    supervisor=s, child_id=c) if s == ROOT and c == HEALTH_PROBE:
                self._started.set()  # its first start failed: restarted after its backoff
            case _:
                pass
        if (isinstance(event, ChildStarted | ChildRestarted)
                and (event.supervisor, event.child_id) == (FALLBACK_SUP, REST_FALLBACK)):
            self._lane, self._lane_asked = None, -float("inf")  # the new instance lends its own
        if isinstance(event, ChildRestarted):
            key = f"{event.supervisor}/{event.child_id}"
            self._restarts[key] = self._restarts.get(key, 0) + 1

    def _tree_started_all(self, child_id: str) -> bool:
        return child_id == "health_probe"  # root's last child: everything before it runs

    def _build(self, parts: TreeParts) -> Tree:
        return build_tree(self._config, parts, report=self._keeper.report,
                          listener=self._on_event, on_give_up=self._on_give_up,
                          root_restart_delay=self._keeper.root_restart_delay,
                          probe_pace=self._keeper.probe_pace)

    def _on_give_up(self, reason: ExitReason) -> None:
        """Root gave up (on its thread, its children stopped): the keeper goes to Level 3
        (``Escalated`` of root) and the whole tree is rebuilt after the recovery backoff
        (``recovery_interval`` doubling, :func:`~lifeline.tree.recovery_backoff`; the attempt
        counts rebuilds since the router was last trusted), on the keeper's clock and thread,
        unless the system is stopped by then."""
        with self._lock:
            self._gave_up = reason
            dead, stopped = self._tree, self._stopped
            if not stopped:
                self._rebuilds += 1
            attempt = self._rebuilds
        self._started.set()
        if stopped or dead is None:
            logger.error("market data tree gave up: %s", reason)
            return
        delay = recovery_backoff(self._config).delay(attempt)
        logger.error("market data tree gave up: %s; rebuilding it in %g s (attempt %d)",
                     reason, delay, attempt)
        self._keeper.call_at(self._clock.monotonic() + delay, partial(self._rebuild, dead))

    def _rebuild(self, dead: Tree) -> None:
        """The keeper's timer: a new tree in place of ``dead`` (same shared parts: limiter,
        faults, snapshots), wired like start()'s; nothing if stopped or already replaced."""
        with self._lock:
            if self._stopped or self._tree is not dead or self._parts is None:
                return
            self._keeper.recovery_attempt(self._clock.monotonic())
            self._gave_up = None
            self._rebuilt += 1
            self._tree = self._build(self._parts)
        logger.warning("market data tree rebuilt after root gave up")
        self._wire(SMART_ROUTER)
        self._wire(WS_FALLBACK)

    def _level_changed(self, change: LevelChange) -> None:
        if change.new <= Level.DEGRADED:
            self._rebuilds = 0  # the router is trusted: the next give-up starts from 1
            if change.old > Level.DEGRADED:
                self._breaker.reset()  # trusted by recovery: the next request asks it

    def _recycle_router(self) -> bool:
        """The keeper's recovery attempt (on its thread): restart the running router
        (:meth:`~lifeline.tree.Tree.recycle_router`); False if there is no router to restart."""
        tree = self._tree
        return tree is not None and tree.recycle_router()

    def _router_degraded(self) -> bool | None:
        """The router's own word on its WebSocket (``RouterStatus.degraded``), asked on the
        keeper's thread after a good probe; ``None`` when it does not answer in time."""
        tree = self._tree
        if tree is None:
            return None
        try:
            status = tree.router.ask(HealthRequest(),
                                     timeout=self._config.fallback.router_timeout)
        except Exception:  # noqa: BLE001 (busy, restarting, crashed: nothing learnt)
            return None
        return status.degraded if isinstance(status, RouterStatus) else None

    def _effects(self, change: LevelChange) -> None:
        with self._control:
            message: Activate | Deactivate
            if change.old <= Level.DEGRADED < change.new:
                self._fallback_on = True
                message = Activate(self._fallback_symbols())
            elif change.new <= Level.DEGRADED < change.old:
                self._fallback_on = False
                message = Deactivate()
            else:
                return
            tree = self._tree
            if tree is None:  # still starting: start() wires the fallback once the tree runs
                return
            done = tree.ws.ask_future(message)
        done.get(timeout=self._config.fallback.request_deadline)


def _memo_key(markets: object) -> object:
    """The key a validated market list is remembered under, or None (not remembered: only a
    string or a list or tuple of exact strings, which hash and compare as plain values)."""
    kind = type(markets)
    if kind is str:
        return markets
    if kind is tuple or kind is list:
        for market in cast("tuple[object, ...]", markets):
            if type(market) is not str:
                return None
        return tuple(cast("tuple[str, ...]", markets))
    return None


def _memo_put(memo: dict[object, Any], key: object, request: object) -> None:
    if key is None:
        return
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = request


_WIRED = frozenset({(ROUTER_SUP, SMART_ROUTER), (FALLBACK_SUP, WS_FALLBACK)})
"""The children told the subscriptions' Listen / Pin / Activate whenever an instance starts."""


def _tell(child: ChildHandle, message: object) -> None:
    try:
        child.tell(message)
    except ChildUnavailable as exc:  # a new instance will be wired when it starts
        logger.debug("could not tell %r to %s: %s", message, child, exc)


def _markets_of(request: Request) -> tuple[str, ...]:
    if isinstance(request, TickerRequest | OrderbookRequest):
        return request.markets
    return (request.market,)


def _due(request: Request, deadline: float) -> Request:
    """``request`` with its ``deadline`` (monotonic, the tree's clock) set."""
    if isinstance(request, TickerRequest):
        return TickerRequest(request.markets, deadline)
    if isinstance(request, OrderbookRequest):
        return OrderbookRequest(request.markets, deadline)
    if isinstance(request, TradesRequest):
        return TradesRequest(request.market, request.count, deadline)
    return CandlesRequest(request.market, request.interval, request.count, request.to, deadline)


def _ask_one(child: ChildHandle, request: Request, until: float,
             errors: list[BaseException]) -> Reply | None:
    """``child``'s good :class:`Reply` to ``request`` by ``until`` (real monotonic), else
    None: one ask, one wait that ends when the answer comes or at ``until``; a failure
    (unavailable, raised, timed out, not a reply) is added to ``errors``; an
    ``InvalidRequest`` reaches the caller."""
    try:
        future = child.ask_future(request)
    except ChildUnavailable as exc:  # restarting / not running: out for this call
        errors.append(exc)
        return None
    try:
        value = future.get(timeout=max(0.0, until - time.monotonic()))
    except pykka.Timeout:
        errors.append(TimeoutError("no answer within the deadline"))
        return None
    except InvalidRequest:
        raise
    except Exception as exc:  # noqa: BLE001 (any failure of a source: try the next)
        errors.append(exc)
        return None
    if isinstance(value, Reply):
        return value
    errors.append(TypeError(f"not a reply: {value!r}"))
    return None


class _Notifying(pykka.ThreadingFuture[Any]):
    """A future that, once set, calls ``on_done(value, error)`` on the thread that set it
    (the answering actor's, or whoever answers an envelope never handled). ``on_done`` must
    only record and send, never wait; whatever it raises is logged, never reaches that
    thread (pykka would answer the same envelope twice and the actor crash)."""

    def __init__(self, on_done: Callable[[Any, BaseException | None], None]) -> None:
        super().__init__()
        self._on_done = on_done

    def set(self, value: Any | None = None) -> None:
        super().set(value)
        self._notify(value, None)

    def set_exception(self, exc_info: Any = None) -> None:
        info = sys.exc_info() if exc_info is None else exc_info
        super().set_exception(info)
        error = info[1]
        if error is None:
            error = info[0]() if info[0] is not None else RuntimeError("no exception set")
        self._notify(None, error)

    def _notify(self, value: Any, error: BaseException | None) -> None:
        try:
            self._on_done(value, error)
        except Exception:
            logger.exception("hedged request: a completion callback failed")


_NOT_ASKED, _ASKED, _ANSWERED = 0, 1, 2
"""The REST fallback's part in a :class:`_Hedge`."""
_ROUTER_PENDING, _ROUTER_GOOD, _ROUTER_FAILED, _ROUTER_INVALID = 0, 1, 2, 3
"""The router's part in a :class:`_Hedge` (``router_verdict``), for the breaker."""


class _Hedge:
    """One read at Level 0/1 (issue 9's hedging rule): the router is asked; if it raises,
    crashes or has not answered by ``router_timeout``, the same request goes to the REST
    fallback too, and the first good answer of the two wins.

    When the router's answer is a failure, the REST fallback is asked from the thread that
    completes the router's future (:class:`_Notifying`), not after a hop through the
    caller; at ``router_timeout`` the caller asks it (:meth:`ask_rest`, once per hedge
    whoever comes first). The caller sleeps on one latch, released once: a good reply, an
    ``InvalidRequest`` (raised to the caller), or every source asked has failed. After
    :meth:`outcome` the hedge is closed: a late answer is dropped, nothing more is sent."""

    __slots__ = ("_latch", "_lock", "_request", "_rest", "_rest_reply", "_rest_state",
                 "_router_open", "_settled", "errors", "invalid", "reply", "router_verdict")

    def __init__(self, rest: ChildHandle, request: Request) -> None:
        self._rest = rest
        self._request = request
        self._lock = threading.Lock()
        self._latch = threading.Lock()
        self._latch.acquire()  # released by _settle, once
        self._settled = False
        self._router_open = False
        self._rest_state = _NOT_ASKED
        self._rest_reply: _Notifying | None = None
        self.reply: Reply | None = None
        self.invalid: InvalidRequest | None = None
        self.errors: list[BaseException] = []
        self.router_verdict = _ROUTER_PENDING
        """How the router answered (set once, on the thread that completed its future)."""

    def ask_router(self, router: ChildHandle) -> None:
        self._router_open = True
        try:
            router.ask_future(self._request, future=_Notifying(self._router_done))
        except ChildUnavailable as exc:  # restarting / not running: out for this call
            with self._lock:
                self._router_open = False
                self.router_verdict = _ROUTER_FAILED
                self.errors.append(exc)
            self.ask_rest()
            return
        # made while the router's thread wakes up: off the path to the REST fallback's answer
        self._rest_reply = _Notifying(self._rest_done)

    def ask_rest(self) -> None:
        """Ask the REST fallback, unless it was asked already or the hedge is settled."""
        with self._lock:
            if self._rest_state != _NOT_ASKED or self._settled:
                return
            self._rest_state = _ASKED
        reply_to = self._rest_reply
        try:
            self._rest.ask_future(self._request, future=reply_to if reply_to is not None
                                  else _Notifying(self._rest_done))
        except ChildUnavailable as exc:
            self._rest_done(None, exc)

    def rest_here(self, lane: RestLane | None) -> None:
        """(The caller's thread, at ``router_timeout``.) The REST fallback's call made here
        on its lane when the lane is open and free (no thread hop each way), else
        :meth:`ask_rest`. The router's answer still wins if it comes first: it settles the
        hedge meanwhile and is the one returned, once this call has ended (bounded by the
        request's deadline)."""
        if lane is None or not lane.open:
            self.ask_rest()
            return
        with self._lock:
            if self._rest_state != _NOT_ASKED or self._settled:
                return
            self._rest_state = _ASKED
        try:
            reply = lane.fetch(self._request)
        except Exception as exc:  # noqa: BLE001 (as an ask's failure; InvalidRequest: _took)
            self._rest_done(None, exc)
            return
        if reply is None:  # busy, closed or a fault is live: the actor's inbox after all
            with self._lock:
                self._rest_state = _NOT_ASKED
            self.ask_rest()
            return
        self._rest_done(reply, None)

    def _router_done(self, value: Any, error: BaseException | None) -> None:
        with self._lock:
            self._router_open = False
            self.router_verdict = (
                _ROUTER_GOOD if error is None and isinstance(value, Reply)
                else _ROUTER_INVALID if isinstance(error, InvalidRequest) else _ROUTER_FAILED)
            if self._settled or self._took(value, error):
                return
            if self._rest_state == _ANSWERED:
                self._settle()  # the REST fallback has failed as well
                return
            send = self._rest_state == _NOT_ASKED
        if send:
            self.ask_rest()  # a send on this thread (the router's): no wait

    def _rest_done(self, value: Any, error: BaseException | None) -> None:
        with self._lock:
            self._rest_state = _ANSWERED
            if self._settled or self._took(value, error):
                return
            if not self._router_open:
                self._settle()  # both have failed

    def _took(self, value: Any, error: BaseException | None) -> bool:
        """(Under the lock.) Whether this answer settles the hedge; a failure is recorded."""
        if error is None and isinstance(value, Reply):
            self.reply = value
        elif isinstance(error, InvalidRequest):
            self.invalid = error
        else:
            self.errors.append(TypeError(f"not a reply: {value!r:.200}") if error is None
                               else error)
            return False
        self._settle()
        return True

    def _settle(self) -> None:
        if not self._settled:
            self._settled = True
            self._latch.release()

    def wait(self, until: float, *, precise: bool) -> bool:
        """Whether the hedge settled by ``until`` (real monotonic). ``precise``: sleep only
        until ``_SPIN`` before ``until``, then yield the GIL in a loop, so the wait ends within
        tens of µs of ``until`` (pointless once the REST fallback is asked: then it ends
        early, False)."""
        left = until - time.monotonic()
        if not precise or left <= _SPIN:
            return self._latch.acquire(timeout=max(0.0, left))
        if self._latch.acquire(timeout=left - _SPIN):
            return True
        while self._rest_state == _NOT_ASKED:
            if self._latch.acquire(blocking=False):
                return True
            if time.monotonic() >= until:
                return False
            time.sleep(0)
        return False

    def outcome(self, errors: list[BaseException]) -> Reply | None:
        """Close the hedge: its good reply, or None with its failures added to ``errors``;
        an ``InvalidRequest`` from a source is raised."""
        with self._lock:
            timed_out = not self._settled
            self._settled = True  # late answers are dropped, no REST ask goes out any more
            errors.extend(self.errors)
            reply, invalid = self.reply, self.invalid
        if invalid is not None:
            raise invalid
        if reply is None and timed_out:
            errors.append(TimeoutError("no answer within the deadline"))
        return reply


_OWNERS: set[str] = set()
"""The suffixes :func:`_feed_owner` handed out in this process."""
_OWNERS_LOCK = threading.Lock()


def _feed_owner(host_id: str) -> str:
    """This system's id in the feed: ``<hostname>/<pid>/<6 random hex digits>``, unique per
    system, not only per process: two containers with ``--network host``, both pid 1, share
    ``<hostname>/<pid>`` (their symbol registrations would replace each other's), and one
    process may run several systems (tests do). Drawn again if this process already has it."""
    with _OWNERS_LOCK:
        for _ in range(64):  # 16.7 M suffixes: a second draw is already rare
            suffix = secrets.token_hex(3)
            if suffix not in _OWNERS:
                _OWNERS.add(suffix)
                return f"{host_id}/{suffix}"
    raise LifelineError("no unused feed host id suffix after 64 draws")


class _LocalSide:
    """``mode: shared``: the system's own tree as the feed's leader sees it (its level,
    subscriptions and trades, never the feed's: :class:`~lifeline.feed.LeaderHost`)."""

    __slots__ = ("_system",)

    def __init__(self, system: MarketDataSystem) -> None:
        self._system = system

    @property
    def level(self) -> int:
        return int(self._system.level)

    def subscribe(self, kind: str, markets: str | list[str] | tuple[str, ...],
                  callback: Callable[[Any], object]) -> Subscription:
        return self._system._local_subscribe(kind, validate_markets(markets), callback)

    def get_trades(self, market: str, count: int = 100) -> Answer[list[Trade]]:
        request = TradesRequest(validate_market(market), validate_trades_count(count))
        return cast("Answer[list[Trade]]",
                    self._system._serve(request, shared=False))

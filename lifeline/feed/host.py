"""``feed.mode: shared`` behind ``MarketDataSystem``: one host's leader, follower and watch.

Built by :class:`lifeline.MarketDataSystem` in ``mode: shared`` (never imported in
``mode: local``). Every host runs its own tree as in ``mode: local`` and, beside it:

* a :class:`~lifeline.feed.leader.FeedLeader`, contending for the lease; while it leads, its
  tree serves Upbit and it publishes what the tree streams;
* a :class:`~lifeline.feed.follower.FeedFollower`, which answers this host's reads and
  subscriptions from Redis while another host leads;
* a watch thread (every ``interval`` seconds) that reads who holds the lease and whether
  Redis answers: Redis unreachable is "shared feed lost" (the host serves from its own tree,
  ``lost(True)`` → the system's level at least 1), Redis answering again ends it;
* a catch-up thread (``lifeline-feed-catchup``) for the subscriptions' switches (below).

Reads (:meth:`SharedHost.read`): a follower host answers from the feed; a miss
(:class:`~lifeline.feed.follower.NotInFeed`) or a lost feed returns ``None`` and the system
serves the read from its own tree (REST under the shared budget). The leader host answers
from its own tree (its answers are what it publishes).

Subscriptions (:class:`SharedSubscription`, one per ``subscribe``): two sources, the
follower's subscription (opened at once, kept open) and this host's own tree's (opened
while it leads or the feed is lost: a follower opens no WebSocket of its own). One of them
is *active*; the watch (or a read that finds Redis gone) switches it. A switch:

* the new source's items are delivered once it has **caught up** on their market; until
  then the previous source's items of that market are still delivered (an overlap of
  :attr:`SharedHost.overlap` seconds, its end checked every ``interval``: then the previous
  source is dropped);
* tickers, order books, candles: the new source has caught up with its first item of the
  market;
* trades: the new source's trades of a market are held; its first one starts a backfill on
  the catch-up thread: this host's own ``get_trades(market, 500)`` (its tree: REST under
  the shared budget, never the feed; 500 is Upbit's most) asked *after* that trade arrived,
  so it covers the switch up to it; the trades after the last one delivered go out oldest
  first, then the held ones, then the market has caught up. A backfill that fails or whose
  newest trade is older than the first held one (the own tree at Level 3 for a moment, a
  last known good answer) is not taken: asked again at the next tick until the overlap
  ends. A gap the 500 do not reach back over, or a backfill failing or short until the
  overlap's end, is counted in ``gaps`` and logged, never silent;
* whatever the source: trades at most once (:class:`~lifeline.subscriptions.SeenTrades`),
  in the order they come (Upbit's arrival order is not its trade order: one older than the
  last delivered is delivered too, counted in ``out_of_order``); snapshots never back in
  exchange time (``duplicates``).

Why wait for the new source's first trade rather than fill at once: the new source may
start late. Redis back after an outage, the feed's first trade comes once a leader has
taken over (its takeover backfill publishes what the stream lacks; an emptied Redis has
nothing to continue from, so the stream starts with the live trades), and the follower
resumes reading the stream from its last id; this host's own tree's first trade comes once
its WebSocket has subscribed. A REST call made before that would miss the trades in
between. A switch back before the catch-up ended costs nothing: the source switched back
to never stopped delivering.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Protocol

from actors.messages import (
    CandlesRequest,
    OrderbookRequest,
    Request,
    TickerRequest,
    TradesRequest,
)
from lifeline.answer import Answer
from lifeline.feed.errors import FeedError, FeedUnavailable
from lifeline.feed.follower import FeedFollower, NotInFeed
from lifeline.feed.leader import BACKFILL_TRADES, FeedLeader, LeaderHost
from lifeline.feed.redis_io import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
    call,
    connect,
)
from lifeline.feed.streams import FeedKeys
from lifeline.levels import Level
from lifeline.subscriptions import (
    QUEUE_CAPACITY,
    SeenTrades,
    StreamKind,
    Subscription,
    Update,
    is_newer,
)
from quotation.clock import Clock
from quotation.models import Trade
from quotation.websocket import StreamItem

if TYPE_CHECKING:
    import redis

    from lifeline.settings import FeedSettings

__all__ = [
    "STOP_SLACK",
    "FeedRole",
    "OwnSide",
    "SharedHost",
    "SharedSubscription",
    "SubscriptionHost",
]

logger = logging.getLogger(__name__)

STOP_SLACK: Final = 0.5
"""Real seconds ``stop()`` waits for a thread beyond the bound of what it may be doing."""

_CALL_BOUND: Final = DEFAULT_CONNECT_TIMEOUT + DEFAULT_SOCKET_TIMEOUT
"""The longest one Redis call of this host's clients takes (connect, then the answer)."""


class FeedRole:
    """``status()["feed"]["role"]``: the names and the gauge's values."""

    LOCAL: Final = "local"
    FOLLOWER: Final = "follower"
    LEADER: Final = "leader"


class OwnSide(LeaderHost, Protocol):
    """The system's own tree as a host sees it (:class:`~lifeline.feed.LeaderHost`, with the
    trades' :class:`~lifeline.answer.Answer`: the backfill's source and level)."""

    def get_trades(self, market: str, count: int = ...) -> Answer[list[Trade]]: ...


_IN_CALLBACK = threading.local()
"""``depth``: how many shared subscriptions' callbacks run on this thread (0 or 1)."""


class SubscriptionHost(Protocol):
    """What a :class:`SharedSubscription` needs of its host (:class:`SharedHost` has it)."""

    @property
    def clock(self) -> Clock: ...

    @property
    def overlap(self) -> float:
        """Seconds the previous source still delivers after a switch (at most)."""

    def serving_locally(self) -> bool: ...

    def feed_subscribe(self, kind: str, markets: tuple[str, ...],
                       callback: Callable[[Update[Any]], object]) -> Subscription: ...

    def local_subscribe(self, kind: str, markets: tuple[str, ...],
                        callback: Callable[[Update[Any]], object]) -> Subscription: ...

    def own_trades(self, market: str) -> Answer[list[Trade]]: ...

    def later(self, job: Callable[[], None]) -> None: ...

    def forget(self, sub: SharedSubscription) -> None: ...


class _From(enum.Enum):
    """A shared subscription's two sources."""

    FEED = "feed"
    LOCAL = "local"


class SharedSubscription(Subscription):
    """One host subscription in shared mode (module docstring): a
    :class:`~lifeline.subscriptions.Subscription` fed by the feed's or this host's own
    tree's dispatcher, switched by :meth:`sync`. Made before the host exists
    (``MarketDataSystem.subscribe`` before ``start()``), it delivers nothing until
    :meth:`SharedHost.adopt` takes it on at start.

    Counters besides ``delivered`` and ``failures``: ``duplicates`` (a trade seen before, a
    snapshot not newer than the last), ``out_of_order`` (a trade delivered though older than
    the last delivered of its market), ``backfilled`` (trades delivered from the host's own REST at
    a switch), ``gaps`` (switches whose missed trades could not all be backfilled).
    """

    def __init__(self, kind: StreamKind, markets: tuple[str, ...],
                 callback: Callable[[Update[Any]], object]) -> None:
        super().__init__(kind, markets, callback)
        self._host: SubscriptionHost | None = None
        self._feed: Subscription | None = None
        self._local: Subscription | None = None
        self._switching = threading.Lock()  # one switch (and its opens and closes) at a time
        self._delivering = threading.RLock()  # around each decision + callback: in order
        self._state = threading.Lock()  # the fields below (never held around a callback)
        self._active: _From | None = None
        self._previous: _From | None = None
        self._catching: set[str] = set()
        """Markets the active source has not caught up on (the previous one's still go)."""
        self._held: dict[str, list[Update[Any]]] = {}
        self._filling: set[str] = set()
        self._retry: set[str] = set()
        """Markets whose backfill failed or fell short: asked again at the next tick."""
        self._generation = 0
        self._overlap_until = 0.0
        self._seen = SeenTrades()
        self._last: dict[str, StreamItem] = {}
        self.duplicates = 0
        self.out_of_order = 0
        self.backfilled = 0
        self.gaps = 0

    @property
    def source(self) -> str | None:
        """``feed`` or ``local``: the active source (``None`` before the first sync)."""
        active = self._active
        return None if active is None else active.value

    def attach(self, host: SubscriptionHost) -> None:
        self._host = host

    # -- switching (the watch, a reading thread, the catch-up thread) ---------------------

    def sync(self) -> None:
        """Open the feed's subscription (once), this host's own while it serves locally, and
        switch the active source to the one the host serves from now."""
        with self._switching:
            self._sync()

    def _sync(self) -> None:
        host = self._host
        if host is None or self._closed:
            return
        if self._feed is None:
            try:
                self._feed = host.feed_subscribe(self.kind.value, self.markets,
                                                 partial(self._offer, _From.FEED))
            except (FeedError, RuntimeError) as exc:  # retried by the catch-up thread's tick
                logger.info("shared subscription: the feed's not opened yet: %s", exc)
        want = _From.LOCAL if host.serving_locally() else _From.FEED
        if want is _From.LOCAL and self._local is None:
            self._local = host.local_subscribe(self.kind.value, self.markets,
                                               partial(self._offer, _From.LOCAL))
        with self._state:
            if self._active is None:
                self._active = want
            elif want is not self._active:
                self._switch(want, host.clock.monotonic() + host.overlap)
            retire = self._local is not None and self._local_unused()
        if retire:
            host.later(self.retire)  # never closed here: a reading thread may be in a callback

    def _switch(self, to: _From, overlap_until: float) -> None:
        """(``_state`` held.) ``to`` becomes the active source: it must catch up on every
        market but those it was still delivering as the previous source."""
        delivering = self._catching if self._previous is to else set()
        logger.info("shared subscription %r: %s → %s", self, self._active and
                    self._active.value, to.value)
        self._previous, self._active = self._active, to
        self._generation += 1
        self._catching = {m for m in self.markets if m not in delivering}
        self._held = ({m: [] for m in self._catching} if self.kind is StreamKind.TRADE
                      else {})
        self._filling = set()
        self._retry = set()
        self._overlap_until = overlap_until

    def _local_unused(self) -> bool:
        """(``_state`` held.) The own tree's subscription delivers nothing now."""
        return self._active is _From.FEED and (self._previous is not _From.LOCAL
                                               or not self._catching)

    def retire(self) -> None:
        """Close this host's own subscription if it delivers nothing now (not on a thread
        that may be inside a callback: the catch-up thread runs it).

        Closed after ``_switching`` is let go: closing waits for the callback in progress on
        its dispatcher, and that callback may switch this subscription (a read that finds
        the feed lost): it would wait for ``_switching`` for ever. Taken off first, so a
        switch meanwhile opens a new one."""
        with self._switching, self._state:
            drop = self._local if self._local_unused() else None
            if drop is not None:
                self._local = None
        if drop is not None:
            drop.close()

    def tick(self, now: float) -> None:
        """(The catch-up thread, every ``interval``.) Retry opening the feed; past the
        overlap, stop taking the previous source (and close it if it is the own tree's)."""
        if self._feed is None and not self._closed:
            self.sync()
        host = self._host
        with self._state:
            again = sorted(self._retry & self._catching) if host is not None else []
            self._retry.clear()
            generation = self._generation
            expired = bool(self._previous is not None and self._catching
                           and now >= self._overlap_until)
            if expired:
                logger.info("shared subscription %r: %s not caught up on %s within the "
                            "overlap; the previous source is dropped", self,
                            self._active and self._active.value, sorted(self._catching))
                self._previous = None
        for market in again:
            if host is not None:
                host.later(partial(self._fill, market, generation))
        if expired:
            self.retire()

    # -- delivery (the two dispatchers' threads and the catch-up thread) ------------------

    def _offer(self, source: _From, update: Update[Any]) -> None:
        """A source's update: delivered, held (trades while catching up), or dropped (not
        the source the host serves from)."""
        market = update.data.market
        fill = retire = False
        generation = 0
        with self._delivering:
            with self._state:
                if self._closed:
                    return
                deliver = False
                if source is self._active:
                    held = self._held.get(market) if market in self._catching else None
                    if held is not None:
                        self._hold(market, held, update)
                        fill = market not in self._filling
                        if fill:
                            self._filling.add(market)
                            generation = self._generation
                            logger.debug("shared subscription %r: %s's first %s held (%s): "
                                         "its backfill is due", self, source.value, market,
                                         _sid(update.data))
                    else:
                        deliver = True
                        if market in self._catching:  # a snapshot kind: the new one is live
                            self._catching.discard(market)
                            retire = not self._catching
                else:
                    deliver = source is self._previous and market in self._catching
            if deliver:
                self._deliver(update)
        host = self._host
        if host is not None and fill:
            host.later(partial(self._fill, market, generation))
        if host is not None and retire:
            host.later(self.retire)

    def _hold(self, market: str, held: list[Update[Any]], update: Update[Any]) -> None:
        if len(held) >= QUEUE_CAPACITY:  # the backfill takes too long: a hole at its start
            held.pop(0)
            if len(held) == QUEUE_CAPACITY - 1:
                self.gaps += 1
                logger.warning("shared subscription %r: more than %d trades of %s held while "
                               "backfilling; the oldest are dropped", self, QUEUE_CAPACITY,
                               market)
        held.append(update)

    def _deliver(self, update: Update[Any]) -> bool:
        """(``_delivering`` held.) Hand ``update`` to the callback unless it was seen (a
        trade) or is not newer than the last delivered (a snapshot); whether it was handed."""
        if self._closed:
            return False
        item = update.data
        market = item.market
        last = self._last.get(market)
        if isinstance(item, Trade):
            if not self._seen.add(item):
                self.duplicates += 1
                return False
            if isinstance(last, Trade) and item.timestamp < last.timestamp:
                self.out_of_order += 1  # delivered: Upbit's arrival order is not trade order
        elif last is not None and not is_newer(item, last):
            self.duplicates += 1
            return False
        self._last[market] = item
        _IN_CALLBACK.depth = getattr(_IN_CALLBACK, "depth", 0) + 1
        try:
            return self._call(update)
        finally:
            _IN_CALLBACK.depth -= 1

    def _fill(self, market: str, generation: int) -> None:
        """(The catch-up thread.) The new source's first trade of ``market`` has come: its
        missed trades from the host's own REST, then the held ones."""
        host = self._host
        if host is None or not self._fill_due(market, generation):
            return
        answer: Answer[list[Trade]] | None = None
        try:
            answer = host.own_trades(market)
        except Exception as exc:  # noqa: BLE001 (any failure of the own tree: a gap, logged)
            error: BaseException | None = exc
        else:
            error = None
        with self._delivering:
            last = self._last.get(market)  # nothing delivered yet: nothing to backfill
            with self._state:
                if not self._fill_due_locked(market, generation):
                    return  # switched again meanwhile: that switch catches up
                held = self._held.get(market, [])
                first = held[0].data if held else None
                short = isinstance(last, Trade) and (
                    answer is None or not _reaches(answer.data, first))
                if short and host.clock.monotonic() < self._overlap_until:
                    self._retry.add(market)  # still held; asked again at the next tick
                    logger.info("shared subscription %r: the backfill of %s %s; asked again "
                                "at the next tick (the overlap lasts %.1f s more)", self,
                                market, _shortfall(answer, first, error),
                                self._overlap_until - host.clock.monotonic())
                    return
                self._held.pop(market, None)
                self._catching.discard(market)
                self._filling.discard(market)
                retire = not self._catching
            if logger.isEnabledFor(logging.DEBUG):
                got = [] if answer is None else answer.data
                logger.debug("shared subscription %r: backfill of %s: the own tree's %d "
                             "trades %s..%s (source %s), the last delivered %s, %d held "
                             "%s..%s", self, market, len(got), _sid(got[-1] if got else None),
                             _sid(got[0] if got else None), answer and answer.source,
                             _sid(last), len(held), _sid(held[0].data if held else None),
                             _sid(held[-1].data if held else None))
            if isinstance(last, Trade):
                if answer is None:
                    self.gaps += 1
                    logger.warning("shared subscription %r: trades of %s after %d not "
                                   "backfilled (the own tree failed until the overlap's end: "
                                   "%s)", self, market, last.sequential_id, error)
                else:
                    self._backfill(last, answer)
                    if short and isinstance(first, Trade):
                        self.gaps += 1
                        logger.warning("shared subscription %r: the own tree's trades of %s "
                                       "do not reach the first held (%d) by the overlap's "
                                       "end: trades in between are lost", self, market,
                                       first.sequential_id)
            now = host.clock.time()
            for update in held:  # aged at delivery
                item = update.data
                self._deliver(Update(item, update.source, update.level,
                                     max(0.0, now - item.timestamp.timestamp())))
        if retire:
            self.retire()

    def _fill_due(self, market: str, generation: int) -> bool:
        with self._state:
            return self._fill_due_locked(market, generation)

    def _fill_due_locked(self, market: str, generation: int) -> bool:
        """(``_state`` held.) The fill of ``generation`` for ``market`` is still wanted."""
        return (not self._closed and generation == self._generation
                and market in self._catching)

    def _backfill(self, last: Trade, answer: Answer[list[Trade]]) -> None:
        """(``_delivering`` held.) The trades of ``answer`` (newest first) after ``last``,
        oldest first."""
        newest_first = list(answer.data)
        after: list[Trade] = []
        for trade in newest_first:
            if trade.sequential_id == last.sequential_id:
                break
            after.append(trade)
        else:
            after = [t for t in after if t.timestamp >= last.timestamp]
            if newest_first and len(after) == len(newest_first):
                self.gaps += 1
                logger.warning("shared subscription %r: the %d trades of %s the own tree "
                               "returns do not reach back to the last delivered (%d): trades "
                               "in between are lost", self, len(newest_first), last.market,
                               last.sequential_id)
        host = self._host
        now = host.clock.time() if host is not None else 0.0
        for trade in sorted(reversed(after), key=lambda t: t.timestamp):
            update = Update(trade, answer.source, answer.level,
                            max(0.0, now - trade.timestamp.timestamp()))
            if self._deliver(update):
                self.backfilled += 1

    # -- closing --------------------------------------------------------------------------

    def close(self) -> None:
        with self._state:
            if self._closed:
                return
            self._closed = True
        host = self._host
        with self._delivering:  # a callback in progress on another thread has finished (on
            pass  # this one, inside the callback, the lock is re-entered: an RLock)
        if getattr(_IN_CALLBACK, "depth", 0):  # from a callback (its own or another's): the
            if host is not None:  # sources are closed later (a dispatcher closing one may
                host.later(self.release)  # be waiting for the callback in progress here)
            return
        self.release()

    def release(self) -> None:
        """Close both sources (idempotent; after :meth:`close`), once ``_switching`` is let
        go (as :meth:`retire`: closing waits for a callback in progress)."""
        with self._switching, self._state:
            subs = [s for s in (self._feed, self._local) if s is not None]
            self._feed = self._local = None
        for sub in subs:
            sub.close()
        host = self._host
        if host is not None:
            host.forget(self)


def _reaches(newest_first: list[Trade], first: object) -> bool:
    """A backfill's trades reach the new source's first held trade ``first``: they hold it,
    or one traded after it (so every one before it, REST's newest being contiguous)."""
    if not isinstance(first, Trade):
        return True
    return any(t.sequential_id == first.sequential_id or t.timestamp > first.timestamp
               for t in newest_first)


def _shortfall(answer: Answer[list[Trade]] | None, first: object,
               error: BaseException | None) -> str:
    """Why a backfill falls short, for the log."""
    if answer is None:
        return f"failed ({error})"
    newest = answer.data[0].sequential_id if answer.data else None
    return (f"ends at {newest} ({answer.source}"
            f"{', stale' if answer.stale else ''}), before the first held ({_sid(first)})")


def _sid(item: object) -> int | None:
    """A trade's ``sequential_id`` for the logs (``None`` for anything else)."""
    return item.sequential_id if isinstance(item, Trade) else None


def _join(thread: threading.Thread, bound: float, here: threading.Thread) -> None:
    """Wait at most ``bound`` for ``thread`` (started, not this one); a WARNING naming it
    if it runs on (a daemon: it ends on its own once its call returns)."""
    if thread.ident is None or thread is here:
        return
    thread.join(bound)
    if thread.is_alive():
        logger.warning("shared feed: thread %s did not stop within %.1f s; left running",
                       thread.name, bound)


class SharedHost:
    """One host's part of the shared feed (module docstring): started after the system's
    tree, stopped before it.

    ``host`` is the system's own side (``level``, ``subscribe`` and ``get_trades`` of its
    own tree, never the feed's); ``on_lost(lost)`` tells the system the feed was lost or is
    back (on the watch thread, or on a reading thread when a read finds Redis gone; called
    under a lock, in the order the state changed: it must be quick and must not call back
    into this host); ``interval`` is the watch's period; ``request_deadline`` is
    ``fallback.request_deadline``, the bound of a backfill's ``get_trades`` on the own tree
    (and so of :attr:`catchup_bound`).
    """

    def __init__(self, settings: FeedSettings, host: OwnSide, *, clock: Clock,
                 owner: str, symbols: tuple[str, ...], interval: float,
                 on_lost: Callable[[bool], None],
                 local_subscribe: Callable[..., Subscription],
                 request_deadline: float) -> None:
        self.settings = settings
        self.keys = FeedKeys(settings.stream_prefix)
        self.owner = owner.replace(":", "_")
        self.clock = clock
        self._clients: list[redis.Redis] = []
        self._on_lost = on_lost
        self._local_subscribe = local_subscribe
        self._host = host
        self.interval = interval
        self.catchup_bound = max(request_deadline, _CALL_BOUND) + STOP_SLACK
        """Real seconds :meth:`stop` waits for the catch-up thread: its job in flight is a
        backfill (the own tree's ``get_trades``, within ``request_deadline``) or a tick (a
        feed subscription opened: one Redis call)."""
        self.watch_bound = 2 * _CALL_BOUND + STOP_SLACK
        """Real seconds :meth:`stop` waits for the watch: its pass in flight is a ``PING`` and
        a heartbeat read (its wait between passes ends at once)."""
        self.overlap = 2 * settings.leader_ttl + 5.0
        """Seconds a subscription's previous source still delivers the markets its new one
        has not caught up on (a takeover takes at most ``ttl + ttl / 3``)."""
        self.leader = FeedLeader(host, self._client(), self.keys, owner=self.owner,
                                 leader_ttl=settings.leader_ttl, clock=clock,
                                 host_symbols=symbols, stream_maxlen=settings.stream_maxlen)
        self.follower = FeedFollower(self._client(), self.keys,
                                     own_level=lambda: Level(host.level), clock=clock,
                                     host_id=self.owner, symbols=symbols)
        self._watch_client = self._client()
        self.read_failures = 0
        """Reads the feed refused (an error reply, e.g. a corrupted key): the own tree served."""
        self._read_failing = False
        self._read_lock = threading.Lock()
        self._users = 0
        """Reads in flight (Redis calls from callers' threads, :meth:`_enter`)."""
        self._users_lock = threading.Lock()
        self._closed = False
        """:meth:`stop` has closed the clients."""
        self._lost = False
        self._lost_lock = threading.Lock()
        self._subs: list[SharedSubscription] = []
        self._subs_lock = threading.Lock()
        self._started = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="lifeline-feed-watch",
                                        daemon=True)
        self._jobs: deque[Callable[[], None]] = deque()
        self._jobs_ready = threading.Condition()
        self._catchup = threading.Thread(target=self._work, name="lifeline-feed-catchup",
                                         daemon=True)

    def _client(self) -> redis.Redis:
        made = connect(self.settings.redis_url)
        self._clients.append(made)
        return made

    # -- life -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the follower, the leader, the watch and the catch-up thread, then open the
        subscriptions adopted before."""
        self.follower.start()
        self.leader.start()
        self._thread.start()
        self._catchup.start()
        with self._subs_lock:
            self._started = True
        self._sync()

    def stop(self) -> None:
        """Close the subscriptions, stop the watch, the catch-up thread, the leader (releasing
        its lease) and the follower, each bounded; close the connections. Also from the
        catch-up thread (a subscription's callback during a backfill's delivery): that
        thread is not waited for, it ends once the callback returns."""
        here = threading.current_thread()
        self._stop.set()
        with self._jobs_ready:
            self._jobs_ready.notify_all()
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            sub.close()
            sub.release()  # also one closed from its callback, its release not run yet
        _join(self._thread, self.watch_bound, here)
        _join(self._catchup, self.catchup_bound, here)
        self.leader.stop()
        self.follower.close()
        with self._users_lock:  # a read in flight closes them again when it ends
            self._closed = True
        self._close_clients()

    # -- state ------------------------------------------------------------------------------

    @property
    def lost(self) -> bool:
        return self._lost

    def serving_locally(self) -> bool:
        """This host serves from its own tree: it leads, or the feed is lost."""
        return self._lost or self.leader.leading

    def role(self) -> str:
        if self._lost:
            return FeedRole.LOCAL
        return FeedRole.LEADER if self.leader.leading else FeedRole.FOLLOWER

    def _set_lost(self, lost: bool, why: object = None) -> None:
        with self._lost_lock:  # the system is told in the order the state changed
            if self._lost == lost:
                return
            self._lost = lost
            if lost:
                logger.warning("shared feed lost (serving from this host's own tree): %s",
                               why)
            else:
                logger.info("shared feed back: serving from the feed again")
            self._on_lost(lost)
        self._sync()

    # -- reads ------------------------------------------------------------------------------

    def read(self, request: Request) -> Answer[list[Any]] | None:
        """The feed's answer to ``request`` while this host follows; ``None``: serve it from
        this host's own tree (it leads, the feed is lost, the feed does not have it, or this
        host is stopped: the system's own path then answers or raises ``SystemNotRunning``,
        as for any read racing ``stop()``)."""
        if self.serving_locally() or not self._enter():
            return None
        try:
            return self._read(request)
        finally:
            self._leave()

    def _enter(self, *, stopped_too: bool = False) -> bool:
        """A Redis user starts (``False``: stopped, it must not: a closed client would
        reconnect; ``stopped_too``: it may, :meth:`_leave` closes what it reopened)."""
        with self._users_lock:
            if self._stop.is_set() and not stopped_too:
                return False
            self._users += 1
            return True

    def _leave(self) -> None:
        """A Redis user ends; the last one after :meth:`stop` closed the clients closes them
        again (a connection its calls reopened meanwhile)."""
        with self._users_lock:
            self._users -= 1
            late = self._closed and not self._users
        if late:
            self._close_clients()

    def _close_clients(self) -> None:
        for client in self._clients:
            client.close()

    def _read(self, request: Request) -> Answer[list[Any]] | None:
        try:
            answer = self._ask(request)
        except NotInFeed:
            answer = None  # the feed answered: it does not have it
        except FeedUnavailable as exc:
            if not self._stop.is_set():  # not a connection stop() closed under it
                self._set_lost(True, exc)
            return None
        except FeedError as exc:  # a command refused: this host's tree answers instead
            self._read_failed(exc)
            return None
        if self._read_failing:
            self._read_works()
        return answer

    def _read_failed(self, exc: FeedError) -> None:
        """A read the feed refused: counted, logged once per burst (a host reading 100 times
        a second would flood its log), the first failure after a read that worked."""
        with self._read_lock:
            self.read_failures += 1
            first, self._read_failing = not self._read_failing, True
            failures = self.read_failures
        if first:
            logger.info("shared feed reads fail, served locally (logged once per burst; %d "
                        "so far): %s", failures, exc)

    def _read_works(self) -> None:
        with self._read_lock:
            ended, self._read_failing = self._read_failing, False
            failures = self.read_failures
        if ended:
            logger.info("shared feed reads work again (%d failed so far)", failures)

    def _ask(self, request: Request) -> Answer[list[Any]] | None:
        follower = self.follower
        answer: Answer[Any] | None = None
        if isinstance(request, TickerRequest):
            answer = follower.get_ticker(request.markets)
        elif isinstance(request, OrderbookRequest):
            answer = follower.get_orderbook(request.markets)
        elif isinstance(request, TradesRequest):
            answer = follower.get_trades(request.market, request.count)
        elif isinstance(request, CandlesRequest) and request.to is None:  # else: not kept
            answer = follower.get_candles(request.market, request.interval, request.count)
        return answer

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(self, kind: str, markets: tuple[str, ...],
                  callback: Callable[[Update[Any]], object]) -> SharedSubscription:
        """A subscription served by the feed or this host's own tree (module docstring)."""
        sub = SharedSubscription(StreamKind.of(kind), markets, callback)
        self.adopt(sub)
        return sub

    def adopt(self, sub: SharedSubscription) -> None:
        """Serve ``sub`` (made before this host existed, or by :meth:`subscribe`); its sources
        are opened now, or by :meth:`start`."""
        sub.attach(self)
        with self._subs_lock:
            self._subs.append(sub)
            started = self._started
        if started:
            sub.sync()

    def forget(self, sub: SharedSubscription) -> None:
        with self._subs_lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def feed_subscribe(self, kind: str, markets: tuple[str, ...],
                       callback: Callable[[Update[Any]], object]) -> Subscription:
        """A subscription on the feed (the follower's; :meth:`start` first)."""
        return self.follower.subscribe(kind, markets, callback)

    def local_subscribe(self, kind: str, markets: tuple[str, ...],
                        callback: Callable[[Update[Any]], object]) -> Subscription:
        """A subscription on this host's own tree."""
        return self._local_subscribe(kind, markets, callback)

    def own_trades(self, market: str) -> Answer[list[Trade]]:
        """The newest :data:`~lifeline.feed.leader.BACKFILL_TRADES` trades of ``market`` from
        this host's own tree (a switch's backfill)."""
        return self._host.get_trades(market, BACKFILL_TRADES)

    def later(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the catch-up thread (dropped once stopping)."""
        with self._jobs_ready:
            if self._stop.is_set():
                return
            self._jobs.append(job)
            self._jobs_ready.notify()

    def _sync(self) -> None:
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.sync()
            except Exception:
                logger.exception("shared subscription: could not switch its source")

    def _work(self) -> None:
        """The catch-up thread: the subscriptions' backfills and retirements, and every
        ``interval`` their tick (the overlap's end, a feed not opened yet)."""
        due = self.clock.monotonic() + self.interval
        while not self._stop.is_set():
            with self._jobs_ready:
                if not self._jobs:
                    left = due - self.clock.monotonic()
                    self._jobs_ready.wait(min(max(left, 0.001), self.interval))
                job = self._jobs.popleft() if self._jobs and not self._stop.is_set() else None
            if job is not None:
                try:
                    job()
                except Exception:
                    logger.exception("shared subscription: a catch-up job failed")
            now = self.clock.monotonic()
            if now >= due:
                due = now + self.interval
                with self._subs_lock:
                    subs = list(self._subs)
                for sub in subs:
                    try:
                        sub.tick(now)
                    except Exception:
                        logger.exception("shared subscription: its tick failed")

    # -- the watch --------------------------------------------------------------------------

    def _watch(self) -> None:
        leading = False
        while not self._stop.wait(self.interval):
            try:
                call("ping", self._watch_client.ping)
                if not self.leader.leading:  # following: LeaderSilent unless the leader beats
                    self.follower.check_leader(self.interval)
            except FeedError as exc:  # unreachable, refusing, the leader silent: feed lost
                self._set_lost(True, exc)
            else:
                self._set_lost(False)
            now_leading = self.leader.leading
            if now_leading != leading:
                leading = now_leading
                self._sync()

    def status(self) -> dict[str, Any]:
        """``status().to_dict()["feed"]`` in shared mode (one Redis read; racing or after
        :meth:`stop`, the connection it opens is closed again)."""
        leader = self.leader.status()
        self._enter(stopped_too=True)
        try:
            follower = self.follower.status()
        finally:
            self._leave()
        role = self.role()
        return {
            "mode": "shared", "role": role, "host_id": self.owner,
            "leader": leader.holder if leader.holder is not None else follower.leader,
            "lease_age": leader.lease_age,
            "lease_ttl_left": follower.lease_ttl_left,
            "lag": follower.lag, "takeovers": leader.takeovers,
            "lost": self._lost, "error": follower.error,
            "published": dict(leader.published), "entries_read": follower.entries_read,
            "leader_level": follower.leader_level, "heartbeat_age": follower.heartbeat_age,
        }

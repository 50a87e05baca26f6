"""``feed.mode: shared`` behind ``MarketDataSystem``: one host's leader, follower and watch.

Built by :class:`lifeline.MarketDataSystem` in ``mode: shared`` (never imported in
``mode: local``). Every host runs its own tree as in ``mode: local`` and, beside it:

* a :class:`~lifeline.feed.leader.FeedLeader`, contending for the lease; while it leads, its
  tree serves Upbit and it publishes what the tree streams;
* a :class:`~lifeline.feed.follower.FeedFollower`, which answers this host's reads and
  subscriptions from Redis while another host leads;
* a watch thread (every ``interval`` seconds) that reads who holds the lease and whether
  Redis answers: Redis unreachable is "shared feed lost" (the host serves from its own tree,
  ``lost(True)`` → the system's level at least 1), Redis answering again ends it.

Reads (:meth:`SharedHost.read`): a follower host answers from the feed; a miss
(:class:`~lifeline.feed.follower.NotInFeed`) or a lost feed returns ``None`` and the system
serves the read from its own tree (REST under the shared budget). The leader host answers
from its own tree (its answers are what it publishes).

Subscriptions (:meth:`SharedHost.subscribe`): one :class:`_SharedSubscription` per call,
fed by the follower's subscription while this host follows and by its own tree's
(opened only then: a follower opens no WebSocket of its own) while it leads or the feed is
lost; trades at most once across a switch (by ``sequential_id``). Trades made while a
switch happens can be missed (the new source starts from "now").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

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
from lifeline.feed.leader import FeedLeader, LeaderHost
from lifeline.feed.redis_io import call, connect
from lifeline.feed.streams import FeedKeys
from lifeline.levels import Level
from lifeline.subscriptions import SeenTrades, StreamKind, Subscription, Update
from quotation.clock import Clock
from quotation.models import Trade

if TYPE_CHECKING:
    import redis

    from lifeline.settings import FeedSettings

__all__ = ["FeedRole", "SharedHost"]

logger = logging.getLogger(__name__)

class FeedRole:
    """``status()["feed"]["role"]``: the names and the gauge's values."""

    LOCAL: Final = "local"
    FOLLOWER: Final = "follower"
    LEADER: Final = "leader"


class _SharedSubscription(Subscription):
    """One host subscription in shared mode (a :class:`Subscription`: ``close()``
    idempotent): forwards the feed's updates while the host follows, its own tree's while
    it serves locally (leader, or the feed lost)."""

    def __init__(self, host: SharedHost, kind: StreamKind, markets: tuple[str, ...],
                 callback: Callable[[Update[Any]], object]) -> None:
        # not a dispatcher's own: each of its two sources is one (no super().__init__)
        self._host = host
        self.kind = kind
        self.markets = markets
        self._callback = callback
        self._closed = False
        self.delivered = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._seen = SeenTrades()
        self._feed: Subscription | None = None
        self._local: Subscription | None = None
        self._switching = threading.Lock()

    def _forward(self, update: Update[Any], *, local: bool) -> None:
        if local != self._host.serving_locally():
            return
        item = update.data
        if isinstance(item, Trade):
            with self._lock:
                if not self._seen.add(item):
                    return
        self.delivered += 1
        self._callback(update)

    def sync(self) -> None:
        """Open the feed's subscription (once) and this host's own while it serves locally
        (closed when it follows again)."""
        with self._switching:  # the watch and a reading thread may both switch it
            self._sync()

    def _sync(self) -> None:
        if self._closed:
            return
        host = self._host
        if self._feed is None:
            try:
                self._feed = host.follower.subscribe(
                    self.kind.value, self.markets, lambda u: self._forward(u, local=False))
            except (FeedError, RuntimeError) as exc:
                logger.info("shared subscription: the feed's not opened yet: %s", exc)
        local = host.serving_locally()
        if local and self._local is None:
            self._local = host.local_subscribe(self.kind.value, self.markets,
                                               lambda u: self._forward(u, local=True))
        elif not local and self._local is not None:
            self._local.close()
            self._local = None

    def close(self) -> None:
        with self._switching:
            if self._closed:
                return
            self._closed = True
        for sub in (self._feed, self._local):
            if sub is not None:
                sub.close()
        self._host.forget(self)


class SharedHost:
    """One host's part of the shared feed (module docstring): started after the system's
    tree, stopped before it.

    ``host`` is the system's own side (``level``, ``subscribe`` and ``get_trades`` of its
    own tree, never the feed's); ``on_lost(lost)`` tells the system the feed was lost or is
    back (on the watch thread, or on a reading thread when a read finds Redis gone);
    ``interval`` is the watch's period.
    """

    def __init__(self, settings: FeedSettings, host: LeaderHost, *, clock: Clock,
                 owner: str, symbols: tuple[str, ...], interval: float,
                 on_lost: Callable[[bool], None],
                 local_subscribe: Callable[..., Subscription]) -> None:
        self.settings = settings
        self.keys = FeedKeys(settings.stream_prefix)
        self.owner = owner.replace(":", "_")
        self._clients: list[redis.Redis] = []
        self._on_lost = on_lost
        self.local_subscribe = local_subscribe
        self._host = host
        self.interval = interval
        self.leader = FeedLeader(host, self._client(), self.keys, owner=self.owner,
                                 leader_ttl=settings.leader_ttl, clock=clock,
                                 host_symbols=symbols, stream_maxlen=settings.stream_maxlen)
        self.follower = FeedFollower(self._client(), self.keys,
                                     own_level=lambda: Level(host.level), clock=clock,
                                     host_id=self.owner, symbols=symbols)
        self._watch_client = self._client()
        self._lost = False
        self._lost_lock = threading.Lock()
        self._subs: list[_SharedSubscription] = []
        self._subs_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="lifeline-feed-watch",
                                        daemon=True)

    def _client(self) -> redis.Redis:
        made = connect(self.settings.redis_url)
        self._clients.append(made)
        return made

    # -- life -------------------------------------------------------------------------------

    def start(self) -> None:
        self.follower.start()
        self.leader.start()
        self._thread.start()

    def stop(self) -> None:
        """Close the subscriptions, stop the watch, the leader (releasing its lease) and the
        follower, each bounded; close the connections."""
        self._stop.set()
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            sub.close()
        if self._thread.ident is not None:
            self._thread.join(self.interval + 2.0)
        self.leader.stop()
        self.follower.close()
        for client in self._clients:
            client.close()

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
        with self._lost_lock:
            if self._lost == lost:
                return
            self._lost = lost
        if lost:
            logger.warning("shared feed lost (serving from this host's own tree): %s", why)
        else:
            logger.info("shared feed back: serving from the feed again")
        self._on_lost(lost)
        self._sync()

    # -- reads ------------------------------------------------------------------------------

    def read(self, request: Request) -> Answer[list[Any]] | None:
        """The feed's answer to ``request`` while this host follows; ``None``: serve it from
        this host's own tree (it leads, the feed is lost, or the feed does not have it)."""
        if self.serving_locally():
            return None
        try:
            return self._ask(request)
        except NotInFeed:
            return None
        except FeedUnavailable as exc:
            self._set_lost(True, exc)
            return None
        except FeedError as exc:  # a command refused: this host's tree answers instead
            logger.info("shared feed read failed, served locally: %s", exc)
            return None

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
                  callback: Callable[[Update[Any]], object]) -> Subscription:
        """A subscription served by the feed or this host's own tree (module docstring)."""
        sub = _SharedSubscription(self, StreamKind.of(kind), markets, callback)
        with self._subs_lock:
            self._subs.append(sub)
        sub.sync()
        return sub

    def forget(self, sub: _SharedSubscription) -> None:
        with self._subs_lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def _sync(self) -> None:
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.sync()
            except Exception:
                logger.exception("shared subscription: could not switch its source")

    # -- the watch --------------------------------------------------------------------------

    def _watch(self) -> None:
        leading = False
        while not self._stop.wait(self.interval):
            try:
                call("ping", self._watch_client.ping)
            except FeedError as exc:  # unreachable, or refusing: the feed is lost
                self._set_lost(True, exc)
            else:
                self._set_lost(False)
            now_leading = self.leader.leading
            if now_leading != leading:
                leading = now_leading
                self._sync()

    def status(self) -> dict[str, Any]:
        """``status().to_dict()["feed"]`` in shared mode."""
        leader = self.leader.status()
        follower = self.follower.status()
        role = self.role()
        return {
            "mode": "shared", "role": role, "host_id": self.owner,
            "leader": leader.holder if leader.holder is not None else follower.leader,
            "lease_age": leader.lease_age,
            "lease_ttl_left": follower.lease_ttl_left,
            "lag": follower.lag, "takeovers": leader.takeovers,
            "lost": self._lost, "error": follower.error,
            "published": dict(leader.published), "entries_read": follower.entries_read,
        }

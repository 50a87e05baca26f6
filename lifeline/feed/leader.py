"""The publisher's side of the shared feed: a contender for the lease that, while it leads,
subscribes its host's system to the union of the hosts' symbols and publishes every item to
Redis, fenced by its lease.

A host process runs one :class:`FeedLeader` beside its ``MarketDataSystem``::

    leader = FeedLeader(system, connect(url), FeedKeys(prefix), owner="host-a-4711")
    leader.start()            # a thread of its own; returns at once
    leader.status()           # role, holder, lease age, published counts, errors
    leader.stop()             # bounded: releases the lease, closes the subscriptions

One thread (``lifeline-feed-leader``) runs the loop on the injected clock:

* :meth:`~lifeline.feed.lease.Lease.step` when due (renew every ``ttl / 3`` while leading,
  try to acquire every ``ttl / 3`` while not, the holder read back for :meth:`status`);
* while leading: every ``refresh_every`` the symbol union (:class:`SymbolRegistry` plus the
  host's own symbols); one subscription per kind (``ticker``, ``trade``, ``orderbook``,
  ``candle.1m``) and market, opened and closed as the union changes;
* the subscription callbacks (the system's dispatcher thread) only append to a bounded
  queue (``queue_capacity`` items); the loop takes up to ``batch_max`` items at a time and
  publishes them with one fenced script call per run of one source;
* trades are published once per ``sequential_id``: the last :data:`REMEMBERED_TRADES` ids
  published per market are remembered (seeded from the stream at a takeover);
* a takeover (this host becomes the leader) **backfills** trades: for each market, once its
  first live trade arrives (or after ``backfill_wait`` seconds for a quiet market), the
  newest :data:`RECENT_TRADES` entries of its stream give the last published trade, and
  the trades after it from the host's REST (``system.get_trades``, at most
  :data:`BACKFILL_TRADES` = 500, Upbit's limit) are published first, oldest first, skipping
  any already published. A gap longer than 500 trades cannot be filled: counted
  (``backfill_gaps``) and logged. Between two backfills (each a REST call that may wait
  for the shared budget) the lease is renewed when due, so a takeover of many markets
  keeps its lease; a stop ends the backfills between two markets. A failed backfill is
  retried every ``ttl / 3`` (not at each live trade of its market);
* while a market's backfill is pending (not yet succeeded) its live trades are **held**,
  not published (at most :data:`HOLD_TRADES` per market, at most ``backfill_hold`` seconds,
  ``2 x ttl``): a backfill that succeeds publishes its trades after the stream's last one,
  then the held ones (ascending ``sequential_id``, none twice), then live again; a hold
  that fills or times out gives the backfill up: a gap counted (``backfill_gaps``) and
  logged naming the ``sequential_id`` range, the held trades published in order. So a
  backfill's trades come before the live ones that follow them; live trades are published
  in Upbit's arrival order, which is not its trade order (one below the last published is
  published too, counted in ``out_of_order``). Other kinds are not held;
* when Redis is slow the queue fills: the **oldest** item is dropped and counted
  (``dropped``); a dropped trade marks its market for the same backfill, so trades come
  back from REST (up to 500), tickers, order books and candles do not (the next supersedes
  them). A batch whose publish failed with Redis unreachable or refused (``OOM``, a wrong
  key type) may or may not have been written, or in part: it is counted
  (``lost_in_flight``) and the trade markets of its whole batch (the runs after a failed
  one were never sent) re-synchronised the same way (its trades held, what the stream has
  is not published again);
* :class:`~lifeline.feed.errors.LeaseLost` (a renewal or a fenced write refused) or the
  lease's own time running out (:meth:`Lease.held`) ends leading at once: the queue is
  cleared (``discarded``), the subscriptions are closed;
* Redis unreachable: every error is counted by type (``errors``, ``last_error``), the loop
  retries after a backoff (``retry_initial`` doubling up to the lease's ``renew_every``),
  never raises;
* while leading, a **heartbeat** (:class:`~lifeline.feed.streams.Heartbeat`: owner, token,
  the tree's level, the last publish, when written: on Redis' clock, stamped by the
  script) every ``heartbeat_every`` (``ttl / 3``) and at once at a takeover, fenced by the
  lease like the publishes, expiring after ``2 x ttl``. It is written only by a pass whose
  publishing worked: a leader that renews its lease but cannot publish (a refused script,
  Redis out of memory, errors in a row) stops beating, and the followers call it silent
  (:class:`~lifeline.feed.errors.LeaderSilent`).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from lifeline.errors import LifelineError
from lifeline.feed.codec import FeedModel
from lifeline.feed.errors import (
    FeedCommandError,
    FeedError,
    FeedUnavailable,
    LeaseLost,
    check_setting,
)
from lifeline.feed.lease import DEFAULT_LEADER_TTL, Lease, LeaseGrant, LeaseHolder
from lifeline.feed.streams import (
    DEFAULT_STREAM_MAXLEN,
    FeedKeys,
    FeedKind,
    FeedPublisher,
    Heartbeat,
    Heartbeats,
    Snapshots,
    SymbolRegistry,
    kind_for,
)
from quotation.backoff import Backoff, Jitter
from quotation.clock import Clock, SystemClock
from quotation.errors import QuotationError
from quotation.models import Trade

if TYPE_CHECKING:
    import redis

__all__ = [
    "BACKFILL_TRADES",
    "HOLD_TRADES",
    "RECENT_TRADES",
    "REMEMBERED_TRADES",
    "FeedLeader",
    "LeaderHost",
    "LeaderRole",
    "LeaderStatus",
]

logger = logging.getLogger(__name__)

BACKFILL_TRADES: Final = 500
"""Trades asked from REST per market at a backfill: Upbit's ``trades/ticks`` maximum."""
RECENT_TRADES: Final = 500
"""Newest stream entries read per market at a backfill (what is already published)."""
HOLD_TRADES: Final = 500
"""Live trades held at most per market while its backfill is pending (a backfill cannot
reach further back than :data:`BACKFILL_TRADES` anyway)."""
REMEMBERED_TRADES: Final = 4096
"""Published ``sequential_id`` s remembered per market (de-duplication)."""
KINDS: Final = (FeedKind.TICKER, FeedKind.TRADE, FeedKind.ORDERBOOK, FeedKind.CANDLE_1M)
"""What the leader subscribes and publishes, per market."""
_LONGEST_WAIT: Final = 0.25
"""Real seconds the loop waits at most between two looks at its clock."""


class _Abandon(Exception):
    """Ends a pass in the middle (between two backfills): the leader is stopping, or its
    grant changed under it (the lease's own step resigned or took over afresh)."""


class LeaderRole(enum.StrEnum):
    """What a :class:`FeedLeader` is doing now."""

    LEADER = "leader"
    FOLLOWER = "follower"
    STOPPED = "stopped"


class _Subscription(Protocol):
    def close(self) -> None: ...


class _TradesAnswer(Protocol):
    @property
    def data(self) -> list[Trade]: ...

    @property
    def source(self) -> object: ...


class _Update(Protocol):
    @property
    def data(self) -> Any: ...

    @property
    def source(self) -> object: ...


class LeaderHost(Protocol):
    """What the leader needs of its host's system (``lifeline.MarketDataSystem`` has it;
    a protocol, so the facade can import this module)."""

    @property
    def level(self) -> int: ...

    def subscribe(self, kind: str, markets: str | list[str] | tuple[str, ...],
                  callback: Callable[[Any], object]) -> _Subscription: ...

    def get_trades(self, market: str, count: int = ...) -> _TradesAnswer: ...


@dataclass(frozen=True, slots=True)
class LeaderStatus:
    """A :class:`FeedLeader` as :meth:`FeedLeader.status` saw it."""

    role: LeaderRole
    owner: str
    holder: str | None
    """Who holds the lease, as last read (this host while it leads; ``None``: nobody or
    not known, e.g. Redis unreachable)."""
    token: int | None
    """This host's fencing token while it leads."""
    lease_age: float | None
    """Seconds since this host took the lease (``None`` while it does not lead)."""
    markets: tuple[str, ...]
    """The markets subscribed and published (while leading)."""
    published: Mapping[str, int]
    """Items published since start, by kind (``ticker``, ``trade``, …)."""
    batches: int
    """Fenced publish calls that wrote."""
    last_publish_at: float | None
    """The clock's wall time of the last write (``None``: none yet)."""
    takeovers: int
    """Times this host became the leader."""
    backfilled: int
    """Trades published from REST by backfills."""
    backfill_gaps: int
    """Backfills whose 500 REST trades did not reach back to the last published one, and
    backfills given up (a hold full or timed out)."""
    dropped: int
    """Items dropped from the full queue (oldest first): Redis slower than the feed."""
    lost_in_flight: int
    """Items of publishes that failed with Redis unreachable or refused (maybe written, maybe
    not, maybe in part); their trades come back by a backfill."""
    discarded: int
    """Items queued when leading ended (not published: no longer the leader)."""
    errors: Mapping[str, int]
    """Errors since start, by type (``FeedUnavailable``, ``LeaseLost``, ``MarketData…``)."""
    last_error: str | None
    running: bool
    heartbeats: int = 0
    """Heartbeats written since start."""
    held: int = 0
    """Live trades held now (their markets' backfills pending)."""
    out_of_order: int = 0
    """Trades published below the last ``sequential_id`` published in their market: Upbit's
    arrival order is not its trade order (``sequential_id`` "does not guarantee ordering";
    in the recorded session a quarter of a busy market's trades came after a later one)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role.value, "owner": self.owner, "holder": self.holder,
            "token": self.token, "lease_age": self.lease_age, "markets": list(self.markets),
            "published": dict(self.published), "batches": self.batches,
            "last_publish_at": self.last_publish_at, "takeovers": self.takeovers,
            "backfilled": self.backfilled, "backfill_gaps": self.backfill_gaps,
            "dropped": self.dropped, "lost_in_flight": self.lost_in_flight,
            "discarded": self.discarded, "errors": dict(self.errors),
            "last_error": self.last_error, "running": self.running,
            "heartbeats": self.heartbeats, "held": self.held,
            "out_of_order": self.out_of_order,
        }


class _Published:
    """The last :data:`REMEMBERED_TRADES` trade ids published in one market."""

    __slots__ = ("ids", "order")

    def __init__(self, ids: Iterable[int] = ()) -> None:
        self.order: deque[int] = deque()
        self.ids: set[int] = set()
        for sid in ids:
            self.add(sid)

    def add(self, sid: int) -> bool:
        """Remember ``sid``; ``False`` if it was already there."""
        if sid in self.ids:
            return False
        self.ids.add(sid)
        self.order.append(sid)
        if len(self.order) > REMEMBERED_TRADES:
            self.ids.discard(self.order.popleft())
        return True


class _Hold:
    """A market's live trades held while its backfill is pending, by ``sequential_id``."""

    __slots__ = ("since", "trades")

    def __init__(self, since: float) -> None:
        self.since = since
        self.trades: dict[int, tuple[Trade, str]] = {}

    def add(self, trade: Trade, source: str) -> None:
        """Hold ``trade`` (once); past :data:`HOLD_TRADES` the oldest is let go (it falls in
        the gap a give-up names)."""
        self.trades.setdefault(trade.sequential_id, (trade, source))
        if len(self.trades) > HOLD_TRADES:
            del self.trades[min(self.trades)]

    def full(self) -> bool:
        return len(self.trades) >= HOLD_TRADES


@dataclass(slots=True)
class _Counts:
    published: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    last_publish_at: float | None = None
    takeovers: int = 0
    backfilled: int = 0
    backfill_gaps: int = 0
    dropped: int = 0
    lost_in_flight: int = 0
    discarded: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None
    heartbeats: int = 0
    held: int = 0
    out_of_order: int = 0


def _check_settings(queue_capacity: int, batch_max: int, retry_initial: float, *,
                    stop_timeout: float, backfill_wait: float | None,
                    backfill_hold: float | None) -> None:
    check_setting("feed.leader.queue_capacity", queue_capacity, at_least=1, integer=True)
    check_setting("feed.leader.batch_max", batch_max, at_least=1, integer=True)
    check_setting("feed.leader.retry_initial", retry_initial, above=0)
    check_setting("feed.leader.stop_timeout", stop_timeout, above=0)
    if backfill_wait is not None:
        check_setting("feed.leader.backfill_wait", backfill_wait, at_least=0)
    if backfill_hold is not None:
        check_setting("feed.leader.backfill_hold", backfill_hold, above=0)


class FeedLeader:
    """One host's contender for the feed's lease, and its publisher while it leads (see the
    module docstring).

    ``system`` is the host's ``MarketDataSystem`` (started by the host); ``client`` a
    :func:`~lifeline.feed.connect` ion used only by this leader's thread; ``owner`` names
    this host in the lease (unique per process, no ``:``); ``host_symbols`` are published
    even if no host registered them. ``stop_timeout`` bounds :meth:`stop` (the longest one
    blocking call of the loop: a Redis call within its socket timeout, a REST backfill
    within the system's ``request_deadline``). ``backfill_hold`` (default ``2 x
    leader_ttl``) bounds how long a market's live trades are held while its backfill is
    pending.
    """

    def __init__(self, system: LeaderHost, client: redis.Redis, keys: FeedKeys, *,
                 owner: str, leader_ttl: float = DEFAULT_LEADER_TTL,
                 clock: Clock | None = None, host_symbols: Iterable[str] = (),
                 registry_ttl: float = 15.0, stream_maxlen: int = DEFAULT_STREAM_MAXLEN,
                 queue_capacity: int = 10_000, batch_max: int = 500,
                 backfill_wait: float | None = None, retry_initial: float = 0.05,
                 stop_timeout: float = 5.0, backfill_hold: float | None = None) -> None:
        _check_settings(queue_capacity, batch_max, retry_initial, stop_timeout=stop_timeout,
                        backfill_wait=backfill_wait, backfill_hold=backfill_hold)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._system = system
        self.owner = owner
        self.keys = keys
        self._lease = Lease(client, keys.leader, owner, ttl=leader_ttl, clock=self._clock)
        self._publisher = FeedPublisher(client, keys, maxlen=stream_maxlen)
        self._snapshots = Snapshots(client, keys)
        self._registry = SymbolRegistry(client, keys, ttl=registry_ttl)
        self._heartbeats = Heartbeats(client, keys)
        self._host_symbols = frozenset(host_symbols)
        self._capacity = queue_capacity
        self._batch_max = batch_max
        self.backfill_wait = self._lease.ttl if backfill_wait is None else backfill_wait
        """Seconds a takeover waits for a market's first live trade before it backfills."""
        self.backfill_hold = 2 * self._lease.ttl if backfill_hold is None else backfill_hold
        """Seconds a market's live trades are held at most while its backfill is pending."""
        self.refresh_every = self._lease.renew_every
        """Seconds between two reads of the symbol union while leading."""
        self.heartbeat_every = self._lease.renew_every
        """Seconds between two heartbeats while leading (``ttl / 3``)."""
        self._retry = Backoff(initial=min(retry_initial, self._lease.renew_every),
                              cap=self._lease.renew_every, jitter=Jitter.NONE)
        self.stop_timeout = stop_timeout
        # -- shared with the dispatcher thread (under _cond) --
        self._cond = threading.Condition()
        self._queue: deque[tuple[FeedModel, str]] = deque()
        self._accepting = False
        self._gaps: set[str] = set()
        # -- the leader thread's own --
        self._grant: LeaseGrant | None = None
        self._subs: dict[tuple[FeedKind, str], _Subscription] = {}
        self._markets: frozenset[str] = frozenset()
        self._published: dict[str, _Published] = {}
        self._pending: dict[str, float] = {}
        """Markets waiting for a backfill -> the clock's time after which it runs anyway."""
        self._held: dict[str, _Hold] = {}
        """Pending markets' live trades, held until the backfill succeeds or is given up."""
        self._last_sid: dict[str, int] = {}
        """The highest ``sequential_id`` in each market's stream (as this leader knows it)."""
        # pending markets whose backfill's REST call failed (retried on its timer only)
        self._tried: set[str] = set()
        self._lease_failures = 0
        self._feed_failures = 0
        self._hold_until = 0.0
        """After a Redis error while leading: no publishing before this time (backoff)."""
        self._lease_due = 0.0
        self._refresh_due = 0.0
        self._beat_due = 0.0
        self._holder: LeaseHolder | None = None
        # -- read by status() (under _state) --
        self._state = threading.Lock()
        self._counts = _Counts()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lifeline-feed-leader",
                                        daemon=True)

    # -- life ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop's thread (returns at once)."""
        self._thread.start()

    def stop(self) -> bool:
        """Stop leading (the lease released, the subscriptions closed) and join the thread,
        at most ``stop_timeout`` seconds; ``True`` if it ended."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.ident is None:
            return True
        self._thread.join(self.stop_timeout)
        ended = not self._thread.is_alive()
        if not ended:
            logger.warning("feed leader %s did not stop within %.1f s", self.owner,
                           self.stop_timeout)
        return ended

    @property
    def leading(self) -> bool:
        """This host leads: it holds a grant and its own view of the lease is still valid."""
        return self._grant is not None and self._lease.held()

    def status(self) -> LeaderStatus:
        grant = self._grant
        leading = grant is not None and self._lease.held()
        holder = self._holder
        with self._state:
            c = self._counts
            return LeaderStatus(
                role=(LeaderRole.LEADER if leading else LeaderRole.FOLLOWER)
                if self._thread.is_alive() else LeaderRole.STOPPED,
                owner=self.owner,
                holder=self.owner if leading else (holder.owner if holder else None),
                token=grant.token if leading and grant else None,
                lease_age=(self._clock.monotonic() - grant.acquired_at)
                if leading and grant else None,
                markets=tuple(sorted(self._markets)) if leading else (),
                published=dict(c.published), batches=c.batches,
                last_publish_at=c.last_publish_at, takeovers=c.takeovers,
                backfilled=c.backfilled, backfill_gaps=c.backfill_gaps, dropped=c.dropped,
                lost_in_flight=c.lost_in_flight, discarded=c.discarded,
                errors=dict(c.errors), last_error=c.last_error,
                running=self._thread.is_alive(), heartbeats=c.heartbeats, held=c.held,
                out_of_order=c.out_of_order,
            )

    # -- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                due = self.step()
                self._wait(due)
        finally:
            self._resign("stopped", release=True)

    def step(self) -> float:
        """One pass of the loop (the thread calls it; a test may call it on a fake clock
        without :meth:`start`): the lease when due, then, while leading, the symbols and
        what is queued. Returns the clock's time at which the next pass is due."""
        now = self._clock.monotonic()
        if now >= self._lease_due:
            self._step_lease(now)
        if self._grant is not None and not self._lease.held():
            logger.warning("feed leader %s: lease not renewed within its ttl; not leading",
                           self.owner)
            self._resign("lease expired", release=False)
        if self._grant is None:
            return self._lease_due
        if now < self._hold_until:
            return min(self._lease_due, self._hold_until)
        try:
            healthy = self._feed_failures == 0
            if healthy:  # the last pass published: beat first (a takeover's at once)
                self._beat(now)
            if now >= self._refresh_due:
                self._refresh_symbols()
                self._refresh_due = now + self.refresh_every
            self._backfill_due()
            self._publish_queued()
            if not healthy:  # publishing works again: so does the heartbeat
                self._beat(now)
        except _Abandon:
            return self._lease_due
        except LeaseLost as exc:
            self._count(exc)
            logger.warning("feed leader %s lost the lease: %s", self.owner, exc)
            self._resign("lease lost", release=False)
            return self._lease_due
        except FeedError as exc:
            self._count(exc)
            self._feed_failures += 1
            self._hold_until = self._clock.monotonic() + self._retry.delay(self._feed_failures)
            return min(self._lease_due, self._hold_until)
        self._feed_failures = 0
        return min(self._lease_due, self._refresh_due, self._beat_due, self._next_backfill())

    def _wait(self, due: float) -> None:
        left = min(max(due - self._clock.monotonic(), 0.0), _LONGEST_WAIT)
        with self._cond:
            if self._stop.is_set():
                return
            if (self._queue and self._grant is not None
                    and self._clock.monotonic() >= self._hold_until):
                return
            self._cond.wait(left if left > 0 else 0.001)

    def _step_lease(self, now: float) -> None:
        was = self._grant
        try:
            step = self._lease.step()
        except FeedError as exc:
            self._count(exc)
            self._lease_failures += 1
            self._lease_due = now + self._retry.delay(self._lease_failures)
            self._hold_until = max(self._hold_until, self._lease_due)  # Redis is away: no
            return  # more calls this pass (each may cost a socket timeout)
        self._lease_failures = 0
        self._lease_due = step.next_due
        if step.grant is None:
            if was is not None:
                logger.warning("feed leader %s: lease lost at renewal", self.owner)
                self._resign("lease lost", release=False)
            self._read_holder()
            return
        if was is None or was.token != step.grant.token:
            if was is not None:
                self._resign("new token", release=False)
            self._take_over(step.grant)

    def _keep_lease(self) -> None:
        """Between two long calls of one pass (a takeover's backfills, each a REST call under
        the shared budget): renew the lease when due, as the loop would, and end the pass
        (:class:`_Abandon`) if it is stopping or no longer leads with the grant it started
        with (the lease's step has already resigned, or taken over afresh). Without it a
        takeover's backfills of many markets outlast ``ttl`` and the leader drops its own
        lease."""
        if self._stop.is_set():
            raise _Abandon
        grant = self._grant
        now = self._clock.monotonic()
        if now >= self._lease_due:
            self._step_lease(now)
        if grant is None or self._grant is not grant:
            raise _Abandon

    def _read_holder(self) -> None:
        try:
            self._holder = self._lease.holder()
        except FeedError as exc:
            self._count(exc)
            self._holder = None

    def _take_over(self, grant: LeaseGrant) -> None:
        logger.info("feed leader %s leads with token %d", self.owner, grant.token)
        self._grant = grant
        self._holder = None
        self._published.clear()
        self._held.clear()
        self._last_sid.clear()
        self._tried.clear()
        self._note_held()
        self._markets = frozenset()
        self._refresh_due = self._clock.monotonic()
        self._beat_due = 0.0  # due at once: this pass beats
        with self._cond:
            self._queue.clear()
            self._gaps.clear()
            self._accepting = True
        with self._state:
            self._counts.takeovers += 1

    def _resign(self, why: str, *, release: bool) -> None:
        """Stop leading at once: no more items taken, the queue cleared, every subscription
        closed; the lease released if asked (a clean stop) and still ours."""
        with self._cond:
            self._accepting = False
            discarded = len(self._queue)
            self._queue.clear()
            self._gaps.clear()
        for sub in self._subs.values():
            try:
                sub.close()
            except Exception:
                logger.exception("feed leader %s: closing a subscription failed", self.owner)
        self._subs.clear()
        self._markets = frozenset()
        self._pending.clear()
        discarded += sum(len(hold.trades) for hold in self._held.values())
        self._held.clear()
        self._last_sid.clear()
        self._tried.clear()
        self._note_held()
        self._published.clear()
        self._hold_until = 0.0
        self._feed_failures = 0
        grant, self._grant = self._grant, None
        with self._state:
            self._counts.discarded += discarded
        if grant is not None:
            logger.info("feed leader %s stops leading (%s); %d queued items discarded",
                        self.owner, why, discarded)
        if release and grant is not None:
            try:
                self._lease.release()
            except FeedError as exc:
                self._count(exc)

    def _beat(self, now: float) -> None:
        """Write the heartbeat if it is due (fenced: :class:`LeaseLost` if the lease is no
        longer ours, :class:`FeedUnavailable` if Redis is away)."""
        grant = self._grant
        if grant is None or now < self._beat_due:
            return
        if not self._lease.held():
            raise LeaseLost(f"lease {grant.key} not renewed within its ttl", key=grant.key,
                            token=grant.token)
        with self._state:
            last_publish = self._counts.last_publish_at
        beat = Heartbeat(self.owner, grant.token, int(self._system.level), 0.0,  # Redis
                         last_publish, self._lease.ttl, self.heartbeat_every)  # stamps `at`
        self._heartbeats.write(grant, beat)
        self._beat_due = now + self.heartbeat_every
        with self._state:
            self._counts.heartbeats += 1

    # -- subscriptions ------------------------------------------------------------------------

    def _refresh_symbols(self) -> None:
        wanted = self._registry.union() | self._host_symbols
        if wanted == self._markets:
            return
        added, gone = wanted - self._markets, self._markets - wanted
        for market in sorted(added):
            for kind in KINDS:
                try:
                    self._subs[(kind, market)] = self._system.subscribe(
                        kind.value, market, self._offer)
                except (QuotationError, LifelineError) as exc:  # a bad market, a stopped system
                    self._count(exc)
                    logger.warning("feed leader %s cannot subscribe %s %s: %s", self.owner,
                                   kind.value, market, exc)
            self._pending[market] = self._clock.monotonic() + self.backfill_wait
        for market in gone:
            for kind in KINDS:
                sub = self._subs.pop((kind, market), None)
                if sub is not None:
                    sub.close()
            self._pending.pop(market, None)
            self._held.pop(market, None)
            self._last_sid.pop(market, None)
            self._tried.discard(market)
            self._published.pop(market, None)
        self._note_held()
        self._markets = wanted
        logger.info("feed leader %s publishes %d markets (+%d, -%d)", self.owner,
                    len(wanted), len(added), len(gone))

    def _offer(self, update: _Update) -> None:
        """The subscriptions' callback (the dispatcher's thread): queue, never block."""
        item = update.data
        source = str(update.source)
        with self._cond:
            if not self._accepting:
                return
            if len(self._queue) >= self._capacity:
                old, _ = self._queue.popleft()
                with self._state:
                    self._counts.dropped += 1
                if isinstance(old, Trade):
                    self._gaps.add(old.market)
            self._queue.append((item, source))
            self._cond.notify()

    # -- publishing ---------------------------------------------------------------------------

    def _publish_queued(self) -> None:
        """Publish what is queued, ``batch_max`` at a time, until the queue is empty or this
        host no longer leads."""
        for _ in range(max(1, self._capacity // self._batch_max) + 1):
            with self._cond:
                if not self._queue:
                    return
                count = min(len(self._queue), self._batch_max)
                batch = [self._queue.popleft() for _ in range(count)]
            self._publish_batch(batch)
            self._backfill_due()
            if self._stop.is_set():
                return

    def _publish_batch(self, batch: Sequence[tuple[FeedModel, str]]) -> None:
        """Publish ``batch`` (taken off the queue); if Redis fails part-way (a backfill's read,
        one run's write), every trade market of the batch is re-synchronised from the
        stream and REST, not only the failed run's: the runs after it were never sent."""
        try:
            self._publish_items(batch)
        except (FeedUnavailable, FeedCommandError):
            self._resync(batch)
            raise

    def _publish_items(self, batch: Sequence[tuple[FeedModel, str]]) -> None:
        kept: list[tuple[FeedModel, str]] = []
        started: list[str] = []
        held = False
        for item, source in batch:
            if isinstance(item, Trade):
                market = item.market
                if market not in self._markets:
                    continue
                if market in self._pending:  # held until its backfill succeeds or gives up
                    held = True
                    if self._hold_trade(item, source):
                        started.append(market)
                    continue
                if not self._remember(item):
                    continue
            kept.append((item, source))
        if held:
            self._note_held()  # once a batch, not once a held trade
        for market in started:
            if market in self._pending and market not in self._tried:
                # its first live trade: the stream catches up (a backfill that failed is
                # retried on its timer by _backfill_due, not once per live trade)
                self._backfill(market)
        for market, hold in list(self._held.items()):
            if hold.full():
                self._give_up(market, "full")
        self._write_runs(kept)

    def _write_runs(self, pairs: Sequence[tuple[FeedModel, str]]) -> None:
        """``(item, source)`` pairs written in order, one fenced call per run of one source
        (of at most ``batch_max`` items)."""
        start = 0
        while start < len(pairs):
            source = pairs[start][1]
            end = start
            while (end < len(pairs) and pairs[end][1] == source
                   and end - start < self._batch_max):
                end += 1
            self._write([item for item, _ in pairs[start:end]], source)
            start = end

    def _hold_trade(self, trade: Trade, source: str) -> bool:
        """Hold ``trade`` of a pending market; ``True`` if it is the first of its hold (the
        caller updates the ``held`` count once it has held what it holds)."""
        hold = self._held.get(trade.market)
        first = hold is None
        if hold is None:
            hold = self._held[trade.market] = _Hold(self._clock.monotonic())
        hold.add(trade, source)
        return first

    def _note_held(self) -> None:
        with self._state:
            self._counts.held = sum(len(hold.trades) for hold in self._held.values())

    def _remember(self, trade: Trade) -> bool:
        """Note ``trade`` as published; ``False`` if it was published already (by id: a trade
        below the market's last published ``sequential_id`` is published too, and counted,
        as Upbit's arrival order is not its trade order)."""
        market, sid = trade.market, trade.sequential_id
        published = self._published.get(market)
        if published is None:
            published = self._published[market] = _Published()
        if not published.add(sid):
            return False
        last = self._last_sid.get(market)
        if last is not None and sid < last:
            with self._state:
                self._counts.out_of_order += 1
        else:
            self._last_sid[market] = sid
        return True

    def _write(self, items: list[FeedModel], source: str) -> None:
        grant = self._grant
        if grant is None or not items:
            return
        if not self._lease.held():
            raise LeaseLost(f"lease {grant.key} not renewed within its ttl", key=grant.key,
                            token=grant.token)
        try:
            self._publisher.publish(grant, items, source=source, level=int(self._system.level))
        except (FeedUnavailable, FeedCommandError):  # a script refused may have written part
            self._lost_in_flight(items, source)
            raise
        kinds = Counter(kind_for(item).value for item in items)
        with self._state:
            self._counts.published.update(kinds)
            self._counts.batches += 1
            self._counts.last_publish_at = self._clock.time()

    def _lost_in_flight(self, items: Sequence[FeedModel], source: str) -> None:
        """A publish whose reply never came, or that Redis refused (``OOM``, a wrong key
        type: a script stops at its failing command, the entries before it stay written):
        maybe written, in part. Its trades' markets are read back from the stream and
        backfilled (what is there is not published again)."""
        with self._state:
            self._counts.lost_in_flight += len(items)
        self._resync((item, source) for item in items)

    def _resync(self, items: Iterable[tuple[FeedModel, str]]) -> None:
        """Mark the markets of ``items``' trades for a backfill now (the stream re-read) and
        hold those trades (the ones the stream has are not published again)."""
        now = self._clock.monotonic()
        for item, source in items:
            if isinstance(item, Trade) and item.market in self._markets:
                if item.market not in self._pending:
                    self._pending[item.market] = now
                    self._published.pop(item.market, None)
                self._hold_trade(item, source)
        self._note_held()

    # -- backfill ---------------------------------------------------------------------------

    def _next_backfill(self) -> float:
        held = min((hold.since + self.backfill_hold for hold in self._held.values()),
                   default=float("inf"))
        return min(held, min(self._pending.values(), default=float("inf")))

    def _backfill_due(self) -> None:
        """Give up each hold that is full or whose time is up; backfill each pending market
        whose time has come (a gap: at once)."""
        with self._cond:
            gaps, self._gaps = self._gaps, set()
        now = self._clock.monotonic()
        for market in gaps & self._markets:
            if market not in self._pending:
                self._pending[market] = now
                self._published.pop(market, None)
        for market, hold in list(self._held.items()):
            if hold.full() or now >= hold.since + self.backfill_hold:
                self._give_up(market, "full" if hold.full() else "timed out")
        for market, due in list(self._pending.items()):
            if now >= due and market in self._pending:
                self._backfill(market)

    def _stream_last(self, market: str) -> Trade | None:
        """Read the newest :data:`RECENT_TRADES` of ``market``'s stream: what is published
        (remembered afresh) and its last trade (``None``: the stream is empty)."""
        recent = self._snapshots.recent(FeedKind.TRADE, market, RECENT_TRADES)
        trades = [entry.item for entry in recent.entries if isinstance(entry.item, Trade)]
        self._published[market] = _Published(trade.sequential_id for trade in trades)
        if not trades:
            self._last_sid.pop(market, None)
            return None
        self._last_sid[market] = max(trade.sequential_id for trade in trades)
        return trades[-1]

    def _backfill(self, market: str) -> None:
        """Publish the trades of ``market`` that REST has after the stream's last one
        (oldest first, none twice), then its held trades, and end its hold. Raises
        FeedError (the market stays pending, its trades held)."""
        self._keep_lease()
        last = self._stream_last(market)
        if last is None:  # nothing published yet: the stream starts with the held trades
            self._release(market, [], "")
            return
        try:
            answer = self._system.get_trades(market, count=BACKFILL_TRADES)
        except (LifelineError, QuotationError) as exc:  # MarketDataUnavailable, stopped, …
            self._count(exc)
            logger.warning("feed leader %s: backfill of %s: REST failed: %s", self.owner,
                           market, exc)
            self._pending[market] = self._clock.monotonic() + self._retry.cap
            self._tried.add(market)
            return
        self._keep_lease()  # the REST call may have waited for the shared budget
        newest_first = list(answer.data)
        after: list[Trade] = []
        found = False
        for trade in newest_first:
            if trade.sequential_id == last.sequential_id:
                found = True
                break
            after.append(trade)
        if not found:
            after = [t for t in after if t.timestamp >= last.timestamp]
            if newest_first and len(after) == len(newest_first):
                with self._state:
                    self._counts.backfill_gaps += 1
                logger.warning(
                    "feed leader %s: backfill of %s: the %d trades REST returns do not reach "
                    "back to the last published one (%d): trades in between are lost",
                    self.owner, market, len(newest_first), last.sequential_id)
        backfilled = self._release(market, after[::-1], str(answer.source))
        if backfilled:
            logger.info("feed leader %s: backfilled %d trades of %s after %d", self.owner,
                        backfilled, market, last.sequential_id)

    def _give_up(self, market: str, why: str) -> None:
        """A hold full or timed out: the backfill of ``market`` is given up; its held trades
        are published after the stream's last one, the trades in between counted as a gap.
        Raises FeedError (the market stays pending, its trades held)."""
        self._keep_lease()
        hold = self._held.get(market)
        last = self._stream_last(market)
        first = min(hold.trades) if hold is not None and hold.trades else None
        self._release(market, [], "")
        after = f"after {last.sequential_id} " if last is not None else ""
        before = f"before {first}" if first is not None else "up to now"
        with self._state:
            self._counts.backfill_gaps += 1
        logger.warning(
            "feed leader %s: backfill of %s given up (%d live trades held, hold %s): trades "
            "of %s with sequential_id %s%s are lost; the held ones published, live again",
            self.owner, market, len(hold.trades) if hold is not None else 0, why, market,
            after, before)

    def _release(self, market: str, backfilled: Sequence[Trade], source: str) -> int:
        """Publish ``backfilled`` (oldest first, from ``source``), then ``market``'s held
        trades (ascending ``sequential_id``, each run of one source in one call), none
        twice nor below the stream's last; then the market is live again. Returns how many
        backfilled trades were published. Raises FeedError with the market still pending
        and its trades still held (the next try re-reads the stream)."""
        todo = [trade for trade in backfilled if self._remember(trade)]
        hold = self._held.get(market)
        held = [] if hold is None else [hold.trades[sid] for sid in sorted(hold.trades)]
        then = [(trade, held_source) for trade, held_source in held if self._remember(trade)]
        self._write_runs([(trade, source) for trade in todo])
        self._write_runs(then)
        self._pending.pop(market, None)
        self._held.pop(market, None)
        self._tried.discard(market)
        self._note_held()
        if todo:
            with self._state:
                self._counts.backfilled += len(todo)
        return len(todo)

    # -- errors -------------------------------------------------------------------------------

    def _count(self, exc: BaseException) -> None:
        with self._state:
            self._counts.errors[type(exc).__name__] += 1
            self._counts.last_error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, FeedUnavailable):
            logger.debug("feed leader %s: %s", self.owner, exc)

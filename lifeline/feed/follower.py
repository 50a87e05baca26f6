"""A host that reads the shared feed: the facade's reads and subscriptions served from Redis.

::

    follower = FeedFollower(connect(url), FeedKeys(), own_level=keeper_level,
                            symbols=["KRW-BTC"])
    with follower:                                   # start() ... close()
        a = follower.get_ticker(["KRW-BTC"])         # Answer[list[Ticker]]
        a.source   # "shared/smart_router/websocket": the publisher's source
        sub = follower.subscribe("trade", ["KRW-BTC"], callback)   # callback(Update)
        sub.close()

What an answer says (the same fields as the facade's, :class:`lifeline.Answer`):

* ``source``: ``"shared/<the publisher's source>"`` (:class:`SharedSource`; it compares
  equal to that string and has ``.value``, as :class:`~actors.messages.Source` does); for
  an answer built from several entries, the source of the one with the worst level (the
  first in the answer among equals);
* ``age``: seconds since the EXCHANGE produced the data, on the injected wall clock
  (:func:`actors.messages.produced_at`: a snapshot answer is as old as its oldest item, a
  series as its newest), not since it was published;
* ``level``: the worst of the publisher's level (each entry carries it), the leader's
  current level (its heartbeat: a leader at Level 2 with nothing to publish still makes
  every answer Level 2) and ``own_level()``;
* ``stale``: the age is past the facade's freshness rule for its caches
  (:func:`actors.routing.is_current`, ``max_cache_age``, 2 s by default): a price the
  feed has not renewed in time is never shown as fresh. ``stale`` goes by the data's age
  alone: a quiet market's trades and candles are flagged stale too (a cut-off leader is
  told apart by its heartbeat, below: the reads raise ``LeaderSilent``).

A read the feed cannot answer raises :class:`NotInFeed` with its :class:`Missing` reason
(a market not in the feed yet, candles with ``to`` or another interval, more trades or
candles than the stream keeps, an unreadable snapshot); the facade sends those to its
own REST client. Each market asked for is added to the symbols this host registers, so
the leader publishes it from then on. Redis unreachable: :class:`~lifeline.feed.errors.
FeedUnavailable` within the client's timeouts, never a hang. An invalid request is the
caller's :class:`~quotation.errors.InvalidRequest`, as with the facade.

**The leader's heartbeat** (:class:`~lifeline.feed.streams.Heartbeat`, written by the
leader every ``ttl / 3``) is read with the lease holder in one round trip, at most once
per ``watch_interval`` for the reads (a cached one is reused meanwhile; a read that would
find the leader silent reads it again first). The leader is **silent** when the lease has a
holder and its heartbeat is older than the leader's ``leader_ttl`` + ``watch_interval``,
or missing (or another holder's) for longer than ``watch_interval``: the reads then raise
:class:`~lifeline.feed.errors.LeaderSilent` (a ``FeedUnavailable``: the host serves from
its own tree), and keep raising it until a heartbeat written after the one found silent
is seen fresh (no flapping). With no holder (a takeover due) nobody is silent.
:meth:`FeedFollower.check_leader` is the same judgement on a fresh read (the host's watch).
The heartbeat's age involves no host's wall clock (hosts on several machines may disagree
by any amount): Redis stamps ``at`` with its ``TIME`` and the read fetches Redis' ``TIME``
with it, so the age at a read is Redis' clock minus Redis' clock; from then on this host
adds its injected MONOTONIC clock's time since (a cached read ages so, and a heartbeat read
again unchanged is at least as old as that; the larger of the two is taken).

Threads (each stops within a stated bound on :meth:`FeedFollower.close`): the symbol
registration (every ``registration_ttl / 3`` real seconds: the registry's TTL runs on
Redis' clock), one :class:`~lifeline.feed.streams.StreamFollower` for every subscription,
and one :class:`~lifeline.subscriptions.Dispatcher` that calls the host's callbacks (its
guarantees: in order, trades at most once, bounded queue).
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from actors.messages import produced_at
from actors.routing import RoutingRules
from lifeline.answer import Answer, SharedSource, age_of, new_answer
from lifeline.feed.errors import CodecError, FeedError, LeaderSilent
from lifeline.feed.lease import DEFAULT_LEADER_TTL
from lifeline.feed.redis_io import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKET_TIMEOUT
from lifeline.feed.streams import (
    FeedEntry,
    FeedKeys,
    FeedKind,
    FeedReader,
    Heartbeats,
    LeaderState,
    ReadBatch,
    Snapshots,
    StreamFollower,
    SymbolRegistry,
    stream_ends,
)
from lifeline.levels import Level
from lifeline.subscriptions import Dispatcher, StreamKind, Subscription, Update
from quotation.clock import Clock, SystemClock
from quotation.models import Candle, CandleInterval, Orderbook, Ticker, Trade
from quotation.rest.validation import (
    validate_candle_count,
    validate_candle_to,
    validate_interval,
    validate_market,
    validate_markets,
    validate_trades_count,
)

if TYPE_CHECKING:
    import redis

__all__ = [
    "DEFAULT_REGISTRATION_TTL",
    "FeedFollower",
    "FollowerStatus",
    "Missing",
    "NotInFeed",
    "SharedSource",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_REGISTRATION_TTL: Final = 15.0
"""Seconds a host's symbol registration lives without a refresh (refreshed every third)."""
_CANDLE_READS: Final = 4
"""Most stream reads for one candles answer (each 4x the one before)."""


class Missing(enum.Enum):
    """Why the feed cannot answer a read (the facade asks its own REST client instead)."""

    NOT_YET = "not in the feed yet"
    """Nothing published for that market and kind (yet: the leader is told to publish it)."""
    WITH_TO = "candles ending at 'to' are not kept"
    """The feed keeps the latest candles, not a history up to a time."""
    TOO_FEW = "fewer kept than asked"
    """More trades or candles asked for than the stream holds."""
    NOT_PUBLISHED = "not published"
    """A kind or interval the leader does not publish (candles other than 1-minute)."""
    BAD_ENTRY = "unreadable entry"
    """The latest snapshot could not be decoded (skipped and counted)."""


class NotInFeed(FeedError):
    """A read the feed cannot answer: ``reason`` (:class:`Missing`), ``kind`` (``ticker``,
    ``trade``, ``orderbook``, ``candle.1m`` or the interval asked) and ``markets``."""

    def __init__(self, reason: Missing, kind: str, markets: Sequence[str],
                 detail: str = "") -> None:
        super().__init__(f"{kind} of {', '.join(markets)}: {reason.value}"
                         + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.kind = kind
        self.markets = tuple(markets)


@dataclass(frozen=True, slots=True)
class FollowerStatus:
    """The follower's side of ``status().to_dict()["feed"]``."""

    host_id: str
    leader: str | None
    """The lease holder's owner id (``None``: nobody holds it, or Redis was not reached)."""
    leader_token: int | None
    lease_ttl_left: float | None
    """Seconds until the lease expires without a renewal."""
    lag: float | None
    """Wall-clock seconds since Redis wrote the newest entry this follower read."""
    entries_read: int
    bad_entries: int
    """Entries skipped as unreadable (stream entries and snapshots)."""
    symbols: tuple[str, ...]
    """What this host registers (its own symbols, markets asked for, subscribed)."""
    subscriptions: int
    error: str | None = None
    """Why the leader could not be read, if it could not."""
    mode: str = "shared"
    role: str = "follower"
    heartbeat_age: float | None = None
    """Seconds since the leader's heartbeat was written, on Redis' clock (no host's wall
    clock: ``FeedFollower``'s module docstring) (``None``: no heartbeat, or Redis not
    reached)."""
    leader_level: int | None = None
    """The leader's tree's level from its heartbeat (``None``: no heartbeat)."""
    silent: bool = False
    """The leader is silent (:class:`~lifeline.feed.errors.LeaderSilent`) as last judged."""

    def to_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "role": self.role, "host_id": self.host_id,
                "leader": self.leader, "leader_token": self.leader_token,
                "lease_ttl_left": self.lease_ttl_left, "lag": self.lag,
                "entries_read": self.entries_read, "bad_entries": self.bad_entries,
                "symbols": list(self.symbols), "subscriptions": self.subscriptions,
                "error": self.error, "heartbeat_age": self.heartbeat_age,
                "leader_level": self.leader_level, "silent": self.silent}


def default_host_id() -> str:
    """``<hostname>/<pid>``: unique per process on a machine."""
    return f"{socket.gethostname()}/{os.getpid()}"


class FeedFollower:
    """Serves the facade's reads and subscriptions from the shared feed (module docstring).

    ``own_level()`` is the host's own level (read once per read, and per item delivered);
    ``clock`` gives the wall time ages are measured on; ``host_id`` names this host in the
    symbol registry (no ``:``); ``symbols`` are registered from :meth:`start` on;
    ``watch_interval`` bounds how long a heartbeat read is reused and is the slack of the
    silence rule (module docstring; ``None``: the one :meth:`check_leader` was last given,
    else the heartbeat's own interval, ``ttl / 3``).
    """

    def __init__(self, client: redis.Redis, keys: FeedKeys, *,
                 own_level: Callable[[], Level], clock: Clock | None = None,
                 host_id: str | None = None, symbols: Iterable[str] = (),
                 rules: RoutingRules | None = None,
                 registration_ttl: float = DEFAULT_REGISTRATION_TTL,
                 read_block: float = 0.1, watch_interval: float | None = None) -> None:
        self.keys = keys
        self.host_id = default_host_id() if host_id is None else host_id
        self._client = client
        self._own_level = own_level
        self._clock: Clock = SystemClock() if clock is None else clock
        self._rules = RoutingRules() if rules is None else rules
        self._snapshots = Snapshots(client, keys)
        self._registry = SymbolRegistry(client, keys, ttl=registration_ttl)
        self._heartbeats = Heartbeats(client, keys)
        self._interval = watch_interval
        self._judging = threading.Lock()  # the heartbeat's cache and the silence judgement
        self._view: LeaderState | None = None
        self._view_at = 0.0
        self._leader_level = Level.NORMAL
        """The leader's level from the last heartbeat read (subscriptions use it as is)."""
        self._missing: tuple[int, float] | None = None
        """(holder token, when first seen without its heartbeat) (the clock's monotonic)."""
        self._silent: LeaderSilent | None = None
        self._silent_mark: tuple[int, float] | None = None
        """The heartbeat (token, written_at) found silent: back only on another, fresh one."""
        self._beat_age: tuple[tuple[int, float], float, float] | None = None
        """The heartbeat last read (token, written_at), its age (Redis' clock) and when that
        held (the clock's monotonic): later it is that age plus the monotonic time since."""
        self._own_symbols = validate_markets(tuple(symbols)) if symbols else ()
        self._asked: dict[str, None] = {}
        self._lock = threading.Lock()
        self._stats = threading.Lock()
        self.entries_read = 0
        self.bad_entries = 0
        self._newest_published: float | None = None
        self._sources: dict[str, SharedSource] = {}
        # the registration thread
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._register_every = registration_ttl / 3.0
        self._registrar = threading.Thread(target=self._register_loop, daemon=True,
                                           name="lifeline-feed-registrar")
        # subscriptions: one stream follower, one dispatcher
        self._delivering = Level.NORMAL  # the publisher's level of the item being offered
        self._dispatcher = Dispatcher(self._clock, self._offer_level,
                                      on_change=self._subscriptions_changed,
                                      name="lifeline-feed-dispatcher")
        self._reader = FeedReader(client, keys, block=read_block)
        self._streams = StreamFollower(self._reader, self._deliver, on_error=self._stream_error,
                                       name="lifeline-feed-follower")
        self._followed: set[tuple[FeedKind, str]] = set()
        self._changing = threading.Lock()  # one subscription change (and its pins) at a time
        self._started = False
        self._closed = False
        kwargs = client.connection_pool.connection_kwargs
        call_bound = (float(kwargs.get("socket_connect_timeout") or DEFAULT_CONNECT_TIMEOUT)
                      + float(kwargs.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT) + 0.5)
        self.stop_bound = max(self._streams.stop_bound, call_bound)
        """Seconds :meth:`close` waits for each of its threads (a read or a registration in
        flight: the client's connect and socket timeouts) and for its unregistration."""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start registering symbols and delivering subscriptions (once)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._dispatcher.start()
        self._streams.start()
        self._registrar.start()

    def close(self) -> bool:
        """Close every subscription, stop the threads (each within :attr:`stop_bound`) and
        unregister this host (best effort); ``True`` if every thread ended. Idempotent."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        self._stop.set()
        self._wake.set()
        self._dispatcher.stop(self.stop_bound)
        ended = self._streams.stop()
        if self._registrar.ident is not None:
            self._registrar.join(self.stop_bound)
            ended = ended and not self._registrar.is_alive()
        if self._started:
            try:
                self._registry.unregister(self.host_id)
            except FeedError as exc:
                logger.info("feed follower %s: could not unregister: %s", self.host_id, exc)
        return ended

    def __enter__(self) -> FeedFollower:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------------------

    def get_ticker(self, markets: str | list[str] | tuple[str, ...]) -> Answer[list[Ticker]]:
        wanted = validate_markets(markets)
        return self._latest(FeedKind.TICKER, wanted, Ticker)

    def get_orderbook(self, markets: str | list[str] | tuple[str, ...]
                      ) -> Answer[list[Orderbook]]:
        wanted = validate_markets(markets)
        return self._latest(FeedKind.ORDERBOOK, wanted, Orderbook)

    def get_trades(self, market: str, count: int = 100) -> Answer[list[Trade]]:
        """The newest ``count`` trades, newest first (Upbit's order: by ``sequential_id``,
        whatever order the stream holds them in)."""
        market, count = validate_market(market), validate_trades_count(count)
        level = self._level()
        self._ask((market,))
        batch = self._snapshots.recent(FeedKind.TRADE, market, count)
        if batch.bad:  # once more, as many entries further back as were skipped
            batch = self._snapshots.recent(FeedKind.TRADE, market, count + len(batch.bad))
        self._read(batch)
        if not batch.entries:
            raise NotInFeed(Missing.NOT_YET, FeedKind.TRADE.value, (market,))
        if len(batch.entries) < count:
            raise NotInFeed(Missing.TOO_FEW, FeedKind.TRADE.value, (market,),
                            f"{count} asked, {len(batch.entries)} kept")
        entries = tuple(sorted(batch.entries, reverse=True,
                               key=lambda e: cast(Trade, e.item).sequential_id))
        return self._answer([cast(Trade, e.item) for e in entries], entries, level)

    def get_candles(self, market: str, interval: object, count: int = 200,
                    to: datetime | str | None = None) -> Answer[list[Candle]]:
        """The newest ``count`` 1-minute candles, oldest first (the latest version of each
        minute the stream holds)."""
        market = validate_market(market)
        unit, count = validate_interval(interval), validate_candle_count(count)
        sent_to = validate_candle_to(to)
        if unit is not CandleInterval.MINUTE_1:
            raise NotInFeed(Missing.NOT_PUBLISHED, f"candle.{unit.value}", (market,))
        if sent_to is not None:
            raise NotInFeed(Missing.WITH_TO, FeedKind.CANDLE_1M.value, (market,), sent_to)
        level = self._level()
        self._ask((market,))
        latest: dict[datetime, FeedEntry] = {}
        asked = max(4 * count, 64)
        for _ in range(_CANDLE_READS):
            batch = self._snapshots.recent(FeedKind.CANDLE_1M, market, asked)
            latest = {}
            for entry in batch.entries:  # oldest first: a later version replaces
                latest[cast(Candle, entry.item).start] = entry
            if len(latest) >= count or len(batch.entries) + len(batch.bad) < asked:
                break
            asked *= 4
        self._read(batch)
        if not latest:
            raise NotInFeed(Missing.NOT_YET, FeedKind.CANDLE_1M.value, (market,))
        if len(latest) < count:
            raise NotInFeed(Missing.TOO_FEW, FeedKind.CANDLE_1M.value, (market,),
                            f"{count} asked, {len(latest)} kept")
        entries = tuple(latest[start] for start in sorted(latest)[-count:])
        return self._answer([cast(Candle, e.item) for e in entries], entries, level)

    # -- realtime --------------------------------------------------------------------------

    def subscribe(self, kind: str, markets: str | list[str] | tuple[str, ...],
                  callback: Callable[[Update[Any]], object]) -> Subscription:
        """Call ``callback(Update)`` for every ``kind`` item of ``markets`` published after
        this returns, until ``close()``. :meth:`start` first."""
        stream = StreamKind.of(kind)
        wanted = validate_markets(markets)
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r:.80}")
        if not self._started or self._closed:
            raise RuntimeError("the feed follower is not running (start() it first)")
        return self._dispatcher.add(stream, wanted, callback)

    # -- status ----------------------------------------------------------------------------

    def status(self) -> FollowerStatus:
        """Counters, lag and who leads (one Redis round trip; an unreachable Redis is
        reported in ``error``, not raised)."""
        leader = token = ttl_left = error = age = leader_level = redis_now = None
        try:
            state = self._read_leader()
        except FeedError as exc:
            error = str(exc)
        else:
            redis_now = state.read_at
            holder, beat = state.holder, state.heartbeat
            if holder is not None:
                leader, token, ttl_left = holder.owner, holder.token, holder.ttl_left
            if beat is not None:
                with self._judging:
                    age = self._age(state, self._clock.monotonic())
                leader_level = beat.level
            if state.error is not None:
                error = str(state.error)
        with self._stats:
            read, bad, newest = self.entries_read, self.bad_entries, self._newest_published
        # the newest entry's id is Redis' time: so is ``now`` when Redis answered (no skew
        # between this host's clock and Redis' enters the lag), else this host's wall clock
        now = self._clock.time() if redis_now is None else redis_now
        lag = None if newest is None else max(0.0, now - newest)
        return FollowerStatus(self.host_id, leader, token, ttl_left, lag, read, bad,
                              self.symbols(), len(self._dispatcher.subscriptions), error,
                              heartbeat_age=age, leader_level=leader_level,
                              silent=self._silent is not None)

    # -- the leader's heartbeat ------------------------------------------------------------

    def check_leader(self, interval: float | None = None) -> LeaderState:
        """Read the lease holder and its heartbeat afresh and judge them (module docstring):
        :class:`LeaderSilent` if the leader is silent, :class:`FeedUnavailable` if Redis is
        away, else what was read. ``interval`` (the caller's watch interval) becomes
        ``watch_interval`` when that was not given."""
        if interval is not None and interval > 0:
            self._interval = interval
        state = self._read_leader()
        silent = self._judge(state, fresh=True)
        if silent is not None:
            raise silent
        return state

    def _level(self) -> Level:
        """A read's level before its entries: the worse of the host's own and the leader's
        heartbeat (a cached read; :class:`LeaderSilent` if the leader is silent)."""
        own = self._own_level()
        now = self._clock.monotonic()
        with self._judging:
            view, at = self._view, self._view_at
        if view is None or now - at >= self._slack(view):
            view = self._read_leader()
            silent = self._judge(view, fresh=True)
        else:
            silent = self._judge(view, fresh=False)
            if silent is not None:  # judged on a cached read: read again before saying so
                view = self._read_leader()
                silent = self._judge(view, fresh=True)
        if silent is not None:
            raise silent
        return max(own, self._leader_level)

    def _read_leader(self) -> LeaderState:
        state = self._heartbeats.read()
        beat = state.heartbeat
        with self._judging:
            now = self._clock.monotonic()
            self._view, self._view_at = state, now
            self._leader_level = Level.NORMAL if beat is None else _level(beat.level)
            self._note_age(state, now)
        if state.error is not None:
            logger.warning("feed follower %s: unreadable leader heartbeat: %s", self.host_id,
                           state.error)
        return state

    def _note_age(self, state: LeaderState, now: float) -> None:
        """Keep the age of the heartbeat just read (under ``_judging``): Redis' measure for
        one first seen; for one seen before, the larger of Redis' and the one carried on
        the monotonic clock since (the two agree, clocks running at the same rate)."""
        beat, age = state.heartbeat, state.heartbeat_age
        if beat is None or age is None:
            self._beat_age = None
            return
        key, known = (beat.token, beat.written_at), self._beat_age
        if known is None or known[0] != key or age > known[1] + (now - known[2]):
            self._beat_age = (key, age, now)

    def _age(self, state: LeaderState, now: float) -> float | None:
        """Seconds since ``state``'s heartbeat was written, at ``now`` (the monotonic clock;
        under ``_judging``): its age on Redis' clock when read, plus this host's monotonic
        time since (a cached read ages with it). No wall clock enters it."""
        beat, known = state.heartbeat, self._beat_age
        if beat is None:
            return None
        if known is not None and known[0] == (beat.token, beat.written_at):
            return known[1] + max(0.0, now - known[2])
        return state.heartbeat_age  # read by another thread meanwhile: as read

    def _slack(self, state: LeaderState | None) -> float:
        """The watch interval: given, else the heartbeat's own, else ``ttl / 3`` default."""
        if self._interval is not None:
            return self._interval
        if state is not None and state.heartbeat is not None:
            return state.heartbeat.every
        return DEFAULT_LEADER_TTL / 3.0

    def _judge(self, state: LeaderState, *, fresh: bool) -> LeaderSilent | None:
        """The silence rule on ``state``; only a ``fresh`` read may start or end a silence
        (a cached one answers "maybe silent", and the caller reads again)."""
        now = self._clock.monotonic()
        slack = self._slack(state)
        beat = state.current
        with self._judging:
            if self._silent is not None:  # back only on a heartbeat written since, fresh
                age = self._age(state, now)
                back = (fresh and beat is not None and age is not None
                        and (beat.token, beat.written_at) != self._silent_mark
                        and age <= beat.ttl + slack)
                if not back:
                    return self._silent
                self._silent = self._silent_mark = self._missing = None
                logger.info("feed follower %s: leader %s beats again (token %d)",
                            self.host_id, beat.owner if beat else "?", beat.token if beat else 0)
                return None
            error = self._verdict(state, now, slack)
            if error is None or not fresh:
                return error
            self._silent = error
            self._silent_mark = None if beat is None else (beat.token, beat.written_at)
        logger.warning("feed follower %s: %s", self.host_id, error)
        return error

    def _verdict(self, state: LeaderState, now: float, slack: float) -> LeaderSilent | None:
        """The rule itself (under ``_judging``): a holder whose heartbeat is older than its
        ``leader_ttl`` + ``slack`` (:meth:`_age`: Redis' clock, then the monotonic one), or
        missing for longer than ``slack``."""
        holder, beat = state.holder, state.current
        if holder is None:  # nobody leads: a takeover is due, nobody is silent
            self._missing = None
            return None
        if beat is None:
            if self._missing is None or self._missing[0] != holder.token:
                self._missing = (holder.token, now)
            missing_for = now - self._missing[1]
            if missing_for <= slack:
                return None
            return LeaderSilent(
                f"shared feed: leader silent: {holder.owner} (token {holder.token}) holds "
                f"the lease with no heartbeat for {missing_for:.2f} s (bound {slack:g} s)",
                holder=holder.owner, age=None)
        self._missing = None
        age = self._age(state, now)
        if age is None or age <= beat.ttl + slack:
            return None
        return LeaderSilent(
            f"shared feed: leader silent: {beat.owner} (token {beat.token}) last beat "
            f"{age:.2f} s ago (bound: its leader_ttl {beat.ttl:g} s + {slack:g} s)",
            holder=beat.owner, age=age)

    def symbols(self) -> tuple[str, ...]:
        """What this host registers: its own symbols, then markets asked for or subscribed."""
        with self._lock:
            asked = tuple(self._asked)
        return tuple(dict.fromkeys((*self._own_symbols, *asked, *self._dispatcher.markets())))

    # -- reading ---------------------------------------------------------------------------

    def _latest(self, kind: FeedKind, markets: tuple[str, ...], model: type[T]
                ) -> Answer[list[T]]:
        level = self._level()
        self._ask(markets)
        try:
            found = self._snapshots.latest(kind, markets)
        except CodecError as exc:
            self._count(bad=1)
            raise NotInFeed(Missing.BAD_ENTRY, kind.value, markets, str(exc)) from exc
        missing = [m for m in markets if m not in found]
        if missing:
            raise NotInFeed(Missing.NOT_YET, kind.value, missing)
        entries = tuple(found[m] for m in markets)
        self._seen(entries)
        return self._answer([cast(T, e.item) for e in entries], entries, level)

    def _read(self, batch: ReadBatch) -> None:
        """Count what an answer was read from (the bad entries it skipped too)."""
        self._seen(batch.entries)
        if batch.bad:
            self._count(bad=len(batch.bad))

    def _answer(self, data: list[T], entries: Sequence[FeedEntry], own: Level
                ) -> Answer[list[T]]:
        worst = entries[0]
        for entry in entries:
            if entry.level > worst.level:
                worst = entry
        level = max(own, _level(worst.level))
        age = age_of(produced_at(cast(Any, data)), self._clock)
        stale = age is None or age > self._rules.max_cache_age
        return new_answer(data, self._source(worst.source), level, age, stale)

    def _source(self, publisher: str) -> SharedSource:
        shared = self._sources.get(publisher)
        if shared is None:
            shared = self._sources.setdefault(publisher, SharedSource.of(publisher))
        return shared

    def _seen(self, entries: Sequence[FeedEntry]) -> None:
        if not entries:
            return
        newest = max(e.published_at for e in entries)
        with self._stats:
            self.entries_read += len(entries)
            if self._newest_published is None or newest > self._newest_published:
                self._newest_published = newest

    def _count(self, *, bad: int) -> None:
        with self._stats:
            self.bad_entries += bad

    # -- symbol registration ---------------------------------------------------------------

    def _ask(self, markets: Iterable[str]) -> None:
        """Remember markets asked for; wake the registrar when one is new."""
        new = False
        with self._lock:
            for market in markets:
                if market not in self._asked:
                    self._asked[market] = None
                    new = True
        if new:
            self._wake.set()

    def _register_loop(self) -> None:
        """Register every ``registration_ttl / 3`` (sooner when woken by a new market;
        every second at most while Redis is away, one WARNING per outage)."""
        failing = False
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._registry.register(self.host_id, self.symbols())
            except FeedError as exc:
                if not failing:
                    logger.warning("feed follower %s: symbol registration failed (retrying "
                                   "every second at most): %s", self.host_id, exc)
                failing = True
                self._wake.wait(min(self._register_every, 1.0))
                continue
            if failing:
                logger.info("feed follower %s: symbols registered again", self.host_id)
            failing = False
            self._wake.wait(self._register_every)

    # -- subscriptions ---------------------------------------------------------------------

    def _subscriptions_changed(self) -> None:
        """Follow the streams the open subscriptions need, each pinned at its end now (so
        whatever is published after ``subscribe`` returns is delivered); drop the others.
        The new streams' ends are read in one round trip: a silent Redis costs a subscribe
        one socket timeout, whatever the number of markets."""
        with self._changing:  # a second subscribe returns after the first one's pins
            wanted = {(FeedKind(sub.kind.value), market)
                      for sub in self._dispatcher.subscriptions for market in sub.markets}
            added, removed = wanted - self._followed, self._followed - wanted
            self._followed = wanted
            new = sorted(added, key=lambda km: (km[0].value, km[1]))
            ends = self._ends_of(new)
            for kind, market in new:
                self._streams.follow(kind, market, after=ends.get((kind, market)))
            for kind, market in removed:
                self._streams.unfollow(kind, market)
        if added:
            self._wake.set()

    def _ends_of(self, streams: Sequence[tuple[FeedKind, str]]
                 ) -> dict[tuple[FeedKind, str], bytes]:
        """Each stream's last id now (``0-0``: empty), in one round trip; a stream left out
        (Redis unreachable, or refusing that key) is pinned at the stream follower's next
        read instead."""
        if not streams:
            return {}
        names = {self.keys.stream(kind, market): (kind, market) for kind, market in streams}
        try:
            ends = stream_ends(self._client, list(names))
        except FeedError as exc:
            logger.info("feed follower: %d stream(s) followed from their next read: %s",
                        len(names), exc)
            return {}
        return {names[stream]: last for stream, last in ends.items()}

    def _offer_level(self) -> Level:
        """The level an item is delivered at: the worst of the host's, its publisher's and
        the leader's last heartbeat's (the dispatcher reads it within :meth:`_deliver`, on
        the stream thread; no Redis read here)."""
        return max(self._own_level(), self._delivering, self._leader_level)

    def _deliver(self, entry: FeedEntry) -> None:
        self._seen((entry,))
        self._delivering = _level(entry.level)
        self._dispatcher.offer((entry.item,), self._source(entry.source))

    def _stream_error(self, error: FeedError) -> None:
        if isinstance(error, CodecError):
            self._count(bad=1)
        else:
            logger.info("feed follower: stream read failed (retrying): %s", error)


def _level(value: int) -> Level:
    """A publisher's level as a :class:`Level` (outside 0-3: the nearest)."""
    return Level(min(max(value, Level.NORMAL), Level.LAST_RESORT))

"""The feed follower on a real Redis, fed with the simulator's canonical models: answers
with the publisher's source, the exchange age, the worse level and ``stale``; typed
``NotInFeed`` for what the feed cannot answer; ``FeedUnavailable`` when Redis is away and
answers again when it is back; subscriptions in order without duplicates; bad entries
skipped and counted; status."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import redis

from lifeline.feed import (
    FeedKeys,
    FeedKind,
    FeedModel,
    FeedPublisher,
    FeedUnavailable,
    Lease,
    SymbolRegistry,
)
from lifeline.feed.follower import FeedFollower, Missing, NotInFeed
from lifeline.feed.lease import LeaseGrant
from lifeline.levels import Level
from lifeline.subscriptions import Update
from quotation.errors import InvalidRequest
from quotation.models import CandleInterval, Trade
from quotation.rest import RateLimiter, RestClient, RestConfig
from tests.fakes import ManualClock
from tests.lifeline.feed.test_streams import CountingRedis
from tests.lifeline.system_support import until
from tests.redis_support import RedisServer
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(60)

KEYS = FeedKeys("f")
BTC, ETH = "KRW-BTC", "KRW-ETH"
WAIT = 10.0
"""Real seconds a test waits for a thread's work (a bound, never expected to elapse)."""


class OwnLevel:
    """The host's own level, set by the test."""

    def __init__(self) -> None:
        self.level = Level.NORMAL

    def __call__(self) -> Level:
        return self.level


class Market:
    """The simulator's canonical models for BTC and ETH, read once through a RestClient."""

    def __init__(self, sim: Simulator, limiter: RateLimiter) -> None:
        with RestClient(RestConfig(base_url=sim.base_url), limiter=limiter) as rest:
            self.tickers = rest.get_tickers([BTC, ETH])
            self.books = rest.get_orderbooks([BTC, ETH])
            self.trades = list(reversed(rest.get_trades(BTC, count=40)))  # oldest first
            self.candles = rest.get_candles(BTC, CandleInterval.MINUTE_1, count=5)


@pytest.fixture
def market(sim_factory: Callable[..., Simulator], limiter: RateLimiter) -> Market:
    return Market(sim_factory(seed=11), limiter)


@pytest.fixture
def grant(client: redis.Redis) -> LeaseGrant:
    got = Lease(client, KEYS.leader, "leader-1", ttl=30.0, clock=ManualClock()).try_acquire()
    assert got is not None
    return got


@pytest.fixture
def publish(client: redis.Redis, grant: LeaseGrant) -> Callable[..., list[bytes]]:
    publisher = FeedPublisher(client, KEYS)

    def send(items: list[FeedModel], source: str = "smart_router/websocket",
             level: int = 0) -> list[bytes]:
        return publisher.publish(grant, items, source=source, level=level)

    return send


@pytest.fixture
def own() -> OwnLevel:
    return OwnLevel()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def follower(client: redis.Redis, own: OwnLevel, clock: ManualClock) -> Iterator[FeedFollower]:
    made = FeedFollower(client, KEYS, own_level=own, clock=clock, host_id="host-a",
                        symbols=[BTC])
    yield made
    assert made.close()


def _at(clock: ManualClock, wall: float) -> None:
    clock.advance(wall - clock.time())


# -- answers ---------------------------------------------------------------------------------

def test_tickers_carry_the_publishers_source_the_exchange_age_and_turn_stale_past_the_rule(
    market: Market, publish: Callable[..., list[bytes]], follower: FeedFollower,
    clock: ManualClock,
) -> None:
    publish(market.tickers)
    oldest = min(t.timestamp.timestamp() for t in market.tickers)
    _at(clock, oldest + 0.5)
    answer = follower.get_ticker([ETH, BTC])
    assert [t.market for t in answer.data] == [ETH, BTC]
    assert answer.data == sorted(market.tickers, key=lambda t: t.market != ETH)
    assert answer.source == "shared/smart_router/websocket"
    assert answer.source.value == "shared/smart_router/websocket"
    assert answer.level is Level.NORMAL
    assert answer.age == pytest.approx(0.5)
    assert answer.stale is False
    clock.advance(1.6)  # 2.1 s since the oldest ticker: past max_cache_age (2 s)
    later = follower.get_ticker([ETH, BTC])
    assert later.age == pytest.approx(2.1)
    assert later.stale is True


def test_orderbooks_are_answered_from_the_latest_snapshot(
    market: Market, publish: Callable[..., list[bytes]], follower: FeedFollower,
    clock: ManualClock,
) -> None:
    book = market.books[0]
    older = replace(book, timestamp=book.timestamp - timedelta(seconds=1))
    publish([older], source="rest_fallback")
    publish([book], source="rest_fallback")
    _at(clock, book.timestamp.timestamp() + 0.25)
    answer = follower.get_orderbook(book.market)
    assert answer.data == [book]
    assert (answer.source, answer.age, answer.stale) == ("shared/rest_fallback", 0.25, False)


def test_trades_are_the_newest_kept_newest_first_aged_by_the_newest(
    market: Market, publish: Callable[..., list[bytes]], follower: FeedFollower,
    clock: ManualClock,
) -> None:
    publish(market.trades)
    newest = market.trades[-1]
    _at(clock, newest.timestamp.timestamp() + 1.0)
    answer = follower.get_trades(BTC, 5)
    assert answer.data == list(reversed(market.trades[-5:]))
    assert (answer.age, answer.stale) == (1.0, False)
    clock.advance(1.5)
    assert follower.get_trades(BTC, 5).stale is True


def test_candles_are_the_latest_version_of_each_minute_oldest_first(
    market: Market, publish: Callable[..., list[bytes]], follower: FeedFollower,
    clock: ManualClock,
) -> None:
    candles = market.candles  # oldest first
    last = candles[-1]
    updated = replace(last, trade_price=last.trade_price + 1.0,
                      last_trade_time=last.last_trade_time + timedelta(milliseconds=500))
    publish([*candles, updated])
    _at(clock, updated.last_trade_time.timestamp() + 0.75)
    answer = follower.get_candles(BTC, "1m", 3)
    assert answer.data == [*candles[-3:-1], updated]
    assert (answer.age, answer.stale) == (0.75, False)


@pytest.mark.parametrize(("published", "own_level", "expected"), [
    (2, Level.NORMAL, Level.FALLBACK),
    (2, Level.LAST_RESORT, Level.LAST_RESORT),
    (0, Level.DEGRADED, Level.DEGRADED),
])
def test_the_level_is_the_worse_of_the_publishers_and_the_hosts(
    market: Market, publish: Callable[..., list[bytes]], follower: FeedFollower,
    own: OwnLevel, published: int, own_level: Level, expected: Level,
) -> None:
    publish(market.tickers, level=published)
    publish(market.trades, level=published)
    own.level = own_level
    assert follower.get_ticker(BTC).level is expected
    assert follower.get_trades(BTC, 3).level is expected


def test_an_answer_from_entries_of_several_levels_takes_the_worst_and_its_source(
    market: Market, publish: Callable[..., list[bytes]], follower: FeedFollower,
) -> None:
    btc, eth = market.tickers
    publish([btc], source="smart_router/websocket", level=0)
    publish([eth], source="rest_fallback", level=2)
    answer = follower.get_ticker([btc.market, eth.market])
    assert (answer.source, answer.level) == ("shared/rest_fallback", Level.FALLBACK)


# -- what the feed cannot answer --------------------------------------------------------------

def _missing(read: Callable[[], object]) -> NotInFeed:
    with pytest.raises(NotInFeed) as caught:
        read()
    return caught.value


def test_each_read_the_feed_cannot_answer_is_not_in_feed_naming_why(
    market: Market, publish: Callable[..., list[bytes]], follower: FeedFollower,
) -> None:
    publish([*market.tickers, *market.trades, *market.candles])
    cases = {
        Missing.NOT_YET: lambda: follower.get_ticker([BTC, "KRW-XRP"]),
        Missing.WITH_TO: lambda: follower.get_candles(BTC, "1m", 2, to="2026-03-11T12:00:00Z"),
        Missing.NOT_PUBLISHED: lambda: follower.get_candles(BTC, "3m", 2),
        Missing.TOO_FEW: lambda: follower.get_trades(BTC, 41),
    }
    for reason, read in cases.items():
        error = _missing(read)
        assert error.reason is reason, (reason, error)
    assert _missing(lambda: follower.get_ticker([BTC, "KRW-XRP"])).markets == ("KRW-XRP",)
    assert "41 asked, 40 kept" in str(_missing(lambda: follower.get_trades(BTC, 41)))
    assert _missing(lambda: follower.get_candles(BTC, "1m", 6)).reason is Missing.TOO_FEW
    # a kind nothing was published of
    assert _missing(lambda: follower.get_orderbook(BTC)).reason is Missing.NOT_YET
    assert _missing(lambda: follower.get_trades(ETH, 1)).reason is Missing.NOT_YET
    assert _missing(lambda: follower.get_candles(ETH, "1m", 1)).reason is Missing.NOT_YET


def test_an_invalid_request_is_the_callers_error_not_a_feed_miss(
    follower: FeedFollower,
) -> None:
    for read in (lambda: follower.get_ticker("btc"), lambda: follower.get_trades(BTC, 0),
                 lambda: follower.get_candles(BTC, "7m", 1),
                 lambda: follower.subscribe("quote", BTC, print)):
        with pytest.raises(InvalidRequest):
            read()


def test_an_unreadable_snapshot_is_not_in_feed_and_counted(
    client: redis.Redis, follower: FeedFollower,
) -> None:
    client.hset(KEYS.snapshot(FeedKind.TICKER, BTC),
                mapping={"d": b"T1junk", "src": b"x", "lvl": b"0", "tok": b"1", "id": b"1-0"})
    assert _missing(lambda: follower.get_ticker(BTC)).reason is Missing.BAD_ENTRY
    assert follower.status().bad_entries == 1


def test_markets_asked_for_are_registered_so_the_leader_publishes_them(
    client: redis.Redis, follower: FeedFollower,
) -> None:
    follower.start()
    _missing(lambda: follower.get_ticker("KRW-XRP"))
    registry = SymbolRegistry(client, KEYS)
    seen: frozenset[str] = frozenset()
    done = threading.Event()
    for _ in range(200):  # the registrar is woken by the new market; bounded wait
        seen = registry.union()
        if {BTC, "KRW-XRP"} <= seen or done.wait(0.05):
            break
    assert {BTC, "KRW-XRP"} <= seen
    assert follower.close()
    assert registry.union() == frozenset()  # a clean close unregisters the host


# -- Redis away ----------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_redis_stopped_is_feed_unavailable_and_answers_come_back_with_it(
    market: Market, publish: Callable[..., list[bytes]], follower: FeedFollower,
    redis_server: RedisServer, client: redis.Redis, grant: LeaseGrant,
) -> None:
    publish(market.tickers)
    assert follower.get_ticker(BTC).data == [market.tickers[0]]
    redis_server.stop()
    for read in (lambda: follower.get_ticker(BTC), lambda: follower.get_trades(BTC, 1),
                 lambda: follower.get_orderbook(BTC), lambda: follower.get_candles(BTC, "1m")):
        with pytest.raises(FeedUnavailable):
            read()
    assert follower.status().error is not None  # reported, not raised
    redis_server.start()  # an empty Redis (no persistence): the leader publishes again
    again = Lease(client, KEYS.leader, "leader-2", ttl=30.0, clock=ManualClock()).try_acquire()
    assert again is not None
    FeedPublisher(client, KEYS).publish(again, market.tickers, source="rest_fallback", level=1)
    answer = follower.get_ticker(BTC)
    assert (answer.data, answer.source, answer.level) == (
        [market.tickers[0]], "shared/rest_fallback", Level.DEGRADED)


# -- subscriptions -------------------------------------------------------------------------

class Collector:
    """A subscription callback that keeps what it got and signals at ``want`` updates."""

    def __init__(self, want: int) -> None:
        self.updates: list[Update[Any]] = []
        self.want = want
        self.enough = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, update: Update[Any]) -> None:
        with self._lock:
            self.updates.append(update)
            if len(self.updates) >= self.want:
                self.enough.set()


def test_a_subscription_gets_published_trades_in_order_once_and_nothing_after_close(
    market: Market, publish: Callable[..., list[bytes]], follower: FeedFollower,
    clock: ManualClock, own: OwnLevel,
) -> None:
    trades = market.trades
    publish(trades[:5])  # before the subscription: not delivered
    follower.start()
    got = Collector(want=30)
    sub = follower.subscribe("trade", BTC, got)
    publish(trades[5:20], level=1)
    publish(trades[15:25], level=1)  # a republish (e.g. across a takeover): duplicates
    publish(trades[25:35], source="rest_fallback", level=2)
    assert got.enough.wait(WAIT)
    assert [u.data for u in got.updates] == trades[5:35]
    first, last = got.updates[0], got.updates[-1]
    assert (first.source, first.level) == ("shared/smart_router/websocket", Level.DEGRADED)
    assert (last.source, last.level) == ("shared/rest_fallback", Level.FALLBACK)
    assert last.age == pytest.approx(max(0.0, clock.time() - trades[34].timestamp.timestamp()))
    sub.close()
    publish(trades[35:])
    after = Collector(want=1)
    follower.subscribe("trade", BTC, after)  # a new subscription: sees only what is new
    publish([replace(trades[-1], sequential_id=trades[-1].sequential_id + 1)])
    assert after.enough.wait(WAIT)
    assert len(got.updates) == 30  # the closed one got nothing more
    assert follower.status().subscriptions == 1


@pytest.mark.timeout(40)
def test_subscribing_many_markets_pins_their_streams_in_one_round_trip_also_with_redis_silent(
    market: Market, publish: Callable[..., list[bytes]], client: redis.Redis,
    redis_server: RedisServer, own: OwnLevel, clock: ManualClock,
) -> None:
    # the pins are read on the subscriber's thread, under the subscriptions' switch lock: one
    # round trip per subscribe, so a silent Redis costs it one socket timeout, not one per market
    live = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL")
    silent = ("KRW-ADA", "KRW-DOGE", "KRW-DOT", "KRW-TRX", "KRW-LINK")
    base = market.trades[0]
    serial = iter(range(base.sequential_id + 1, base.sequential_id + 10_000))

    def trades(markets: tuple[str, ...]) -> list[Trade]:
        sid = next(serial)
        return [replace(base, market=m, sequential_id=sid) for m in markets]

    counting = CountingRedis(client)
    follower = FeedFollower(counting, KEYS, own_level=own, clock=clock, host_id="host-c")
    follower.start()
    try:
        publish(trades(live))  # before the subscription: not delivered
        got = Collector(want=len(live))
        follower.subscribe("trade", live, got)
        assert counting.trips() == [f"pipeline of {len(live)}"]
        after = trades(live)
        publish(after)
        assert got.enough.wait(WAIT)
        assert sorted((u.data.market, u.data.sequential_id) for u in got.updates) == sorted(
            (t.market, t.sequential_id) for t in after)
        redis_server.pause()  # SIGSTOP: the port accepts, nothing answers
        try:
            later = Collector(want=len(silent))
            follower.subscribe("trade", silent, later)  # returns after ONE socket timeout
        finally:
            redis_server.resume()
        assert counting.trips() == [f"pipeline of {len(live)}", f"pipeline of {len(silent)}"]

        def delivered() -> bool:  # pinned at the stream follower's next read: publish again
            publish(trades(silent))
            return {u.data.market for u in later.updates} == set(silent)

        assert until(delivered, WAIT)
    finally:
        assert follower.close()


def test_a_bad_entry_in_a_stream_is_skipped_and_counted_and_the_follower_goes_on(
    client: redis.Redis, market: Market, publish: Callable[..., list[bytes]],
    follower: FeedFollower,
) -> None:
    follower.start()
    got = Collector(want=2)
    follower.subscribe("ticker", BTC, got)
    btc = market.tickers[0]
    publish([btc])
    client.xadd(KEYS.stream(FeedKind.TICKER, BTC), {"d": b"T1\xff", "src": b"x",
                                                   "lvl": b"0", "tok": b"1"})
    publish([replace(btc, timestamp=btc.timestamp + timedelta(seconds=1))])
    assert got.enough.wait(WAIT)
    assert [u.data.timestamp for u in got.updates] == [
        btc.timestamp, btc.timestamp + timedelta(seconds=1)]
    assert follower.status().bad_entries == 1


def test_a_bad_entry_among_recent_trades_is_skipped_and_counted(
    client: redis.Redis, market: Market, publish: Callable[..., list[bytes]],
    follower: FeedFollower,
) -> None:
    publish(market.trades[:3])
    client.xadd(KEYS.stream(FeedKind.TRADE, BTC), {"d": b"X1", "src": b"x"})
    publish(market.trades[3:6])
    assert follower.get_trades(BTC, 5).data == list(reversed(market.trades[1:6]))
    assert follower.status().bad_entries == 1
    assert _missing(lambda: follower.get_trades(BTC, 7)).reason is Missing.TOO_FEW


# -- status --------------------------------------------------------------------------------

def test_status_names_the_leader_its_lease_time_left_the_lag_and_the_counts(
    market: Market, publish: Callable[..., list[bytes]], follower: FeedFollower,
    clock: ManualClock, client: redis.Redis,
) -> None:
    before = follower.status().to_dict()
    assert (before["mode"], before["role"], before["leader"]) == ("shared", "follower",
                                                                  "leader-1")
    assert 0.0 < float(before["lease_ttl_left"]) <= 30.0  # type: ignore[arg-type]
    assert (before["lag"], before["entries_read"], before["bad_entries"]) == (None, 0, 0)
    publish(market.tickers)
    follower.get_ticker([BTC, ETH])
    after = follower.status()
    assert after.entries_read == 2
    # Redis' time now − Redis' time of the newest entry read: the real moment since the
    # publish (this host's fake wall clock is years away and does not enter it)
    assert after.lag is not None and 0.0 <= after.lag < WAIT
    assert after.symbols == (BTC, ETH)
    client.delete(KEYS.leader)
    assert follower.status().leader is None


@pytest.mark.timeout(40)
def test_a_subscription_resumes_when_redis_is_back_and_close_ends_every_thread_without_it(
    market: Market, publish: Callable[..., list[bytes]], follower: FeedFollower,
    redis_server: RedisServer, client: redis.Redis,
) -> None:
    trades = market.trades
    follower.start()
    got = Collector(want=5)
    follower.subscribe("trade", BTC, got)
    publish(trades[:5])
    assert got.enough.wait(WAIT)
    redis_server.stop()
    redis_server.start()  # empty: the next leader publishes from where the feed was
    grant = Lease(client, KEYS.leader, "leader-2", ttl=30.0, clock=ManualClock()).try_acquire()
    assert grant is not None
    got.enough.clear()
    got.want = 10
    FeedPublisher(client, KEYS).publish(grant, trades[5:10], source="rest_fallback", level=2)
    assert got.enough.wait(WAIT)
    assert [u.data for u in got.updates] == trades[:10]
    redis_server.stop()
    assert follower.close()  # every thread ended (each within stop_bound), Redis away


@pytest.mark.parametrize("skew", [3600.0, -3600.0])
def test_the_lag_is_measured_on_redis_clock_whatever_this_hosts_wall_clock_says(
    market: Market, publish: Callable[..., list[bytes]], client: redis.Redis, skew: float,
) -> None:
    # an entry's id is Redis' time; a host whose clock is an hour off (no NTP on one of the
    # machines) reported a lag of an hour (or none at all): now Redis' TIME, read with the
    # leader's state, is the other end
    redis_now = client.time()
    clock = ManualClock(wall=redis_now[0] + redis_now[1] / 1e6 + skew)
    follower = FeedFollower(client, KEYS, own_level=OwnLevel(), clock=clock,
                            host_id="host-skewed", symbols=[BTC])
    try:
        ids = publish(market.tickers)
        published = int(ids[-1].split(b"-")[0]) / 1000.0  # the entry id: Redis' ms
        follower.get_ticker([BTC])  # reads the entry: the newest seen is Redis' time of it
        seconds, micros = client.time()
        at_least = seconds + micros / 1e6 - published  # Redis' time has moved on since
        lag = follower.status().lag
        assert lag is not None and at_least <= lag < at_least + 5.0, (lag, at_least)
    finally:
        assert follower.close()

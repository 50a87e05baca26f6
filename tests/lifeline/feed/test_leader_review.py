"""FeedLeader on a real Redis and a fake clock, where its own loop is at fault (issue 11 review):

* a takeover's backfills of many markets, each a REST call under the shared budget, keep
  the lease renewed (before: the loop renewed nothing until every backfill was done, so
  after ``ttl`` of them the leader dropped its own lease, and the next host did the same);
* a stop during those backfills ends them between two markets (``stop_timeout`` holds);
* a market whose backfill failed is retried on its timer, not once per live trade (before:
  every live trade of it asked REST again, 50 trades → 50 calls in one pass);
* a publish Redis refused (``OOM command not allowed``: a script may have written part of
  its entries) re-reads its trades' markets from the stream and backfills them, as a
  publish whose reply was lost does (before: those trades were gone for good);
* a batch whose publish failed part-way (one run of one source refused, the runs after it
  never sent) re-synchronises every trade market of the batch, not only the failed run's
  (before: the trades of the runs after it were gone for good);
* a lease key holding a foreign value (not ``<token>:<owner>``) is a counted error, not a
  crash of the leader's thread, nor of a follower's read of the leader's state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from lifeline.errors import MarketDataUnavailable
from lifeline.feed import FeedKeys, FeedKind, FeedPublisher, Lease
from lifeline.feed.errors import FeedCommandError
from lifeline.feed.leader import FeedLeader
from lifeline.feed.streams import Heartbeats, Snapshots
from quotation.models import Change, Side, Trade
from tests.fakes import ManualClock

pytestmark = pytest.mark.timeout(60)

KEYS = FeedKeys("rv")
TTL = 3.0
"""Long enough for Redis' own (real-time) PX while the test steps the fake clock."""
SOURCE = "smart_router/websocket"
T0 = dt.datetime(2026, 3, 11, 12, 0, tzinfo=dt.UTC)


def trade(market: str, sid: int) -> Trade:
    return Trade(market=market, sequential_id=sid, timestamp=T0 + dt.timedelta(seconds=sid),
                 trade_price=100.0 + sid, trade_volume=1.0, ask_bid=Side.BID,
                 prev_closing_price=100.0, change_price=float(sid),
                 signed_change_price=float(sid), change=Change.RISE)


@dataclass(frozen=True)
class Offered:
    data: Any
    source: str = SOURCE


@dataclass(frozen=True)
class Trades:
    data: list[Trade]
    source: str = "rest"


class Host:
    """A ``LeaderHost``: keeps the subscription callbacks (the test offers the items); its
    REST ``get_trades`` answers the market's trades up to ``traded[market]`` (newest first),
    costs ``rest_cost`` seconds of the fake clock, or raises while ``rest_down``."""

    level = 0

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.callbacks: dict[tuple[str, str], Callable[[Any], object]] = {}
        self.traded: dict[str, int] = {}
        self.rest_cost = 0.0
        self.rest_down = False
        self.rest_calls: list[str] = []
        self.on_rest: Callable[[], object] = lambda: None

    def subscribe(self, kind: str, markets: str | list[str] | tuple[str, ...],
                  callback: Callable[[Any], object]) -> Host:
        assert isinstance(markets, str)
        self.callbacks[(kind, markets)] = callback
        return self

    def close(self) -> None:
        return None

    def get_trades(self, market: str, count: int = 100) -> Trades:
        self.rest_calls.append(market)
        self.clock.advance(self.rest_cost)
        self.on_rest()
        if self.rest_down:
            raise MarketDataUnavailable("REST down", kind="trades", markets=(market,),
                                        age=None, max_stale_age=1.0)
        last = self.traded[market]
        return Trades([trade(market, sid) for sid in range(last, max(0, last - count), -1)])

    def live(self, market: str, sid: int, source: str = SOURCE) -> None:
        """Trade ``sid`` happens in ``market`` and arrives on the leader's subscription."""
        self.traded[market] = max(self.traded.get(market, 0), sid)
        self.callbacks[("trade", market)](Offered(trade(market, sid), source))


def published_before(client: redis.Redis, markets: list[str], last: int) -> None:
    """A previous leader (token 1) published trades 1..``last`` of each market, then left."""
    lease = Lease(client, KEYS.leader, "old-leader", ttl=TTL, clock=ManualClock())
    grant = lease.try_acquire()
    assert grant is not None
    publisher = FeedPublisher(client, KEYS)
    for market in markets:
        publisher.publish(grant, [trade(market, sid) for sid in range(1, last + 1)],
                          source=SOURCE, level=0)
    assert lease.release()


def stream_sids(client: redis.Redis, market: str) -> list[int]:
    batch = Snapshots(client, KEYS).recent(FeedKind.TRADE, market, 10_000)
    assert batch.bad == ()
    return [entry.item.sequential_id for entry in batch.entries
            if isinstance(entry.item, Trade)]


def test_a_takeovers_backfills_under_a_slow_rest_budget_keep_the_lease(
    clients: Callable[[], redis.Redis],
) -> None:
    markets = [f"KRW-C{n:02d}" for n in range(8)]
    client = clients()
    published_before(client, markets, last=10)
    clock = ManualClock()
    host = Host(clock)
    leader = FeedLeader(host, clients(), KEYS, owner="host-a", leader_ttl=TTL, clock=clock,
                        host_symbols=markets)
    leader.step()
    assert leader.leading and len(host.callbacks) == 4 * len(markets)
    host.rest_cost = 1.0  # each backfill waits a second for the shared budget: 8 s in all
    for market in markets:
        host.traded[market] = 14  # 11..13 traded while nobody led
        host.live(market, 14)
    leader.step()
    status = leader.status()
    assert status.errors.get("LeaseLost", 0) == 0, status.last_error
    assert leader.leading
    assert status.takeovers == 1 and status.backfilled == 8 * 4
    assert sorted(host.rest_calls) == markets
    for market in markets:
        assert stream_sids(client, market) == list(range(1, 15)), market
    holder = Lease(client, KEYS.leader, "probe", ttl=TTL).holder()
    assert holder is not None and holder.owner == "host-a"


def test_a_stop_during_a_takeovers_backfills_ends_them_between_two_markets(
    clients: Callable[[], redis.Redis],
) -> None:
    markets = [f"KRW-C{n:02d}" for n in range(8)]
    client = clients()
    published_before(client, markets, last=10)
    clock = ManualClock()
    host = Host(clock)
    leader = FeedLeader(host, clients(), KEYS, owner="host-a", leader_ttl=TTL, clock=clock,
                        host_symbols=markets)
    leader.step()
    host.rest_cost = 1.0
    host.on_rest = leader.stop  # stop() asked while the first backfill's REST call runs
    for market in markets:
        host.live(market, 14)
    leader.step()
    assert host.rest_calls == markets[:1]  # before: all 8, one second each
    assert leader.status().errors == {}


def test_a_failed_backfill_is_retried_on_its_timer_not_once_per_live_trade(
    clients: Callable[[], redis.Redis],
) -> None:
    market = "KRW-BTC"
    client = clients()
    published_before(client, [market], last=10)
    clock = ManualClock()
    host = Host(clock)
    leader = FeedLeader(host, clients(), KEYS, owner="host-a", leader_ttl=TTL, clock=clock,
                        host_symbols=(market,))
    leader.step()
    host.rest_down = True
    for sid in range(12, 62):  # 50 live trades, one pass
        host.live(market, sid)
    leader.step()
    assert host.rest_calls == [market]  # the first live trade asked; the others wait
    clock.advance(TTL / 3)
    leader.step()
    assert host.rest_calls == [market] * 2  # the retry, on its timer
    assert leader.leading and leader.status().errors.get("MarketDataUnavailable") == 2


def test_a_foreign_value_in_the_lease_key_is_a_counted_error_not_a_dead_thread(
    clients: Callable[[], redis.Redis],
) -> None:
    client = clients()
    client.set(KEYS.leader, b"maintenance", px=60_000)  # an operator's, an older build's
    clock = ManualClock()
    host = Host(clock)
    leader = FeedLeader(host, clients(), KEYS, owner="host-a", leader_ttl=TTL, clock=clock,
                        host_symbols=("KRW-BTC",))
    leader.step()  # before: ValueError out of step() (the thread's loop)
    status = leader.status()
    assert not leader.leading and status.holder is None
    assert status.errors == {"FeedCommandError": 1}
    assert status.last_error is not None and "lease" in status.last_error
    with pytest.raises(FeedCommandError):  # a follower's read: a typed FeedError
        Heartbeats(client, KEYS).read()
    client.delete(KEYS.leader)
    clock.advance(TTL / 3)
    leader.step()
    assert leader.leading


def test_trades_of_a_publish_redis_refused_come_back_from_rest_once_it_accepts_again(
    clients: Callable[[], redis.Redis],
) -> None:
    market = "KRW-BTC"
    client = clients()
    clock = ManualClock()
    host = Host(clock)
    leader = FeedLeader(host, clients(), KEYS, owner="host-a", leader_ttl=TTL, clock=clock,
                        host_symbols=(market,))
    leader.step()
    for sid in range(1, 11):
        host.live(market, sid)
    leader.step()
    assert stream_sids(client, market) == list(range(1, 11))
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)  # every write refused: OOM
    try:
        for sid in range(11, 16):
            host.live(market, sid)
        leader.step()
        assert leader.status().errors.get("FeedCommandError", 0) >= 1
    finally:
        client.config_set("maxmemory", 0)
    host.live(market, 16)
    clock.advance(TTL / 3)  # past the retry's backoff
    leader.step()
    assert stream_sids(client, market) == list(range(1, 17))  # before: 11..15 missing
    assert leader.leading


def test_trades_of_a_batch_never_sent_after_a_failed_run_come_back_from_rest(
    clients: Callable[[], redis.Redis],
) -> None:
    btc, eth = "KRW-BTC", "KRW-ETH"
    client = clients()
    clock = ManualClock()
    host = Host(clock)
    leader = FeedLeader(host, clients(), KEYS, owner="host-a", leader_ttl=TTL, clock=clock,
                        host_symbols=(btc, eth))
    leader.step()
    for sid in range(1, 6):
        host.live(btc, sid)
        host.live(eth, sid)
    leader.step()
    assert stream_sids(client, eth) == [1, 2, 3, 4, 5]
    btc_stream = KEYS.stream(FeedKind.TRADE, btc)
    client.delete(btc_stream)
    client.set(btc_stream, b"not a stream")  # every write to it refused (WRONGTYPE)
    host.live(btc, 6, source="ws_fallback")  # one run: refused
    host.live(eth, 6)  # the next run (another source): never sent
    leader.step()
    assert leader.status().errors.get("FeedCommandError", 0) == 1
    client.delete(btc_stream)
    host.live(eth, 7)
    clock.advance(TTL / 3)  # past the retry's backoff
    leader.step()
    assert stream_sids(client, eth) == list(range(1, 8))  # before: 6 missing

"""FeedLeader on a real Redis and a fake clock, where its own loop is at fault (issue 11 review):

* a lease key holding a foreign value (not ``<token>:<owner>``) is a counted error, not a
  crash of the leader's thread, nor of a follower's read of the leader's state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from lifeline.errors import MarketDataUnavailable
from lifeline.feed import FeedKeys, FeedKind, FeedPublisher, Lease, connect
from lifeline.feed.errors import FeedCommandError
from lifeline.feed.leader import FeedLeader
from lifeline.feed.streams import Heartbeats, Snapshots
from quotation.models import Change, Side, Trade
from tests.fakes import ManualClock
from tests.redis_support import RedisServer

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
        if self.rest_down:
            raise MarketDataUnavailable("REST down", kind="trades", markets=(market,),
                                        age=None, max_stale_age=1.0)
        last = self.traded[market]
        return Trades([trade(market, sid) for sid in range(last, max(0, last - count), -1)])

    def live(self, market: str, sid: int) -> None:
        """Trade ``sid`` happens in ``market`` and arrives on the leader's subscription."""
        self.traded[market] = max(self.traded.get(market, 0), sid)
        self.callbacks[("trade", market)](Offered(trade(market, sid)))


@pytest.fixture
def clients(redis_server: RedisServer) -> Iterator[Callable[[], redis.Redis]]:
    made: list[redis.Redis] = []

    def client() -> redis.Redis:
        made.append(connect(redis_server.url, connect_timeout=0.5, socket_timeout=0.5))
        return made[-1]

    yield client
    for each in made:
        each.close()


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

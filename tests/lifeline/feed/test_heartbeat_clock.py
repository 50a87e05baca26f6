"""The leader's heartbeat's age involves no host's wall clock (issue 11 hardening): hosts on
several machines may disagree by any amount. Redis stamps ``at`` with its own ``TIME`` in the
fenced script, a follower reads Redis' ``TIME`` with the heartbeat, and ages a heartbeat it
holds on its injected MONOTONIC clock. On a real Redis, the leader and the follower each on
a fake clock of its own: a follower whose wall clock is an hour ahead of the leader's, or an
hour behind, judges a beating leader alive and a silent one silent within the same bound as
with none (``leader_ttl`` + one watch interval, found within one more)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from lifeline.feed import FeedKeys, FeedKind, Lease
from lifeline.feed.errors import LeaderSilent
from lifeline.feed.follower import FeedFollower
from lifeline.feed.leader import FeedLeader
from lifeline.feed.streams import Heartbeat, Heartbeats
from lifeline.levels import Level
from quotation.models import Ticker
from quotation.rest import RateLimiter, RestClient, RestConfig
from tests.fakes import ManualClock
from tests.lifeline.feed.test_heartbeat import Host
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(60)

KEYS = FeedKeys("hbc")
BTC = "KRW-BTC"
TTL = 3.0
"""The leader's ttl: Redis expires the lease on its own (real) clock, so it is long enough
for a test to step the fake clocks through many renewals in real time."""
EVERY = TTL / 3
"""The heartbeat's interval; also the follower's watch interval."""
HOUR = 3600.0
REAL = 1.0
"""More than the real seconds between a heartbeat's write and a read of it in a test (the
part of an age measured on Redis' clock, which runs in real time)."""


class Hosts:
    """A leader and a follower on clocks of their own, the follower's wall clock ``skew``
    seconds off the leader's (monotonic clocks are per host anyway); ``advance`` moves both
    by the same time, as real time does."""

    def __init__(self, clients: Callable[[], redis.Redis], skew: float) -> None:
        self.leader_clock = ManualClock()
        self.follower_clock = ManualClock(self.leader_clock.time() + skew, mono=50_000.0)
        self.host = Host()
        self.leader = FeedLeader(self.host, clients(), KEYS, owner="host-a", leader_ttl=TTL,
                                 clock=self.leader_clock, host_symbols=(BTC,))
        self.follower = FeedFollower(clients(), KEYS, own_level=lambda: Level.NORMAL,
                                     clock=self.follower_clock, host_id="host-b",
                                     watch_interval=EVERY)

    def advance(self, seconds: float) -> None:
        self.leader_clock.advance(seconds)
        self.follower_clock.advance(seconds)

    def silent(self) -> bool:
        try:
            self.follower.check_leader(EVERY)
        except LeaderSilent:
            return True
        return False

    def close(self) -> None:
        assert self.follower.close()


@pytest.fixture
def ticker(sim_factory: Callable[..., Simulator]) -> Ticker:
    sim = sim_factory(seed=5)
    with RestClient(RestConfig(base_url=sim.base_url), limiter=RateLimiter()) as rest:
        return rest.get_tickers([BTC])[0]


@pytest.fixture(params=[0.0, HOUR, -HOUR], ids=["no-skew", "follower+1h", "follower-1h"])
def hosts(request: pytest.FixtureRequest, clients: Callable[[], redis.Redis]
          ) -> Iterator[Hosts]:
    made = Hosts(clients, float(request.param))
    yield made
    made.close()


def test_a_beating_leader_is_alive_and_a_silent_one_silent_within_the_bound_whatever_the_skew(
        hosts: Hosts, ticker: Ticker, client: redis.Redis) -> None:
    leader = hosts.leader
    leader.step()  # takes the lease, beats at once
    hosts.host.offer(ticker)
    leader.step()
    assert leader.leading
    assert not hosts.silent()
    answer = hosts.follower.get_ticker([BTC])
    assert answer.level is Level.NORMAL
    status = hosts.follower.status()
    assert status.heartbeat_age is not None and 0.0 <= status.heartbeat_age < REAL, status
    assert not status.silent

    for _ in range(12):  # 12 intervals = 4 x ttl: a beating leader stays alive throughout
        hosts.advance(EVERY)
        hosts.host.offer(ticker)
        leader.step()
        assert not hosts.silent()
        assert hosts.follower.get_ticker([BTC]).level is Level.NORMAL
    assert leader.status().heartbeats == 13

    # every publish refused from now on (the stream a key of another type), the lease still
    # renewed: the leader stops beating
    client.delete(KEYS.stream(FeedKind.TICKER, BTC))
    client.set(KEYS.stream(FeedKind.TICKER, BTC), b"not a stream")
    beats, last_beat = 13, hosts.follower_clock.monotonic()
    found_at = None
    for _ in range(20):
        hosts.advance(EVERY)
        hosts.host.offer(ticker)
        leader.step()
        assert leader.leading, "the lease should stay renewed"
        if leader.status().heartbeats > beats:  # a beat in the pass that queued the refused
            beats, last_beat = leader.status().heartbeats, hosts.follower_clock.monotonic()
        if hosts.silent():
            found_at = hosts.follower_clock.monotonic()
            break
    assert beats <= 14, "the leader went on beating while its publishes failed"
    assert found_at is not None, "the follower never found the leader silent"
    # found at the first check past the bound (the age also holds the real milliseconds
    # between the write and the first read, on Redis' clock: so possibly at ttl + EVERY)
    assert TTL + EVERY <= found_at - last_beat <= TTL + 2 * EVERY
    with pytest.raises(LeaderSilent) as raised:
        hosts.follower.get_ticker([BTC])
    age = raised.value.age
    assert age is not None and TTL + EVERY < age <= TTL + 2 * EVERY + REAL, age
    assert raised.value.holder == "host-a" and hosts.follower.status().silent

    client.delete(KEYS.stream(FeedKind.TICKER, BTC))  # publishing works again: so does the
    hosts.advance(EVERY)  # heartbeat, and the follower is back on its next fresh read
    hosts.host.offer(ticker)
    leader.step()
    assert leader.status().heartbeats == beats + 1
    assert not hosts.silent()
    assert hosts.follower.get_ticker([BTC]).level is Level.NORMAL


def test_a_cached_heartbeat_ages_on_the_followers_monotonic_clock(
        hosts: Hosts, client: redis.Redis) -> None:
    """A heartbeat held between reads (or read again unchanged) ages with the follower's
    monotonic clock; its wall clock, however far off, plays no part."""
    grant = Lease(client, KEYS.leader, "host-z", ttl=TTL).try_acquire()
    assert grant is not None
    Heartbeats(client, KEYS).write(grant, Heartbeat("host-z", grant.token, 1, 0.0, None,
                                                    TTL, EVERY))
    follower = hosts.follower
    assert not hosts.silent()
    first = follower.status().heartbeat_age
    assert first is not None and 0.0 <= first < REAL
    hosts.follower_clock.advance(TTL)  # nobody beats again
    later = follower.status().heartbeat_age
    assert later is not None and TTL <= later < TTL + REAL
    assert not hosts.silent()  # ttl old: within ttl + one interval
    hosts.follower_clock.advance(EVERY + 0.01 + REAL)
    with pytest.raises(LeaderSilent) as raised:
        follower.check_leader(EVERY)
    assert raised.value.age is not None and raised.value.age > TTL + EVERY


def test_redis_stamps_the_heartbeat_with_its_own_time_whatever_the_writer_says(
        client: redis.Redis) -> None:
    grant = Lease(client, KEYS.leader, "host-a", ttl=TTL).try_acquire()
    assert grant is not None
    beats = Heartbeats(client, KEYS)
    seconds, micros = client.time()
    before = seconds + micros / 1e6
    written = beats.write(grant, Heartbeat("host-a", grant.token, 0, 12.5, 99.0, TTL, EVERY))
    seconds, micros = client.time()
    after = seconds + micros / 1e6
    assert before <= written.written_at <= after  # Redis' TIME, not the 12.5 handed in
    state = beats.read()
    assert state.heartbeat == written
    assert state.heartbeat.last_publish_at == 99.0  # the leader's own, informational
    assert state.read_at is not None and state.read_at >= written.written_at
    assert state.heartbeat_age is not None and 0.0 <= state.heartbeat_age < REAL
    assert 0 < client.pttl(KEYS.heartbeat) <= 2 * TTL * 1000

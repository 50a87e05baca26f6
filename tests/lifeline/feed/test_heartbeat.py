"""The leader's heartbeat on a real Redis, on a fake clock where time rules: written at a
takeover and every ``ttl / 3``, fenced by the lease (a stale holder writes nothing), gone
with a dead leader; a follower answers at the leader's level with no new item; a leader
that renews its lease but cannot publish goes silent for its followers within ``ttl`` +
one watch interval, and they come back only on a fresh heartbeat; a lease holder with no
heartbeat is silent after one interval; nobody holding the lease is no silence."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import redis

from lifeline.feed import FeedKeys, FeedKind, FeedUnavailable, Lease
from lifeline.feed.errors import LeaderSilent, LeaseLost
from lifeline.feed.follower import FeedFollower
from lifeline.feed.leader import FeedLeader
from lifeline.feed.streams import Heartbeat, Heartbeats
from lifeline.levels import Level
from quotation.models import Ticker
from quotation.rest import RateLimiter, RestClient, RestConfig
from tests.fakes import ManualClock
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(60)

KEYS = FeedKeys("hb")
BTC = "KRW-BTC"
TTL = 3.0
"""The leader's ttl: Redis expires the lease on its own (real) clock, so it is long enough
for a test to step a fake clock through several renewals in real time."""
EVERY = TTL / 3
"""The heartbeat's (and the lease's renewal's) interval; also the follower's watch interval."""
REAL = 1.0
"""More than the real seconds between a heartbeat's write and a read of it here: that part
of a heartbeat's age is on Redis' clock, which runs in real time."""
SOURCE = "smart_router/websocket"


@dataclass(frozen=True)
class Offered:
    """An update as the leader's subscription callback gets it (``data``, ``source``)."""

    data: Any
    source: str = SOURCE


class Host:
    """The leader's host (``LeaderHost``): a level set by the test; it keeps the leader's
    subscription callbacks so the test offers items itself; no REST."""

    def __init__(self) -> None:
        self.level = 0
        self.callbacks: dict[str, Callable[[Any], object]] = {}

    def subscribe(self, kind: str, markets: str | list[str] | tuple[str, ...],
                  callback: Callable[[Any], object]) -> Host:
        self.callbacks[kind] = callback
        return self

    def close(self) -> None:
        return None

    def get_trades(self, market: str, count: int = 100) -> Any:
        raise AssertionError("no trades are published here: no backfill")

    def offer(self, ticker: Ticker) -> None:
        self.callbacks["ticker"](Offered(ticker))


@pytest.fixture
def ticker(sim_factory: Callable[..., Simulator]) -> Ticker:
    sim = sim_factory(seed=5)
    with RestClient(RestConfig(base_url=sim.base_url), limiter=RateLimiter()) as rest:
        return rest.get_tickers([BTC])[0]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def leader_on(clients: Callable[[], redis.Redis], clock: ManualClock, host: Host,
              owner: str = "host-a", ttl: float = TTL) -> FeedLeader:
    """A leader driven by the test (``step()`` on the fake clock; no thread)."""
    return FeedLeader(host, clients(), KEYS, owner=owner, leader_ttl=ttl, clock=clock,
                      host_symbols=(BTC,))


@pytest.fixture
def follower(clients: Callable[[], redis.Redis], clock: ManualClock
             ) -> Iterator[FeedFollower]:
    made = FeedFollower(clients(), KEYS, own_level=lambda: Level.NORMAL, clock=clock,
                        host_id="host-b", watch_interval=EVERY)
    yield made
    assert made.close()


def leads(leader: FeedLeader) -> bool:
    return leader.leading


def beat_in_redis(client: redis.Redis) -> Heartbeat | None:
    return Heartbeats(client, KEYS).read().heartbeat


def redis_time(client: redis.Redis) -> float:
    """Redis' clock: the heartbeat's ``at`` is stamped with it (test_heartbeat_clock.py)."""
    seconds, micros = client.time()
    return seconds + micros / 1e6


def silent(follower: FeedFollower) -> bool:
    try:
        follower.check_leader(EVERY)
    except LeaderSilent:
        return True
    return False


def test_the_leader_beats_at_its_takeover_and_every_third_of_its_ttl_with_an_expiry(
        clients: Callable[[], redis.Redis], clock: ManualClock) -> None:
    host = Host()
    leader = leader_on(clients, clock, host)
    client = clients()
    assert beat_in_redis(client) is None
    before = redis_time(client)
    leader.step()  # takes the lease, beats at once
    beat = beat_in_redis(client)
    assert beat is not None
    assert (beat.owner, beat.token, beat.level) == ("host-a", 1, 0)
    assert before <= beat.written_at <= redis_time(client)  # on Redis' clock
    assert (beat.ttl, beat.every, beat.last_publish_at) == (TTL, EVERY, None)
    assert 0 < client.pttl(KEYS.heartbeat) <= 2 * TTL * 1000
    clock.advance(EVERY - 0.01)
    leader.step()  # not due yet
    assert beat_in_redis(client) == beat
    host.level = 2
    clock.advance(0.01)
    before = redis_time(client)
    leader.step()
    renewed = beat_in_redis(client)
    assert renewed is not None
    assert renewed.level == 2 and before <= renewed.written_at <= redis_time(client)
    assert leader.status().heartbeats == 2 and leader.status().to_dict()["heartbeats"] == 2


def test_a_stale_holders_heartbeat_is_refused_and_writes_nothing(
        clients: Callable[[], redis.Redis], clock: ManualClock) -> None:
    client = clients()
    old = Lease(client, KEYS.leader, "host-a", ttl=TTL, clock=clock).try_acquire()
    assert old is not None
    client.delete(KEYS.leader)  # its lease expired (a pause, a partition) and was taken
    new = Lease(client, KEYS.leader, "host-b", ttl=TTL, clock=clock).try_acquire()
    assert new is not None and new.token == old.token + 1
    beats = Heartbeats(client, KEYS)
    mine = beats.write(new, Heartbeat("host-b", new.token, 0, 0.0, None, TTL, EVERY))
    with pytest.raises(LeaseLost):
        beats.write(old, replace(mine, owner="host-a", token=old.token, level=3))
    assert beat_in_redis(client) == mine

    # the same through a leader: host-a led; host-b took over; host-a's next pass writes
    # nothing (its renewal is refused first) and it stops leading
    client.delete(KEYS.leader, KEYS.heartbeat)
    host = Host()
    leader = leader_on(clients, clock, host)
    leader.step()
    assert leader.leading
    client.delete(KEYS.leader)
    taken = Lease(client, KEYS.leader, "host-b", ttl=TTL, clock=clock).try_acquire()
    assert taken is not None
    theirs = beats.write(taken, replace(mine, token=taken.token))
    host.level = 3
    clock.advance(EVERY)
    leader.step()
    assert not leads(leader)  # read afresh (mypy narrowed leader.leading above)
    assert beat_in_redis(client) == theirs


def test_a_follower_answers_at_the_leaders_level_with_no_new_item(
        clients: Callable[[], redis.Redis], clock: ManualClock, follower: FeedFollower,
        ticker: Ticker) -> None:
    host = Host()
    leader = leader_on(clients, clock, host)
    leader.step()
    host.offer(ticker)
    leader.step()  # published at level 0
    answer = follower.get_ticker([BTC])
    assert answer.level is Level.NORMAL and str(answer.source) == f"shared/{SOURCE}"
    status = follower.status()  # the age: Redis' real time between the write and the read
    assert status.leader_level == 0 and status.heartbeat_age is not None
    assert 0.0 <= status.heartbeat_age < REAL

    host.level = 2  # the leader's tree at Level 2, nothing new to publish
    clock.advance(EVERY)
    leader.step()
    assert leader.status().published == {"ticker": 1}
    answer = follower.get_ticker([BTC])  # the cached heartbeat is one interval old: read
    assert answer.level is Level.FALLBACK
    status = follower.status()
    assert status.leader_level == 2 and status.heartbeat_age is not None
    assert 0.0 <= status.heartbeat_age < REAL
    assert status.to_dict()["leader_level"] == 2
    clock.advance(0.5)  # the follower's monotonic clock ages the unchanged heartbeat
    assert follower.status().heartbeat_age == pytest.approx(status.heartbeat_age + 0.5)


def test_a_leader_that_renews_its_lease_but_cannot_publish_is_silent_until_it_beats_again(
        clients: Callable[[], redis.Redis], clock: ManualClock, follower: FeedFollower,
        ticker: Ticker) -> None:
    client = clients()
    host = Host()
    leader = leader_on(clients, clock, host)
    leader.step()
    host.offer(ticker)
    leader.step()
    assert not silent(follower)
    # its ticker stream becomes a key of another type: every publish is refused by Redis,
    # the lease is still renewed (a refused script, Redis out of memory: the same)
    client.delete(KEYS.stream(FeedKind.TICKER, BTC))
    client.set(KEYS.stream(FeedKind.TICKER, BTC), b"not a stream")
    began = clock.monotonic()
    found_at = None
    for _ in range(20):
        clock.advance(EVERY)
        host.offer(ticker)
        leader.step()
        assert leader.leading, "the lease should stay renewed"
        holder = Lease(client, KEYS.leader, "probe").holder()
        assert holder is not None and holder.owner == "host-a"
        if silent(follower):
            found_at = clock.monotonic()
            break
    assert found_at is not None, "the follower never found the leader silent"
    assert leader.status().errors.get("FeedCommandError", 0) >= 1
    age = follower.status().heartbeat_age  # Redis' clock, then the follower's monotonic
    assert age is not None
    print(f"silent after {found_at - began:.1f} s (fake); last beat {age:.1f} s old")
    assert TTL + EVERY < age <= TTL + 2 * EVERY + REAL  # past the bound, found within one
    with pytest.raises(LeaderSilent) as raised:
        follower.get_ticker([BTC])
    assert isinstance(raised.value, FeedUnavailable)
    assert str(raised.value).startswith("shared feed: leader silent")
    assert raised.value.holder == "host-a" and follower.status().silent

    clock.advance(EVERY)  # still not publishing: still silent (no flapping)
    host.offer(ticker)
    leader.step()
    assert silent(follower)

    client.delete(KEYS.stream(FeedKind.TICKER, BTC))  # publishing works again: so does
    clock.advance(EVERY)  # the heartbeat, and the follower is back on its first read
    host.offer(ticker)
    leader.step()
    assert not silent(follower)
    assert follower.get_ticker([BTC]).level is Level.NORMAL
    assert not follower.status().silent


def test_a_holder_with_no_heartbeat_is_silent_after_one_interval_and_nobody_holding_is_not(
        clients: Callable[[], redis.Redis], clock: ManualClock,
        follower: FeedFollower) -> None:
    client = clients()
    beats = Heartbeats(client, KEYS)
    assert not silent(follower)  # nobody holds the lease: a takeover is due, not silence
    lease = Lease(client, KEYS.leader, "host-a", ttl=TTL, clock=clock)
    grant = lease.try_acquire()  # holds, never beats (e.g. an acquire whose reply was lost)
    assert grant is not None
    assert not silent(follower)
    clock.advance(EVERY)
    assert not silent(follower)  # one interval: a new leader's first beat may be on its way
    clock.advance(0.01)
    with pytest.raises(LeaderSilent) as raised:
        follower.check_leader(EVERY)
    assert raised.value.age is None and raised.value.holder == "host-a"

    # the lease expires with nobody beating: still silent (back only on a fresh beat)
    lease.release()
    assert silent(follower)
    taken = Lease(client, KEYS.leader, "host-c", ttl=TTL, clock=clock).try_acquire()
    assert taken is not None
    ancient = beats.write(taken, Heartbeat("host-c", taken.token, 0, 0.0, None, TTL, EVERY))
    client.hset(KEYS.heartbeat, "at", repr(ancient.written_at - 100.0))  # 100 s ago (Redis)
    assert silent(follower)  # a heartbeat, but far too old
    beats.write(taken, Heartbeat("host-c", taken.token, 1, 0.0, None, TTL, EVERY))
    assert not silent(follower)
    assert follower.status().leader_level == 1

    # nobody holds the lease, the last heartbeat very old: a takeover is due, not silence
    client.delete(KEYS.leader)
    clock.advance(10 * TTL)
    assert not silent(follower)


def test_a_dead_leaders_heartbeat_expires_after_twice_its_ttl(
        clients: Callable[[], redis.Redis]) -> None:
    ttl = 0.3
    host = Host()
    leader = FeedLeader(host, clients(), KEYS, owner="host-a", leader_ttl=ttl,
                        host_symbols=(BTC,))
    client = clients()
    leader.step()  # leads and beats on the real clock, then "dies" (never steps again)
    assert beat_in_redis(client) is not None
    assert 0 < client.pttl(KEYS.heartbeat) <= 2 * ttl * 1000
    deadline = time.monotonic() + 10.0
    while client.exists(KEYS.heartbeat) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not client.exists(KEYS.heartbeat), "a dead leader's heartbeat never expired"
    assert not client.exists(KEYS.leader)

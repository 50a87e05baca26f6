"""FeedLeader against a real Redis and the simulator: two hosts' leaders, one leads and
publishes; a stopped or paused leader is replaced within ``leader_ttl`` + one probe interval
and the trade stream across the takeover matches the simulator's own trade log (no gap, no
duplicate); a paused leader's late publish writes nothing (fencing); Redis down → both run
on, report the error, and one leads again once Redis is back; a full queue drops the oldest
items and the dropped trades come back from REST.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import redis

from lifeline import MarketDataSystem
from lifeline.feed import FeedKeys, FeedKind, FeedReader, FeedSettingsError, SymbolRegistry, connect
from lifeline.feed.leader import FeedLeader, LeaderRole
from quotation.models import Trade
from tests.fakes import ManualClock
from tests.lifeline.feed.shared_support import started_systems
from tests.lifeline.system_support import until as poll_until
from tests.lifeline.test_system import config_for
from tests.redis_support import RedisServer
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(90)

BTC, ETH = "KRW-BTC", "KRW-ETH"
KEYS = FeedKeys("lt")
TTL = 0.6
PROBE = TTL / 3
"""The lease's acquire interval (``ttl / 3``): a contender's probe."""
SLACK = 1.0
"""Real seconds a takeover may overrun ``ttl + probe`` (thread scheduling on 2 cores)."""
WAIT = 15.0
"""Real seconds any other wait lasts before the test fails."""


def until(predicate: Callable[[], bool], timeout: float = WAIT, step: float = 0.02) -> bool:
    """``system_support.until`` with this module's default wait."""
    return poll_until(predicate, timeout, step)


class Trader:
    """Trades ``markets`` on the simulator every ``every`` seconds on a thread of its own."""

    def __init__(self, sim: Simulator, markets: tuple[str, ...] = (BTC,),
                 every: float = 0.02) -> None:
        self._sim = sim
        self._markets = markets
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-trader", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            for market in self._markets:
                self._sim.engine.step_market(market, 1)

    def __enter__(self) -> Trader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        assert not self._thread.is_alive()


class PausableHost:
    """The host's system as the leader sees it (the ``LeaderHost`` interface), with a gate
    on ``level``: the leader reads it for each publish, after its own lease check, so a
    paused gate is a leader stalled in the middle of a publish (a GC pause, a frozen VM).
    ``pause(publishing=True)`` stalls only a publish's read (the leader's ``_write``), not
    the heartbeat's: the call the leader makes once the gate opens is then a publish."""

    def __init__(self, system: MarketDataSystem) -> None:
        self.system = system
        self._open = threading.Event()
        self._open.set()
        self._only_publishing = False
        self.stalled = threading.Event()

    @property
    def level(self) -> int:
        if not self._open.is_set() and (
                not self._only_publishing or sys._getframe(1).f_code.co_name == "_write"):
            self.stalled.set()
            self._open.wait(WAIT)
        return int(self.system.level)

    def subscribe(self, kind: str, markets: str | list[str] | tuple[str, ...],
                  callback: Callable[[Any], object]) -> Any:
        return self.system.subscribe(kind, markets, callback)

    def get_trades(self, market: str, count: int = 100) -> Any:
        return self.system.get_trades(market, count)

    def pause(self, *, publishing: bool = False) -> None:
        self.stalled.clear()
        self._only_publishing = publishing
        self._open.clear()

    def resume(self) -> None:
        self._open.set()


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    return sim_factory(seed=1, auto_trade=False, rate_limit=None)


@contextlib.contextmanager
def systems(sim: Simulator, n: int) -> Iterator[list[MarketDataSystem]]:
    """``n`` started systems on ``sim``; all stopped (and every actor gone) afterwards."""
    with started_systems(config_for(sim), n, wait=WAIT) as made:
        yield made


class Feed:
    """Leaders over ``hosts`` on one Redis; every leader stopped and client closed after."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.leaders: list[FeedLeader] = []
        self.clients: list[redis.Redis] = []

    def client(self) -> redis.Redis:
        made = connect(self.server.url, connect_timeout=0.3, socket_timeout=0.3)
        self.clients.append(made)
        return made

    def leader(self, host: Any, owner: str, **kwargs: Any) -> FeedLeader:
        kwargs.setdefault("leader_ttl", TTL)
        leader = FeedLeader(host, self.client(), KEYS, owner=owner, host_symbols=(BTC,),
                            **kwargs)
        self.leaders.append(leader)
        leader.start()
        return leader

    def close(self) -> None:
        for leader in self.leaders:
            assert leader.stop(), f"{leader.owner} did not stop"
            assert leader.status().role is LeaderRole.STOPPED
        for client in self.clients:
            client.close()


@pytest.fixture
def feed(redis_server: RedisServer) -> Iterator[Feed]:
    made = Feed(redis_server)
    try:
        yield made
    finally:
        made.close()


def leading(*leaders: FeedLeader) -> list[FeedLeader]:
    return [leader for leader in leaders if leader.status().role is LeaderRole.LEADER]


def stream_trades(client: redis.Redis, market: str = BTC) -> list[tuple[int, int]]:
    """``(sequential_id, token)`` of every trade in ``market``'s stream, from the start to
    its last entry when called."""
    last = client.xrevrange(KEYS.stream(FeedKind.TRADE, market), count=1)
    if not last:
        return []
    end = _id(cast(bytes, last[0][0]))
    reader = FeedReader(client, KEYS, block=0.05)
    reader.follow(FeedKind.TRADE, market, after=b"0")
    seen: list[tuple[int, int]] = []
    for _ in range(1000):
        batch = reader.read()
        assert batch.bad == ()
        for entry in batch.entries:
            if _id(entry.id) > end:
                return seen
            assert isinstance(entry.item, Trade)
            seen.append((entry.item.sequential_id, entry.token))
            if _id(entry.id) == end:
                return seen
    raise AssertionError("the stream's last entry not read within 1000 reads")


def _id(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq)


def published_trades(leader: FeedLeader) -> int:
    return leader.status().published.get("trade", 0)


def check_against_the_simulator(sim: Simulator, client: redis.Redis,
                                market: str = BTC) -> list[tuple[int, int]]:
    """Wait until the stream holds the simulator's last trade, then: every trade of the
    simulator's log from the stream's first to its last is in the stream exactly once."""
    last = sim.engine.trades(market)[-1].sequential_id
    assert until(lambda: last in {sid for sid, _ in stream_trades(client, market)}), (
        f"the stream never got the simulator's last trade {last}")
    entries = stream_trades(client, market)
    sids = [sid for sid, _ in entries]
    duplicated = sorted({sid for sid in sids if sids.count(sid) > 1})
    assert not duplicated, f"duplicated in the stream: {duplicated}"
    first = min(sids)
    log = [t.sequential_id for t in sim.engine.trades(market) if first <= t.sequential_id <= last]
    missing = sorted(set(log) - set(sids))
    assert not missing, f"missing from the stream: {missing} ({len(log)} traded)"
    assert set(sids) <= set(log)
    return entries


def test_exactly_one_of_two_hosts_leads_and_publishes_the_union_of_their_symbols(
    sim: Simulator, feed: Feed,
) -> None:
    registry = SymbolRegistry(feed.client(), KEYS, ttl=30.0)
    registry.register("host-b", [ETH])
    with systems(sim, 2) as (one, two), Trader(sim, (BTC, ETH)):
        a = feed.leader(one, "host-a")
        b = feed.leader(two, "host-b")
        assert until(lambda: len(leading(a, b)) == 1)
        (leader,) = leading(a, b)
        other = b if leader is a else a
        assert until(lambda: published_trades(leader) >= 20
                     and leader.status().published.get("ticker", 0) > 0)
        status, follower = leader.status(), other.status()
        assert status.markets == (BTC, ETH)
        assert (status.holder, status.takeovers, status.token) == (leader.owner, 1, 1)
        assert status.lease_age is not None and status.lease_age >= 0.0
        assert status.last_publish_at is not None and status.batches > 0
        assert (follower.role, follower.holder, follower.published, follower.markets) == (
            LeaderRole.FOLLOWER, leader.owner, {}, ())
        assert leading(a, b) == [leader]
        client = feed.client()
        assert {token for _, token in stream_trades(client, ETH)} == {1}
        assert status.to_dict()["role"] == "leader"


def test_a_stopped_leader_is_replaced_and_the_trade_stream_has_no_gap_and_no_duplicate(
    sim: Simulator, feed: Feed,
) -> None:
    with systems(sim, 2) as (one, two), Trader(sim) as trader:
        a = feed.leader(one, "host-a")
        assert until(lambda: published_trades(a) >= 20)
        b = feed.leader(two, "host-b")
        assert until(lambda: b.status().holder == "host-a")
        assert a.stop()
        stopped = time.monotonic()
        assert until(lambda: b.status().role is LeaderRole.LEADER, TTL + PROBE + SLACK)
        print(f"takeover after a clean stop: {time.monotonic() - stopped:.3f} s")
        assert until(lambda: published_trades(b) >= 20)
        trader.stop()
        entries = check_against_the_simulator(sim, feed.client())
        assert [token for _, token in entries] == sorted(token for _, token in entries)
        assert {token for _, token in entries} == {1, 2}
        assert b.status().takeovers == 1


def test_a_paused_leader_loses_the_lease_its_late_publish_writes_nothing_and_no_trade_is_lost(
    sim: Simulator, feed: Feed,
) -> None:
    with systems(sim, 2) as (one, two), Trader(sim) as trader:
        host = PausableHost(one)
        a = feed.leader(host, "host-a")
        assert until(lambda: published_trades(a) >= 20)
        b = feed.leader(two, "host-b")
        assert until(lambda: b.status().holder == "host-a")
        host.pause()
        assert host.stalled.wait(WAIT), "the leader never published while paused"
        paused = time.monotonic()
        assert until(lambda: b.status().role is LeaderRole.LEADER, TTL + PROBE + SLACK)
        took = time.monotonic() - paused
        print(f"takeover of a paused leader: {took:.3f} s (bound {TTL + PROBE:.3f} s)")
        assert until(lambda: published_trades(b) >= 10)
        refused = a.status().errors.get("LeaseLost", 0)
        host.resume()  # its publish in flight now goes to Redis with the old token
        assert until(lambda: a.status().errors.get("LeaseLost", 0) > refused)
        assert until(lambda: a.status().role is LeaderRole.FOLLOWER)
        assert a.status().holder == "host-b"
        assert until(lambda: published_trades(b) >= 30)
        trader.stop()
        entries = check_against_the_simulator(sim, feed.client())
        tokens = [token for _, token in entries]
        assert tokens == sorted(tokens), "a stale leader wrote after the takeover"
        assert set(tokens) == {1, 2}
        assert leading(a, b) == [b]


def test_a_leader_whose_lease_key_is_deleted_stops_at_its_next_renewal_and_no_trade_is_lost(
    sim: Simulator, feed: Feed,
) -> None:
    with systems(sim, 2) as (one, two), Trader(sim) as trader:
        a = feed.leader(one, "host-a")
        assert until(lambda: published_trades(a) >= 20)
        b = feed.leader(two, "host-b")
        assert until(lambda: b.status().holder == "host-a")
        feed.client().delete(KEYS.leader)  # an operator's mistake, a failed-over Redis
        assert until(lambda: sum(x.status().takeovers for x in (a, b)) == 2)
        assert until(lambda: len(leading(a, b)) == 1)
        (leader,) = leading(a, b)
        before = published_trades(leader)
        assert until(lambda: published_trades(leader) >= before + 10)
        trader.stop()
        entries = check_against_the_simulator(sim, feed.client())
        tokens = [token for _, token in entries]
        assert tokens == sorted(tokens) and set(tokens) == {1, 2}


def test_redis_down_both_run_on_and_report_it_redis_back_one_leads_again(
    sim: Simulator, feed: Feed,
) -> None:
    with systems(sim, 2) as (one, two), Trader(sim):
        a = feed.leader(one, "host-a")
        b = feed.leader(two, "host-b")
        assert until(lambda: len(leading(a, b)) == 1)
        feed.server.stop()
        assert until(lambda: not leading(a, b) and all(
            leader.status().errors.get("FeedUnavailable", 0) > 0 for leader in (a, b)))
        for leader in (a, b):
            status = leader.status()
            assert status.running and status.role is LeaderRole.FOLLOWER
            assert status.last_error is not None and "FeedUnavailable" in status.last_error
        feed.server.start()
        assert until(lambda: len(leading(a, b)) == 1)
        (leader,) = leading(a, b)
        before = published_trades(leader)
        assert until(lambda: published_trades(leader) > before + 10)
        assert leading(a, b) == [leader]


def test_a_silent_redis_both_run_on_not_leading_and_then_one_leads_with_no_trade_lost(
    sim: Simulator, feed: Feed,
) -> None:
    # SIGSTOP: the port accepts, nothing answers (a hung Redis, not a refusal). Redis is
    # woken only once every lease has expired by its own clock (each was last extended
    # before the stop): so no holder from before the silence can keep or take back its
    # lease, and whatever leads afterwards holds a new token. (Woken sooner, the holder may
    # legitimately keep its lease and token: its own view lapses before Redis' expiry.)
    with systems(sim, 2) as (one, two), Trader(sim) as trader:
        hosts = {"host-a": PausableHost(one), "host-b": PausableHost(two)}
        a = feed.leader(hosts["host-a"], "host-a")
        b = feed.leader(hosts["host-b"], "host-b")
        assert until(lambda: len(leading(a, b)) == 1)
        (old,) = leading(a, b)
        other = b if old is a else a
        assert until(lambda: published_trades(old) >= 10)
        host = hosts[old.owner]
        host.pause(publishing=True)  # stalled in a publish, its lease check passed
        assert host.stalled.wait(WAIT), "the leader never published"
        feed.server.pause()
        try:
            stopped = stopped_at(feed.server)
            assert until(lambda: not leading(a, b)
                         and other.status().errors.get("FeedUnavailable", 0) > 0
                         and time.monotonic() > stopped + TTL + 0.1)
            host.resume()  # the stale holder's publish goes out into the silence
            assert until(lambda: old.status().lost_in_flight > 0
                         and old.status().errors.get("FeedUnavailable", 0) > 0)
            assert all(leader.status().running for leader in (a, b))
            assert not leading(a, b)
            woke_ms = int(time.time() * 1000)  # Redis' clock: every entry from now is later
        finally:
            host.resume()
            feed.server.resume()
        assert until(lambda: len(leading(a, b)) == 1)
        (leader,) = leading(a, b)
        before = published_trades(leader)
        assert until(lambda: published_trades(leader) > before + 10)
        trader.stop()
        tokens = [token for _, token in check_against_the_simulator(sim, feed.client())]
        assert tokens == sorted(tokens), "an older token wrote after a newer one"
        written = tokens_written(feed.client())
        earlier = {token for at, token in written if at < woke_ms}
        later = {token for at, token in written if at >= woke_ms}
        assert earlier and later
        assert min(later) > max(earlier), (
            f"a lease from before the silence (tokens {sorted(earlier)}) wrote after Redis "
            f"woke (tokens {sorted(later)}): the stale holder's in-flight publish was not "
            "refused")
        print(f"silent Redis: {old.owner} led with tokens {sorted(earlier)} before, "
              f"{leader.owner} with {sorted(later)} after")


def stopped_at(server: RedisServer) -> float:
    """``time.monotonic()`` once the kernel shows the paused server stopped (state ``T``):
    every command it ran, it ran before this."""
    pid = server.pid
    assert pid is not None

    def stopped() -> bool:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rpartition(")")[2].split()[0] in {"T", "t"}

    assert until(stopped, 5.0, 0.005), f"redis-server {pid} not stopped 5 s after SIGSTOP"
    return time.monotonic()


def tokens_written(client: redis.Redis, market: str = BTC) -> list[tuple[int, int]]:
    """``(Redis ms, token)`` of every entry of every kind in ``market``'s streams."""
    written: list[tuple[int, int]] = []
    for kind in FeedKind:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]],
                       client.xrange(KEYS.stream(kind, market)))
        written += [(_id(entry_id)[0], int(fields[b"tok"])) for entry_id, fields in entries]
    return written


def test_a_full_queue_drops_the_oldest_items_and_the_dropped_trades_come_back_from_rest(
    sim: Simulator, feed: Feed,
) -> None:
    with systems(sim, 1) as (one,), Trader(sim, every=0.01) as trader:
        host = PausableHost(one)
        # a long lease: the pause below must not cost it (that is the test above)
        a = feed.leader(host, "host-a", queue_capacity=8, batch_max=4, leader_ttl=10.0)
        assert until(lambda: published_trades(a) >= 10)
        host.pause()  # Redis "slow": the leader is stuck in a publish for a while
        assert host.stalled.wait(WAIT)
        assert until(lambda: a.status().dropped >= 20)
        host.resume()
        assert until(lambda: a.status().backfilled > 0)
        trader.stop()
        check_against_the_simulator(sim, feed.client())
        status = a.status()
        assert status.role is LeaderRole.LEADER and status.takeovers == 1
        assert status.backfill_gaps == 0


def test_impossible_queue_settings_are_refused_naming_them(feed: Feed) -> None:
    with pytest.raises(FeedSettingsError) as raised:
        FeedLeader(PausableHost.__new__(PausableHost), feed.client(), KEYS, owner="h",
                   queue_capacity=0)
    assert raised.value.key == "feed.leader.queue_capacity"


class RecordingHost:
    """A ``LeaderHost`` that records what the leader subscribes (no market data)."""

    level = 0

    def __init__(self) -> None:
        self.subscriptions: list[RecordedSubscription] = []

    def subscribe(self, kind: str, markets: str | list[str] | tuple[str, ...],
                  callback: Callable[[Any], object]) -> RecordedSubscription:
        sub = RecordedSubscription(kind, str(markets))
        self.subscriptions.append(sub)
        return sub

    def get_trades(self, market: str, count: int = 100) -> Any:
        raise AssertionError("no backfill expected: the streams are empty")

    def open(self) -> set[tuple[str, str]]:
        return {(sub.kind, sub.market) for sub in self.subscriptions if not sub.closed}


class RecordedSubscription:
    def __init__(self, kind: str, market: str) -> None:
        self.kind = kind
        self.market = market
        self.closed = False

    def close(self) -> None:
        self.closed = True


def leads(leader: FeedLeader) -> bool:
    """``leader.leading``, read afresh (not narrowed by an earlier assert)."""
    return leader.leading


def test_on_a_fake_clock_redis_errors_back_off_up_to_a_third_of_the_ttl_and_leading_ends_at_ttl(
    redis_server: RedisServer,
) -> None:
    clock = ManualClock()
    host = RecordingHost()
    client = connect(redis_server.url, connect_timeout=0.3, socket_timeout=0.3)
    leader = FeedLeader(host, client, KEYS, owner="host-a", leader_ttl=TTL, clock=clock,
                        host_symbols=(BTC,))
    try:
        redis_server.stop()
        waits = []
        for _ in range(5):
            due = leader.step()
            waits.append(round(due - clock.monotonic(), 6))
            clock.advance(due - clock.monotonic())
        assert waits == [0.05, 0.1, 0.2, 0.2, 0.2]  # doubling, capped at ttl / 3
        assert leader.status().errors == {"FeedUnavailable": 5}
        assert not leads(leader)
        redis_server.start()
        leader.step()
        assert leads(leader) and leader.status().takeovers == 1
        assert host.open() == {(kind, BTC) for kind in ("ticker", "trade", "orderbook",
                                                          "candle.1m")}
        redis_server.stop()
        clock.advance(PROBE)
        leader.step()  # the renewal fails: still the leader for the rest of its ttl
        assert leads(leader) and leader.status().errors["FeedUnavailable"] == 6
        clock.advance(TTL - PROBE - 0.001)
        leader.step()
        assert leads(leader)
        clock.advance(0.001)  # ttl since the acquire was sent: no longer believes it leads
        leader.step()
        assert not leads(leader) and host.open() == set()
        assert leader.status().holder is None
    finally:
        client.close()

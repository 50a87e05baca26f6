"""A host's subscriptions in ``feed.mode: shared`` across its source switches, against a real
Redis and the simulator (two systems in one process): a trade subscription equals the
simulator's own trade log (none missing, none twice, in order) across Redis stopped and
started again, across Redis paused and resumed (its streams kept) and across this host
becoming the leader; a subscription made before
``start()`` is served from the feed once started (the same object); a raising callback is
counted and logged once per burst, and the other subscriptions still get every trade."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from lifeline import MarketDataSystem
from lifeline.settings import FeedMode, FeedSettings
from lifeline.subscriptions import Update
from quotation.models import Trade
from tests.lifeline.feed.shared_support import WAIT, Trader, until
from tests.lifeline.feed.test_system_shared import BTC, TTL, roles, shared, shared_systems
from tests.lifeline.test_system import config_for
from tests.redis_support import RedisServer
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(120)


class Trades:
    """A trade subscription's callback: the ``sequential_id`` and source of each update."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.got: list[tuple[int, str]] = []

    def __call__(self, update: Update[Any]) -> None:
        assert isinstance(update.data, Trade)
        with self._lock:
            self.got.append((update.data.sequential_id, str(update.source)))

    def __len__(self) -> int:
        with self._lock:
            return len(self.got)

    def sids(self) -> list[int]:
        with self._lock:
            return [sid for sid, _ in self.got]

    def sources(self, since: int = 0) -> list[str]:
        with self._lock:
            return [source for _, source in self.got[since:]]


def assert_is_the_log(sim: Simulator, sids: list[int]) -> None:
    """``sids`` are the simulator's trades from the first to the last of them: none missing,
    none twice, in the exchange's order."""
    assert sids, "no trade delivered"
    assert len(sids) == len(set(sids)), "a trade delivered twice"
    first, last = sids[0], sids[-1]
    log = [t.sequential_id for t in sim.engine.trades(BTC) if first <= t.sequential_id <= last]
    missing = sorted(set(log) - set(sids))
    assert not missing, f"missing: {missing} of {len(log)} traded"
    assert sids == log, "not in the exchange's order"


def delivered_the_last(sim: Simulator, trades: Trades) -> bool:
    last = sim.engine.trades(BTC)[-1].sequential_id
    return until(lambda: last in trades.sids())


def test_a_followers_trades_across_redis_stopped_and_started_again_are_the_simulators_log(
        sim: Simulator, redis_server: RedisServer) -> None:
    trades = Trades()
    with shared_systems(sim, redis_server.url, 2) as systems:
        assert until(lambda: sorted(roles(systems)) == ["follower", "leader"]), roles(systems)
        (follower,) = [s for s in systems if roles([s]) == ["follower"]]
        with Trader(sim):
            sub = follower.subscribe("trade", [BTC], trades)
            assert until(lambda: len(trades) >= 10)
            assert all(shared(s) for s in trades.sources())

            redis_server.stop()  # the follower's own tree serves it
            assert until(lambda: roles(systems) == ["local", "local"]), roles(systems)
            lost = len(trades)
            assert until(lambda: len(trades) >= lost + 20)

            redis_server.start()  # one leads again; the follower reads the feed again
            assert until(lambda: sorted(roles(systems)) == ["follower", "leader"]), roles(
                systems)
            back = len(trades)
            assert until(lambda: len(trades) >= back + 30)
        assert delivered_the_last(sim, trades), "the last trade never came"
        sub.close()
    print(f"{len(trades)} trades, {sorted(set(trades.sources()))}")
    assert_is_the_log(sim, trades.sids())
    assert any(not shared(s) for s in trades.sources(lost))  # its own tree served it


def test_a_followers_trades_across_redis_paused_and_resumed_are_the_simulators_log(
        sim: Simulator, redis_server: RedisServer) -> None:
    """A silent Redis keeps its streams: once resumed, a takeover's backfill republishes the
    trades of the pause, which the follower's own tree delivered already (none twice)."""
    trades = Trades()
    with shared_systems(sim, redis_server.url, 2) as systems:
        assert until(lambda: sorted(roles(systems)) == ["follower", "leader"]), roles(systems)
        (follower,) = [s for s in systems if roles([s]) == ["follower"]]
        with Trader(sim):
            sub = follower.subscribe("trade", [BTC], trades)
            assert until(lambda: len(trades) >= 10)
            redis_server.pause()
            assert until(lambda: roles([follower]) == ["local"]), roles([follower])
            lost = len(trades)
            assert until(lambda: len(trades) >= lost + 40)  # past the lease's ttl
            redis_server.resume()
            assert until(lambda: sorted(roles(systems)) == ["follower", "leader"]), roles(
                systems)
            back = len(trades)
            assert until(lambda: len(trades) >= back + 30)
        assert delivered_the_last(sim, trades), "the last trade never came"
        sub.close()
    print(f"{len(trades)} trades, {sorted(set(trades.sources()))}, duplicates dropped "
          f"{getattr(sub, 'duplicates', None)}, backfilled {getattr(sub, 'backfilled', None)}")
    assert_is_the_log(sim, trades.sids())
    assert any(not shared(s) for s in trades.sources(lost))  # its own tree served it


def test_a_followers_trades_across_this_host_becoming_the_leader_are_the_simulators_log(
        sim: Simulator, redis_server: RedisServer) -> None:
    trades = Trades()
    with shared_systems(sim, redis_server.url, 2) as systems:
        assert until(lambda: sorted(roles(systems)) == ["follower", "leader"]), roles(systems)
        leader, follower = sorted(systems, key=lambda s: roles([s]) != ["leader"])
        with Trader(sim):
            sub = follower.subscribe("trade", [BTC], trades)
            assert until(lambda: len(trades) >= 10)
            assert all(shared(s) for s in trades.sources())
            leader.stop()  # releases the lease: the follower takes over
            assert until(lambda: roles([follower]) == ["leader"]), roles([follower])
            took = len(trades)
            assert until(lambda: len(trades) >= took + 30)
        assert delivered_the_last(sim, trades), "the last trade never came"
        sub.close()
    assert any(not shared(s) for s in trades.sources(took))  # its own tree serves it now
    assert_is_the_log(sim, trades.sids())


@contextlib.contextmanager
def stopping(*systems: MarketDataSystem) -> Iterator[None]:
    try:
        yield
    finally:
        for system in reversed(systems):
            system.stop()
        pykka.ActorRegistry.stop_all(timeout=WAIT)


def test_a_subscription_made_before_start_is_served_by_the_feed_once_started(
        sim: Simulator, redis_server: RedisServer) -> None:
    config = dataclasses.replace(config_for(sim), feed=FeedSettings(
        mode=FeedMode.SHARED, redis_url=redis_server.url, stream_prefix="ss",
        leader_ttl=TTL))
    leader = MarketDataSystem.from_config(config)
    late = MarketDataSystem.from_config(config)
    trades = Trades()
    with stopping(leader, late), Trader(sim):
        leader.start()
        assert until(lambda: roles([leader]) == ["leader"])
        sub = late.subscribe("trade", [BTC], trades)  # before start(): held until then
        late.start()
        assert until(lambda: roles([late]) == ["follower"]), roles([late])
        assert until(lambda: sum(shared(s) for s in trades.sources()) >= 10), trades.sources()
        assert sub.delivered == len(trades)
        sub.close()
        assert sub.closed
    sids = trades.sids()
    assert len(sids) == len(set(sids)), "a trade delivered twice"


def test_a_raising_callback_is_counted_and_logged_once_and_the_others_get_every_trade(
        sim: Simulator, redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def broken(update: Update[Any]) -> None:
        calls.append(update.data.sequential_id)
        raise RuntimeError("the host's bug")

    trades = Trades()
    caplog.set_level(logging.ERROR)
    with shared_systems(sim, redis_server.url, 2) as systems:
        assert until(lambda: sorted(roles(systems)) == ["follower", "leader"]), roles(systems)
        (follower,) = [s for s in systems if roles([s]) == ["follower"]]
        bad = follower.subscribe("trade", [BTC], broken)
        good = follower.subscribe("trade", [BTC], trades)
        with Trader(sim):
            assert until(lambda: len(trades) >= 20 and len(calls) >= 20)
        assert delivered_the_last(sim, trades)
        assert until(lambda: bad.failures == len(calls) and set(calls) == set(trades.sids()))
        assert bad.delivered == 0 and good.failures == 0 and not bad.closed
        bad.close()
        good.close()
    raised = [r for r in caplog.records if "callback" in r.getMessage() and r.exc_info]
    assert len(raised) == 1, [r.getMessage() for r in raised]  # one burst: logged once
    assert_is_the_log(sim, trades.sids())

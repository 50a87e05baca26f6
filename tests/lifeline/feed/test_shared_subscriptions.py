"""A host's subscriptions in ``feed.mode: shared`` across its source switches, against a real
Redis and the simulator (two systems in one process): a trade subscription equals the
simulator's own trade log (none missing, none twice, in order, no gap counted) across Redis
stopped and started again, across Redis paused and resumed (its streams kept) and across
this host becoming the leader — but for the own tree's documented hole while it serves:
the trades of its WebSocket fallback's connection set-up when it goes up to Level 2 (with
Redis lost its REST share is starved, so it may); a subscription made before
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

from lifeline import Level, MarketDataSystem
from lifeline.feed.host import SharedSubscription
from lifeline.levels import LevelChange
from lifeline.settings import FeedMode, FeedSettings
from lifeline.subscriptions import Subscription, Update
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

    def got_copy(self) -> list[tuple[int, str]]:
        with self._lock:
            return list(self.got)

    def around(self, sid: int) -> list[tuple[int, str]]:
        """The two delivered before ``sid`` and the two after it, in delivery order."""
        got = self.got_copy()
        before = [i for i, (s, _) in enumerate(got) if s < sid]
        at = max(before) + 1 if before else 0
        return got[max(0, at - 2):at + 2]


ROUTER = "smart_router/websocket"
FALLBACK = "ws_fallback"


def up_to_the_fallback(changes: list[LevelChange]) -> bool:
    """The system went from level 0 or 1 to 2 or 3 (its router → its WebSocket fallback)."""
    return any(c.old < Level.FALLBACK <= c.new for c in changes)


def fallbacks_set_up(trades: Trades, missing: int, changes: list[LevelChange]) -> bool:
    """``missing`` is a trade of the own tree's WebSocket fallback's connection set-up, the
    hole ``lifeline.subscriptions`` documents for a system going up to level 2: the system
    went up, and ``missing`` falls where the delivered trades go from the own router's
    WebSocket straight to its fallback's (not at a switch of the shared subscription: there
    the trade before is the feed's or a backfill's)."""
    got = trades.got_copy()
    after = [i for i, (sid, _) in enumerate(got) if sid > missing]
    if not after or not up_to_the_fallback(changes):
        return False
    i = min(after, key=lambda j: got[j][0])
    return got[i][1] == FALLBACK and i > 0 and got[i - 1][1] == ROUTER


def assert_is_the_log(sim: Simulator, trades: Trades,
                      changes: list[LevelChange] | None = None) -> None:
    """The trades delivered are the simulator's from the first to the last of them: none
    missing, none twice, in the exchange's order. With the follower's level ``changes``:
    missing but a trade of its own WebSocket fallback's connection set-up while its own tree
    served (:func:`fallbacks_set_up`: the own tree's documented hole, not a switch's)."""
    sids = trades.sids()
    assert sids, "no trade delivered"
    assert len(sids) == len(set(sids)), "a trade delivered twice"
    first, last = sids[0], sids[-1]
    log = [t.sequential_id for t in sim.engine.trades(BTC) if first <= t.sequential_id <= last]
    missing = sorted(set(log) - set(sids))
    excused = [m for m in missing if changes is not None and fallbacks_set_up(trades, m, changes)]
    around = {m: trades.around(m) for m in missing}
    assert missing == excused, (f"missing: {sorted(set(missing) - set(excused))} of "
                                f"{len(log)} traded (the fallback's set-up: {excused}); "
                                f"delivered around them: {around}")
    gone = set(missing)
    assert sids == [sid for sid in log if sid not in gone], "not in the exchange's order"


def no_gap(sub: Subscription) -> None:
    """The documented guarantee's condition held: no switch's backfill was counted a gap
    (the own tree answered one reaching the held trades within the overlap)."""
    assert isinstance(sub, SharedSubscription)
    assert sub.gaps == 0, f"{sub.gaps} gap(s) counted (the WARNING in the log says which)"


def delivered_the_last(sim: Simulator, trades: Trades) -> bool:
    last = sim.engine.trades(BTC)[-1].sequential_id
    return until(lambda: last in trades.sids())


def test_a_followers_trades_across_redis_stopped_and_started_again_are_the_simulators_log(
        sim: Simulator, redis_server: RedisServer) -> None:
    trades = Trades()
    with shared_systems(sim, redis_server.url, 2) as systems:
        assert until(lambda: sorted(roles(systems)) == ["follower", "leader"]), roles(systems)
        (follower,) = [s for s in systems if roles([s]) == ["follower"]]
        changes: list[LevelChange] = []
        follower.on_level_change(changes.append)
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
    no_gap(sub)
    assert_is_the_log(sim, trades, changes)
    assert any(not shared(s) for s in trades.sources(lost))  # its own tree served it


def test_a_followers_trades_across_redis_paused_and_resumed_are_the_simulators_log(
        sim: Simulator, redis_server: RedisServer) -> None:
    """A silent Redis keeps its streams: once resumed, a takeover's backfill republishes the
    trades of the pause, which the follower's own tree delivered already (none twice)."""
    trades = Trades()
    with shared_systems(sim, redis_server.url, 2) as systems:
        assert until(lambda: sorted(roles(systems)) == ["follower", "leader"]), roles(systems)
        (follower,) = [s for s in systems if roles([s]) == ["follower"]]
        changes: list[LevelChange] = []
        follower.on_level_change(changes.append)
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
    no_gap(sub)
    assert_is_the_log(sim, trades, changes)
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
    no_gap(sub)
    assert_is_the_log(sim, trades)


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
    assert_is_the_log(sim, trades)

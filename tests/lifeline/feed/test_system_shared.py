"""``MarketDataSystem`` in ``feed.mode: shared`` against a real Redis and the simulator: two
systems in one process, exactly one leads; the follower's reads come from the feed
(``shared/<the publisher's source>``, the exchange's age, the worse level); a read the feed
does not keep goes through the follower's own REST; Redis stopped → both keep answering
from their own trees at Level ≥ 1 with the reason "shared feed lost", and back to the feed
once Redis is back; status and the subscription follow the same switch."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from actors.messages import produced_at
from lifeline import Level, MarketDataSystem
from lifeline.feed.follower import default_host_id
from lifeline.levels import SHARED_FEED_LOST, Cause, LevelChange
from lifeline.metrics import registry_for
from lifeline.settings import FeedMode, FeedSettings
from lifeline.subscriptions import Update
from quotation.models import Trade
from tests.lifeline.feed.shared_support import Trader, started_systems, until
from tests.lifeline.test_system import config_for
from tests.redis_support import RedisServer
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(120)

BTC = "KRW-BTC"
XRP = "KRW-XRP"
"""Not in ``fallback.symbols``: this host's own tree does not stream it."""
TTL = 0.6


@contextmanager
def shared_systems(sim: Simulator, url: str, n: int) -> Iterator[list[MarketDataSystem]]:
    """``n`` started systems in shared mode on ``sim`` and one Redis; all stopped after."""
    config = dataclasses.replace(config_for(sim), feed=FeedSettings(
        mode=FeedMode.SHARED, redis_url=url, stream_prefix="st", leader_ttl=TTL))
    with started_systems(config, n) as made:
        yield made


def roles(systems: list[MarketDataSystem]) -> list[str]:
    return [s.status().to_dict()["feed"]["role"] for s in systems]


def role_metric(system: MarketDataSystem) -> float | None:
    return registry_for(system).get_sample_value("lifeline_feed_role")


def degraded(system: MarketDataSystem) -> bool:
    return system.level >= Level.DEGRADED


def shared(source: object) -> bool:
    return str(source).startswith("shared/")


def test_two_shared_systems_one_leads_the_other_reads_the_feed_and_survives_redis(
        sim: Simulator, redis_server: RedisServer) -> None:
    seen: list[LevelChange] = []
    updates: list[Update[Any]] = []
    with Trader(sim), shared_systems(sim, redis_server.url, 2) as systems:
        assert until(lambda: sorted(roles(systems)) == ["follower", "leader"]), roles(systems)
        leader, follower = sorted(systems, key=lambda s: roles([s])[0] != "leader")
        follower.on_level_change(seen.append)
        feed = follower.status().to_dict()["feed"]
        assert feed["mode"] == "shared"
        ids = [s.status().to_dict()["feed"]["host_id"] for s in systems]
        readable = re.compile(rf"^{re.escape(default_host_id())}/[0-9a-f]{{6}}$")
        assert ids[0] != ids[1] and all(readable.match(i) for i in ids), ids
        assert feed["leader"] == leader.status().to_dict()["feed"]["host_id"]
        assert leader.status().to_dict()["feed"]["lease_age"] is not None
        assert (role_metric(leader), role_metric(follower)) == (2.0, 1.0)
        takeovers = registry_for(leader).get_sample_value("lifeline_feed_takeovers_total")
        assert takeovers is not None and takeovers >= 1

        # the follower's ticker from the feed: the publisher's source, the exchange's age
        answers: list[Any] = []

        def fresh_from_the_feed() -> bool:  # polled: one stall of a busy machine is no failure
            answers.append(follower.get_ticker([BTC]))
            exchange_age = time.time() - (produced_at(answers[-1].data) or 0.0)
            got = answers[-1]
            return (shared(got.source) and not got.stale and got.age is not None
                    and 0 <= got.age <= 2.0 and abs(got.age - exchange_age) < 1.0)

        assert until(fresh_from_the_feed), answers[-1:]
        answer = answers[-1]
        assert str(answer.source).startswith("shared/smart_router/"), answer.source
        assert answer.level == max(leader.level, follower.level)
        assert not shared(leader.get_ticker([BTC]).source)  # the leader answers from its tree
        sub = follower.subscribe("trade", [BTC], updates.append)
        assert until(lambda: any(shared(u.source) for u in updates))
        assert follower.status().to_dict()["feed"]["lag"] is not None

        # candles ending at `to` are not kept: the follower's own REST answers
        to = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
        candles = follower.get_candles(BTC, "1m", count=5, to=to)
        assert not shared(candles.source) and len(candles.data) == 5

        # Redis stopped: both keep answering from their own trees at Level >= 1
        redis_server.stop()
        for system in systems:
            assert until(partial(degraded, system)), system.status()
            lost = system.get_ticker([BTC])
            assert not shared(lost.source) and lost.level >= Level.DEGRADED
            assert system.status().to_dict()["feed"]["role"] == "local"
            assert role_metric(system) == 0.0
        assert until(lambda: any(c.reason == SHARED_FEED_LOST for c in seen)), seen
        change = next(c for c in seen if c.reason == SHARED_FEED_LOST)
        assert change.cause is Cause.FEED_LOST and change.new >= Level.DEGRADED
        before = len(updates)
        assert until(lambda: any(not shared(u.source) for u in updates[before:]))

        # Redis back: one leads again, the follower's reads come from the feed again
        redis_server.start()
        assert until(lambda: sorted(roles(systems)) == ["follower", "leader"]), roles(systems)
        reader = next(s for s in systems if roles([s]) == ["follower"])
        assert until(lambda: shared(reader.get_ticker([BTC]).source))
        assert until(lambda: all(s.level == Level.NORMAL for s in systems))
        assert any(c.cause is Cause.FEED_RECOVERED for c in seen) or reader is not follower
        sub.close()
    trades = [u.data for u in updates if isinstance(u.data, Trade)]
    ids = [t.sequential_id for t in trades]
    assert len(ids) == len(set(ids)), "a trade delivered twice across the switches"



def test_a_followers_feed_answers_are_its_last_known_good_when_redis_and_its_tree_fail(
        sim: Simulator, redis_server: RedisServer) -> None:
    """A follower host answers from the feed, so its own tree has answered nothing: once
    Redis is gone and its tree cannot answer either (REST black-holed, the WebSocket
    silent), what the feed last answered is served marked stale (as in ``mode: local``,
    every good answer is remembered), not ``MarketDataUnavailable`` for want of anything
    kept. XRP: not in ``fallback.symbols`` (the own tree streams those), asked of the feed
    through a subscription (registered, published by the leader), so the own tree never
    answered it."""
    updates: list[Update[Any]] = []
    with Trader(sim, XRP), shared_systems(sim, redis_server.url, 2) as systems:
        assert until(lambda: sorted(roles(systems)) == ["follower", "leader"]), roles(systems)
        follower = next(s for s in systems if roles([s]) == ["follower"])
        sub = follower.subscribe("trade", [XRP], updates.append)
        assert until(lambda: len(updates) >= 5), len(updates)
        ticker = follower.get_ticker([XRP])
        trades = follower.get_trades(XRP, 5)
        assert shared(ticker.source) and shared(trades.source)
        assert not ticker.stale and not trades.stale

        sim.faults.black_hole(path_prefix="/v1/")
        sim.ws.set_silent(True)
        try:
            redis_server.stop()
            kept = follower.get_ticker([XRP])
            assert kept.stale and str(kept.source) == "last_known_good", kept
            assert kept.data[0].market == XRP and kept.level >= Level.DEGRADED
            assert produced_at(kept.data) == produced_at(ticker.data)
            series = follower.get_trades(XRP, 5)
            assert series.stale and str(series.source) == "last_known_good", series
            assert series.data == trades.data
        finally:
            sim.faults.black_hole(False, path_prefix="/v1/")
            sim.ws.set_silent(False)
            redis_server.start()
        sub.close()

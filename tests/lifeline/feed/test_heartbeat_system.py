"""The leader's heartbeat behind ``MarketDataSystem`` in ``feed.mode: shared`` (two systems
on the simulator and a real Redis): the leader keeps its lease but cannot publish (its
trade stream made a key of another type: every publish refused) → the follower host's
watch finds the leader silent, serves from its own tree at Level >= 1 with the reason
"shared feed lost" and ``status()["feed"]`` shows the heartbeat's age past the bound;
publishing works again → back to the feed on the first fresh heartbeat. The follower's
``status()["feed"]`` carries ``leader_level`` and ``heartbeat_age`` throughout."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from lifeline import Level, MarketDataSystem
from lifeline.feed import FeedKeys, FeedKind, connect
from lifeline.levels import SHARED_FEED_LOST, Cause, LevelChange
from lifeline.settings import FeedMode, FeedSettings
from tests.lifeline.feed.shared_support import Trader, started_systems, until
from tests.lifeline.test_system import config_for
from tests.redis_support import RedisServer
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(120)

BTC = "KRW-BTC"
TTL = 0.6
KEYS = FeedKeys("hs")


@contextmanager
def shared_systems(sim: Simulator, url: str, n: int) -> Iterator[list[MarketDataSystem]]:
    config = dataclasses.replace(config_for(sim), feed=FeedSettings(
        mode=FeedMode.SHARED, redis_url=url, stream_prefix=KEYS.prefix, leader_ttl=TTL))
    with started_systems(config, n) as made:
        yield made


def feed(system: MarketDataSystem) -> dict[str, object]:
    got: dict[str, object] = system.status().to_dict()["feed"]
    return got


def role(system: MarketDataSystem) -> str:
    return str(feed(system)["role"])


def shared(source: object) -> bool:
    return str(source).startswith("shared/")


def fresh(age: object) -> bool:
    """A heartbeat age within the leader's ttl (polled: one late beat on a busy machine is
    no failure; the status reads the heartbeat afresh each time)."""
    return isinstance(age, float) and 0.0 <= age <= TTL


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    made = connect(redis_server.url)
    yield made
    made.close()


def test_a_leader_that_cannot_publish_is_silent_its_followers_serve_locally_until_it_beats(
        sim: Simulator, redis_server: RedisServer, client: redis.Redis) -> None:
    changes: list[LevelChange] = []
    with Trader(sim), shared_systems(sim, redis_server.url, 2) as systems:
        assert until(lambda: sorted(map(role, systems)) == ["follower", "leader"]), (
            [role(s) for s in systems])
        leader = next(s for s in systems if role(s) == "leader")
        follower = next(s for s in systems if role(s) == "follower")
        follower.on_level_change(changes.append)
        assert until(lambda: shared(follower.get_ticker([BTC]).source))
        assert feed(follower)["leader_level"] == 0
        assert until(lambda: fresh(feed(follower)["heartbeat_age"])), feed(follower)

        trades = KEYS.stream(FeedKind.TRADE, BTC)
        client.delete(trades)  # every publish refused from now on (a trade in each)
        client.set(trades, b"not a stream")
        assert until(lambda: role(follower) == "local"), feed(follower)
        assert until(lambda: any(c.reason == SHARED_FEED_LOST for c in changes)), changes
        lost = next(c for c in changes if c.reason == SHARED_FEED_LOST)
        assert lost.cause is Cause.FEED_LOST and lost.new >= Level.DEGRADED
        status = feed(follower)
        assert status["lost"] is True and status["leader"] == feed(leader)["host_id"]
        age = status["heartbeat_age"]
        assert isinstance(age, float) and age > TTL  # the lease alive, the heartbeat not
        assert role(leader) == "leader"
        answer = follower.get_ticker([BTC])
        assert not shared(answer.source) and answer.level >= Level.DEGRADED

        client.delete(trades)  # publishing works again: so does the heartbeat
        assert until(lambda: role(follower) == "follower"), feed(follower)
        assert any(c.cause is Cause.FEED_RECOVERED for c in changes) or until(
            lambda: any(c.cause is Cause.FEED_RECOVERED for c in changes))
        assert until(lambda: shared(follower.get_ticker([BTC]).source))
        assert until(lambda: fresh(feed(follower)["heartbeat_age"])), feed(follower)

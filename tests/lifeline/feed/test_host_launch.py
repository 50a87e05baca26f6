"""``MarketDataSystem.start()`` in ``feed.mode: shared`` refused (already started, or
stopped) builds nothing and stops nothing: it used to build the Redis rate limiter before
its checks, and a refused start on a started system stopped that system (its "a failed
start stops what it started" path). Counted by Redis itself (``CLIENT LIST``, the probe's
own connection aside). Real ``redis-server`` and the simulator."""

from __future__ import annotations

import dataclasses
from typing import Any

import pykka
import pytest
import redis

from lifeline import MarketDataSystem
from lifeline.errors import LifelineError
from lifeline.feed import connect
from lifeline.settings import FeedMode, FeedSettings
from tests.lifeline.system_support import until
from tests.lifeline.test_system import config_for
from tests.redis_support import RedisServer
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(60)

TTL = 0.6
WAIT = 20.0


def _connections(probe: redis.Redis) -> set[str]:
    """The ids of the connections Redis has open, the probe's aside."""
    mine = probe.client_id()
    return {str(c["id"]) for c in probe.client_list() if int(c["id"]) != mine}


def _system(sim: Simulator, url: str) -> MarketDataSystem:
    return MarketDataSystem.from_config(dataclasses.replace(config_for(sim), feed=FeedSettings(
        mode=FeedMode.SHARED, redis_url=url, stream_prefix="sl", leader_ttl=TTL)))


def test_a_second_start_of_a_started_shared_system_leaves_it_running(
        sim: Simulator, redis_server: RedisServer) -> None:
    probe = connect(redis_server.url, connect_timeout=0.5, socket_timeout=0.5)
    system = _system(sim, redis_server.url)

    def feed() -> dict[str, Any]:
        return dict(system.status().to_dict()["feed"])

    try:
        system.start()
        assert until(lambda: feed()["role"] == "leader", WAIT), feed()
        before = _connections(probe)
        with pytest.raises(LifelineError, match="already started"):
            system.start()
        assert system.status().running and feed()["role"] == "leader", feed()
        assert before <= _connections(probe), "the running system's connections were closed"
    finally:
        system.stop()
        probe.close()
        pykka.ActorRegistry.stop_all(timeout=WAIT)


def test_a_stopped_shared_system_does_not_start_again_nor_open_a_connection(
        sim: Simulator, redis_server: RedisServer) -> None:
    probe = connect(redis_server.url, connect_timeout=0.5, socket_timeout=0.5)
    system = _system(sim, redis_server.url)
    try:
        system.start()
        system.stop()
        assert until(lambda: not _connections(probe), WAIT), _connections(probe)
        with pytest.raises(LifelineError, match="stopped"):
            system.start()
        assert not _connections(probe)
        assert not system.status().running
    finally:
        system.stop()
        probe.close()
        pykka.ActorRegistry.stop_all(timeout=WAIT)

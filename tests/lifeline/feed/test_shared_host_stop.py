"""``SharedHost.stop()`` from the host's own catch-up thread (``lifeline-feed-catchup``): a
subscription's callback runs there while a switch's backfill and held trades are delivered,
and a trading callback may stop the system (a kill switch). ``stop()`` must then end
everything else as from any thread: the watch, the leader (its lease released), the
follower, the connections — not raise ``cannot join current thread`` half-way and leave the
leader running with its lease. Real ``redis-server``; the host's own side is a small
:class:`~lifeline.feed.host.OwnSide` (its subscriptions on a real ``Dispatcher``); bounded
waits only."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

from lifeline.feed import FeedKeys, Lease, connect
from lifeline.feed.host import STOP_SLACK, SharedHost
from lifeline.feed.redis_io import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKET_TIMEOUT
from lifeline.settings import FeedMode, FeedSettings
from quotation.clock import SystemClock
from tests.lifeline.feed.shared_support import OwnTree, polled
from tests.redis_support import RedisServer

pytestmark = pytest.mark.timeout(60)

TTL = 0.6
WAIT = 15.0
"""Real seconds a wait lasts before the test fails (a bound, never expected to elapse)."""
DEADLINE = 3.0
"""``fallback.request_deadline`` (above the Redis calls' bound, 2 s: the catch-up thread's
stop bound is derived from it)."""
FEED_THREADS = ("lifeline-feed-watch", "lifeline-feed-leader", "lifeline-feed-registrar",
                "lifeline-feed-follower", "lifeline-feed-dispatcher", "lifeline-feed-catchup")


Own = OwnTree
"""The host's own tree as the feed sees it (nothing here asks for its trades)."""


def _feed_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in FEED_THREADS]


def _until(predicate: Callable[[], bool]) -> bool:
    return polled(predicate, WAIT)


def test_stop_from_the_catchup_thread_stops_the_leader_the_follower_and_the_watch(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="lifeline.feed.host")
    own = Own()
    own.dispatcher.start()
    settings = FeedSettings(mode=FeedMode.SHARED, redis_url=redis_server.url,
                            stream_prefix="hs", leader_ttl=TTL)
    host = SharedHost(settings, own, clock=SystemClock(), owner="test-host", symbols=(),
                      interval=TTL / 3, on_lost=lambda lost: None,
                      local_subscribe=own.subscribe, request_deadline=DEADLINE)
    probe = connect(redis_server.url, connect_timeout=0.5, socket_timeout=0.5)
    stopped = threading.Event()
    failed: list[BaseException] = []

    def stop_here() -> None:  # what a callback does during a backfill's delivery
        try:
            host.stop()
        except BaseException as exc:  # handed to the test below
            failed.append(exc)
        stopped.set()

    try:
        host.start()
        assert _until(lambda: host.leader.leading), host.leader.status()
        host.later(stop_here)
        assert stopped.wait(WAIT), "stop() from the catch-up thread never returned"
        assert failed == [], failed
        assert not host.leader.status().running
        assert Lease(probe, FeedKeys("hs").leader, "probe", ttl=TTL).holder() is None
        assert _until(lambda: _feed_threads() == []), _feed_threads()
        with pytest.raises(RuntimeError, match="not running"):
            host.follower.subscribe("trade", ["KRW-BTC"], lambda update: None)
        assert not [r for r in caplog.records if "catch-up" in r.getMessage()]
    finally:
        if not stopped.is_set():
            host.stop()
        elif failed:  # the half-done stop: end the rest from here
            host.leader.stop()
            host.follower.close()
        own.dispatcher.stop(WAIT)
        probe.close()


def test_the_system_is_told_the_feeds_state_in_the_order_it_changed(
        redis_server: RedisServer) -> None:
    """A read that finds Redis gone (``lost``) and the watch that finds it back race: each
    flips the host's state and then tells the system (``on_lost``, the keeper's Level ≥ 1
    "shared feed lost"). Told in the other order, the system believes the feed lost while
    the host serves from it, until the next change (the watch tells only changes). The
    ``lost`` side is held inside its ``on_lost`` while the ``back`` side runs (bounded)."""
    told: list[bool] = []
    own = Own()
    host: SharedHost | None = None

    def on_lost(lost: bool) -> None:
        if lost:  # the watch finds Redis back meanwhile, on its own thread
            assert host is not None
            back = threading.Thread(target=host._set_lost, args=(False,), daemon=True,
                                    name="test-watch")
            back.start()
            back.join(0.5)  # with the order kept it waits for this call: the bound elapses
        told.append(lost)

    settings = FeedSettings(mode=FeedMode.SHARED, redis_url=redis_server.url,
                            stream_prefix="ho", leader_ttl=TTL)
    host = SharedHost(settings, own, clock=SystemClock(), owner="test-order", symbols=(),
                      interval=TTL / 3, on_lost=on_lost, local_subscribe=own.subscribe,
                      request_deadline=DEADLINE)
    try:
        host._set_lost(True, "a read found Redis gone")
        assert _until(lambda: len(told) == 2), told
        assert told[-1] is host.lost, (told, host.lost)
    finally:
        host.stop()


def test_a_catchup_stuck_past_its_bound_is_left_and_named_in_a_warning(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """The catch-up thread runs the switches' backfills: the own tree's ``get_trades``,
    bounded by ``fallback.request_deadline``. ``stop()`` waits for it that long (and a
    little), then goes on and says which thread it left."""
    caplog.set_level(logging.WARNING, logger="lifeline.feed.host")
    own = Own()
    settings = FeedSettings(mode=FeedMode.SHARED, redis_url=redis_server.url,
                            stream_prefix="hc", leader_ttl=TTL)
    host = SharedHost(settings, own, clock=SystemClock(), owner="test-stuck", symbols=(),
                      interval=TTL / 3, on_lost=lambda lost: None,
                      local_subscribe=own.subscribe, request_deadline=DEADLINE)
    inside, gate = threading.Event(), threading.Event()

    def stuck() -> None:  # a backfill whose REST call outlives its deadline
        inside.set()
        gate.wait(WAIT + host.catchup_bound)

    assert host.catchup_bound == DEADLINE + STOP_SLACK
    try:
        host.start()
        host.later(stuck)
        assert inside.wait(WAIT)
        host.stop()  # returns: the bound ran out
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("lifeline-feed-catchup" in m and f"{host.catchup_bound:.1f} s" in m
                   for m in warned), warned
        assert not host.leader.status().running
    finally:
        gate.set()
        host.stop()
    assert _until(lambda: _feed_threads() == []), _feed_threads()


def test_a_watch_stuck_past_its_bound_is_left_and_named_in_a_warning(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """The watch's pass (a ``PING``, the leader's heartbeat, telling the system) is bounded
    by two Redis calls; one stuck longer (here in ``on_lost``, told that the feed is back)
    is left by ``stop()`` with a WARNING naming it, not silently."""
    caplog.set_level(logging.WARNING, logger="lifeline.feed.host")
    own = Own()
    inside, gate = threading.Event(), threading.Event()

    def on_lost(lost: bool) -> None:
        if not lost and threading.current_thread().name == "lifeline-feed-watch":
            inside.set()
            gate.wait(WAIT + host.watch_bound)

    settings = FeedSettings(mode=FeedMode.SHARED, redis_url=redis_server.url,
                            stream_prefix="hw", leader_ttl=TTL)
    host = SharedHost(settings, own, clock=SystemClock(), owner="test-watch", symbols=(),
                      interval=TTL / 3, on_lost=on_lost, local_subscribe=own.subscribe,
                      request_deadline=DEADLINE)
    assert host.watch_bound == 2 * (DEFAULT_CONNECT_TIMEOUT + DEFAULT_SOCKET_TIMEOUT) + STOP_SLACK
    try:
        host.start()
        host._set_lost(True, "a read found Redis gone")  # the watch finds it back: on_lost
        assert inside.wait(WAIT)
        host.stop()  # returns: the bound ran out
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                  and "lifeline-feed-watch" in r.getMessage()]
        assert len(warned) == 1 and f"{host.watch_bound:.1f} s" in warned[0], warned
    finally:
        gate.set()
        host.stop()
    assert _until(lambda: _feed_threads() == []), _feed_threads()

"""A silent Redis (SIGSTOPped by its pid: the port accepts, nothing answers) under two
``MarketDataSystem`` s in ``feed.mode: shared`` on the simulator: the follower host's read
falls to its own tree within one Redis call's socket timeout
(``lifeline.feed.redis_io.DEFAULT_SOCKET_TIMEOUT``, 1 s), within its request deadline
(the tree gets what the feed left of it), and never hangs; its level is >= 1 with the
reason "shared feed lost"; SIGCONT → it reads the feed again. No wall-time assertion:
bounded waits only (the time taken is printed)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from lifeline import Level, MarketDataSystem
from lifeline.errors import MarketDataUnavailable
from lifeline.feed.redis_io import DEFAULT_SOCKET_TIMEOUT
from lifeline.levels import SHARED_FEED_LOST, Cause, LevelChange
from lifeline.settings import FeedMode, FeedSettings
from tests.lifeline.feed.shared_support import WAIT, Trader, started_systems, until
from tests.lifeline.test_system import DEADLINE, config_for
from tests.redis_support import RedisServer
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(120)

BTC = "KRW-BTC"
XRP = "KRW-XRP"
"""Not in ``fallback.symbols``: this host's own tree does not stream it."""
TTL = 0.6
READ_BOUND = max(DEFAULT_SOCKET_TIMEOUT, DEADLINE)
"""A follower's read with Redis silent: one Redis call's socket timeout, then its own tree's
answer within what is left of the request deadline."""


@contextmanager
def shared_systems(sim: Simulator, url: str, n: int, *, deadline: float = DEADLINE
                   ) -> Iterator[list[MarketDataSystem]]:
    base = config_for(sim)
    # the defaults' relation: a router probe's timeout longer than one of the Redis rate
    # limiter's calls (0.25 s), and probes within its local share (2 requests/s) once it
    # falls back; with the tests' 0.2 s timeout every 0.2 s a silent Redis fails the probes
    # (Level 2, "router probes failed") before the feed is found lost
    fallback = dataclasses.replace(base.fallback, probe_interval=0.5, router_timeout=0.5,
                                   recovery_interval=1.5, failure_threshold=3,
                                   request_deadline=deadline)
    config = dataclasses.replace(base, fallback=fallback, feed=FeedSettings(
        mode=FeedMode.SHARED, redis_url=url, stream_prefix="sr", leader_ttl=TTL))
    with started_systems(config, n) as made:
        yield made


def role(system: MarketDataSystem) -> str:
    return str(system.status().to_dict()["feed"]["role"])


def shared(source: object) -> bool:
    return str(source).startswith("shared/")


def bounded_read(system: MarketDataSystem, market: str = BTC) -> tuple[Any, float]:
    """``system.get_ticker([market])`` on a thread joined within a generous bound (a hang
    fails the test with a message, not the test's timeout); the answer and seconds taken."""
    result: list[Any] = []

    def read() -> None:
        began = time.monotonic()
        try:
            result.append(system.get_ticker([market]))
        except BaseException as exc:  # handed to the test below
            result.append(exc)
        result.append(time.monotonic() - began)

    thread = threading.Thread(target=read, name="test-read", daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), f"a read hung for {WAIT} s with Redis silent"
    answer, took = result
    if isinstance(answer, BaseException):
        raise answer
    return answer, took


def test_a_silent_redis_sends_a_follower_hosts_reads_to_its_own_tree_and_sigcont_back(
        sim: Simulator, redis_server: RedisServer) -> None:
    changes: list[LevelChange] = []
    with Trader(sim), shared_systems(sim, redis_server.url, 2) as systems:
        assert until(lambda: sorted(map(role, systems)) == ["follower", "leader"]), (
            [role(s) for s in systems])
        follower = next(s for s in systems if role(s) == "follower")
        follower.on_level_change(changes.append)
        assert until(lambda: shared(follower.get_ticker([BTC]).source))

        redis_server.pause()
        try:
            answer, took = bounded_read(follower)
            print(f"a follower's read with Redis silent: {took:.3f} s "
                  f"(bound {READ_BOUND:.1f} s: the longer of the socket timeout "
                  f"{DEFAULT_SOCKET_TIMEOUT} s and the request deadline {DEADLINE} s)")
            assert not shared(answer.source), answer.source
            assert answer.level >= Level.DEGRADED and answer.data[0].market == BTC
            assert until(lambda: any(c.reason == SHARED_FEED_LOST for c in changes)), changes
            lost = next(c for c in changes if c.reason == SHARED_FEED_LOST)
            assert lost.cause is Cause.FEED_LOST and lost.new >= Level.DEGRADED
            assert role(follower) == "local" and follower.status().to_dict()["feed"]["lost"]
            again, _ = bounded_read(follower)  # lost: straight to its own tree
            assert not shared(again.source) and again.level >= Level.DEGRADED
        finally:
            redis_server.resume()

        assert until(lambda: sorted(map(role, systems)) == ["follower", "leader"]), (
            [role(s) for s in systems])
        reader = next(s for s in systems if role(s) == "follower")
        assert until(lambda: shared(reader.get_ticker([BTC]).source))
        assert until(lambda: all(s.level == Level.NORMAL for s in systems))


def test_a_read_that_finds_redis_silent_keeps_its_request_deadline(
        sim: Simulator, redis_server: RedisServer) -> None:
    """One deadline per read, the feed's part included: a read that spent its
    ``request_deadline`` waiting for a silent Redis (here 0.9 s, under one Redis call's
    socket timeout, 1 s) gets no fresh answer later from its own tree; it is served what it
    had (the feed's last answer, stale) or a typed error, as any read past its deadline —
    never a fresh answer after the deadline. XRP: not in ``fallback.symbols`` (not on the
    own tree's board, which answers without a wait), published because a subscription
    asks for it."""
    deadline = 0.9
    assert deadline < DEFAULT_SOCKET_TIMEOUT
    updates: list[Any] = []
    with Trader(sim, XRP), shared_systems(sim, redis_server.url, 2,
                                          deadline=deadline) as systems:
        assert until(lambda: sorted(map(role, systems)) == ["follower", "leader"]), (
            [role(s) for s in systems])
        follower = next(s for s in systems if role(s) == "follower")
        sub = follower.subscribe("trade", [XRP], updates.append)
        assert until(lambda: len(updates) >= 1)
        assert until(lambda: shared(follower.get_ticker([XRP]).source))

        redis_server.pause()
        try:
            try:
                answer, took = bounded_read(follower, XRP)
            except MarketDataUnavailable as exc:
                print(f"past its deadline: {exc}")
            else:
                print(f"a read with Redis silent: {took:.3f} s, {answer.source}, "
                      f"stale {answer.stale}")
                assert answer.stale and str(answer.source) == "last_known_good", answer
        finally:
            redis_server.resume()
        sub.close()

"""``SharedHost.read`` on a host that follows (another contender holds the lease and beats):
a read the feed refuses (a corrupted key: Redis answers an error) is served by the host's own
tree and logged once per burst with a count, not once per read (a host reading 100 times a
second would flood its log); a read racing ``stop()`` leaves no connection open. Real
``redis-server``; the host's own side is a small :class:`~lifeline.feed.host.OwnSide`;
bounded waits only."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from actors.messages import TickerRequest
from lifeline.feed import FeedKeys, FeedKind, Lease, connect
from lifeline.feed.host import SharedHost
from lifeline.feed.streams import Heartbeat, Heartbeats
from lifeline.settings import FeedMode, FeedSettings
from quotation.clock import SystemClock
from tests.lifeline.feed.shared_support import OwnTree, polled
from tests.redis_support import RedisServer

pytestmark = pytest.mark.timeout(60)

BTC = "KRW-BTC"
TTL = 0.6
WAIT = 10.0
"""Real seconds a wait lasts before the test fails (a bound, never expected to elapse)."""
OTHER_TTL = 30.0
"""The other contender's lease and heartbeat: they outlast the test."""
READER = "test-reader"


class Own(OwnTree):
    """The host's own tree as the feed sees it: level 0 (a read on the thread named
    :data:`READER` waits for :meth:`release` once :attr:`armed`), subscriptions on a
    dispatcher, no trades."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.inside = threading.Event()
        self._gate = threading.Event()

    @property
    def level(self) -> int:
        if self.armed and threading.current_thread().name == READER:
            self.inside.set()  # the read is in flight: it reads Redis once let go
            self._gate.wait(WAIT)
        return 0

    def release(self) -> None:
        self._gate.set()


def _until(predicate: Callable[[], bool]) -> bool:
    return polled(predicate, WAIT)


@contextmanager
def following(redis_server: RedisServer, prefix: str
              ) -> Iterator[tuple[SharedHost, Own, redis.Redis]]:
    """A started host that follows ("other" holds the lease and has beaten), its own side and
    a probe client; everything stopped after."""
    own = Own()
    own.dispatcher.start()
    probe = connect(redis_server.url, connect_timeout=0.5, socket_timeout=0.5)
    keys = FeedKeys(prefix)
    grant = Lease(probe, keys.leader, "other", ttl=OTHER_TTL).try_acquire()
    assert grant is not None
    Heartbeats(probe, keys).write(grant, Heartbeat("other", grant.token, 0, time.time(), None,
                                                   OTHER_TTL, OTHER_TTL / 3))
    settings = FeedSettings(mode=FeedMode.SHARED, redis_url=redis_server.url,
                            stream_prefix=prefix, leader_ttl=TTL)
    host = SharedHost(settings, own, clock=SystemClock(), owner=f"test-{prefix}", symbols=(),
                      interval=TTL / 3, on_lost=lambda lost: None,
                      local_subscribe=own.subscribe, request_deadline=3.0)
    try:
        host.start()
        assert host.role() == "follower", host.status()
        yield host, own, probe
    finally:
        own.release()
        host.stop()
        own.dispatcher.stop(WAIT)
        probe.close()


def _read_failures_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "lifeline.feed.host" and "read" in r.getMessage()]


def test_reads_the_feed_refuses_are_logged_once_per_burst_with_a_count(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lifeline.feed.host")
    with following(redis_server, "rf") as (host, _own, probe):
        snapshot = FeedKeys("rf").snapshot(FeedKind.TICKER, BTC)
        probe.set(snapshot, "not a hash")  # HGETALL: WRONGTYPE, a FeedCommandError
        for _ in range(100):
            assert host.read(TickerRequest((BTC,))) is None  # the own tree serves it
        assert len(_read_failures_logged(caplog)) == 1, _read_failures_logged(caplog)
        assert not host.lost  # a refused command is no lost feed

        probe.delete(snapshot)  # the feed answers again (a miss: not published yet)
        assert host.read(TickerRequest((BTC,))) is None
        back = _read_failures_logged(caplog)
        assert len(back) == 2 and "100" in back[1], back

        probe.set(snapshot, "not a hash")  # a new burst: logged again
        for _ in range(10):
            assert host.read(TickerRequest((BTC,))) is None
        assert len(_read_failures_logged(caplog)) == 3, _read_failures_logged(caplog)
        assert host.read_failures == 110


def test_a_read_racing_stop_leaves_no_connection_open(redis_server: RedisServer) -> None:
    """A read in flight while ``stop()`` closes the clients would reopen a connection (a
    Redis client reconnects on its next command) that nobody closes; a read after
    ``stop()`` is served by the own tree (``None``) without touching Redis; ``status()``
    after it (a Redis read) closes what it opened. Counted by Redis itself (``CLIENT LIST``,
    the probe's own connection aside)."""
    with following(redis_server, "rs") as (host, own, probe):
        mine = probe.client_id()

        def others() -> list[dict[str, Any]]:
            return [c for c in probe.client_list() if int(c["id"]) != mine]

        assert others(), "the host holds no connection"
        results: list[object] = []
        own.armed = True
        reader = threading.Thread(
            target=lambda: results.append(host.read(TickerRequest((BTC,)))),
            name=READER, daemon=True)
        reader.start()
        assert own.inside.wait(WAIT)  # in flight: past 'this host follows', before Redis
        host.stop()
        own.release()  # its Redis calls come after the clients were closed
        reader.join(WAIT)
        assert not reader.is_alive() and results == [None], results
        assert host.read(TickerRequest((BTC,))) is None  # after stop(): the own tree's
        assert host.status()["mode"] == "shared"  # its Redis read's connection closed again
        assert _until(lambda: not others()), others()

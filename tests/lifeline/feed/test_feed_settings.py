"""The feed's own settings (lease, writer, reader, registry, leader) are range-checked by the
project's one check, :func:`quotation.values.check` (issue 7), through
:func:`lifeline.feed.errors.check_setting`: a :class:`FeedSettingsError` whose ``key`` and
message name the setting, caused by the ``InvalidValue``. Before, hand-written ``must be >
0`` checks let infinities (an ``OverflowError`` later), booleans, fractional counts (a
``TypeError`` in the leader's thread, a script error at every publish) and strings (a
``TypeError``) through, and a follower's ``retry_after`` of 0 made a busy loop while Redis
was away. No Redis is needed: nothing is sent while these are built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from lifeline.feed import (
    FeedKeys,
    FeedReader,
    FeedSettingsError,
    Lease,
    StreamFollower,
    SymbolRegistry,
    connect,
)
from lifeline.feed.leader import FeedLeader
from lifeline.feed.lease import FencedWriter
from quotation.errors import InvalidValue

pytestmark = pytest.mark.timeout(10)

NAN, INF = float("nan"), float("inf")
KEYS = FeedKeys("settings")


class Host:
    """A ``LeaderHost`` that is never asked anything (nothing runs)."""

    level = 0

    def subscribe(self, kind: str, markets: Any, callback: Callable[[Any], object]) -> Any:
        raise AssertionError("not started")

    def get_trades(self, market: str, count: int = 100) -> Any:
        raise AssertionError("not started")


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    made = connect("redis://127.0.0.1:9/0", socket_timeout=1.0)  # never connected
    yield made
    made.close()


BUILDERS: dict[str, Callable[[redis.Redis, Any], object]] = {
    "feed.leader_ttl": lambda c, v: Lease(c, "k", "a", ttl=v),
    "feed.renew_every": lambda c, v: Lease(c, "k", "a", ttl=5.0, renew_every=v),
    "feed.acquire_every": lambda c, v: Lease(c, "k", "a", ttl=5.0, acquire_every=v),
    "feed.stream_maxlen": lambda c, v: FencedWriter(c, maxlen=v),
    "feed.read_block": lambda c, v: FeedReader(c, KEYS, block=v),
    "feed.read_count": lambda c, v: FeedReader(c, KEYS, block=0.1, count=v),
    "feed.registration_ttl": lambda c, v: SymbolRegistry(c, KEYS, ttl=v),
    "feed.retry_after": lambda c, v: StreamFollower(FeedReader(c, KEYS, block=0.1),
                                                    lambda entry: None, retry_after=v),
    "feed.leader.queue_capacity": lambda c, v: FeedLeader(Host(), c, KEYS, owner="a",
                                                          queue_capacity=v),
    "feed.leader.batch_max": lambda c, v: FeedLeader(Host(), c, KEYS, owner="a", batch_max=v),
    "feed.leader.retry_initial": lambda c, v: FeedLeader(Host(), c, KEYS, owner="a",
                                                         retry_initial=v),
    "feed.leader.stop_timeout": lambda c, v: FeedLeader(Host(), c, KEYS, owner="a",
                                                        stop_timeout=v),
    "feed.leader.backfill_wait": lambda c, v: FeedLeader(Host(), c, KEYS, owner="a",
                                                         backfill_wait=v),
}
REFUSED: list[tuple[str, object]] = [
    ("feed.leader_ttl", 0.0), ("feed.leader_ttl", -1.0), ("feed.leader_ttl", NAN),
    ("feed.leader_ttl", INF), ("feed.leader_ttl", True), ("feed.leader_ttl", "5"),
    ("feed.renew_every", 0.0), ("feed.renew_every", NAN), ("feed.renew_every", INF),
    ("feed.renew_every", 5.0),  # not shorter than the ttl
    ("feed.acquire_every", 0.0), ("feed.acquire_every", NAN),
    ("feed.stream_maxlen", 0), ("feed.stream_maxlen", 1.5), ("feed.stream_maxlen", True),
    ("feed.stream_maxlen", NAN),
    ("feed.read_block", 0.0), ("feed.read_block", NAN), ("feed.read_block", 11.0),
    ("feed.read_block", INF), ("feed.read_count", 0), ("feed.read_count", 2.5),
    ("feed.registration_ttl", 0.0), ("feed.registration_ttl", INF),
    ("feed.registration_ttl", NAN),
    ("feed.retry_after", 0.0), ("feed.retry_after", -1.0), ("feed.retry_after", NAN),
    ("feed.leader.queue_capacity", 0), ("feed.leader.queue_capacity", 2.5),
    ("feed.leader.batch_max", 0), ("feed.leader.batch_max", 1.5),
    ("feed.leader.retry_initial", 0.0), ("feed.leader.retry_initial", NAN),
    ("feed.leader.stop_timeout", NAN), ("feed.leader.stop_timeout", -1.0),
    ("feed.leader.backfill_wait", -1.0), ("feed.leader.backfill_wait", NAN),
]


@pytest.mark.parametrize(("key", "value"), REFUSED, ids=[f"{k}={v!r}" for k, v in REFUSED])
def test_an_impossible_feed_setting_is_a_feed_settings_error_naming_its_key(
    client: redis.Redis, key: str, value: object,
) -> None:
    with pytest.raises(FeedSettingsError) as caught:
        BUILDERS[key](client, value)
    assert caught.value.key == key
    assert str(caught.value).startswith(key), str(caught.value)
    assert caught.value.value is value
    if key != "feed.renew_every" or value != 5.0:  # the one rule between two settings
        assert isinstance(caught.value.__cause__, InvalidValue)


@pytest.mark.parametrize("key", sorted(BUILDERS))
def test_a_possible_feed_setting_is_taken(client: redis.Redis, key: str) -> None:
    value: object = {"feed.leader_ttl": 5.0, "feed.renew_every": 1.0,
                     "feed.stream_maxlen": 1, "feed.read_block": 0.5, "feed.read_count": 1,
                     "feed.leader.queue_capacity": 1, "feed.leader.batch_max": 1,
                     "feed.leader.backfill_wait": 0.0}.get(key, 0.25)
    BUILDERS[key](client, value)

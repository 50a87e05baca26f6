"""A follower's ``get_trades`` answer is newest first by ``sequential_id`` whatever order
the stream holds (issue 11 review: a stream an older leader misordered, a failed backfill
retried after live trades, used to come back misordered), on a real Redis."""

from __future__ import annotations

import pytest
import redis

from lifeline.feed import FeedPublisher, Lease
from lifeline.feed.follower import FeedFollower
from lifeline.levels import Level
from tests.fakes import ManualClock
from tests.lifeline.feed.test_leader_review import KEYS, SOURCE, trade

pytestmark = pytest.mark.timeout(30)

BTC = "KRW-BTC"


def test_a_followers_get_trades_is_newest_first_by_sequential_id_whatever_the_stream_holds(
    client: redis.Redis,
) -> None:
    lease = Lease(client, KEYS.leader, "old-leader", ttl=30.0, clock=ManualClock())
    grant = lease.try_acquire()
    assert grant is not None
    FeedPublisher(client, KEYS).publish(  # an older build's misordered stream
        grant, [trade(BTC, sid) for sid in (1, 2, 3, 5, 6, 4)], source=SOURCE, level=0)
    follower = FeedFollower(client, KEYS, own_level=lambda: Level.NORMAL,
                            clock=ManualClock(), host_id="host-b", symbols=[BTC])
    try:
        answer = follower.get_trades(BTC, 6)
    finally:
        assert follower.close()
    assert [t.sequential_id for t in answer.data] == [6, 5, 4, 3, 2, 1]  # before: 4, 6, 5, …

"""FeedLeader on a real Redis and a fake clock: while a market's backfill is pending its live
trades are held, so a backfill's trades never land after the live ones that follow them
(issue 11 review); live trades go out as they arrive, once each by id (Upbit's arrival
order is not its trade order).

Before: after a backfill failed (REST down at a takeover, after a dropped trade, after a
failed publish) the leader published the market's live trades, and the retried backfill
later landed the older trades after them: followers' subscriptions dropped those as
``out_of_order``, a follower's ``get_trades`` came back misordered, the trade snapshot went
back in time. Now the held trades are published after the backfilled ones; a hold that
fills (500) or times out (``backfill_hold``, 2 x ttl) gives the backfill up: a gap counted
and logged, the held trades published in order, live again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import pytest
import redis

from lifeline.feed import FeedKind, Lease
from lifeline.feed.leader import HOLD_TRADES, FeedLeader, LeaderRole
from lifeline.feed.streams import Snapshots
from quotation.models import Orderbook, OrderbookLevel
from tests.fakes import ManualClock
from tests.lifeline.feed.test_leader_review import (
    KEYS,
    TTL,
    Host,
    Offered,
    published_before,
    stream_sids,
)
from tests.lifeline.system_support import until

pytestmark = pytest.mark.timeout(60)

BTC = "KRW-BTC"
WAIT = 10.0
"""Real seconds a wait for the leader's own thread lasts at most (never expected to)."""


def traded(host: Host, market: str = BTC) -> list[int]:
    """The fake exchange's trade log of ``market`` (sequential ids 1.. its last trade)."""
    return list(range(1, host.traded[market] + 1))


def leader_for(host: Host, client: redis.Redis, clock: ManualClock, **kwargs: object
               ) -> FeedLeader:
    leader = FeedLeader(host, client, KEYS, owner="host-a", leader_ttl=TTL, clock=clock,
                        host_symbols=(BTC,), **kwargs)  # type: ignore[arg-type]
    leader.step()
    assert leader.leading
    return leader


def test_a_failed_takeover_backfill_holds_live_trades_and_its_retry_publishes_them_in_order(
    clients: Callable[[], redis.Redis],
) -> None:
    client = clients()
    published_before(client, [BTC], last=10)
    clock = ManualClock()
    host = Host(clock)
    leader = leader_for(host, clients(), clock)
    host.traded[BTC] = 13  # 11..13 traded while nobody led
    host.rest_down = True
    for sid in range(14, 21):
        host.live(BTC, sid)
    leader.step()
    assert host.rest_calls == [BTC]
    assert stream_sids(client, BTC) == list(range(1, 11))  # before: 14..20 published
    assert leader.status().held == 7
    host.live(BTC, 21)
    host.rest_down = False
    clock.advance(TTL / 3)  # the retry's timer
    leader.step()
    assert host.rest_calls == [BTC] * 2
    assert stream_sids(client, BTC) == traded(host)  # before: 1..10, 14..20, 11..13, 21
    status = leader.status()
    # REST's answer reaches up to 21: 11..21 come from it, the held ones are not published again
    assert (status.held, status.backfilled, status.backfill_gaps) == (0, 11, 0)
    host.live(BTC, 22)
    leader.step()
    assert stream_sids(client, BTC) == traded(host)
    assert leader.status().out_of_order == 0


def test_a_dropped_trades_backfill_that_fails_holds_the_live_trades_until_its_retry(
    clients: Callable[[], redis.Redis],
) -> None:
    client = clients()
    clock = ManualClock()
    host = Host(clock)
    leader = leader_for(host, clients(), clock, queue_capacity=4)
    for sid in range(1, 4):
        host.live(BTC, sid)
    leader.step()
    assert stream_sids(client, BTC) == [1, 2, 3]
    for sid in range(4, 12):  # Redis "slow": 4..7 dropped from the full queue
        host.live(BTC, sid)
    host.rest_down = True
    leader.step()
    status = leader.status()
    assert (status.dropped, status.held) == (4, 4)
    assert stream_sids(client, BTC) == [1, 2, 3]  # before: 8..11 published
    host.rest_down = False
    clock.advance(TTL / 3)
    leader.step()
    assert stream_sids(client, BTC) == traded(host)  # before: 1..3, 8..11, 4..7


def test_a_failed_publishs_backfill_that_fails_holds_the_live_trades_until_its_retry(
    clients: Callable[[], redis.Redis],
) -> None:
    client = clients()
    clock = ManualClock()
    host = Host(clock)
    leader = leader_for(host, clients(), clock)
    for sid in range(1, 11):
        host.live(BTC, sid)
    leader.step()
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)  # every write refused: OOM
    try:
        for sid in range(11, 16):
            host.live(BTC, sid)
        leader.step()
        assert leader.status().errors.get("FeedCommandError", 0) >= 1
    finally:
        client.config_set("maxmemory", 0)
    host.rest_down = True
    host.live(BTC, 16)
    clock.advance(TTL / 3)  # past the retry's backoff: the backfill runs, REST fails
    leader.step()
    assert host.rest_calls == [BTC]
    assert stream_sids(client, BTC) == list(range(1, 11))  # before: 16 published
    host.rest_down = False
    clock.advance(TTL / 3)
    leader.step()
    assert stream_sids(client, BTC) == traded(host)  # before: 1..10, 16, 11..15


def test_a_full_hold_gives_the_backfill_up_counts_a_gap_and_publishes_the_held_in_order(
    clients: Callable[[], redis.Redis], caplog: pytest.LogCaptureFixture,
) -> None:
    client = clients()
    published_before(client, [BTC], last=10)
    clock = ManualClock()
    host = Host(clock)
    leader = leader_for(host, clients(), clock)
    host.rest_down = True
    for sid in range(12, 12 + HOLD_TRADES - 1):  # 11 traded while nobody led
        host.live(BTC, sid)
    leader.step()
    assert leader.status().held == HOLD_TRADES - 1
    assert stream_sids(client, BTC) == list(range(1, 11))
    caplog.set_level(logging.WARNING, logger="lifeline.feed.leader")
    host.live(BTC, 11 + HOLD_TRADES)  # the 500th held: the hold is full
    leader.step()
    held = list(range(12, 12 + HOLD_TRADES))
    assert stream_sids(client, BTC) == list(range(1, 11)) + held
    status = leader.status()
    assert (status.held, status.backfill_gaps, status.backfilled) == (0, 1, 0)
    (gap,) = [r.getMessage() for r in caplog.records if "given up" in r.getMessage()]
    assert BTC in gap and "after 10 before 12" in gap and "full" in gap
    host.rest_down = False
    clock.advance(TTL / 3)
    leader.step()  # live again: no backfill left to land trade 11 after 511
    host.live(BTC, 12 + HOLD_TRADES)
    leader.step()
    assert host.rest_calls == [BTC]
    assert stream_sids(client, BTC) == [*range(1, 11), *held, 12 + HOLD_TRADES]


def test_a_hold_that_times_out_gives_the_backfill_up_and_publishes_the_held_in_order(
    clients: Callable[[], redis.Redis], caplog: pytest.LogCaptureFixture,
) -> None:
    client = clients()
    published_before(client, [BTC], last=10)
    clock = ManualClock()
    host = Host(clock)
    leader = leader_for(host, clients(), clock)
    assert leader.backfill_hold == 2 * TTL
    host.rest_down = True
    for sid in range(12, 21):
        host.live(BTC, sid)
    held_at = clock.monotonic()
    due = leader.step()
    assert due <= held_at + leader.backfill_hold  # the loop wakes for the hold's end
    caplog.set_level(logging.WARNING, logger="lifeline.feed.leader")
    clock.advance(TTL / 3)
    leader.step()  # the retry fails too: still held
    assert host.rest_calls == [BTC] * 2
    assert stream_sids(client, BTC) == list(range(1, 11))
    assert leader.status().held == 9
    clock.advance(held_at + leader.backfill_hold - clock.monotonic() - 0.001)
    leader.step()
    assert leader.status().held == 9
    clock.advance(0.001)  # backfill_hold since the first held trade: given up
    leader.step()
    calls = len(host.rest_calls)
    assert stream_sids(client, BTC) == [*range(1, 11), *range(12, 21)]
    status = leader.status()
    assert (status.held, status.backfill_gaps) == (0, 1)
    (gap,) = [r.getMessage() for r in caplog.records if "given up" in r.getMessage()]
    assert BTC in gap and "after 10 before 12" in gap and "timed out" in gap
    host.rest_down = False
    host.live(BTC, 21)
    clock.advance(TTL / 3)
    leader.step()
    assert stream_sids(client, BTC) == [*range(1, 11), *range(12, 22)]
    assert len(host.rest_calls) == calls  # the backfill given up is not retried


def test_other_kinds_are_published_while_the_markets_trades_are_held(
    clients: Callable[[], redis.Redis],
) -> None:
    client = clients()
    published_before(client, [BTC], last=10)
    clock = ManualClock()
    host = Host(clock)
    leader = leader_for(host, clients(), clock)
    host.rest_down = True
    host.live(BTC, 12)
    book = Orderbook(market=BTC, timestamp=dt.datetime(2026, 3, 11, 12, 1, tzinfo=dt.UTC),
                     total_ask_size=1.0, total_bid_size=2.0,
                     levels=(OrderbookLevel(ask_price=101.0, bid_price=100.0, ask_size=1.0,
                                            bid_size=2.0),))
    host.callbacks[("orderbook", BTC)](Offered(book))
    leader.step()
    books = Snapshots(client, KEYS).recent(FeedKind.ORDERBOOK, BTC, 10)
    assert [entry.item for entry in books.entries] == [book]
    assert stream_sids(client, BTC) == list(range(1, 11))  # before: 12 published
    assert leader.status().held == 1


def test_stop_during_a_hold_is_bounded_releases_the_lease_and_publishes_nothing_held(
    clients: Callable[[], redis.Redis],
) -> None:
    client = clients()
    published_before(client, [BTC], last=10)
    clock = ManualClock()
    host = Host(clock)
    host.rest_down = True
    leader = FeedLeader(host, clients(), KEYS, owner="host-a", leader_ttl=TTL, clock=clock,
                        host_symbols=(BTC,), stop_timeout=2.0)
    leader.start()
    try:
        assert until(lambda: ("trade", BTC) in host.callbacks, WAIT)
        for sid in range(12, 21):
            host.live(BTC, sid)
        assert until(lambda: leader.status().held == 9, WAIT)
    finally:
        assert leader.stop()
    status = leader.status()
    assert status.role is LeaderRole.STOPPED and status.held == 0
    assert status.discarded == 9
    assert stream_sids(client, BTC) == list(range(1, 11))
    assert Lease(client, KEYS.leader, "probe", ttl=TTL).holder() is None


def test_a_live_trade_arriving_after_a_later_one_is_published_and_counted(
    clients: Callable[[], redis.Redis],
) -> None:
    # Upbit: sequential_id "does not guarantee ordering", and arrival is not trade order
    # (the recorded session: 78 of 304 trades came after a later one of their market); the
    # leader published only ascending ids, so a follower never got those trades
    client = clients()
    clock = ManualClock()
    host = Host(clock)
    leader = leader_for(host, clients(), clock)
    host.live(BTC, 1)
    leader.step()  # the takeover's backfill done: the market is live
    assert stream_sids(client, BTC) == [1]
    for sid in (2, 4, 3, 5):
        host.live(BTC, sid)
    host.live(BTC, 4)  # a repeat (a reconnect's snapshot): still once
    leader.step()
    sids = stream_sids(client, BTC)
    assert sorted(sids) == [1, 2, 3, 4, 5] and len(sids) == 5  # before: 3 never published
    assert leader.status().out_of_order == 1

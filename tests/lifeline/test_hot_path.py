"""The facade's hot path (issue 9): the board's one-lookup freshness rule is the router's rule,
the fast Answer is the same value, and last known good keeps what a cache hit served."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from actors.messages import OrderbookRequest, Reply, Source, TickerRequest, produced_at
from actors.routing import Channel, DataKind, RoutingRules, choose_channel
from actors.snapshots import SnapshotBoard
from lifeline.answer import Answer, new_answer
from lifeline.last_good import LastKnownGood
from lifeline.levels import Level
from quotation.models import Change, Ticker
from tests.fakes import ManualClock

pytestmark = pytest.mark.timeout(30)

RULES = RoutingRules(max_cache_age=2.0)
NOON = datetime(2026, 11, 30, 12, tzinfo=UTC)


def ticker(market: str, at: datetime = NOON, price: float = 100.0) -> Ticker:
    return Ticker(market, price, price, price, price, price, Change.EVEN, 0.0, 0.0, 0.0, 0.0,
                  1.0, 1.0, 1.0, 1.0, 1.0, price, None, price, None, at, at)


def test_the_boards_fresh_answer_follows_choose_channel_for_every_case() -> None:
    markets = ("A-X", "A-Y", "A-Z")
    received = {"A-X": 100.0, "A-Y": 101.5}  # A-Z never arrives
    stamped = {"A-X": NOON.timestamp(), "A-Y": NOON.timestamp() - 1.5}  # A-Y: exchange lag
    for healthy, wall_after in itertools.product((True, False), (0.0, 0.4, 1.0, 2.5, 4.0)):
        wall = NOON.timestamp() + wall_after
        board = SnapshotBoard(clock=ManualClock(wall))
        board.set_markets(markets)
        board.set_ws_healthy(healthy)
        for market, at in received.items():
            board.publish([ticker(market, datetime.fromtimestamp(stamped[market], UTC))], at)
        for size in (1, 2, 3):
            for asked in itertools.permutations(markets, size):
                for now in (99.0, 100.0, 101.0, 102.0, 102.5, 103.5, 104.0):
                    rule = choose_channel(DataKind.TICKER, asked, received,
                                          ws_healthy=healthy, now=now, rules=RULES,
                                          stamped_at=stamped, wall=wall)
                    reply = board.answer(TickerRequest(asked), now, RULES)
                    assert (reply is not None) == (rule is Channel.WEBSOCKET), (asked, now)
                    if reply is not None:
                        assert [t.market for t in reply.data] == list(asked)
                        assert reply.produced_at == produced_at(reply.data)  # the oldest
                    assert board.answer(OrderbookRequest(asked), now, RULES) is None


def test_an_empty_request_is_never_answered_from_the_board() -> None:
    board = SnapshotBoard()
    board.set_ws_healthy(True)
    assert board.fresh(TickerRequest(()), 0.0, 2.0) is None


def test_the_fast_answer_is_the_same_frozen_value_as_the_dataclass() -> None:
    fast = new_answer([1], Source.REST_FALLBACK, Level.DEGRADED, 1.5, False)
    assert fast == Answer([1], Source.REST_FALLBACK, Level.DEGRADED, 1.5, False)
    assert (fast.data, fast.source, fast.level, fast.age, fast.stale) == (
        [1], Source.REST_FALLBACK, Level.DEGRADED, 1.5, False)
    with pytest.raises(AttributeError):
        fast.age = 0.0  # type: ignore[misc]


def test_last_known_good_keeps_what_a_cache_hit_served_and_the_newer_item_wins() -> None:
    kept = LastKnownGood()
    old, new = ticker("A-X", NOON), ticker("A-X", NOON + timedelta(seconds=5))
    kept.keep("ticker", (old,))
    kept.keep("ticker", (old,))  # the same item again: nothing to store
    kept.keep("ticker", (new,))
    recalled = kept.recall(TickerRequest(("A-X",)))
    assert recalled == Reply((new,), Source.LAST_KNOWN_GOOD, new.timestamp.timestamp())
    assert kept.recall(OrderbookRequest(("A-X",))) is None

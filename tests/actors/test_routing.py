"""Rule family: the smart router's channel choice, demand and coalescing (``actors.routing``),
with plain numbers; and the SnapshotBoard that publishes them to other threads.

Times are monotonic seconds; every number is a binary fraction so sums are exact.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from actors.messages import CandlesRequest, OrderbookRequest, Source, TickerRequest, TradesRequest
from actors.routing import (
    Channel,
    DataKind,
    Demand,
    RoutingRules,
    choose_channel,
    choose_series_channel,
    coalesces,
)
from actors.snapshots import SnapshotBoard
from quotation.errors import InvalidValue
from quotation.models import CandleInterval, Change, Side, Ticker, Trade, TradeGap
from tests.fakes import ManualClock

pytestmark = pytest.mark.timeout(10)

RULES = RoutingRules(max_cache_age=2.0, hot_threshold=3, hot_window=10.0, max_hot_markets=2,
                     cold_after=60.0, coalesce_window=0.125)
T = DataKind.TICKER


def snapshot(markets: tuple[str, ...], at: dict[str, float], healthy: bool, now: float
             ) -> Channel:
    return choose_channel(T, markets, at, ws_healthy=healthy, now=now, rules=RULES)


# -- snapshots ---------------------------------------------------------------------------


def test_every_market_fresh_and_a_healthy_websocket_choose_the_websocket() -> None:
    assert snapshot(("A-X", "A-Y"), {"A-X": 99.0, "A-Y": 100.0}, True, 101.0) is Channel.WEBSOCKET


def test_an_entry_exactly_max_cache_age_old_is_still_fresh_and_a_hair_older_is_not() -> None:
    assert snapshot(("A-X",), {"A-X": 100.0}, True, 102.0) is Channel.WEBSOCKET
    assert snapshot(("A-X",), {"A-X": 100.0}, True, 102.0 + 2**-20) is Channel.REST


def test_one_stale_or_missing_market_sends_the_whole_request_to_rest() -> None:
    assert snapshot(("A-X", "A-Y"), {"A-X": 100.0, "A-Y": 90.0}, True, 100.5) is Channel.REST
    assert snapshot(("A-X", "A-Y"), {"A-X": 100.0}, True, 100.5) is Channel.REST


def test_an_unhealthy_websocket_sends_even_fresh_entries_to_rest() -> None:
    assert snapshot(("A-X",), {"A-X": 100.0}, False, 100.0) is Channel.REST


def test_an_entry_from_the_future_is_not_trusted() -> None:
    assert snapshot(("A-X",), {"A-X": 101.0}, True, 100.0) is Channel.REST


def test_an_empty_request_goes_to_rest() -> None:
    assert snapshot((), {}, True, 100.0) is Channel.REST


def test_snapshot_and_series_rules_refuse_the_other_kind() -> None:
    with pytest.raises(ValueError, match="trades"):
        choose_channel(DataKind.TRADES, ("A-X",), {}, ws_healthy=True, now=0.0, rules=RULES)
    with pytest.raises(ValueError, match="ticker"):
        choose_series_channel(T, 1, 1, 0.0, ws_healthy=True, now=0.0, rules=RULES)


# -- series ------------------------------------------------------------------------------


def series(count: int, cached: int, heard: float | None, *, healthy: bool = True,
           now: float = 100.0, ends_now: bool = True, kind: DataKind = DataKind.TRADES
           ) -> Channel:
    return choose_series_channel(kind, count, cached, heard, ws_healthy=healthy, now=now,
                                 rules=RULES, ends_now=ends_now)


def test_a_series_the_cache_holds_whole_and_fresh_comes_from_the_websocket() -> None:
    assert series(50, 50, 99.0) is Channel.WEBSOCKET
    assert series(1, 500, 98.0, kind=DataKind.CANDLES_1M) is Channel.WEBSOCKET


def test_a_series_longer_than_the_cache_goes_to_rest() -> None:
    assert series(51, 50, 99.0) is Channel.REST


def test_a_series_of_a_stream_not_heard_from_recently_goes_to_rest() -> None:
    assert series(5, 50, 97.5) is Channel.REST
    assert series(5, 50, None) is Channel.REST
    assert series(5, 50, 99.0, healthy=False) is Channel.REST


def test_a_series_ending_in_the_past_always_goes_to_rest() -> None:
    assert series(5, 50, 99.0, ends_now=False, kind=DataKind.CANDLES_1M) is Channel.REST


# -- demand ------------------------------------------------------------------------------


def test_a_market_becomes_hot_at_the_threshold_within_the_window() -> None:
    demand = Demand(RULES)
    demand.record(["A-X"], 0.0)
    demand.record(["A-X"], 5.0)
    assert demand.hot_markets(5.0) == ()
    demand.record(["A-X"], 10.0)
    assert demand.hot_markets(10.0) == ("A-X",)


def test_requests_that_slid_out_of_the_window_do_not_count() -> None:
    demand = Demand(RULES)
    for at in (0.0, 5.0, 10.5):
        demand.record(["A-X"], at)
    assert demand.count("A-X", 10.5) == 2
    assert demand.hot_markets(10.5) == ()


def test_a_subscribed_market_stays_until_cold_after_without_requests() -> None:
    demand = Demand(RULES)
    for at in (0.0, 1.0, 2.0):
        demand.record(["A-X"], at)
    assert demand.hot_markets(2.0) == ("A-X",)
    assert demand.hot_markets(30.0) == ("A-X",)  # below the threshold now, but not cold
    assert demand.hot_markets(61.75) == ("A-X",)
    assert demand.hot_markets(62.0) == ()


def test_no_more_than_max_hot_markets_are_subscribed_and_the_latest_asked_win() -> None:
    demand = Demand(RULES)
    for at in (0.0, 1.0, 2.0):
        demand.record(["A-X"], at)
        demand.record(["A-Y"], at + 0.25)
        demand.record(["A-Z"], at + 0.5)
    assert demand.hot_markets(3.0) == ("A-Z", "A-Y")
    assert demand.hot_markets(3.0) == ("A-Z", "A-Y")  # stable


def test_a_market_nobody_asks_for_is_forgotten() -> None:
    demand = Demand(RULES)
    demand.record(["A-X"], 0.0)
    demand.hot_markets(61.0)
    assert demand.count("A-X", 0.0) == 0


def test_bad_rules_name_the_field() -> None:
    with pytest.raises(InvalidValue) as error:
        RoutingRules(hot_threshold=0)
    assert error.value.field == "hot_threshold"


# -- coalescing --------------------------------------------------------------------------


def test_a_rest_answer_coalesces_identical_requests_only_within_the_window() -> None:
    assert coalesces(100.0, 100.125, RULES)
    assert not coalesces(100.0, 100.25, RULES)
    assert not coalesces(100.0, 99.0, RULES)


# -- the board ---------------------------------------------------------------------------

NOON = datetime(2026, 3, 11, 12, tzinfo=UTC)


def ticker(market: str, price: float = 100.0) -> Ticker:
    return Ticker(market, price, price, price, price, price, Change.EVEN, 0.0, 0.0, 0.0, 0.0,
                  1.0, 1.0, 1.0, 1.0, 1.0, price, None, price, None, NOON, NOON)


def trade(market: str, seq: int) -> Trade:
    return Trade(market, seq, NOON, 100.0, 1.0, Side.BID, 100.0, 0.0, 0.0, Change.EVEN)


def test_the_board_answers_fresh_tickers_in_the_order_asked() -> None:
    board = SnapshotBoard(clock=ManualClock(NOON.timestamp()))  # the tickers' stamp: now
    board.set_markets(["A-X", "A-Y"])
    board.set_ws_healthy(True)
    board.publish([ticker("A-Y", 2.0), ticker("A-X", 1.0)], 100.0)
    reply = board.answer(TickerRequest(("A-X", "A-Y")), 101.0, RULES)
    assert reply is not None
    assert reply.source is Source.SMART_ROUTER_WEBSOCKET
    assert [t.trade_price for t in reply.data] == [1.0, 2.0]  # type: ignore[union-attr]
    assert board.answer(TickerRequest(("A-X",)), 102.5, RULES) is None
    assert board.answer(OrderbookRequest(("A-X",)), 101.0, RULES) is None


def test_the_board_ignores_markets_not_subscribed_and_forgets_dropped_ones() -> None:
    board = SnapshotBoard()
    board.set_ws_healthy(True)
    assert board.publish([ticker("A-X")], 100.0) == 0
    board.set_markets(["A-X"])
    board.publish([ticker("A-X")], 100.0)
    board.set_markets([])
    assert board.snapshot.tickers == {}


def test_an_unhealthy_board_answers_nothing() -> None:
    board = SnapshotBoard()
    board.set_markets(["A-X"])
    board.publish([ticker("A-X")], 100.0)
    assert board.answer(TickerRequest(("A-X",)), 100.0, RULES) is None


def test_the_board_answers_trades_newest_first_and_a_gap_restarts_the_window() -> None:
    board = SnapshotBoard(max_trades=4)
    board.set_markets(["A-X"])
    board.set_ws_healthy(True)
    board.publish([trade("A-X", n) for n in range(1, 7)], 100.0)
    reply = board.answer(TradesRequest("A-X", 3), 100.0, RULES)
    assert reply is not None
    assert [t.sequential_id for t in reply.data] == [6, 5, 4]  # type: ignore[union-attr]
    assert board.answer(TradesRequest("A-X", 5), 100.0, RULES) is None  # only 4 kept
    board.publish([TradeGap("A-X", NOON, NOON, 6, 9, "test"), trade("A-X", 9)], 100.5)
    assert board.answer(TradesRequest("A-X", 2), 100.5, RULES) is None
    assert board.answer(CandlesRequest("A-X", CandleInterval.MINUTE_1, 1), 100.5, RULES) is None


def test_readers_on_other_threads_never_see_a_half_written_snapshot() -> None:
    board = SnapshotBoard()
    markets = [f"A-{n}" for n in range(8)]
    board.set_markets(markets)
    board.set_ws_healthy(True)
    done = threading.Event()
    torn: list[object] = []

    def read() -> None:
        while not done.is_set():
            reply = board.answer(TickerRequest(tuple(markets)), 100.0, RULES)
            if reply is not None and len({t.trade_price for t in reply.data}) != 1:  # type: ignore[union-attr]
                torn.append(reply)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    for price in range(1, 2001):
        board.publish([ticker(m, float(price)) for m in markets], 100.0)
    done.set()
    for reader in readers:
        reader.join(5)
    assert torn == []


def test_a_superseded_writer_can_no_longer_change_the_board() -> None:
    board = SnapshotBoard()
    old = board.claim()
    board.set_markets(("A-X",), writer=old)
    new = board.claim()  # a newer router instance: the board starts empty for it
    assert board.snapshot.markets == frozenset()
    board.set_markets(("A-X",), writer=new)
    board.set_ws_healthy(True, writer=new)
    assert board.publish([ticker("A-X", 1.0)], 1.0, writer=new) == 1
    assert not board.owns(old) and board.owns(new)
    before = board.snapshot
    assert board.publish([ticker("A-X", 2.0)], 2.0, writer=old) == 0
    board.set_markets((), writer=old)
    board.set_ws_healthy(False, writer=old)
    board.clear(writer=old)
    assert board.snapshot is before
    board.clear(writer=new)
    assert board.snapshot.markets == frozenset()


def test_an_item_the_exchange_stamped_long_ago_is_not_fresh_however_recently_received() -> None:
    wall = NOON.timestamp()
    board = SnapshotBoard(clock=ManualClock(wall))
    board.set_markets(["A-X", "A-Y"])
    board.set_ws_healthy(True)
    lagging = replace(ticker("A-X"), timestamp=NOON - timedelta(seconds=10))  # replayed
    board.publish([lagging, ticker("A-Y")], 100.0)
    assert board.answer(TickerRequest(("A-X",)), 100.5, RULES) is None
    assert board.answer(TickerRequest(("A-Y", "A-X")), 100.5, RULES) is None
    assert board.answer(TickerRequest(("A-Y",)), 100.5, RULES) is not None
    stamps = {"A-X": wall - 10.0, "A-Y": wall}
    received = {"A-X": 100.0, "A-Y": 100.0}
    for asked, expected in ((("A-X",), Channel.REST), (("A-Y",), Channel.WEBSOCKET)):
        assert choose_channel(T, asked, received, ws_healthy=True, now=100.5, rules=RULES,
                              stamped_at=stamps, wall=wall) is expected

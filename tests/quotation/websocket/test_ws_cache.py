"""The realtime cache (latest values with receive times, candles upserted by start, bounds),
trade de-duplication, and where the hole after a reconnect starts."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from quotation.models import (
    Candle,
    CandleInterval,
    Orderbook,
    OrderbookLevel,
    Side,
    Trade,
    TradeGap,
)
from quotation.websocket.cache import StreamCache
from quotation.websocket.dedup import TradeDeduper
from quotation.websocket.delivery import BatchDispatcher
from quotation.websocket.ingest import FrameIngest
from quotation.websocket.subscription import DataType
from tests.quotation.examples import T0, WS_TRADE, changed, example_trade

pytestmark = pytest.mark.timeout(5)


def trade(sid: int, seconds: float = 0.0, market: str = "KRW-BTC") -> Trade:
    return example_trade(sid, T0 + timedelta(seconds=seconds), market=market, ask_bid=Side.BID)


def candle(start_minute: int, close: float) -> Candle:
    start = T0 + timedelta(minutes=start_minute)
    return Candle(
        market="KRW-BTC",
        interval=CandleInterval.MINUTE_1,
        start=start,
        opening_price=1.0,
        high_price=close,
        low_price=1.0,
        trade_price=close,
        candle_acc_trade_volume=1.0,
        candle_acc_trade_price=close,
        last_trade_time=start,
    )


def test_values_keep_their_receive_time_and_report_their_age() -> None:
    cache = StreamCache()
    book = Orderbook("KRW-BTC", T0, 1.0, 2.0, (OrderbookLevel(2.0, 1.0, 1.0, 1.0),))
    cache.put(book, received_at=10.0)
    entry = cache.orderbook("KRW-BTC")
    assert entry is not None
    assert entry.value is book
    assert entry.age(12.5) == pytest.approx(2.5)
    assert cache.updated_at(DataType.ORDERBOOK, "KRW-BTC") == 10.0
    assert cache.orderbook("KRW-ETH") is None


def test_candles_are_upserted_by_start_and_the_last_update_wins() -> None:
    cache = StreamCache()
    cache.put(candle(0, 5.0), 1.0)
    cache.put(candle(1, 6.0), 2.0)
    cache.put(candle(0, 7.0), 3.0)
    candles = cache.candles("KRW-BTC", CandleInterval.MINUTE_1)
    assert [(c.value.start, c.value.trade_price) for c in candles] == [
        (T0, 7.0),
        (T0 + timedelta(minutes=1), 6.0),
    ]
    latest = cache.candle("KRW-BTC", CandleInterval.MINUTE_1)
    assert latest is not None and latest.value.trade_price == 6.0


def test_candle_buckets_are_bounded_oldest_start_first() -> None:
    cache = StreamCache(max_candles=3)
    for minute in (3, 1, 4, 2, 5):
        cache.put(candle(minute, float(minute)), 1.0)
    starts = [c.value.start for c in cache.candles("KRW-BTC", CandleInterval.MINUTE_1)]
    assert starts == [T0 + timedelta(minutes=m) for m in (3, 4, 5)]


def test_recent_trades_are_bounded_and_in_arrival_order() -> None:
    cache = StreamCache(max_trades=3)
    for sid in range(1, 6):
        cache.put(trade(sid), float(sid))
    assert [c.value.sequential_id for c in cache.trades("KRW-BTC")] == [3, 4, 5]
    assert [c.value.sequential_id for c in cache.trades("KRW-BTC", 2)] == [4, 5]


def test_stale_lists_streams_older_than_the_limit_without_judging_the_socket() -> None:
    cache = StreamCache()
    cache.put(trade(1), 1.0)
    cache.put(trade(2, market="KRW-ETH"), 9.0)
    assert cache.stale(10.0, max_age=5.0) == [(DataType.TRADE, "KRW-BTC")]


def test_gaps_are_kept_per_market() -> None:
    cache = StreamCache()
    gap = TradeGap("KRW-BTC", T0, T0 + timedelta(seconds=5), 1, 9, "REST failed")
    cache.put(gap, 1.0)
    assert cache.gaps("KRW-BTC") == [gap]
    assert cache.gaps("KRW-ETH") == []


def test_deduper_rejects_repeats_and_forgets_oldest_beyond_capacity() -> None:
    dedup = TradeDeduper(capacity=3)
    assert dedup.add(trade(1, 1.0))
    assert not dedup.add(trade(1, 1.0))
    for sid in (2, 3, 4):
        assert dedup.add(trade(sid, float(sid)))
    assert not dedup.seen("KRW-BTC", 1)  # forgotten: memory stays bounded
    assert dedup.seen("KRW-BTC", 4)
    assert len(dedup) == 3


def _ws_trade(sid: int, millis: int) -> bytes:
    return orjson.dumps(changed(WS_TRADE, sequential_id=sid, trade_timestamp=millis))


def _hole_after(*received: tuple[int, int], dedup_capacity: int = 20_000) -> int:
    """Where the hole after a reconnect starts: the trade id its gap is marked after.

    ``received`` are (id, trade time in ms) frames before the drop; no REST source,
    so the hole is marked at the first new trade.
    """
    cache = StreamCache()
    ingest = FrameIngest(cache=cache, dispatcher=BatchDispatcher(), dedup_capacity=dedup_capacity)
    ingest.track_trades(["KRW-BTC"])
    for sid, millis in received:
        assert ingest.ingest(_ws_trade(sid, millis), 1.0)
    ingest.expect_gaps()
    assert ingest.ingest(_ws_trade(1000, 10_000), 2.0)
    [gap] = cache.gaps("KRW-BTC")
    return gap.after_sequential_id


def test_the_hole_starts_at_the_newest_trade_even_after_older_ids_are_forgotten() -> None:
    assert _hole_after((1, 1000), (2, 2000), (3, 3000), (4, 4000), dedup_capacity=3) == 4


def test_the_hole_starts_at_the_newest_trade_by_time_not_by_id() -> None:
    assert _hole_after((50, 2000), (99, 1000)) == 50

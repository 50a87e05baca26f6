"""The simulator's market engine: catalogue, tick sizes, buckets, trade log and order book rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from quotation.errors import InvalidValue
from quotation.models import CandleInterval, Side
from tests.fakes import ManualClock
from upbit_sim import MarketEngine
from upbit_sim.candles import CandleSeries, bucket_bounds
from upbit_sim.catalogue import (
    build_catalogue,
    round_to_tick,
    supported_levels,
    tick_size,
)

pytestmark = pytest.mark.timeout(30)

NOON = datetime(2026, 3, 11, 12, 0, tzinfo=UTC).timestamp()




def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# -- catalogue and ticks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        (103_460_000, "1000"),
        (1_500_000, "1000"),
        (667_000, "500"),
        (300_000, "100"),
        (60_000, "50"),
        (25_000, "10"),
        (6_000, "5"),
        (2_045, "1"),
        (236, "1"),
        (92.8, "0.1"),
        (5.5, "0.01"),
        (0.878, "0.001"),
        (0.02, "0.0001"),
        (0.0012, "0.00001"),
    ],
)
def test_krw_tick_follows_upbits_price_bands(price: float, tick: str) -> None:
    assert tick_size("KRW", price) == Decimal(tick)


@pytest.mark.parametrize(
    ("price", "tick"), [(78_000.0, "0.01"), (10.0, "0.01"), (2.5, "0.001"), (0.5, "0.0001")]
)
def test_usdt_tick_follows_upbits_price_bands(price: float, tick: str) -> None:
    assert tick_size("USDT", price) == Decimal(tick)


def test_btc_markets_have_a_single_one_satoshi_tick() -> None:
    assert tick_size("BTC", 0.03) == tick_size("BTC", 0.0000001) == Decimal("0.00000001")


def test_prices_round_to_the_tick_of_their_band() -> None:
    assert round_to_tick("KRW", 103_460_499.0) == 103_460_000.0
    assert round_to_tick("KRW", 92.84) == 92.8
    assert round_to_tick("BTC", 0.031144289) == 0.03114429


def test_aggregation_levels_exist_on_krw_markets_only() -> None:
    assert supported_levels("KRW", 103_000_000) == tuple(
        Decimal(v) for v in ("0", "10000", "100000", "1000000", "10000000", "100000000")
    )
    assert supported_levels("BTC", 0.03) == (Decimal(0),)
    assert supported_levels("USDT", 78_000) == (Decimal(0),)


def test_catalogue_is_the_same_list_for_every_seed_with_seeded_prices() -> None:
    one, two = build_catalogue(1), build_catalogue(2)
    assert [m.market for m in one] == [m.market for m in two]
    assert [m.start_price for m in one] != [m.start_price for m in two]
    assert [m.start_price for m in one] == [m.start_price for m in build_catalogue(1)]


def test_catalogue_has_liquid_and_illiquid_markets() -> None:
    by_code = {m.market: m for m in build_catalogue(1)}
    assert by_code["KRW-BTC"].activity > by_code["BTC-ETH"].activity > by_code["BTC-STORJ"].activity
    assert all(m.korean_name and m.english_name for m in by_code.values())


# -- buckets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "moment", "start", "end"),
    [
        (
            CandleInterval.SECOND_1,
            "2026-03-11T14:40:58.227",
            "2026-03-11T14:40:58",
            "2026-03-11T14:40:59",
        ),
        (
            CandleInterval.MINUTE_1,
            "2026-03-11T14:40:59",
            "2026-03-11T14:40:00",
            "2026-03-11T14:41:00",
        ),
        (
            CandleInterval.MINUTE_15,
            "2026-03-11T14:40:59",
            "2026-03-11T14:30:00",
            "2026-03-11T14:45:00",
        ),
        (
            CandleInterval.MINUTE_240,
            "2026-03-11T14:40:59",
            "2026-03-11T12:00:00",
            "2026-03-11T16:00:00",
        ),
        (CandleInterval.DAY, "2026-03-11T14:40:59", "2026-03-11T00:00:00", "2026-03-12T00:00:00"),
        (CandleInterval.WEEK, "2026-03-11T14:40:59", "2026-03-09T00:00:00", "2026-03-16T00:00:00"),
        (CandleInterval.WEEK, "2026-03-09T00:00:00", "2026-03-09T00:00:00", "2026-03-16T00:00:00"),
        (CandleInterval.MONTH, "2026-12-31T23:59:59", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
        (CandleInterval.YEAR, "2026-03-11T14:40:59", "2026-01-01T00:00:00", "2027-01-01T00:00:00"),
    ],
)
def test_buckets_are_utc_aligned_like_upbits(
    interval: CandleInterval, moment: str, start: str, end: str
) -> None:
    assert bucket_bounds(interval, ms(moment)) == (ms(start), ms(end))


def test_candle_series_folds_trades_and_answers_before_a_time() -> None:
    series = CandleSeries("KRW-BTC", CandleInterval.MINUTE_1)
    for moment, price in [
        ("2026-03-11T14:40:01", 10.0),
        ("2026-03-11T14:40:30", 12.0),
        ("2026-03-11T14:40:59", 11.0),
        ("2026-03-11T14:43:00", 9.0),
    ]:
        series.add_trade(ms(moment), price, 1.0, price)
    newest, oldest = series.before(None, 5)
    assert (oldest.opening_price, oldest.high_price, oldest.low_price, oldest.trade_price) == (
        10.0,
        12.0,
        10.0,
        11.0,
    )
    assert oldest.timestamp == ms("2026-03-11T14:40:59")
    assert oldest.candle_acc_trade_volume == 3.0
    assert newest.prev_closing_price == 11.0
    assert series.before(ms("2026-03-11T14:43:00"), 5) == [oldest]
    assert series.before(ms("2026-03-11T14:40:00"), 5) == []


# -- engine ---------------------------------------------------------------------------------


def test_history_exists_at_start_and_ends_before_now() -> None:
    clock = ManualClock()
    engine = MarketEngine(1, clock=clock, history_seconds=600)
    trades = engine.trades("KRW-BTC")
    assert len(trades) > 50
    assert trades[-1].timestamp <= clock.time() * 1000
    assert trades[0].timestamp >= (clock.time() - 600) * 1000
    assert len(engine.candles("KRW-BTC", CandleInterval.DAY, 200)) == 200


def test_step_is_deterministic_for_a_seed() -> None:
    def run(seed: int) -> list[tuple[str, float, float, Side, int]]:
        engine = MarketEngine(seed, clock=ManualClock())
        return [
            (t.market, t.trade_price, t.trade_volume, t.ask_bid, t.sequential_id)
            for t in engine.step(200)
        ]

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_liquid_markets_trade_more_often_than_illiquid_ones() -> None:
    engine = MarketEngine(1, clock=ManualClock())
    counts: dict[str, int] = {}
    for trade in engine.step(3000):
        counts[trade.market] = counts.get(trade.market, 0) + 1
    assert counts.get("KRW-BTC", 0) > 10 * counts.get("BTC-STORJ", 0)


def test_every_trade_price_sits_on_its_tick() -> None:
    engine = MarketEngine(1, clock=ManualClock())
    for trade in engine.step(2000):
        quote = trade.market.split("-")[0]
        tick = tick_size(quote, trade.trade_price)
        assert Decimal(repr(trade.trade_price)) % tick == 0, trade


def test_trades_page_respects_cursor_time_bounds_and_count() -> None:
    engine = MarketEngine(1, clock=ManualClock())
    log = engine.trades("KRW-ETH")
    middle = log[len(log) // 2]
    page = engine.trades_page("KRW-ETH", 10, cursor=middle.sequential_id)
    assert page == log[len(log) // 2 - 10 : len(log) // 2][::-1]
    before = engine.trades_page("KRW-ETH", 500, before_ms=middle.timestamp)
    assert all(t.timestamp < middle.timestamp for t in before)
    since = engine.trades_page("KRW-ETH", 500, since_ms=middle.timestamp)
    assert all(t.timestamp >= middle.timestamp for t in since)


def test_orderbook_levels_narrow_the_depth_to_count() -> None:
    engine = MarketEngine(1, clock=ManualClock())
    assert len(engine.orderbook("KRW-BTC").units) == 30
    assert len(engine.orderbook("KRW-BTC", count=1).units) == 1
    aggregated = engine.orderbook("KRW-BTC", level=1_000_000)
    assert all(unit.ask_price % 1_000_000 == 0 for unit in aggregated.units)


def test_a_failing_listener_does_not_stop_the_others() -> None:
    engine = MarketEngine(1, clock=ManualClock())
    seen: list[int] = []

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    engine.add_listener(broken)
    engine.add_listener(lambda event: seen.append(event.trade.sequential_id))
    trades = engine.step(3)
    assert seen == [trade.sequential_id for trade in trades]


def test_invalid_engine_parameters_are_refused_naming_the_field() -> None:
    with pytest.raises(InvalidValue) as caught:
        MarketEngine(1, trades_per_second=0)
    assert (caught.value.field, caught.value.value) == ("trades_per_second", 0)

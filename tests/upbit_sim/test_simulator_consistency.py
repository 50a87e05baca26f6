"""The simulator's views agree with each other and with its trade log, and a seed fixes them all."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from quotation.models import CandleInterval, Side
from tests.fakes import ManualClock
from upbit_sim import STREAMED_INTERVALS, MarketEngine, MarketEvent, Simulator
from upbit_sim.candles import bucket_bounds

pytestmark = pytest.mark.timeout(30)

NOON = datetime(2026, 3, 11, 12, 0, tzinfo=UTC).timestamp()
HALF_PAST_MIDNIGHT = datetime(2026, 3, 11, 0, 30, tzinfo=UTC).timestamp()




def get(sim: Simulator, path: str, **params: Any) -> Any:
    response = requests.get(f"{sim.base_url}{path}", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def frozen(sim_factory: Callable[..., Simulator]) -> Callable[..., Simulator]:
    """Start a simulator on a manual clock (no auto-trading, no rate limit)."""

    def start(seed: int = 1, wall: float = NOON) -> Simulator:
        return sim_factory(seed=seed, clock=ManualClock(wall), auto_trade=False, rate_limit=None)

    return start


def test_ticker_price_is_the_latest_trade_of_every_market(frozen: Callable[..., Simulator]) -> None:
    sim = frozen()
    sim.engine.step(300)
    for ticker in get(sim, "/ticker/all", quote_currencies="KRW,BTC,USDT"):
        latest = get(sim, "/trades/ticks", market=ticker["market"])
        if latest:
            assert ticker["trade_price"] == latest[0]["trade_price"]
            assert ticker["trade_timestamp"] == latest[0]["timestamp"]
            assert ticker["trade_volume"] == latest[0]["trade_volume"]


@pytest.mark.parametrize(
    ("path", "interval"),
    [
        ("/candles/minutes/1", CandleInterval.MINUTE_1),
        ("/candles/minutes/15", CandleInterval.MINUTE_15),
        ("/candles/seconds", CandleInterval.SECOND_1),
    ],
)
def test_candles_aggregate_exactly_the_trades_in_their_bucket(
    frozen: Callable[..., Simulator], path: str, interval: CandleInterval
) -> None:
    sim = frozen()
    trades = sim.engine.trades("KRW-BTC")
    buckets: dict[int, list[Any]] = {}
    for trade in trades:
        buckets.setdefault(bucket_bounds(interval, trade.timestamp)[0], []).append(trade)
    candles = get(sim, path, market="KRW-BTC", count=50)
    assert len(candles) == min(50, len(buckets))
    for candle in candles:
        start = int(
            datetime.fromisoformat(candle["candle_date_time_utc"] + "+00:00").timestamp() * 1000
        )
        inside = buckets[start]
        assert candle["opening_price"] == inside[0].trade_price
        assert candle["trade_price"] == inside[-1].trade_price
        assert candle["high_price"] == max(t.trade_price for t in inside)
        assert candle["low_price"] == min(t.trade_price for t in inside)
        assert candle["timestamp"] == inside[-1].timestamp
        assert candle["candle_acc_trade_volume"] == pytest.approx(
            sum(t.trade_volume for t in inside)
        )


def test_candles_leave_gaps_where_nothing_traded(frozen: Callable[..., Simulator]) -> None:
    sim = frozen()
    quiet = min(sim.engine.markets(), key=lambda info: info.activity).market
    traded = {
        bucket_bounds(CandleInterval.MINUTE_1, t.timestamp)[0] for t in sim.engine.trades(quiet)
    }
    candles = get(sim, "/candles/minutes/1", market=quiet, count=200)
    assert len(candles) == len(traded)


def test_todays_day_candle_matches_the_ticker(frozen: Callable[..., Simulator]) -> None:
    sim = frozen()
    sim.engine.step(100)
    ticker = get(sim, "/ticker", markets="KRW-ETH")[0]
    day = get(sim, "/candles/days", market="KRW-ETH")[0]
    assert day["opening_price"] == ticker["opening_price"]
    assert day["high_price"] == ticker["high_price"]
    assert day["low_price"] == ticker["low_price"]
    assert day["trade_price"] == ticker["trade_price"]
    assert day["prev_closing_price"] == ticker["prev_closing_price"]
    assert day["candle_acc_trade_volume"] == pytest.approx(ticker["acc_trade_volume"])


@pytest.mark.parametrize("market", ["KRW-BTC", "KRW-XRP", "KRW-SHIB", "BTC-ETH", "USDT-BTC"])
def test_orderbook_sits_around_the_last_price(
    frozen: Callable[..., Simulator], market: str
) -> None:
    sim = frozen()
    sim.engine.step_market(market, 5)
    last = sim.engine.latest_trade(market)
    assert last is not None
    units = get(sim, "/orderbook", markets=market)[0]["orderbook_units"]
    best = units[0]
    assert best["bid_price"] < best["ask_price"]
    touch = best["ask_price"] if last.ask_bid is Side.BID else best["bid_price"]
    assert touch == last.trade_price
    asks = [unit["ask_price"] for unit in units]
    bids = [unit["bid_price"] for unit in units]
    assert asks == sorted(set(asks))
    assert bids == sorted(set(bids), reverse=True)
    assert last.best_ask_price == best["ask_price"] and last.best_bid_price == best["bid_price"]


def test_trades_of_a_previous_day_are_served_with_days_ago(
    frozen: Callable[..., Simulator],
) -> None:
    sim = frozen(wall=HALF_PAST_MIDNIGHT)
    yesterday = get(sim, "/trades/ticks", market="KRW-BTC", count=500, days_ago=1)
    today = get(sim, "/trades/ticks", market="KRW-BTC", count=500)
    assert yesterday and today
    assert {trade["trade_date_utc"] for trade in yesterday} == {"2026-03-10"}
    assert today[0]["trade_date_utc"] == "2026-03-11"
    late = get(sim, "/trades/ticks", market="KRW-BTC", count=500, days_ago=1, to="23:50:00")
    assert late and all(trade["trade_time_utc"] < "23:50:00" for trade in late)


def test_new_day_resets_the_daily_figures_and_moves_prev_close(
    frozen: Callable[..., Simulator],
) -> None:
    sim = frozen(wall=HALF_PAST_MIDNIGHT)
    yesterday_close = get(sim, "/trades/ticks", market="KRW-BTC", days_ago=1)[0]["trade_price"]
    ticker = get(sim, "/ticker", markets="KRW-BTC")[0]
    assert ticker["prev_closing_price"] == yesterday_close
    midnight = int(HALF_PAST_MIDNIGHT - 1800) * 1000
    today = [t for t in sim.engine.trades("KRW-BTC") if t.timestamp >= midnight]
    assert ticker["acc_trade_volume"] == pytest.approx(sum(t.trade_volume for t in today))
    assert ticker["opening_price"] == today[0].trade_price


def test_listener_sees_each_trade_on_the_loop_thread_after_it_is_logged(
    frozen: Callable[..., Simulator],
) -> None:
    sim = frozen()
    seen: list[int] = []
    logged: list[bool] = []
    threads: set[str] = set()
    all_seen = threading.Event()

    def on_event(event: MarketEvent) -> None:
        seen.append(event.trade.sequential_id)
        logged.append(event.trade in sim.engine.trades(event.market))
        threads.add(threading.current_thread().name)
        if len(seen) == 20:
            all_seen.set()

    remove = sim.engine.add_listener(on_event)
    trades = sim.engine.step(20)
    assert all_seen.wait(10)
    remove()
    sim.engine.step(5)
    sim.engine.step(1)
    assert seen == [trade.sequential_id for trade in trades]
    assert all(logged)
    assert threads == {"simulator:1"}


def test_event_carries_the_markets_state_after_the_trade(frozen: Callable[..., Simulator]) -> None:
    sim = frozen()
    events: list[MarketEvent] = []
    done = threading.Event()

    def on_event(event: MarketEvent) -> None:
        events.append(event)
        done.set()

    sim.engine.add_listener(on_event)
    (trade,) = sim.engine.step_market("KRW-BTC", 1)
    assert done.wait(10)
    event = events[0]
    assert event.trade == trade
    assert event.ticker.trade_price == trade.trade_price
    assert event.ticker.trade_timestamp == trade.timestamp
    assert event.orderbook.units[0].ask_price == trade.best_ask_price
    assert [candle.interval for candle in event.candles] == list(STREAMED_INTERVALS)
    one_minute = event.candle(CandleInterval.MINUTE_1)
    assert one_minute is not None and one_minute.trade_price == trade.trade_price
    assert one_minute.timestamp == trade.timestamp


def test_same_seed_and_clock_give_byte_identical_answers(frozen: Callable[..., Simulator]) -> None:
    first, second = frozen(seed=7), frozen(seed=7)
    for sim in (first, second):
        sim.engine.step(200)
    asks: list[tuple[str, dict[str, str | int]]] = [
        ("/ticker/all", {"quote_currencies": "KRW,BTC,USDT"}),
        ("/candles/minutes/1", {"market": "KRW-BTC", "count": 200}),
        ("/candles/days", {"market": "KRW-XRP", "count": 200}),
        ("/trades/ticks", {"market": "KRW-ETH", "count": 500}),
        ("/orderbook", {"markets": "KRW-BTC,BTC-ETH,USDT-BTC"}),
        ("/market/all", {"is_details": "true"}),
    ]
    for path, params in asks:
        one = requests.get(f"{first.base_url}{path}", params=params, timeout=10).content
        two = requests.get(f"{second.base_url}{path}", params=params, timeout=10).content
        assert one == two, path


def test_different_seeds_give_different_markets(frozen: Callable[..., Simulator]) -> None:
    one = get(frozen(seed=1), "/ticker/all", quote_currencies="KRW")
    two = get(frozen(seed=2), "/ticker/all", quote_currencies="KRW")
    assert [t["market"] for t in one] == [t["market"] for t in two]
    assert [t["trade_price"] for t in one] != [t["trade_price"] for t in two]


def test_trade_sequence_does_not_depend_on_which_markets_were_read_first() -> None:
    clock = ManualClock(NOON)
    plain = MarketEngine(3, clock=clock)
    curious = MarketEngine(3, clock=clock)
    for info in reversed(curious.markets()):
        curious.ticker(info.market)

    def shape(engine: MarketEngine) -> list[tuple[str, float, float, Side]]:
        return [(t.market, t.trade_price, t.trade_volume, t.ask_bid) for t in engine.step(300)]

    assert shape(plain) == shape(curious)


def test_sequential_ids_are_unique_across_markets_and_time(
    frozen: Callable[..., Simulator],
) -> None:
    sim = frozen()
    sim.engine.step(2000)
    ids = [t.sequential_id for info in sim.engine.markets() for t in sim.engine.trades(info.market)]
    assert len(ids) == len(set(ids))


def test_events_arrive_in_trade_order_while_two_threads_trade(
    sim_factory: Callable[..., Simulator],
) -> None:
    sim = sim_factory(seed=1, auto_trade=True, trades_per_second=200.0, rate_limit=None)
    seen: dict[str, list[int]] = {}
    delivered: set[int] = set()
    arrived = threading.Condition()  # the auto-trade thread keeps delivering while we check

    def on_event(event: MarketEvent) -> None:
        with arrived:
            seen.setdefault(event.market, []).append(event.trade.sequential_id)
            delivered.add(event.trade.sequential_id)
            arrived.notify_all()

    sim.engine.add_listener(on_event)
    trades = [trade for _ in range(5) for trade in sim.engine.step(300)]
    last = trades[-1].sequential_id
    with arrived:  # returns as soon as the last stepped trade is delivered, whenever that was
        assert arrived.wait_for(lambda: last in delivered, timeout=10)
        snapshot = {market: list(sids) for market, sids in seen.items()}
    for market, sids in snapshot.items():
        logged = [t.sequential_id for t in sim.engine.trades(market)]
        assert sids == sorted(sids), market
        assert set(sids) <= set(logged)

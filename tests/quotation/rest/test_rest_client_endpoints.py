"""Every endpoint and parameter, through the real client, against the real simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, time, timedelta, timezone
from decimal import Decimal
from itertools import pairwise

import pytest

from quotation.errors import InvalidRequest
from quotation.models import CandleInterval, Side
from quotation.rest.client import RestClient, RestConfig, _newest_first
from quotation.rest.ratelimit import RateLimiter
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

KST = timezone(timedelta(hours=9))


@pytest.fixture
def client(sim: Simulator) -> Iterator[RestClient]:
    with RestClient(RestConfig(base_url=sim.base_url), limiter=RateLimiter()) as rest:
        yield rest


# -- markets and tickers --------------------------------------------------------------


def test_the_market_list_has_every_quote_currency_and_details_on_request(
    client: RestClient,
) -> None:
    plain = client.get_markets()
    detailed = client.get_markets(is_details=True)
    assert {market.quote_currency for market in plain} >= {"KRW", "BTC", "USDT"}
    assert "KRW-BTC" in {market.market for market in plain}
    assert all(market.warning is None for market in plain)
    assert all(market.warning is not None for market in detailed)
    assert [market.market for market in plain] == [market.market for market in detailed]


def test_tickers_come_for_exactly_the_markets_asked(client: RestClient) -> None:
    tickers = client.get_tickers(["KRW-BTC", "KRW-ETH", "BTC-ETH"])
    assert sorted(ticker.market for ticker in tickers) == ["BTC-ETH", "KRW-BTC", "KRW-ETH"]
    assert all(ticker.trade_price > 0 for ticker in tickers)


def test_tickers_of_every_krw_market_in_split_requests_match_ticker_all(
    sim: Simulator,
) -> None:
    config = RestConfig(base_url=sim.base_url, max_markets_per_request=40)
    with RestClient(config, limiter=RateLimiter()) as rest:
        by_quote = rest.get_tickers_by_quote("KRW")
        krw = [ticker.market for ticker in by_quote]
        assert len(krw) > 40
        split = rest.get_tickers(krw)
    assert sorted(ticker.market for ticker in split) == sorted(krw)


def test_tickers_by_quote_cover_only_the_quotes_asked(client: RestClient) -> None:
    tickers = client.get_tickers_by_quote(["BTC", "USDT"])
    assert {ticker.market.split("-")[0] for ticker in tickers} == {"BTC", "USDT"}


# -- candles ------------------------------------------------------------------------


@pytest.mark.parametrize("interval", list(CandleInterval), ids=lambda i: i.value)
def test_candles_of_every_interval_come_oldest_first_for_the_market(
    client: RestClient, interval: CandleInterval
) -> None:
    candles = client.get_candles("KRW-BTC", interval, count=3)
    assert 1 <= len(candles) <= 3
    assert all(candle.market == "KRW-BTC" and candle.interval is interval for candle in candles)
    starts = [candle.start for candle in candles]
    assert starts == sorted(set(starts))


def test_candles_accept_the_interval_short_name(client: RestClient) -> None:
    assert client.get_candles("KRW-BTC", "1d")[0].interval is CandleInterval.DAY


def test_candles_past_200_are_paged_without_gap_duplicate_or_disorder(
    client: RestClient,
) -> None:
    paged = client.get_candles("KRW-BTC", CandleInterval.DAY, count=350)
    assert len(paged) == 350
    starts = [candle.start for candle in paged]
    assert starts == sorted(set(starts))
    # The same range asked page by page by hand gives the very same candles.
    newest = client.get_candles("KRW-BTC", CandleInterval.DAY, count=200)
    older = client.get_candles("KRW-BTC", CandleInterval.DAY, count=150, to=newest[0].start)
    assert paged == older + newest
    # Day candles of a market that traded every day leave no gap.
    assert all(b - a == timedelta(days=1) for a, b in pairwise(starts))


def test_asking_for_more_candles_than_exist_gives_all_there_are_once(
    client: RestClient,
) -> None:
    everything = client.get_candles("KRW-BTC", CandleInterval.DAY, count=5000)
    assert 200 < len(everything) < 5000
    starts = [candle.start for candle in everything]
    assert starts == sorted(set(starts))
    assert everything[-1] == client.get_candles("KRW-BTC", CandleInterval.DAY)[0]


def test_paged_minute_candles_have_no_duplicates(client: RestClient) -> None:
    candles = client.get_candles("KRW-BTC", CandleInterval.MINUTE_1, count=260)
    starts = [candle.start for candle in candles]
    assert starts == sorted(set(starts))
    assert all(start.second == 0 for start in starts)


def test_a_page_not_newest_first_is_put_so_and_keeps_the_first_of_a_repeated_start(
    client: RestClient,
) -> None:
    page = client.get_candles("KRW-BTC", CandleInterval.DAY, count=4)[::-1]  # newest first
    assert _newest_first(page) is page  # Upbit's order: taken as it is
    repeated = replace(page[1], trade_price=page[1].trade_price + 1)
    shuffled = [page[2], page[0], page[1], repeated, page[3]]
    assert _newest_first(shuffled) == page
    assert _newest_first([repeated, *page]) == [page[0], repeated, *page[2:]]


def test_candles_before_to_are_strictly_before_it(client: RestClient) -> None:
    latest = client.get_candles("KRW-BTC", CandleInterval.DAY, count=10)
    cut = latest[5].start
    older = client.get_candles("KRW-BTC", CandleInterval.DAY, count=5, to=cut)
    assert [candle.start for candle in older] == [candle.start for candle in latest[:5]]


def test_candle_to_as_a_kst_string_means_the_same_instant(client: RestClient) -> None:
    latest = client.get_candles("KRW-BTC", CandleInterval.DAY, count=4)
    cut = latest[2].start
    kst = cut.astimezone(KST).strftime("%Y-%m-%dT%H:%M:%S+09:00")
    assert client.get_candles("KRW-BTC", "1d", count=2, to=kst) == latest[:2]


def test_day_candles_converted_to_krw_carry_the_converted_price(client: RestClient) -> None:
    candles = client.get_candles(
        "BTC-ETH", CandleInterval.DAY, count=2, converting_price_unit="KRW"
    )
    assert candles
    assert all(candle.converted_trade_price is not None for candle in candles)


# -- trades -------------------------------------------------------------------------


def test_trades_come_newest_first_and_the_cursor_pages_back(client: RestClient) -> None:
    recent = client.get_trades("KRW-BTC", count=50)
    assert len(recent) == 50
    times = [trade.timestamp for trade in recent]
    assert times == sorted(times, reverse=True)
    older = client.get_trades("KRW-BTC", count=50, cursor=recent[-1].sequential_id)
    assert older
    assert {trade.sequential_id for trade in older}.isdisjoint(t.sequential_id for t in recent)
    assert max(trade.timestamp for trade in older) <= recent[-1].timestamp


def test_trades_count_500_is_served(client: RestClient) -> None:
    assert len(client.get_trades("KRW-BTC", count=500)) == 500


def test_trades_to_returns_trades_before_that_time_of_day(client: RestClient) -> None:
    latest = client.get_trades("KRW-BTC", count=200)
    cut = latest[100].timestamp.astimezone(UTC)
    if cut.date() != latest[0].timestamp.astimezone(UTC).date():
        pytest.skip("the sample straddles midnight UTC")
    trades = client.get_trades("KRW-BTC", count=20, to=cut.strftime("%H:%M:%S"))
    assert trades
    limit = cut.replace(microsecond=0)
    assert all(trade.timestamp < limit + timedelta(seconds=1) for trade in trades)
    assert all(trade.ask_bid in (Side.ASK, Side.BID) for trade in trades)


def test_trades_days_ago_are_from_that_utc_day_and_before_to(
    sim_factory: Callable[..., Simulator],
) -> None:
    # Two days of sparse history, so that yesterday has trades whatever the time now.
    sim = sim_factory(seed=5, history_seconds=2 * 86400, trades_per_second=0.05, auto_trade=False)
    with RestClient(RestConfig(base_url=sim.base_url), limiter=RateLimiter()) as rest:
        today = rest.get_trades("KRW-BTC")[0].timestamp.astimezone(UTC).date()
        yesterday = rest.get_trades("KRW-BTC", count=10, days_ago=1)
        noon = rest.get_trades("KRW-BTC", count=10, days_ago=1, to=time(12, 0, 0))
    assert len(yesterday) == 10
    assert len(noon) == 10
    for trade in yesterday + noon:
        assert trade.timestamp.astimezone(UTC).date() == today - timedelta(days=1)
    assert all(trade.timestamp.astimezone(UTC).time() < time(12, 0, 0) for trade in noon)


# -- orderbook ----------------------------------------------------------------------


def test_orderbooks_have_the_asked_depth_for_each_market(client: RestClient) -> None:
    books = client.get_orderbooks(["KRW-BTC", "KRW-ETH"], count=5)
    assert sorted(book.market for book in books) == ["KRW-BTC", "KRW-ETH"]
    for book in books:
        assert len(book.levels) == 5
        assert book.best_bid is not None and book.best_ask is not None
        assert book.best_bid < book.best_ask


def test_orderbook_default_depth_is_thirty(client: RestClient) -> None:
    assert len(client.get_orderbooks("KRW-BTC")[0].levels) == 30


def test_an_orderbook_level_from_the_instruments_is_applied(client: RestClient) -> None:
    instrument = client.get_orderbook_instruments(["KRW-BTC"])[0]
    assert instrument.market == "KRW-BTC"
    assert instrument.quote_currency == "KRW"
    assert isinstance(instrument.tick_size, Decimal)
    level = next(level for level in instrument.supported_levels if level > 0)
    book = client.get_orderbooks("KRW-BTC", level=level)[0]
    assert Decimal(str(book.level)) == level


def test_instruments_come_for_every_market_asked(client: RestClient) -> None:
    instruments = client.get_orderbook_instruments(["KRW-BTC", "BTC-ETH"])
    assert sorted(i.market for i in instruments) == ["BTC-ETH", "KRW-BTC"]


# -- unknown markets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda c: c.get_tickers(["KRW-NOPE"]), "markets"),
        (lambda c: c.get_candles("KRW-NOPE", "1m"), "market"),
        (lambda c: c.get_trades("KRW-NOPE"), "market"),
        (lambda c: c.get_orderbooks(["KRW-NOPE"]), "markets"),
    ],
    ids=["ticker", "candles", "trades", "orderbook"],
)
def test_an_unknown_market_is_an_invalid_request_with_status_404(
    client: RestClient, call: object, parameter: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        call(client)  # type: ignore[operator]
    assert caught.value.status == 404
    assert caught.value.parameter == parameter
    assert "KRW-NOPE" in str(caught.value.value)

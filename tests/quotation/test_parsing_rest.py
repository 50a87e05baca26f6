"""REST payloads → the canonical model: real recordings, field drift, malformed payloads, quirks."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from quotation.errors import FormatError
from quotation.models import (
    Candle,
    CandleInterval,
    Change,
    Market,
    Orderbook,
    OrderbookInstrument,
    Side,
    Ticker,
    Trade,
)
from quotation.parsing import (
    parse_candles,
    parse_markets,
    parse_orderbook_instruments,
    parse_orderbooks,
    parse_tickers,
    parse_trades,
)
from tests.quotation.examples import REMOVE, changed
from tests.quotation.recordings import Cassette, load_cassettes

pytestmark = pytest.mark.timeout(10)

# Which parser reads which recorded endpoint (by cassette name).
_CANDLE_CASSETTES = {
    "get_candles_seconds": CandleInterval.SECOND_1,
    "get_candles_minutes": CandleInterval.MINUTE_1,
    "get_candles_days": CandleInterval.DAY,
    "get_candles_weeks": CandleInterval.WEEK,
    "get_candles_months": CandleInterval.MONTH,
    "get_candles_years": CandleInterval.YEAR,
}


def candle_parser(interval: CandleInterval) -> Callable[[object], list[Any]]:
    def parse(payload: object) -> list[Any]:
        return parse_candles(payload, interval)

    return parse


_PARSERS: dict[str, Callable[[object], list[Any]]] = {
    "get_tickers": parse_tickers,
    "get_tickers_by_quote": parse_tickers,
    "get_trades": parse_trades,
    "get_orderbooks": parse_orderbooks,
    "get_orderbook_instruments": parse_orderbook_instruments,
    **{name: candle_parser(interval) for name, interval in _CANDLE_CASSETTES.items()},
}
_MODELS: dict[str, type] = {
    "get_tickers": Ticker,
    "get_tickers_by_quote": Ticker,
    "get_trades": Trade,
    "get_orderbooks": Orderbook,
    "get_orderbook_instruments": OrderbookInstrument,
    **dict.fromkeys(_CANDLE_CASSETTES, Candle),
}


@pytest.fixture(scope="module")
def cassettes(recordings_dir: Path) -> dict[str, Cassette]:
    return load_cassettes(recordings_dir)


def body(cassettes: dict[str, Cassette], name: str) -> Any:
    return copy.deepcopy(cassettes[name].body_json)


# --- every recording --------------------------------------------------------------------------


@pytest.mark.recordings
def test_every_recorded_endpoint_has_a_parser(cassettes: dict[str, Cassette]) -> None:
    assert set(cassettes) == set(_PARSERS)


@pytest.mark.recordings
@pytest.mark.parametrize("name", sorted(_PARSERS))
def test_every_recorded_rest_payload_parses_into_the_model(
    cassettes: dict[str, Cassette], name: str
) -> None:
    payload = body(cassettes, name)
    parsed = _PARSERS[name](payload)
    assert len(parsed) == len(payload) > 0
    for item, model in zip(payload, parsed, strict=True):
        assert (type(model), model.market) == (_MODELS[name], item["market"])


@pytest.mark.recordings
def test_recorded_krw_btc_ticker_keeps_prices_dates_and_utc_times(
    cassettes: dict[str, Cassette],
) -> None:
    (ticker,) = parse_tickers(body(cassettes, "get_tickers"))
    assert ticker.market == "KRW-BTC"
    assert ticker.trade_price == 103493000.0
    assert ticker.prev_closing_price == 102417000.0
    assert ticker.change is Change.RISE
    assert ticker.change_price == ticker.signed_change_price == 1076000.0
    assert ticker.acc_trade_volume_24h == 1587.73606087
    assert ticker.highest_52_week_date == date(2025, 10, 9)
    assert ticker.lowest_52_week_date == date(2026, 2, 6)
    assert ticker.trade_time == datetime(2026, 3, 11, 14, 40, 58, 930000, tzinfo=UTC)
    assert ticker.timestamp == datetime(2026, 3, 11, 14, 40, 58, 973000, tzinfo=UTC)
    assert ticker.stream_type is None
    assert ticker.ask_bid is None


@pytest.mark.recordings
def test_recorded_tickers_by_quote_currency_are_all_krw_markets(
    cassettes: dict[str, Cassette],
) -> None:
    tickers = parse_tickers(body(cassettes, "get_tickers_by_quote"))
    assert len(tickers) > 100
    assert {t.market.split("-")[0] for t in tickers} == {"KRW"}
    assert len({t.market for t in tickers}) == len(tickers)
    btc = next(t for t in tickers if t.market == "KRW-BTC")
    assert btc.trade_price == 103458000.0


@pytest.mark.recordings
def test_recorded_even_tickers_send_int_zero_changes_that_parse_as_float_zero(
    cassettes: dict[str, Cassette],
) -> None:
    payload = body(cassettes, "get_tickers_by_quote")
    even = [item for item in payload if item["change"] == "EVEN"]
    assert even, "the recording has no EVEN ticker"
    assert any(type(item["change_price"]) is int for item in even)  # Upbit writes 0, not 0.0
    for ticker in parse_tickers(even):
        assert ticker.change is Change.EVEN
        assert (ticker.change_price, ticker.signed_change_price, ticker.change_rate) == (0, 0, 0)
        assert type(ticker.change_price) is float
        assert type(ticker.signed_change_rate) is float


@pytest.mark.recordings
@pytest.mark.parametrize("name", sorted(_CANDLE_CASSETTES))
def test_recorded_candles_start_at_an_aware_utc_bucket_and_end_at_their_last_trade(
    cassettes: dict[str, Cassette], name: str
) -> None:
    payload = body(cassettes, name)
    (candle,) = parse_candles(payload, _CANDLE_CASSETTES[name])
    (raw,) = payload
    assert candle.interval is _CANDLE_CASSETTES[name]
    assert candle.start.tzinfo is UTC
    assert candle.start == datetime.fromisoformat(raw["candle_date_time_utc"] + "+00:00")
    kst = datetime.fromisoformat(raw["candle_date_time_kst"] + "+09:00")
    assert candle.start == kst
    assert candle.last_trade_time == datetime.fromtimestamp(raw["timestamp"] / 1000, UTC)
    assert candle.last_trade_time >= candle.start


@pytest.mark.recordings
def test_recorded_minute_candle_has_the_bucket_start_and_the_last_tick(
    cassettes: dict[str, Cassette],
) -> None:
    (candle,) = parse_candles(body(cassettes, "get_candles_minutes"), CandleInterval.MINUTE_1)
    assert candle.start == datetime(2026, 3, 11, 14, 40, tzinfo=UTC)
    assert candle.last_trade_time == datetime(2026, 3, 11, 14, 40, 59, 132000, tzinfo=UTC)
    assert (candle.opening_price, candle.high_price, candle.low_price, candle.trade_price) == (
        103600000.0,
        103600000.0,
        103425000.0,
        103460000.0,
    )
    assert candle.candle_acc_trade_volume == 1.5933512


@pytest.mark.recordings
def test_recorded_day_candle_carries_its_previous_close_and_change(
    cassettes: dict[str, Cassette],
) -> None:
    (candle,) = parse_candles(body(cassettes, "get_candles_days"), CandleInterval.DAY)
    assert candle.start == datetime(2026, 3, 11, tzinfo=UTC)
    assert candle.prev_closing_price == 102417000.0
    assert candle.change_price == 1043000.0
    assert candle.change_rate == 0.0101838562
    assert candle.converted_trade_price is None
    assert candle.first_day_of_period is None


@pytest.mark.recordings
@pytest.mark.parametrize(
    ("name", "first_day"),
    [
        ("get_candles_weeks", date(2026, 3, 9)),
        ("get_candles_months", date(2026, 3, 1)),
        ("get_candles_years", date(2026, 1, 1)),
    ],
)
def test_recorded_period_candles_carry_the_first_day_of_their_period(
    cassettes: dict[str, Cassette], name: str, first_day: date
) -> None:
    (candle,) = parse_candles(body(cassettes, name), _CANDLE_CASSETTES[name])
    assert candle.first_day_of_period == first_day
    assert candle.prev_closing_price is None


@pytest.mark.recordings
def test_recorded_trade_has_its_time_id_side_and_both_change_prices(
    cassettes: dict[str, Cassette],
) -> None:
    (trade,) = parse_trades(body(cassettes, "get_trades"))
    assert trade.market == "KRW-BTC"
    assert trade.sequential_id == 17732400590950000
    assert trade.timestamp == datetime(2026, 3, 11, 14, 40, 59, 95000, tzinfo=UTC)
    assert trade.trade_price == 103460000.0
    assert trade.trade_volume == 0.004
    assert trade.ask_bid is Side.ASK
    assert trade.change is Change.RISE
    assert trade.change_price == trade.signed_change_price == 1043000.0
    assert trade.best_ask_price is None


@pytest.mark.recordings
def test_recorded_orderbook_has_thirty_float_levels_best_first(
    cassettes: dict[str, Cassette],
) -> None:
    (book,) = parse_orderbooks(body(cassettes, "get_orderbooks"))
    assert book.market == "KRW-BTC"
    assert len(book.levels) == 30
    assert book.best_ask == 103493000.0
    assert book.best_bid == 103460000.0
    assert book.levels[0].ask_size == 0.04910155
    assert book.levels[0].bid_size == 0.004
    assert book.level == 0.0
    assert book.total_ask_size == 4.17884094
    assert book.timestamp == datetime(2026, 3, 11, 14, 40, 59, 27000, tzinfo=UTC)
    # Upbit sends the prices as JSON ints (103493000); the model holds floats.
    assert all(type(level.ask_price) is float for level in book.levels)
    asks = [level.ask_price for level in book.levels]
    bids = [level.bid_price for level in book.levels]
    assert asks == sorted(asks)
    assert bids == sorted(bids, reverse=True)


@pytest.mark.recordings
def test_recorded_instruments_have_exact_decimal_tick_size_and_levels(
    cassettes: dict[str, Cassette],
) -> None:
    (instrument,) = parse_orderbook_instruments(body(cassettes, "get_orderbook_instruments"))
    assert instrument.market == "KRW-BTC"
    assert instrument.quote_currency == "KRW"
    assert instrument.tick_size == Decimal("1000")
    assert isinstance(instrument.tick_size, Decimal)
    assert instrument.supported_levels == tuple(
        Decimal(v) for v in ("0", "10000", "100000", "1000000", "10000000", "100000000")
    )


# --- markets (no recording: examples from upbit-api.md §1.1) ------------------------------------

_CAUTIONS_OFF = {
    "PRICE_FLUCTUATIONS": False,
    "TRADING_VOLUME_SOARING": False,
    "DEPOSIT_AMOUNT_SOARING": False,
    "GLOBAL_PRICE_DIFFERENCES": False,
    "CONCENTRATION_OF_SMALL_ACCOUNTS": False,
}


def market_item(**extra: object) -> dict[str, object]:
    return {"market": "KRW-BTC", "korean_name": "비트코인", "english_name": "Bitcoin", **extra}


def test_markets_without_details_leave_warning_and_cautions_unknown() -> None:
    (market,) = parse_markets([market_item()])
    assert market == Market("KRW-BTC", "비트코인", "Bitcoin", warning=None, cautions=None)
    assert (market.quote_currency, market.base_currency) == ("KRW", "BTC")


def test_markets_with_details_report_the_warning_and_only_the_cautions_that_are_set() -> None:
    cautions = {**_CAUTIONS_OFF, "PRICE_FLUCTUATIONS": True, "TRADING_VOLUME_SOARING": True}
    payload = [
        market_item(market_event={"warning": False, "caution": _CAUTIONS_OFF}),
        market_item(market="KRW-XRP", market_event={"warning": True, "caution": cautions}),
    ]
    calm, hot = parse_markets(payload)
    assert (calm.warning, calm.cautions) == (False, frozenset())
    assert hot.warning is True
    assert hot.cautions == frozenset({"PRICE_FLUCTUATIONS", "TRADING_VOLUME_SOARING"})


def test_old_market_warning_caution_maps_to_warning_true() -> None:
    payload = [
        market_item(market_warning="CAUTION"),
        market_item(market="KRW-ETH", market_warning="NONE"),
    ]
    caution, none = parse_markets(payload)
    assert (caution.warning, caution.cautions) == (True, None)
    assert (none.warning, none.cautions) == (False, None)


def test_a_new_caution_kind_is_reported_by_its_name() -> None:
    event = {"warning": False, "caution": {**_CAUTIONS_OFF, "SOMETHING_NEW": True}}
    (market,) = parse_markets([market_item(market_event=event)])
    assert market.cautions == frozenset({"SOMETHING_NEW"})


# --- field drift ------------------------------------------------------------------------------

TICKER: dict[str, Any] = {
    "market": "KRW-BTC",
    "trade_date": "20260311",
    "trade_time": "144058",
    "trade_date_kst": "20260311",
    "trade_time_kst": "234058",
    "trade_timestamp": 1773240058930,
    "opening_price": 102417000.0,
    "high_price": 103988000.0,
    "low_price": 101150000.0,
    "trade_price": 103493000.0,
    "prev_closing_price": 102417000.0,
    "change": "RISE",
    "change_price": 1076000.0,
    "change_rate": 0.0105060683,
    "signed_change_price": 1076000.0,
    "signed_change_rate": 0.0105060683,
    "trade_volume": 0.00094678,
    "acc_trade_price": 104890185475.22821,
    "acc_trade_price_24h": 162997300132.123,
    "acc_trade_volume": 1024.30599241,
    "acc_trade_volume_24h": 1587.73606087,
    "highest_52_week_price": 179869000.0,
    "highest_52_week_date": "2025-10-09",
    "lowest_52_week_price": 89000000.0,
    "lowest_52_week_date": "2026-02-06",
    "timestamp": 1773240058973,
}
TRADE: dict[str, Any] = {
    "market": "KRW-BTC",
    "trade_date_utc": "2026-03-11",
    "trade_time_utc": "14:40:59",
    "timestamp": 1773240059095,
    "trade_price": 103460000.0,
    "trade_volume": 0.004,
    "prev_closing_price": 102417000.0,
    "change_price": 1043000.0,
    "ask_bid": "ASK",
    "sequential_id": 17732400590950000,
}
CANDLE: dict[str, Any] = {
    "market": "KRW-BTC",
    "candle_date_time_utc": "2026-03-11T14:40:00",
    "candle_date_time_kst": "2026-03-11T23:40:00",
    "opening_price": 103600000.0,
    "high_price": 103600000.0,
    "low_price": 103425000.0,
    "trade_price": 103460000.0,
    "timestamp": 1773240059132,
    "candle_acc_trade_price": 164899503.14206,
    "candle_acc_trade_volume": 1.5933512,
    "unit": 1,
}
ORDERBOOK: dict[str, Any] = {
    "market": "KRW-BTC",
    "timestamp": 1773240059027,
    "total_ask_size": 4.17884094,
    "total_bid_size": 2.29686376,
    "orderbook_units": [
        {"ask_price": 103493000, "bid_price": 103460000, "ask_size": 0.04910155, "bid_size": 0.004},
        {"ask_price": 103507000, "bid_price": 103438000, "ask_size": 0.06146, "bid_size": 0.0048},
    ],
    "level": 0,
}
INSTRUMENT: dict[str, Any] = {
    "market": "KRW-BTC",
    "quote_currency": "KRW",
    "tick_size": "1000",
    "supported_levels": ["0", "10000", "100000"],
}


def test_unknown_extra_fields_are_ignored_in_every_payload() -> None:
    extra = {"brand_new_field": {"nested": [1, 2]}, "another": None}
    assert parse_tickers([changed(TICKER, **extra)]) == parse_tickers([TICKER])
    assert parse_trades([changed(TRADE, **extra)]) == parse_trades([TRADE])
    minute = CandleInterval.MINUTE_1
    assert parse_candles([changed(CANDLE, **extra)], minute) == parse_candles([CANDLE], minute)
    assert parse_orderbooks([changed(ORDERBOOK, **extra)]) == parse_orderbooks([ORDERBOOK])
    units = [{**unit, "ask_count": 3} for unit in ORDERBOOK["orderbook_units"]]
    assert parse_orderbooks([changed(ORDERBOOK, orderbook_units=units)]) == parse_orderbooks(
        [ORDERBOOK]
    )
    assert parse_orderbook_instruments([changed(INSTRUMENT, **extra)]) == (
        parse_orderbook_instruments([INSTRUMENT])
    )
    assert parse_markets([market_item(**extra)]) == parse_markets([market_item()])


def test_a_trade_with_the_2024_best_bid_ask_fields_parses_them_and_one_without_leaves_none() -> (
    None
):
    newer = changed(
        TRADE,
        best_ask_price=103493000,
        best_ask_size=0.04910155,
        best_bid_price=103460000,
        best_bid_size=0.004,
    )
    with_best, without = parse_trades([newer, TRADE])
    assert (with_best.best_ask_price, with_best.best_bid_price) == (103493000.0, 103460000.0)
    assert (with_best.best_ask_size, with_best.best_bid_size) == (0.04910155, 0.004)
    assert (without.best_ask_price, without.best_ask_size) == (None, None)
    assert (without.best_bid_price, without.best_bid_size) == (None, None)


def test_missing_optional_fields_become_none() -> None:
    (ticker,) = parse_tickers(
        [changed(TICKER, highest_52_week_date=REMOVE, lowest_52_week_date=None)]
    )
    assert (ticker.highest_52_week_date, ticker.lowest_52_week_date) == (None, None)
    (candle,) = parse_candles([changed(CANDLE, unit=REMOVE)], CandleInterval.MINUTE_1)
    assert candle.start == datetime(2026, 3, 11, 14, 40, tzinfo=UTC)
    (book,) = parse_orderbooks([changed(ORDERBOOK, level=REMOVE)])
    assert book.level == 0.0
    (instrument,) = parse_orderbook_instruments([changed(INSTRUMENT, supported_levels=REMOVE)])
    assert instrument.supported_levels == ()


def test_removed_informational_fields_do_not_matter() -> None:
    slim_ticker = changed(
        TICKER, trade_date=REMOVE, trade_time=REMOVE, trade_date_kst=REMOVE, trade_time_kst=REMOVE
    )
    assert parse_tickers([slim_ticker]) == parse_tickers([TICKER])
    slim_trade = changed(TRADE, trade_date_utc=REMOVE, trade_time_utc=REMOVE)
    assert parse_trades([slim_trade]) == parse_trades([TRADE])
    slim_candle = changed(CANDLE, candle_date_time_kst=REMOVE)
    minute = CandleInterval.MINUTE_1
    assert parse_candles([slim_candle], minute) == parse_candles([CANDLE], minute)


def test_ints_where_upbit_usually_sends_floats_become_floats() -> None:
    (ticker,) = parse_tickers([changed(TICKER, trade_price=103493000, change_rate=0)])
    assert ticker.trade_price == 103493000.0
    assert type(ticker.trade_price) is float
    assert type(ticker.change_rate) is float
    (trade,) = parse_trades([changed(TRADE, trade_price=103460000, change_price=0)])
    assert type(trade.trade_price) is float
    assert trade.change is Change.EVEN


def test_floats_where_upbit_sends_integer_milliseconds_are_accepted() -> None:
    (trade,) = parse_trades([changed(TRADE, timestamp=1773240059095.0)])
    assert trade.timestamp == datetime(2026, 3, 11, 14, 40, 59, 95000, tzinfo=UTC)


def test_numeric_tick_size_is_read_as_the_same_decimal() -> None:
    (instrument,) = parse_orderbook_instruments(
        [changed(INSTRUMENT, tick_size=0.01, supported_levels=[0, "0.1"])]
    )
    assert instrument.tick_size == Decimal("0.01")
    assert instrument.supported_levels == (Decimal(0), Decimal("0.1"))


def test_an_empty_array_parses_to_an_empty_list() -> None:
    assert parse_tickers([]) == []
    assert parse_orderbooks([]) == []
    assert parse_candles([], CandleInterval.SECOND_1) == []


# --- malformed payloads -----------------------------------------------------------------------

_MALFORMED: list[tuple[str, Callable[[object], list[Any]], object, str, str | None]] = [
    # (case, parser, payload, FormatError.payload, FormatError.field)
    ("ticker object not array", parse_tickers, TICKER, "ticker", None),
    ("ticker item not object", parse_tickers, [TICKER, "KRW-BTC"], "ticker", None),
    ("ticker missing price", parse_tickers, [changed(TICKER, trade_price=REMOVE)], "ticker",
     "trade_price"),
    ("ticker price null", parse_tickers, [changed(TICKER, trade_price=None)], "ticker",
     "trade_price"),
    ("ticker price string", parse_tickers, [changed(TICKER, trade_price="103493000")], "ticker",
     "trade_price"),
    ("ticker price bool", parse_tickers, [changed(TICKER, trade_price=True)], "ticker",
     "trade_price"),
    ("ticker bad change", parse_tickers, [changed(TICKER, change="UP")], "ticker", "change"),
    ("ticker bad date", parse_tickers, [changed(TICKER, highest_52_week_date="2025-10-32")],
     "ticker", "highest_52_week_date"),
    ("ticker market number", parse_tickers, [changed(TICKER, market=7)], "ticker", "market"),
    ("ticker timestamp string", parse_tickers, [changed(TICKER, timestamp="1773240058973")],
     "ticker", "timestamp"),
    ("trade missing id", parse_trades, [changed(TRADE, sequential_id=REMOVE)], "trade",
     "sequential_id"),
    ("trade float id", parse_trades, [changed(TRADE, sequential_id=1.7732400590950000e16)],
     "trade", "sequential_id"),
    ("trade bad side", parse_trades, [changed(TRADE, ask_bid="SELL")], "trade", "ask_bid"),
    ("trade volume list", parse_trades, [changed(TRADE, trade_volume=[0.004])], "trade",
     "trade_volume"),
    ("candle missing start", lambda p: parse_candles(p, CandleInterval.MINUTE_1),
     [changed(CANDLE, candle_date_time_utc=REMOVE)], "candle", "candle_date_time_utc"),
    ("candle bad start", lambda p: parse_candles(p, CandleInterval.MINUTE_1),
     [changed(CANDLE, candle_date_time_utc="11/03/2026 14:40")], "candle",
     "candle_date_time_utc"),
    ("candle of another unit", lambda p: parse_candles(p, CandleInterval.MINUTE_5),
     [CANDLE], "candle", "unit"),
    ("candle missing last tick", lambda p: parse_candles(p, CandleInterval.MINUTE_1),
     [changed(CANDLE, timestamp=REMOVE)], "candle", "timestamp"),
    ("orderbook units object", parse_orderbooks,
     [changed(ORDERBOOK, orderbook_units={"ask_price": 1})], "orderbook", "orderbook_units"),
    ("orderbook unit not object", parse_orderbooks,
     [changed(ORDERBOOK, orderbook_units=[ORDERBOOK["orderbook_units"][0], [1, 2, 3, 4]])],
     "orderbook", "orderbook_units[1]"),
    ("orderbook unit missing size", parse_orderbooks,
     [changed(ORDERBOOK, orderbook_units=[{"ask_price": 1, "bid_price": 1, "bid_size": 1}])],
     "orderbook", "orderbook_units[0].ask_size"),
    ("orderbook missing total", parse_orderbooks, [changed(ORDERBOOK, total_bid_size=REMOVE)],
     "orderbook", "total_bid_size"),
    ("instrument bad tick", parse_orderbook_instruments, [changed(INSTRUMENT, tick_size="abc")],
     "orderbook_instrument", "tick_size"),
    ("instrument tick bool", parse_orderbook_instruments, [changed(INSTRUMENT, tick_size=True)],
     "orderbook_instrument", "tick_size"),
    ("instrument bad level", parse_orderbook_instruments,
     [changed(INSTRUMENT, supported_levels=["0", "x"])], "orderbook_instrument",
     "supported_levels[1]"),
    ("markets not array", parse_markets, {"error": {"name": 500}}, "market", None),
    ("market missing name", parse_markets, [{"market": "KRW-BTC", "korean_name": "비트코인"}],
     "market", "english_name"),
    ("market warning not bool", parse_markets,
     [market_item(market_event={"warning": "no", "caution": {}})], "market",
     "market_event.warning"),
    ("market caution not bool", parse_markets,
     [market_item(market_event={"warning": False, "caution": {"PRICE_FLUCTUATIONS": 1}})],
     "market", "market_event.caution.PRICE_FLUCTUATIONS"),
    ("market old warning unknown", parse_markets, [market_item(market_warning="MAYBE")],
     "market", "market_warning"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("parser", "payload", "kind", "field"),
    [case[1:] for case in _MALFORMED],
    ids=[case[0] for case in _MALFORMED],
)
def test_malformed_payload_raises_format_error_naming_payload_and_field(
    parser: Callable[[object], list[Any]], payload: object, kind: str, field: str | None
) -> None:
    with pytest.raises(FormatError) as caught:
        parser(payload)
    assert caught.value.payload == kind
    assert caught.value.field == field
    assert kind in str(caught.value)
    if field is not None:
        assert repr(field) in str(caught.value)


def test_format_error_message_names_the_index_and_market_of_the_bad_item() -> None:
    payload = [TICKER, changed(TICKER, market="KRW-ETH", acc_trade_price_24h="lots")]
    with pytest.raises(FormatError) as caught:
        parse_tickers(payload)
    message = str(caught.value)
    assert "ticker[1]" in message
    assert "KRW-ETH" in message
    assert "'acc_trade_price_24h'" in message
    assert "string" in message


# --- Upbit quirks (upbit-api.md §4.3) -----------------------------------------------------------


def test_quirk_1_candle_times_without_zone_are_utc_and_with_a_zone_are_converted() -> None:
    naive, zoned = parse_candles(
        [CANDLE, changed(CANDLE, candle_date_time_utc="2026-03-11T23:40:00+09:00")],
        CandleInterval.MINUTE_1,
    )
    assert naive.start == datetime(2026, 3, 11, 14, 40, tzinfo=UTC)
    assert naive.start.utcoffset() is not None
    assert zoned.start == naive.start
    assert zoned.start.tzinfo is UTC


def test_quirk_2_candle_timestamp_is_the_last_trade_not_the_bucket_start() -> None:
    (candle,) = parse_candles([CANDLE], CandleInterval.MINUTE_1)
    assert candle.start == datetime(2026, 3, 11, 14, 40, 0, tzinfo=UTC)
    assert candle.last_trade_time == datetime(2026, 3, 11, 14, 40, 59, 132000, tzinfo=UTC)


def test_quirk_4_and_6_candles_and_trades_keep_upbits_newest_first_order_and_gaps() -> None:
    newest = changed(CANDLE, candle_date_time_utc="2026-03-11T14:40:00")
    older = changed(CANDLE, candle_date_time_utc="2026-03-11T14:37:00")  # 14:38, 14:39 empty
    candles = parse_candles([newest, older], CandleInterval.MINUTE_1)
    assert [c.start.minute for c in candles] == [40, 37]
    trades = parse_trades(
        [changed(TRADE, sequential_id=3, timestamp=3000), changed(TRADE, sequential_id=1)]
    )
    assert [t.sequential_id for t in trades] == [3, 1]


def test_quirk_7_day_candle_starts_at_utc_midnight_which_is_nine_in_seoul() -> None:
    day = changed(
        CANDLE,
        candle_date_time_utc="2026-03-11T00:00:00",
        candle_date_time_kst="2026-03-11T09:00:00",
        unit=REMOVE,
    )
    (candle,) = parse_candles([day], CandleInterval.DAY)
    assert candle.start == datetime(2026, 3, 11, tzinfo=UTC)


def test_quirk_8_rest_trade_change_price_is_signed_and_the_model_keeps_both() -> None:
    falling, flat = parse_trades(
        [
            changed(TRADE, trade_price=101417000.0, change_price=-1000000.0),
            changed(TRADE, trade_price=102417000.0, change_price=0.0),
        ]
    )
    assert falling.change is Change.FALL
    assert falling.change_price == 1000000.0
    assert falling.signed_change_price == -1000000.0
    assert flat.change is Change.EVEN
    assert flat.change_price == flat.signed_change_price == 0.0


def test_quirk_8_a_rest_trade_that_also_sends_change_keeps_its_direction() -> None:
    (trade,) = parse_trades([changed(TRADE, change_price=1000000.0, change="FALL")])
    assert trade.change is Change.FALL
    assert trade.signed_change_price == -1000000.0


def test_quirk_8_ticker_change_price_is_absolute_and_signed_change_price_is_signed() -> None:
    (ticker,) = parse_tickers(
        [
            changed(
                TICKER,
                change="FALL",
                change_price=15.0,
                signed_change_price=-15.0,
                change_rate=0.007,
                signed_change_rate=-0.007,
            )
        ]
    )
    assert (ticker.change, ticker.change_price, ticker.signed_change_price) == (
        Change.FALL,
        15.0,
        -15.0,
    )
    assert (ticker.change_rate, ticker.signed_change_rate) == (0.007, -0.007)


def test_quirk_11_trades_with_unordered_sequential_ids_are_neither_sorted_nor_dropped() -> None:
    ids = [17732400590950002, 17732400590950009, 17732400590950001]
    trades = parse_trades([changed(TRADE, sequential_id=sid) for sid in ids])
    assert [t.sequential_id for t in trades] == ids


def test_quirk_14_orderbook_level_is_read_and_an_unsupported_level_answer_is_empty() -> None:
    (book,) = parse_orderbooks([changed(ORDERBOOK, level=10000)])
    assert book.level == 10000.0
    assert parse_orderbooks([]) == []

"""Request parameters are checked before any network call; errors name the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from quotation.errors import InvalidRequest
from quotation.models import CandleInterval
from quotation.rest.validation import (
    MAX_CANDLE_COUNT,
    validate_candle_count,
    validate_candle_to,
    validate_converting_price_unit,
    validate_cursor,
    validate_days_ago,
    validate_interval,
    validate_is_details,
    validate_level,
    validate_market,
    validate_markets,
    validate_orderbook_count,
    validate_quote_currencies,
    validate_trades_count,
    validate_trades_to,
)

KST = timezone(timedelta(hours=9))


def assert_names(
    error: pytest.ExceptionInfo[InvalidRequest], parameter: str, value: object
) -> None:
    assert error.value.parameter == parameter
    assert error.value.value == value
    assert error.value.status is None


# -- markets ------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["KRW-BTC", "BTC-ETH", "USDT-XRP", "KRW-1INCH"])
def test_upper_case_market_codes_pass_unchanged(code: str) -> None:
    assert validate_market(code) == code


@pytest.mark.parametrize("code", ["krw-btc", "KRW-btc", "KRWBTC", "KRW_BTC", "KRW-", "-BTC", ""])
def test_a_malformed_or_lower_case_market_is_refused_naming_market(code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_market(code)
    assert_names(caught, "market", code)


def test_a_lower_case_market_error_says_codes_are_upper_case() -> None:
    with pytest.raises(InvalidRequest, match="upper case"):
        validate_market("krw-btc")


def test_a_market_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_market(42)
    assert_names(caught, "market", 42)


def test_markets_keep_their_order_and_drop_duplicates() -> None:
    assert validate_markets(["KRW-ETH", "KRW-BTC", "KRW-ETH"]) == ("KRW-ETH", "KRW-BTC")


def test_a_single_market_string_is_one_market() -> None:
    assert validate_markets("KRW-BTC") == ("KRW-BTC",)


def test_an_empty_market_list_is_refused_naming_markets() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_markets([])
    assert_names(caught, "markets", [])


def test_one_bad_code_in_a_list_is_refused_naming_markets_and_the_code() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_markets(["KRW-BTC", "krw-eth"])
    assert_names(caught, "markets", "krw-eth")


@pytest.mark.parametrize("markets", ["KRW-BTC,KRW-ETH", None, 5, {"KRW-BTC": 1}])
def test_markets_that_are_not_a_list_of_codes_are_refused(markets: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_markets(markets)
    assert caught.value.parameter == "markets"


def test_quote_currencies_must_be_upper_case_codes() -> None:
    assert validate_quote_currencies(["KRW", "BTC", "KRW"]) == ("KRW", "BTC")
    assert validate_quote_currencies("USDT") == ("USDT",)
    for bad in (["krw"], [], [""], ["KRW-BTC"], None):
        with pytest.raises(InvalidRequest) as caught:
            validate_quote_currencies(bad)
        assert caught.value.parameter == "quote_currencies"


def test_is_details_must_be_a_bool() -> None:
    assert validate_is_details(True) is True
    with pytest.raises(InvalidRequest) as caught:
        validate_is_details("true")
    assert_names(caught, "is_details", "true")


# -- interval -----------------------------------------------------------------------


@pytest.mark.parametrize("interval", list(CandleInterval))
def test_every_interval_and_its_short_name_is_accepted(interval: CandleInterval) -> None:
    assert validate_interval(interval) is interval
    assert validate_interval(interval.value) is interval


@pytest.mark.parametrize("interval", ["2m", "1h", "day", "1D", "", None, 1])
def test_an_unknown_interval_is_refused_naming_interval(interval: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_interval(interval)
    assert_names(caught, "interval", interval)


# -- counts -------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 200, 201, MAX_CANDLE_COUNT])
def test_candle_counts_beyond_200_are_allowed_up_to_the_cap(count: int) -> None:
    assert validate_candle_count(count) == count


@pytest.mark.parametrize("count", [0, -1, MAX_CANDLE_COUNT + 1, 1.0, "5", True, None])
def test_a_candle_count_out_of_range_or_not_an_int_is_refused_naming_count(count: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_candle_count(count)
    assert_names(caught, "count", count)


def test_trades_count_is_1_to_500() -> None:
    assert validate_trades_count(1) == 1
    assert validate_trades_count(500) == 500
    for bad in (0, 501, "10"):
        with pytest.raises(InvalidRequest) as caught:
            validate_trades_count(bad)
        assert_names(caught, "count", bad)


def test_orderbook_count_is_none_or_1_to_30() -> None:
    assert validate_orderbook_count(None) is None
    assert validate_orderbook_count(30) == 30
    for bad in (0, 31, 2.5):
        with pytest.raises(InvalidRequest) as caught:
            validate_orderbook_count(bad)
        assert_names(caught, "count", bad)


# -- candle `to` --------------------------------------------------------------------


def test_an_aware_datetime_is_sent_as_utc_with_z() -> None:
    moment = datetime(2025, 6, 24, 13, 56, 53, 999_000, tzinfo=KST)
    assert validate_candle_to(moment) == "2025-06-24T04:56:53Z"


def test_a_naive_datetime_is_refused_naming_to() -> None:
    naive = datetime(2025, 6, 24, 4, 56, 53)  # naive on purpose
    with pytest.raises(InvalidRequest) as caught:
        validate_candle_to(naive)
    assert_names(caught, "to", naive)


@pytest.mark.parametrize(
    "text",
    [
        "2025-06-24T04:56:53Z",
        "2025-06-24T04:56:53",
        "2025-06-24 04:56:53",
        "2025-06-24T13:56:53+09:00",
        "2025-06-23T23:56:53-05:00",
    ],
)
def test_every_upbit_to_form_is_accepted_and_normalised_to_utc(text: str) -> None:
    assert validate_candle_to(text) == "2025-06-24T04:56:53Z"


@pytest.mark.parametrize(
    "text",
    [
        "2025-06-24",
        "2025-13-24T04:56:53Z",
        "2025-06-24T25:00:00",
        "2025-06-24T04:56:53.123Z",
        "2025-06-24T04:56:53+0900",
        "2025-06-24T04:56:53+24:00",
        "24/06/2025 04:56:53",
        "",
        12345,
    ],
)
def test_a_to_in_no_upbit_form_is_refused_naming_to(text: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_candle_to(text)
    assert_names(caught, "to", text)


def test_no_to_means_latest() -> None:
    assert validate_candle_to(None) is None


# -- trades parameters --------------------------------------------------------------


@pytest.mark.parametrize("text", ["235959", "23:59:59"])
def test_trades_to_accepts_both_upbit_forms_and_sends_hhmmss(text: str) -> None:
    assert validate_trades_to(text) == "235959"


def test_trades_to_accepts_a_time_of_day_in_utc() -> None:
    assert validate_trades_to(time(1, 2, 3)) == "010203"
    assert validate_trades_to(time(1, 2, 3, tzinfo=UTC)) == "010203"


@pytest.mark.parametrize(
    "bad",
    ["240000", "12:60:00", "12:34", "12:3456", "1234567", "12-34-56", "", time(1, tzinfo=KST), 5],
)
def test_a_bad_trades_to_is_refused_naming_to(bad: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_trades_to(bad)
    assert_names(caught, "to", bad)


def test_cursor_is_a_non_negative_integer() -> None:
    assert validate_cursor(None) is None
    assert validate_cursor(17732400590950000) == 17732400590950000
    for bad in (-1, "1773", 1.5, True):
        with pytest.raises(InvalidRequest) as caught:
            validate_cursor(bad)
        assert_names(caught, "cursor", bad)


def test_days_ago_is_1_to_7() -> None:
    assert validate_days_ago(None) is None
    assert [validate_days_ago(n) for n in (1, 7)] == [1, 7]
    for bad in (0, 8, "1", 1.0):
        with pytest.raises(InvalidRequest) as caught:
            validate_days_ago(bad)
        assert_names(caught, "days_ago", bad)


# -- candles and orderbook options ----------------------------------------------------


def test_converting_price_unit_is_krw_for_day_candles_only() -> None:
    assert validate_converting_price_unit(None, CandleInterval.MINUTE_1) is None
    assert validate_converting_price_unit("KRW", CandleInterval.DAY) == "KRW"
    for unit, interval in (
        ("USD", CandleInterval.DAY),
        ("krw", CandleInterval.DAY),
        ("KRW", CandleInterval.WEEK),
        ("KRW", CandleInterval.MINUTE_1),
    ):
        with pytest.raises(InvalidRequest) as caught:
            validate_converting_price_unit(unit, interval)
        assert_names(caught, "converting_price_unit", unit)


@pytest.mark.parametrize(
    ("level", "sent"),
    [(10000, "10000"), ("100000", "100000"), (Decimal("1E+4"), "10000"), (0.1, "0.1"), (0, "0")],
)
def test_a_level_is_sent_as_a_plain_decimal_string(level: object, sent: str) -> None:
    assert validate_level(level, ["KRW-BTC"]) == sent


def test_a_non_zero_level_is_refused_for_non_krw_markets_naming_level() -> None:
    with pytest.raises(InvalidRequest, match="BTC-ETH") as caught:
        validate_level(10000, ["KRW-BTC", "BTC-ETH"])
    assert_names(caught, "level", 10000)


def test_level_zero_is_the_native_tick_for_every_market() -> None:
    assert validate_level(0, ["BTC-ETH"]) == "0"
    assert validate_level(None, ["BTC-ETH"]) is None


@pytest.mark.parametrize("bad", [-1, "ten", float("nan"), float("inf"), True, [1]])
def test_a_level_that_is_no_price_unit_is_refused_naming_level(bad: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_level(bad, ["KRW-BTC"])
    assert caught.value.parameter == "level"

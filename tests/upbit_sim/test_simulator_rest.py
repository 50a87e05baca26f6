"""The simulator's REST routes: every path and parameter, Upbit's bodies, types and headers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

INVALID = "Invalid parameter. Check the given value!"
MISSING = "Missing request parameter error. Check the required parameters!"
MISMATCH = "Type mismatch error. Check the parameters type!"


def get(sim: Simulator, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{sim.base_url}{path}", params=params, timeout=10)


def error_of(response: requests.Response) -> tuple[int, str]:
    body = response.json()
    return body["error"]["name"], body["error"]["message"]


@pytest.fixture
def quiet_sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator without auto-trading or rate limit, so answers can be compared freely."""
    return sim_factory(seed=1, auto_trade=False, rate_limit=None)


# -- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "group"),
    [
        ("/market/all", {}, "market"),
        ("/ticker", {"markets": "KRW-BTC"}, "ticker"),
        ("/ticker/all", {"quote_currencies": "KRW"}, "ticker"),
        ("/candles/minutes/1", {"market": "KRW-BTC"}, "candles"),
        ("/trades/ticks", {"market": "KRW-BTC"}, "crix-trades"),
        ("/orderbook", {"markets": "KRW-BTC"}, "orderbook"),
        ("/orderbook/instruments", {"markets": "KRW-BTC"}, "orderbook"),
    ],
)
def test_every_answer_carries_upbits_headers_with_its_group(
    sim: Simulator, path: str, params: dict[str, str], group: str
) -> None:
    response = get(sim, path, **params)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert response.headers["Limit-By-Ip"] == "Yes"
    assert response.headers["Remaining-Req"] == f"group={group}; min=600; sec=9"


def test_remaining_req_sec_counts_down_per_group(sim: Simulator) -> None:
    first = get(sim, "/ticker", markets="KRW-BTC").headers["Remaining-Req"]
    second = get(sim, "/ticker", markets="KRW-BTC").headers["Remaining-Req"]
    other = get(sim, "/orderbook", markets="KRW-BTC").headers["Remaining-Req"]
    assert first.endswith("sec=9")
    assert second.endswith("sec=8")
    assert other == "group=orderbook; min=600; sec=9"


def test_error_answers_are_json_with_upbits_envelope(sim: Simulator) -> None:
    response = get(sim, "/ticker", markets="KRW-NOPE")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert response.json() == {"error": {"name": 404, "message": "Code not found"}}


# -- market/all -----------------------------------------------------------------------------


def test_market_list_has_about_two_hundred_markets_over_three_quotes(quiet_sim: Simulator) -> None:
    markets = get(quiet_sim, "/market/all").json()
    codes = [item["market"] for item in markets]
    assert 180 <= len(codes) <= 260
    assert len(set(codes)) == len(codes)
    assert {code.split("-")[0] for code in codes} == {"KRW", "BTC", "USDT"}
    assert {"KRW-BTC", "KRW-ETH", "KRW-XRP", "BTC-ETH", "USDT-BTC"} <= set(codes)
    assert all(set(item) == {"market", "korean_name", "english_name"} for item in markets)
    btc = next(item for item in markets if item["market"] == "KRW-BTC")
    assert btc["korean_name"] == "비트코인"
    assert btc["english_name"] == "Bitcoin"


def test_market_list_with_details_adds_market_event(quiet_sim: Simulator) -> None:
    markets = get(quiet_sim, "/market/all", is_details="true").json()
    event = markets[0]["market_event"]
    assert isinstance(event["warning"], bool)
    assert set(event["caution"]) == {
        "PRICE_FLUCTUATIONS",
        "TRADING_VOLUME_SOARING",
        "DEPOSIT_AMOUNT_SOARING",
        "GLOBAL_PRICE_DIFFERENCES",
        "CONCENTRATION_OF_SMALL_ACCOUNTS",
    }
    assert "market_event" not in get(quiet_sim, "/market/all", is_details="false").json()[0]


def test_market_list_rejects_a_non_boolean_is_details(quiet_sim: Simulator) -> None:
    response = get(quiet_sim, "/market/all", is_details="yes")
    assert response.status_code == 400
    assert error_of(response) == (400, MISMATCH)


# -- ticker ---------------------------------------------------------------------------------


def test_ticker_answers_each_requested_market_in_order(quiet_sim: Simulator) -> None:
    body = get(quiet_sim, "/ticker", markets="KRW-ETH,KRW-BTC,BTC-ETH").json()
    assert [item["market"] for item in body] == ["KRW-ETH", "KRW-BTC", "BTC-ETH"]
    ticker = body[1]
    assert isinstance(ticker["trade_price"], float)
    assert isinstance(ticker["trade_timestamp"], int)
    assert ticker["change"] in {"RISE", "EVEN", "FALL"}
    assert len(ticker["trade_date"]) == 8 and len(ticker["trade_time"]) == 6


def test_ticker_change_fields_agree_with_prices(quiet_sim: Simulator) -> None:
    for ticker in get(quiet_sim, "/ticker/all", quote_currencies="KRW").json():
        signed = ticker["trade_price"] - ticker["prev_closing_price"]
        assert ticker["signed_change_price"] == pytest.approx(signed, rel=1e-9, abs=1e-9)
        assert ticker["change_price"] == pytest.approx(abs(signed), rel=1e-9, abs=1e-9)
        expected = {1: "RISE", 0: "EVEN", -1: "FALL"}[(signed > 0) - (signed < 0)]
        assert ticker["change"] == expected
        assert ticker["low_price"] <= ticker["trade_price"] <= ticker["high_price"]
        assert ticker["acc_trade_volume_24h"] >= ticker["acc_trade_volume"] - 1e-9
        assert ticker["lowest_52_week_price"] <= ticker["trade_price"]
        assert ticker["trade_price"] <= ticker["highest_52_week_price"]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 400, MISSING),
        ({"markets": ""}, 400, INVALID),
        ({"markets": "KRW-NOPE"}, 404, "Code not found"),
        ({"markets": "KRW-BTC,KRW-NOPE"}, 404, "Code not found"),
        ({"markets": "krw-btc"}, 404, "Code not found"),
    ],
)
def test_ticker_rejects_bad_markets_like_upbit(
    sim: Simulator, params: dict[str, str], status: int, message: str
) -> None:
    response = get(sim, "/ticker", **params)
    assert response.status_code == status
    assert error_of(response) == (status, message)


def test_ticker_all_answers_every_market_of_the_quotes(quiet_sim: Simulator) -> None:
    markets = [item["market"] for item in get(quiet_sim, "/market/all").json()]
    body = get(quiet_sim, "/ticker/all", quote_currencies="BTC,USDT").json()
    expected = [code for code in markets if code.split("-")[0] in {"BTC", "USDT"}]
    assert [item["market"] for item in body] == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [({}, MISSING), ({"quote_currencies": "EUR"}, INVALID), ({"quote_currencies": ""}, INVALID)],
)
def test_ticker_all_rejects_missing_or_unknown_quotes(
    sim: Simulator, params: dict[str, str], message: str
) -> None:
    response = get(sim, "/ticker/all", **params)
    assert response.status_code == 400
    assert error_of(response) == (400, message)


# -- candles --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "extra_keys"),
    [
        ("/candles/seconds", set()),
        ("/candles/minutes/1", {"unit"}),
        ("/candles/minutes/240", {"unit"}),
        ("/candles/days", {"prev_closing_price", "change_price", "change_rate"}),
        ("/candles/weeks", {"first_day_of_period"}),
        ("/candles/months", {"first_day_of_period"}),
        ("/candles/years", {"first_day_of_period"}),
    ],
)
def test_every_candle_route_answers_upbits_fields(
    quiet_sim: Simulator, path: str, extra_keys: set[str]
) -> None:
    body = get(quiet_sim, path, market="KRW-BTC").json()
    assert len(body) == 1
    common = {
        "market",
        "candle_date_time_utc",
        "candle_date_time_kst",
        "opening_price",
        "high_price",
        "low_price",
        "trade_price",
        "timestamp",
        "candle_acc_trade_price",
        "candle_acc_trade_volume",
    }
    assert set(body[0]) == common | extra_keys


@pytest.mark.parametrize("unit", [1, 3, 5, 10, 15, 30, 60, 240])
def test_minute_candles_carry_their_unit_and_aligned_start(quiet_sim: Simulator, unit: int) -> None:
    body = get(quiet_sim, f"/candles/minutes/{unit}", market="KRW-BTC", count=5).json()
    assert body
    for candle in body:
        assert candle["unit"] == unit
        hours, minutes, seconds = map(int, candle["candle_date_time_utc"][11:].split(":"))
        assert seconds == 0
        assert (hours * 60 + minutes) % unit == 0


def test_candle_kst_time_is_nine_hours_after_utc(quiet_sim: Simulator) -> None:
    candle = get(quiet_sim, "/candles/minutes/1", market="KRW-BTC").json()[0]
    utc = datetime.fromisoformat(candle["candle_date_time_utc"])
    kst = datetime.fromisoformat(candle["candle_date_time_kst"])
    assert kst - utc == timedelta(hours=9)


def test_candles_come_newest_first_with_up_to_count_items(quiet_sim: Simulator) -> None:
    body = get(quiet_sim, "/candles/days", market="KRW-BTC", count=200).json()
    assert len(body) == 200
    starts = [candle["candle_date_time_utc"] for candle in body]
    assert starts == sorted(starts, reverse=True)


def test_a_fresh_simulator_has_200_one_minute_candles_of_a_busy_market(
    sim_factory: Callable[..., Simulator],
) -> None:
    sim = sim_factory(seed=1)  # every default, as `lifeline sim` and the demo start it
    body = get(sim, "/candles/minutes/1", market="KRW-BTC", count=200).json()
    assert len(body) == 200
    starts = [candle["candle_date_time_utc"] for candle in body]
    assert len(set(starts)) == 200


def test_candles_to_is_exclusive_and_pages_without_overlap(quiet_sim: Simulator) -> None:
    full = get(quiet_sim, "/candles/days", market="KRW-ETH", count=120).json()
    first = get(quiet_sim, "/candles/days", market="KRW-ETH", count=60).json()
    oldest = first[-1]["candle_date_time_utc"]
    second = get(quiet_sim, "/candles/days", market="KRW-ETH", count=60, to=oldest).json()
    assert all(candle["candle_date_time_utc"] < oldest for candle in second)
    assert first + second == full


@pytest.mark.parametrize(
    "spelling",
    ["{d}T00:00:00Z", "{d} 00:00:00", "{d}T09:00:00+09:00", "{d}T00:00:00", "{d}T01:00:00+01:00"],
)
def test_candles_to_accepts_upbits_time_formats_as_the_same_instant(
    quiet_sim: Simulator, spelling: str
) -> None:
    days = get(quiet_sim, "/candles/days", market="KRW-BTC", count=20).json()
    newer, older = days[9], days[10]
    to = spelling.format(d=newer["candle_date_time_utc"][:10])
    body = get(quiet_sim, "/candles/days", market="KRW-BTC", count=1, to=to).json()
    assert body == [older]


def test_day_candles_convert_a_btc_market_price_to_krw(quiet_sim: Simulator) -> None:
    plain = get(quiet_sim, "/candles/days", market="BTC-ETH").json()[0]
    converted = get(
        quiet_sim, "/candles/days", market="BTC-ETH", converting_price_unit="KRW"
    ).json()[0]
    assert "converted_trade_price" not in plain
    krw_btc = get(quiet_sim, "/candles/days", market="KRW-BTC").json()[0]["trade_price"]
    assert converted["converted_trade_price"] == pytest.approx(converted["trade_price"] * krw_btc)


def test_converting_works_as_the_very_first_request(quiet_sim: Simulator) -> None:
    body = get(quiet_sim, "/candles/days", market="USDT-BTC", converting_price_unit="KRW", count=3)
    assert len(body.json()) == 3
    assert all(candle["converted_trade_price"] > candle["trade_price"] for candle in body.json())


def test_day_candle_change_is_against_the_previous_close(quiet_sim: Simulator) -> None:
    today, yesterday = get(quiet_sim, "/candles/days", market="KRW-BTC", count=2).json()
    assert today["prev_closing_price"] == yesterday["trade_price"]
    assert today["change_price"] == pytest.approx(today["trade_price"] - yesterday["trade_price"])


def test_week_month_year_candles_start_on_their_first_day(quiet_sim: Simulator) -> None:
    weeks = get(quiet_sim, "/candles/weeks", market="KRW-BTC", count=10).json()
    assert all(date.fromisoformat(c["first_day_of_period"]).weekday() == 0 for c in weeks)
    months = get(quiet_sim, "/candles/months", market="KRW-BTC", count=10).json()
    assert all(c["first_day_of_period"].endswith("-01") for c in months)
    years = get(quiet_sim, "/candles/years", market="KRW-BTC", count=2).json()
    assert all(c["first_day_of_period"].endswith("-01-01") for c in years)
    assert all(c["candle_date_time_utc"][:10] == c["first_day_of_period"] for c in weeks + months)


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/candles/minutes/1", {}, 400, MISSING),
        ("/candles/minutes/1", {"market": "KRW-NOPE"}, 404, "Code not found"),
        ("/candles/minutes/2", {"market": "KRW-BTC"}, 400, INVALID),
        ("/candles/minutes/x", {"market": "KRW-BTC"}, 400, MISMATCH),
        ("/candles/minutes/1", {"market": "KRW-BTC", "count": "201"}, 400, INVALID),
        ("/candles/minutes/1", {"market": "KRW-BTC", "count": "0"}, 400, INVALID),
        ("/candles/minutes/1", {"market": "KRW-BTC", "count": "ten"}, 400, MISMATCH),
        ("/candles/minutes/1", {"market": "KRW-BTC", "to": "yesterday"}, 400, INVALID),
        (
            "/candles/minutes/1",
            {"market": "KRW-BTC", "to": "2026-01-10T09:00:00 09:00"},
            400,
            INVALID,
        ),
        ("/candles/days", {"market": "KRW-BTC", "converting_price_unit": "USD"}, 400, INVALID),
        ("/candles/weeks", {"market": "KRW-BTC", "converting_price_unit": "KRW"}, 400, INVALID),
    ],
)
def test_candles_reject_bad_parameters_like_upbit(
    sim: Simulator, path: str, params: dict[str, str], status: int, message: str
) -> None:
    response = get(sim, path, **params)
    assert response.status_code == status
    assert error_of(response) == (status, message)


# -- trades ---------------------------------------------------------------------------------


def test_trades_come_newest_first_with_unique_sequential_ids(quiet_sim: Simulator) -> None:
    body = get(quiet_sim, "/trades/ticks", market="KRW-BTC", count=500).json()
    assert len(body) == 500
    stamps = [trade["timestamp"] for trade in body]
    assert stamps == sorted(stamps, reverse=True)
    assert len({trade["sequential_id"] for trade in body}) == 500
    assert all(trade["ask_bid"] in {"ASK", "BID"} for trade in body)


def test_trades_change_price_is_signed_against_prev_close(quiet_sim: Simulator) -> None:
    for trade in get(quiet_sim, "/trades/ticks", market="KRW-ETH", count=50).json():
        expected = trade["trade_price"] - trade["prev_closing_price"]
        assert trade["change_price"] == pytest.approx(expected, abs=1e-6)


def test_trades_cursor_pages_back_without_gap_or_overlap(quiet_sim: Simulator) -> None:
    full = get(quiet_sim, "/trades/ticks", market="KRW-BTC", count=300).json()
    first = get(quiet_sim, "/trades/ticks", market="KRW-BTC", count=100).json()
    cursor = first[-1]["sequential_id"]
    second = get(quiet_sim, "/trades/ticks", market="KRW-BTC", count=200, cursor=cursor).json()
    assert first + second == full


def test_trades_to_returns_trades_before_that_time_of_day(quiet_sim: Simulator) -> None:
    latest = get(quiet_sim, "/trades/ticks", market="KRW-BTC").json()[0]
    to = latest["trade_time_utc"]
    for spelling in (to, to.replace(":", "")):
        body = get(quiet_sim, "/trades/ticks", market="KRW-BTC", count=20, to=spelling).json()
        assert body
        assert all(trade["trade_time_utc"] < to for trade in body)
        assert all(trade["trade_date_utc"] == latest["trade_date_utc"] for trade in body)


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 400, MISSING),
        ({"market": "KRW-NOPE"}, 404, "Code not found"),
        ({"market": "KRW-BTC", "count": "501"}, 400, INVALID),
        ({"market": "KRW-BTC", "count": "-1"}, 400, INVALID),
        ({"market": "KRW-BTC", "days_ago": "8"}, 400, INVALID),
        ({"market": "KRW-BTC", "days_ago": "one"}, 400, MISMATCH),
        ({"market": "KRW-BTC", "cursor": "abc"}, 400, MISMATCH),
        ({"market": "KRW-BTC", "to": "25:00:00"}, 400, INVALID),
        ({"market": "KRW-BTC", "to": "12:00"}, 400, INVALID),
    ],
)
def test_trades_reject_bad_parameters_like_upbit(
    sim: Simulator, params: dict[str, str], status: int, message: str
) -> None:
    response = get(sim, "/trades/ticks", **params)
    assert response.status_code == status
    assert error_of(response) == (status, message)


# -- orderbook ------------------------------------------------------------------------------


def test_orderbook_has_thirty_levels_with_recorded_types(quiet_sim: Simulator) -> None:
    body = get(quiet_sim, "/orderbook", markets="KRW-BTC,KRW-ETH").json()
    assert [book["market"] for book in body] == ["KRW-BTC", "KRW-ETH"]
    book = body[0]
    assert len(book["orderbook_units"]) == 30
    assert book["level"] == 0 and isinstance(book["level"], int)
    unit = book["orderbook_units"][0]
    assert list(unit) == ["bid_price", "bid_size", "ask_price", "ask_size"]
    assert isinstance(unit["ask_price"], int) and isinstance(unit["ask_size"], float)
    sizes = sum(unit["ask_size"] for unit in book["orderbook_units"])
    assert book["total_ask_size"] == pytest.approx(sizes)


def test_orderbook_count_limits_the_levels(quiet_sim: Simulator) -> None:
    full = get(quiet_sim, "/orderbook", markets="KRW-BTC").json()[0]["orderbook_units"]
    five = get(quiet_sim, "/orderbook", markets="KRW-BTC", count=5).json()[0]["orderbook_units"]
    assert five == full[:5]


def test_orderbook_level_aggregates_krw_prices_to_multiples(quiet_sim: Simulator) -> None:
    native = get(quiet_sim, "/orderbook", markets="KRW-BTC").json()[0]["orderbook_units"][0]
    book = get(quiet_sim, "/orderbook", markets="KRW-BTC", level="100000").json()[0]
    assert book["level"] == 100000
    units = book["orderbook_units"]
    assert all(
        unit["ask_price"] % 100000 == 0 and unit["bid_price"] % 100000 == 0 for unit in units
    )
    assert (
        units[0]["bid_price"] <= native["bid_price"] < native["ask_price"] <= units[0]["ask_price"]
    )


def test_orderbook_unsupported_level_gives_an_empty_answer(quiet_sim: Simulator) -> None:
    assert get(quiet_sim, "/orderbook", markets="KRW-BTC", level="12345").json() == []
    assert get(quiet_sim, "/orderbook", markets="BTC-ETH", level="10").json() == []
    both = get(quiet_sim, "/orderbook", markets="KRW-BTC,BTC-ETH", level="10000").json()
    assert [book["market"] for book in both] == ["KRW-BTC"]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 400, MISSING),
        ({"markets": "KRW-NOPE"}, 404, "Code not found"),
        ({"markets": "KRW-BTC", "count": "31"}, 400, INVALID),
        ({"markets": "KRW-BTC", "count": "many"}, 400, MISMATCH),
        ({"markets": "KRW-BTC", "level": "lots"}, 400, MISMATCH),
        ({"markets": "KRW-BTC", "level": "-10"}, 400, INVALID),
    ],
)
def test_orderbook_rejects_bad_parameters_like_upbit(
    sim: Simulator, params: dict[str, str], status: int, message: str
) -> None:
    response = get(sim, "/orderbook", **params)
    assert response.status_code == status
    assert error_of(response) == (status, message)


def test_orderbook_instruments_give_tick_and_levels_as_strings(quiet_sim: Simulator) -> None:
    body = get(quiet_sim, "/orderbook/instruments", markets="KRW-BTC,BTC-ETH,USDT-BTC").json()
    by_market = {item["market"]: item for item in body}
    assert by_market["KRW-BTC"] == {
        "market": "KRW-BTC",
        "quote_currency": "KRW",
        "tick_size": "1000",
        "supported_levels": ["0", "10000", "100000", "1000000", "10000000", "100000000"],
    }
    assert by_market["BTC-ETH"]["tick_size"] == "0.00000001"
    assert by_market["BTC-ETH"]["supported_levels"] == ["0"]
    assert by_market["USDT-BTC"]["tick_size"] == "0.01"


def test_orderbook_prices_sit_on_the_instrument_tick(quiet_sim: Simulator) -> None:
    codes = "KRW-BTC,KRW-XRP,KRW-SEI,KRW-SHIB,BTC-ETH,USDT-BTC,USDT-XRP"
    ticks = {
        item["market"]: Decimal(item["tick_size"])
        for item in get(quiet_sim, "/orderbook/instruments", markets=codes).json()
    }
    for book in get(quiet_sim, "/orderbook", markets=codes).json():
        best = book["orderbook_units"][0]
        for price in (best["ask_price"], best["bid_price"]):
            assert Decimal(repr(price)) % ticks[book["market"]] == 0, (book["market"], price)


def test_orderbook_instruments_require_known_markets(sim: Simulator) -> None:
    assert error_of(get(sim, "/orderbook/instruments")) == (400, MISSING)
    assert error_of(get(sim, "/orderbook/instruments", markets="KRW-NOPE")) == (
        404,
        "Code not found",
    )


def test_unknown_paths_under_v1_are_not_found(sim: Simulator) -> None:
    assert get(sim, "/nothing/here").status_code == 404

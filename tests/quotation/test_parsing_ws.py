"""WebSocket messages → the model: the recorded session, both key formats, drift, errors."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from quotation.errors import FormatError
from quotation.models import (
    Candle,
    CandleInterval,
    Change,
    Orderbook,
    Side,
    StreamType,
    Ticker,
    Trade,
)
from quotation.parsing import _fast_parsers, _parse_ws_strict, parse_trades, parse_ws_message
from quotation.wire_keys import (
    DEFAULT_KEYS,
    ORDERBOOK_UNIT_SIMPLE_KEYS,
    SIMPLE_KEYS,
    message_kind,
    to_default_keys,
    to_simple_keys,
)
from tests.quotation.examples import REMOVE, WS_CANDLE, WS_ORDERBOOK, WS_TICKER, WS_TRADE, changed
from tests.quotation.recordings import WsSession, load_ws_log, ws_logs

pytestmark = pytest.mark.timeout(10)


@pytest.fixture(scope="module")
def sessions(recordings_dir: Path) -> list[WsSession]:
    paths = ws_logs(recordings_dir)
    assert paths, f"no websocket/*.log under {recordings_dir}"
    return [load_ws_log(path) for path in paths]


@pytest.fixture(scope="module")
def recorded(sessions: list[WsSession]) -> list[dict[str, Any]]:
    """Every recorded frame, decoded (SIMPLE keys)."""
    return [json.loads(frame) for session in sessions for _, frame in session.frames]


# --- the recorded session -----------------------------------------------------------------------


@pytest.mark.recordings
def test_recorded_session_is_a_simple_format_trade_and_orderbook_subscription(
    sessions: list[WsSession],
) -> None:
    (session,) = sessions
    request = session.subscription_request
    assert {"format": "SIMPLE"} in request
    assert {item.get("type") for item in request if "type" in item} == {"trade", "orderbook"}
    assert len(session.frames) == 449
    times = [received_at for received_at, _ in session.frames]
    assert times == sorted(times)


@pytest.mark.recordings
def test_every_recorded_frame_parses_with_simple_keys(
    sessions: list[WsSession], recorded: list[dict[str, Any]]
) -> None:
    codes = {code for item in sessions[0].subscription_request for code in item.get("codes", ())}
    parsed = [parse_ws_message(message) for message in recorded]
    assert Counter(type(model) for model in parsed) == {Trade: 304, Orderbook: 145}
    for message, model in zip(recorded, parsed, strict=True):
        assert isinstance(model, Trade | Orderbook)
        assert model.market == message["cd"]
        assert model.market in codes
        assert model.stream_type is StreamType.REALTIME
        assert model.timestamp.tzinfo is UTC


@pytest.mark.recordings
def test_every_recorded_frame_converted_to_default_keys_parses_to_an_equal_object(
    recorded: list[dict[str, Any]],
) -> None:
    for message in recorded:
        default = to_default_keys(message)
        assert "ty" not in default
        assert "type" in default
        assert parse_ws_message(default) == parse_ws_message(message)


@pytest.mark.recordings
def test_every_recorded_frame_gives_the_same_object_on_the_fast_and_the_strict_path(
    recorded: list[dict[str, Any]],
) -> None:
    for message in recorded:
        assert parse_ws_message(message) == _parse_ws_strict(message)
        default = to_default_keys(message)
        assert parse_ws_message(default) == _parse_ws_strict(default)


class FastPathMissed(AssertionError):
    """The fast path gave a well-formed message to the strict fallback."""


def fast_only(message: dict[str, Any]) -> Any:
    """Parse with the fast path alone: its fallback raises instead of repairing."""

    def refuse(m: object) -> Any:
        raise FastPathMissed(m)

    simple = "ty" in message
    parsers = _fast_parsers(simple, refuse)
    return parsers[message["ty" if simple else "type"]](message)


@pytest.mark.recordings
def test_every_recorded_frame_is_parsed_by_the_fast_path_alone_in_both_formats(
    recorded: list[dict[str, Any]],
) -> None:
    for message in recorded:
        assert fast_only(message) == _parse_ws_strict(message)
        default = to_default_keys(message)
        assert fast_only(default) == _parse_ws_strict(default)


@pytest.mark.recordings
def test_recorded_trade_has_its_trade_time_id_and_absolute_change(
    recorded: list[dict[str, Any]],
) -> None:
    trade = parse_ws_message(recorded[0])
    assert trade == Trade(
        market="KRW-LAMB",
        sequential_id=1618678262000003,
        timestamp=datetime(2021, 4, 17, 16, 51, 2, tzinfo=UTC),  # ttms, not tms
        trade_price=127.0,
        trade_volume=46.48838371,
        ask_bid=Side.BID,
        prev_closing_price=123.0,
        change_price=4.0,
        signed_change_price=4.0,
        change=Change.RISE,
        stream_type=StreamType.REALTIME,
    )
    # 2021 frames predate the best bid/ask fields (added 2024-11-27).
    assert (trade.best_ask_price, trade.best_bid_size) == (None, None)


@pytest.mark.recordings
def test_recorded_orderbook_has_fifteen_levels_best_first_and_level_zero(
    recorded: list[dict[str, Any]],
) -> None:
    book = parse_ws_message(recorded[1])
    assert isinstance(book, Orderbook)
    assert book.market == "KRW-LAMB"
    assert len(book.levels) == 15
    assert (book.best_ask, book.best_bid) == (127.0, 126.0)
    assert book.levels[0].ask_size == 280460.37885666
    assert book.levels[14].bid_price == 112.0
    assert book.level == 0.0  # 2021 frames have no "lv"
    assert book.total_ask_size == 25752275.55420627
    assert book.timestamp == datetime(2021, 4, 17, 16, 51, 2, 640000, tzinfo=UTC)


@pytest.mark.recordings
def test_recorded_trades_are_unique_by_sequential_id(recorded: list[dict[str, Any]]) -> None:
    trades = [m for m in map(parse_ws_message, recorded) if isinstance(m, Trade)]
    assert len({(t.market, t.sequential_id) for t in trades}) == len(trades)


# --- documented examples (upbit-api.md §3.5, in tests/quotation/examples.py) --------------------


def both_formats(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [message, to_simple_keys(message)]


def test_documented_ticker_parses_in_both_formats_to_the_same_ticker() -> None:
    default, simple = (parse_ws_message(m) for m in both_formats(WS_TICKER))
    assert default == simple
    assert isinstance(default, Ticker)
    assert default.market == "KRW-BTC"
    assert default.trade_price == 103493000.0
    assert default.trade_time == datetime(2026, 3, 11, 14, 40, 58, 930000, tzinfo=UTC)
    assert default.timestamp == datetime(2026, 3, 11, 14, 40, 58, 973000, tzinfo=UTC)
    assert default.highest_52_week_date == date(2025, 10, 9)
    assert (default.ask_bid, default.acc_ask_volume, default.acc_bid_volume) == (
        Side.BID,
        512.1,
        512.2,
    )
    assert default.market_state == "ACTIVE"
    assert default.stream_type is StreamType.REALTIME


def test_documented_trade_parses_in_both_formats_with_best_bid_and_ask() -> None:
    default, simple = (parse_ws_message(m) for m in both_formats(WS_TRADE))
    assert default == simple
    assert isinstance(default, Trade)
    assert (default.best_ask_price, default.best_ask_size) == (103493000.0, 0.04910155)
    assert (default.best_bid_price, default.best_bid_size) == (103460000.0, 0.004)
    assert type(default.best_ask_price) is float


def test_documented_orderbook_parses_in_both_formats() -> None:
    default, simple = (parse_ws_message(m) for m in both_formats(WS_ORDERBOOK))
    assert default == simple
    assert isinstance(default, Orderbook)
    assert (default.best_ask, default.best_bid, default.level) == (103493000.0, 103460000.0, 0.0)
    assert default.stream_type is StreamType.SNAPSHOT


@pytest.mark.parametrize("interval", [i for i in CandleInterval if i.ws_type is not None])
def test_every_streamed_candle_type_parses_with_its_interval_in_both_formats(
    interval: CandleInterval,
) -> None:
    message = changed(WS_CANDLE, type=interval.ws_type)
    default, simple = (parse_ws_message(m) for m in both_formats(message))
    assert default == simple
    assert isinstance(default, Candle)
    assert default.interval is interval
    assert default.start == datetime(2025, 4, 22, 9, 50, 34, tzinfo=UTC)
    assert default.last_trade_time == datetime(2025, 4, 22, 9, 50, 34, 125000, tzinfo=UTC)
    assert default.trade_price == 1438.0
    assert type(default.trade_price) is float


def test_documented_examples_are_parsed_by_the_fast_path_alone_like_the_strict_path() -> None:
    for message in (WS_TICKER, WS_TRADE, WS_ORDERBOOK, WS_CANDLE):
        for form in both_formats(message):
            assert fast_only(form) == parse_ws_message(form) == _parse_ws_strict(form)


def test_drifted_messages_without_optional_fields_stay_on_the_fast_path() -> None:
    slim = [
        changed(WS_TRADE, best_ask_price=REMOVE, best_ask_size=REMOVE, best_bid_price=REMOVE,
                best_bid_size=REMOVE, stream_type=REMOVE),
        changed(WS_TICKER, ask_bid=REMOVE, acc_ask_volume=REMOVE, acc_bid_volume=REMOVE,
                market_state=REMOVE, highest_52_week_date=None),
        changed(WS_ORDERBOOK, level=REMOVE, stream_type=REMOVE),
        changed(WS_CANDLE, stream_type=REMOVE, extra=1),
    ]  # fmt: skip
    for message in slim:
        for form in both_formats(message):
            assert fast_only(form) == _parse_ws_strict(form)


def test_a_malformed_message_leaves_the_fast_path() -> None:
    with pytest.raises(FastPathMissed):
        fast_only(changed(WS_TRADE, trade_price="1"))


# --- quirks (upbit-api.md §4.3) ------------------------------------------------------------------


def test_quirk_8_websocket_trade_change_price_is_absolute_and_change_gives_the_sign() -> None:
    falling = changed(WS_TRADE, change="FALL", change_price=1000000.0)
    flat = changed(WS_TRADE, change="EVEN", change_price=0.0)
    for form in both_formats(falling):
        trade = parse_ws_message(form)
        assert isinstance(trade, Trade)
        assert (trade.change, trade.change_price, trade.signed_change_price) == (
            Change.FALL,
            1000000.0,
            -1000000.0,
        )
    trade = parse_ws_message(flat)
    assert isinstance(trade, Trade)
    assert (trade.change, trade.change_price, trade.signed_change_price) == (Change.EVEN, 0.0, 0.0)


def test_quirk_8_and_10_the_same_trade_from_rest_and_websocket_is_equal_but_for_stream_type() -> (
    None
):
    rest = {
        "market": "KRW-BTC", "trade_date_utc": "2026-03-11", "trade_time_utc": "14:40:59",
        "timestamp": 1773240059095, "trade_price": 103460000.0, "trade_volume": 0.004,
        "prev_closing_price": 102417000.0, "change_price": -1043000.0, "ask_bid": "ASK",
        "sequential_id": 17732400590950000,
    }  # fmt: skip
    ws = changed(
        WS_TRADE,
        change="FALL",
        best_ask_price=REMOVE,
        best_ask_size=REMOVE,
        best_bid_price=REMOVE,
        best_bid_size=REMOVE,
        stream_type=REMOVE,
    )
    (from_rest,) = parse_trades([rest])
    assert parse_ws_message(ws) == from_rest
    assert parse_ws_message(to_simple_keys(ws)) == from_rest


def test_quirk_9_trade_and_ticker_date_strings_in_their_own_formats_do_not_decide_the_time() -> (
    None
):
    trade = parse_ws_message(changed(WS_TRADE, trade_date="2026-03-11"))
    ticker = parse_ws_message(changed(WS_TICKER, trade_date="20260311"))
    assert isinstance(trade, Trade)
    assert isinstance(ticker, Ticker)
    assert trade.timestamp.date() == ticker.trade_time.date() == date(2026, 3, 11)


def test_quirk_10_websocket_names_the_market_code_and_a_market_key_is_not_enough() -> None:
    with pytest.raises(FormatError) as caught:
        parse_ws_message(changed(WS_TRADE, code=REMOVE, market="KRW-BTC"))
    assert (caught.value.payload, caught.value.field) == ("trade", "code")


def test_quirk_14_orderbook_level_is_read_in_both_formats() -> None:
    for form in both_formats(changed(WS_ORDERBOOK, level=100000)):
        book = parse_ws_message(form)
        assert isinstance(book, Orderbook)
        assert book.level == 100000.0


# --- drift ----------------------------------------------------------------------------------


def test_unknown_extra_fields_are_ignored_in_both_formats() -> None:
    for message in (WS_TICKER, WS_TRADE, WS_ORDERBOOK, WS_CANDLE):
        noisy = changed(message, brand_new="x", another={"nested": [1]})
        for form, plain in zip(both_formats(noisy), both_formats(message), strict=True):
            assert parse_ws_message(form) == parse_ws_message(plain)


def test_ticker_without_deprecated_and_optional_fields_still_parses() -> None:
    slim = changed(
        WS_TICKER,
        is_trading_suspended=REMOVE,
        market_warning=REMOVE,
        delisting_date=REMOVE,
        market_state=REMOVE,
        ask_bid=REMOVE,
        acc_ask_volume=REMOVE,
        acc_bid_volume=REMOVE,
        highest_52_week_date=None,
    )
    for form in both_formats(slim):
        ticker = parse_ws_message(form)
        assert isinstance(ticker, Ticker)
        assert (ticker.ask_bid, ticker.acc_ask_volume, ticker.market_state) == (None, None, None)
        assert ticker.highest_52_week_date is None
        assert ticker.trade_price == 103493000.0


def test_old_ticker_fields_trade_status_and_market_state_for_ios_are_ignored() -> None:
    old = changed(WS_TICKER, trade_status="ACTIVE", market_state_for_ios="ACTIVE")
    assert parse_ws_message(to_simple_keys(old)) == parse_ws_message(WS_TICKER)


def test_messages_without_stream_type_parse_with_none() -> None:
    for message in (WS_TICKER, WS_TRADE, WS_ORDERBOOK, WS_CANDLE):
        for form in both_formats(changed(message, stream_type=REMOVE)):
            assert parse_ws_message(form).stream_type is None


def test_trade_without_change_takes_the_direction_from_the_sign() -> None:
    trade = parse_ws_message(changed(WS_TRADE, change=REMOVE, change_price=-5.0))
    assert isinstance(trade, Trade)
    assert (trade.change, trade.change_price, trade.signed_change_price) == (
        Change.FALL,
        5.0,
        -5.0,
    )


def test_bytes_decoded_by_orjson_parse_like_json_decoded_ones() -> None:
    orjson = pytest.importorskip("orjson")
    raw = json.dumps(to_simple_keys(WS_ORDERBOOK)).encode()
    assert parse_ws_message(orjson.loads(raw)) == parse_ws_message(json.loads(raw))


# --- malformed ------------------------------------------------------------------------------

_MALFORMED: list[tuple[str, dict[str, Any], str, str | None]] = [
    # (case, DEFAULT-key message, FormatError.payload, FormatError.field)
    ("trade missing price", changed(WS_TRADE, trade_price=REMOVE), "trade", "trade_price"),
    ("trade price string", changed(WS_TRADE, trade_price="1.0e8"), "trade", "trade_price"),
    ("trade price null", changed(WS_TRADE, trade_price=None), "trade", "trade_price"),
    ("trade code null", changed(WS_TRADE, code=None), "trade", "code"),
    ("trade code number", changed(WS_TRADE, code=5), "trade", "code"),
    ("trade id float", changed(WS_TRADE, sequential_id=1.5), "trade", "sequential_id"),
    ("trade id string", changed(WS_TRADE, sequential_id="17732400590950000"), "trade",
     "sequential_id"),
    ("trade bad side", changed(WS_TRADE, ask_bid="BUY"), "trade", "ask_bid"),
    ("trade bad change", changed(WS_TRADE, change="UP"), "trade", "change"),
    ("trade bad stream type", changed(WS_TRADE, stream_type="LIVE"), "trade", "stream_type"),
    ("trade best ask string", changed(WS_TRADE, best_ask_price="x"), "trade", "best_ask_price"),
    ("trade time string", changed(WS_TRADE, trade_timestamp="now"), "trade", "trade_timestamp"),
    ("ticker missing 24h volume", changed(WS_TICKER, acc_trade_volume_24h=REMOVE), "ticker",
     "acc_trade_volume_24h"),
    ("ticker bad 52w date", changed(WS_TICKER, lowest_52_week_date="Feb 6"), "ticker",
     "lowest_52_week_date"),
    ("ticker market state number", changed(WS_TICKER, market_state=1), "ticker", "market_state"),
    ("orderbook units object", changed(WS_ORDERBOOK, orderbook_units={"a": 1}), "orderbook",
     "orderbook_units"),
    ("orderbook units string", changed(WS_ORDERBOOK, orderbook_units="[]"), "orderbook",
     "orderbook_units"),
    ("orderbook unit missing size",
     changed(WS_ORDERBOOK, orderbook_units=[
         WS_ORDERBOOK["orderbook_units"][0],
         {"ask_price": 1.0, "bid_price": 1.0, "bid_size": 1.0},
     ]),
     "orderbook", "orderbook_units[1].ask_size"),
    ("orderbook unit list", changed(WS_ORDERBOOK, orderbook_units=[[1, 2, 3, 4]]), "orderbook",
     "orderbook_units[0]"),
    ("orderbook level string", changed(WS_ORDERBOOK, level="0"), "orderbook", "level"),
    ("candle bad start", changed(WS_CANDLE, candle_date_time_utc="yesterday"), "candle",
     "candle_date_time_utc"),
    ("candle missing volume", changed(WS_CANDLE, candle_acc_trade_volume=REMOVE), "candle",
     "candle_acc_trade_volume"),
    ("unknown candle type", changed(WS_CANDLE, type="candle.2m"), "candle", "type"),
    ("unknown type", changed(WS_TRADE, type="myOrder"), "websocket", "type"),
    ("no type", changed(WS_TRADE, type=REMOVE), "websocket", "type"),
    ("status frame", {"status": "UP"}, "websocket", "type"),
]  # fmt: skip


@pytest.mark.parametrize("simple", [False, True], ids=["DEFAULT", "SIMPLE"])
@pytest.mark.parametrize(
    ("message", "kind", "field"),
    [case[1:] for case in _MALFORMED],
    ids=[case[0] for case in _MALFORMED],
)
def test_malformed_message_raises_format_error_naming_kind_and_default_field(
    message: dict[str, Any], kind: str, field: str | None, simple: bool
) -> None:
    form = to_simple_keys(message) if simple else message
    with pytest.raises(FormatError) as caught:
        parse_ws_message(form)
    assert (caught.value.payload, caught.value.field) == (kind, field)
    assert repr(field) in str(caught.value)


def test_format_error_for_a_simple_message_names_the_field_its_key_and_the_market() -> None:
    with pytest.raises(FormatError) as caught:
        parse_ws_message(to_simple_keys(changed(WS_TRADE, trade_volume="lots")))
    message = str(caught.value)
    assert "WebSocket trade (KRW-BTC)" in message
    assert "'trade_volume' (key 'tv')" in message
    assert "string" in message


def test_a_message_that_is_not_an_object_raises_format_error() -> None:
    with pytest.raises(FormatError) as caught:
        parse_ws_message([WS_TRADE])  # type: ignore[arg-type]
    assert caught.value.payload == "websocket"


# --- key tables -------------------------------------------------------------------------------


def test_simple_keys_are_unique_within_each_message_kind() -> None:
    for kind, table in SIMPLE_KEYS.items():
        assert len(set(table.values())) == len(table), kind
        assert dict(DEFAULT_KEYS[kind]) == {simple: full for full, simple in table.items()}
    values = list(ORDERBOOK_UNIT_SIMPLE_KEYS.values())
    assert len(set(values)) == len(values)


def test_key_conversion_round_trips_and_leaves_unknown_keys_alone() -> None:
    for message in (WS_TICKER, WS_TRADE, WS_ORDERBOOK, WS_CANDLE):
        noisy = changed(message, future_field=1)
        simple = to_simple_keys(noisy)
        assert simple["future_field"] == 1
        assert "ty" in simple
        assert to_default_keys(simple) == noisy
    assert to_simple_keys({"status": "UP"}) == {"status": "UP"}


def test_simple_orderbook_units_use_abbreviated_keys() -> None:
    simple = to_simple_keys(WS_ORDERBOOK)
    assert simple["obu"] == [{"ap": 103493000, "bp": 103460000, "as": 0.04910155, "bs": 0.004}]
    assert simple["lv"] == 0


def test_message_kind_groups_every_candle_type() -> None:
    assert message_kind("candle.240m") == "candle"
    assert message_kind("trade") == "trade"
    assert message_kind("myAsset") is None

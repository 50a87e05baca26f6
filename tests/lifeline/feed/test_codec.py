"""The codec: every canonical model round-trips exactly; a bad entry is a typed error."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import orjson
import pytest

from lifeline.feed import CodecError, decode, encode
from lifeline.feed.codec import FeedModel, decode_as, kind_of
from quotation.models import (
    Candle,
    CandleInterval,
    Change,
    Orderbook,
    OrderbookLevel,
    Side,
    StreamType,
    Ticker,
    Trade,
)
from quotation.parsing import (
    parse_candles,
    parse_orderbooks,
    parse_tickers,
    parse_trades,
    parse_ws_message,
)
from quotation.rest import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter
from tests.quotation.recordings import load_cassettes, load_ws_log, ws_logs
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

AT = datetime(2026, 3, 11, 12, 0, 0, 123456, tzinfo=UTC)

TRADE = Trade(
    market="KRW-BTC", sequential_id=17_732_304_001_230_000, timestamp=AT, trade_price=1.0e8,
    trade_volume=0.000123, ask_bid=Side.BID, prev_closing_price=9.9e7, change_price=1.0e6,
    signed_change_price=1.0e6, change=Change.RISE, best_ask_price=1.00001e8,
    stream_type=StreamType.REALTIME,
)


def _round_trips(models: list[FeedModel]) -> None:
    assert models, "nothing to round-trip"
    for model in models:
        again = decode(encode(model))
        assert again == model
        assert type(again) is type(model)
        for field in dataclasses.fields(model):
            value = getattr(again, field.name)
            if isinstance(value, datetime):
                assert value.tzinfo is not None and value.utcoffset() == UTC.utcoffset(None)


def test_a_trade_keeps_its_sequential_id_exchange_timestamp_and_every_field() -> None:
    again = decode(encode(TRADE))
    assert again == TRADE
    assert isinstance(again, Trade)
    assert again.sequential_id == 17_732_304_001_230_000
    assert again.timestamp == AT and again.timestamp.microsecond == 123456


def test_rest_recordings_round_trip_exactly(recordings_dir: Path) -> None:
    cassettes = load_cassettes(recordings_dir)
    _round_trips([*parse_tickers(cassettes["get_tickers"].body_json)])
    _round_trips([*parse_trades(cassettes["get_trades"].body_json)])
    _round_trips([*parse_orderbooks(cassettes["get_orderbooks"].body_json)])
    _round_trips([*parse_candles(cassettes["get_candles_minutes"].body_json,
                                 CandleInterval.MINUTE_1)])
    _round_trips([*parse_candles(cassettes["get_candles_days"].body_json, CandleInterval.DAY)])


def test_websocket_recordings_round_trip_exactly(recordings_dir: Path) -> None:
    models: list[FeedModel] = []
    for path in ws_logs(recordings_dir):
        for _, frame in load_ws_log(path).frames:
            model = parse_ws_message(orjson.loads(frame))
            if isinstance(model, (Ticker, Trade, Orderbook, Candle)):
                models.append(model)
    if not models:
        pytest.skip("no ticker/trade/orderbook/candle frames in the WebSocket recordings")
    assert {kind_of(m) for m in models} >= {"trade", "orderbook"}
    _round_trips(models)


def test_simulator_answers_round_trip_exactly(
    sim_factory: Callable[..., Simulator], limiter: RateLimiter,
) -> None:
    sim = sim_factory(seed=7)
    with RestClient(RestConfig(base_url=sim.base_url), limiter=limiter) as rest:
        models: list[FeedModel] = [
            *rest.get_tickers(["KRW-BTC", "KRW-ETH"]),
            *rest.get_trades("KRW-BTC", count=20),
            *rest.get_orderbooks(["KRW-BTC"]),
            *rest.get_candles("KRW-BTC", CandleInterval.MINUTE_1, count=5),
        ]
    assert {kind_of(m) for m in models} == {"ticker", "trade", "orderbook", "candle"}
    _round_trips(models)


def test_an_orderbook_keeps_its_levels_in_order() -> None:
    book = Orderbook("KRW-BTC", AT, 3.0, 4.0, (OrderbookLevel(2.0, 1.0, 1.0, 2.0),
                                               OrderbookLevel(3.0, 2.0, 0.5, 2.0)), level=0.0)
    again = decode(encode(book))
    assert again == book and isinstance(again, Orderbook)
    assert again.levels[1] == OrderbookLevel(3.0, 2.0, 0.5, 2.0)


def test_dates_and_optional_fields_survive() -> None:
    candle = Candle("KRW-BTC", CandleInterval.WEEK, AT, 1.0, 2.0, 0.5, 1.5, 10.0, 15.0, AT,
                    first_day_of_period=date(2026, 3, 9))
    assert decode(encode(candle)) == candle


# -- bad entries -----------------------------------------------------------------------------


def _raw_trade(**changes: object) -> bytes:
    fields = {f.name: getattr(TRADE, f.name) for f in dataclasses.fields(TRADE)}
    fields.update(changes)
    return b"X1" + msgspec.msgpack.encode({k: v for k, v in fields.items() if v is not ...})


@pytest.mark.parametrize(("data", "field"), [
    (_raw_trade(trade_price="a lot"), "trade_price"),
    (_raw_trade(sequential_id=1.5), "sequential_id"),
    (_raw_trade(ask_bid="SIDEWAYS"), "ask_bid"),
    (_raw_trade(market=...), "market"),
    (_raw_trade(timestamp="2026-03-11T12:00:00"), "timestamp"),
], ids=["wrong type", "float id", "unknown enum", "missing", "timestamp without zone"])
def test_a_bad_field_is_a_codec_error_naming_it(data: bytes, field: str) -> None:
    with pytest.raises(CodecError) as caught:
        decode(data)
    assert (caught.value.kind, caught.value.field) == ("trade", field)
    assert field in str(caught.value)


@pytest.mark.parametrize("data", [b"", b"Z1\x80", b"T2\x80", b"X1\xc1", b"X1", encode(TRADE)[:30]],
                         ids=["empty", "unknown kind", "unknown version", "malformed",
                              "no body", "truncated"])
def test_an_unreadable_entry_is_a_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode(data)


def test_decode_as_refuses_another_kind() -> None:
    with pytest.raises(CodecError) as caught:
        decode_as(Ticker, encode(TRADE))
    assert caught.value.kind == "trade"
    assert decode_as(Trade, encode(TRADE)) == TRADE


def test_only_feed_models_are_encoded() -> None:
    with pytest.raises(TypeError):
        encode("KRW-BTC")  # type: ignore[arg-type]

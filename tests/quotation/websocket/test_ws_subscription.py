"""The request frame: the full subscription set in one array, ticket first, format last."""

from __future__ import annotations

import orjson
import pytest

from quotation.errors import InvalidRequest
from quotation.models import CandleInterval
from quotation.websocket.subscription import DataType, Subscription, WsFormat, build_request

pytestmark = pytest.mark.timeout(5)


def test_request_frame_holds_ticket_every_type_and_format_in_order() -> None:
    subs = (
        Subscription(DataType.TICKER, ("KRW-BTC", "KRW-ETH")),
        Subscription(DataType.TRADE, ("KRW-BTC",), is_only_realtime=True),
        Subscription(DataType.ORDERBOOK, ("KRW-BTC",), depth=15, level=10000.0),
        Subscription(DataType.CANDLE_1S, ("KRW-BTC",), is_only_snapshot=True),
    )
    frame = orjson.loads(build_request(subs, ticket="t-1", fmt=WsFormat.SIMPLE))
    assert frame == [
        {"ticket": "t-1"},
        {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]},
        {"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True},
        {"type": "orderbook", "codes": ["KRW-BTC.15"], "level": 10000.0},
        {"type": "candle.1s", "codes": ["KRW-BTC"], "is_only_snapshot": True},
        {"format": "SIMPLE"},
    ]


def test_every_streamed_candle_interval_has_a_data_type() -> None:
    streamed = [i for i in CandleInterval if i.ws_type is not None]
    assert [DataType.candle(i).value for i in streamed] == [i.ws_type for i in streamed]
    assert DataType.CANDLE_240M.candle_interval is CandleInterval.MINUTE_240
    with pytest.raises(InvalidRequest) as info:
        DataType.candle(CandleInterval.DAY)
    assert info.value.parameter == "interval"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"codes": ()}, "codes"),
        ({"codes": ("krw-btc",)}, "codes"),
        ({"codes": ("KRW-BTC", "KRW-BTC")}, "codes"),
        (
            {"codes": ("KRW-BTC",), "is_only_snapshot": True, "is_only_realtime": True},
            "is_only_realtime",
        ),
        ({"codes": ("KRW-BTC",), "depth": 7}, "depth"),
        ({"codes": ("KRW-BTC",), "level": -1.0}, "level"),
    ],
)
def test_invalid_orderbook_subscription_names_the_bad_field(
    kwargs: dict[str, object], parameter: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        Subscription(DataType.ORDERBOOK, **kwargs)  # type: ignore[arg-type]
    assert info.value.parameter == parameter


def test_depth_on_a_non_orderbook_type_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as info:
        Subscription(DataType.TICKER, ("KRW-BTC",), depth=5)
    assert info.value.parameter == "depth"


def test_a_type_subscribed_twice_is_rejected_before_sending() -> None:
    subs = (
        Subscription(DataType.TICKER, ("KRW-BTC",)),
        Subscription(DataType.TICKER, ("KRW-ETH",)),
    )
    with pytest.raises(InvalidRequest) as info:
        build_request(subs, ticket="t")
    assert info.value.parameter == "subscriptions"


def test_empty_set_and_empty_ticket_are_rejected() -> None:
    with pytest.raises(InvalidRequest):
        build_request((), ticket="t")
    with pytest.raises(InvalidRequest) as info:
        build_request((Subscription(DataType.TRADE, ("KRW-BTC",)),), ticket="")
    assert info.value.parameter == "ticket"

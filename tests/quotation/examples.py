"""Example values shared by the quotation tests and ``benchmarks/bench_parsing.py``.

* ``WS_TICKER``, ``WS_TRADE``, ``WS_ORDERBOOK``, ``WS_CANDLE``: Upbit's documented
  WebSocket data messages (``../shared/upbit-api.md`` §3.5), DEFAULT keys.
* ``changed``: a deep copy of a decoded payload with fields set or ``REMOVE``d,
  for drift and malformed-payload cases.
* ``example_trade``: a canonical ``Trade`` where only id, time, market and side vary.

Treat the dicts as read-only: vary them with ``changed``.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from quotation.models import Change, Side, Trade

__all__ = [
    "REMOVE",
    "T0",
    "WS_CANDLE",
    "WS_ORDERBOOK",
    "WS_TICKER",
    "WS_TRADE",
    "changed",
    "example_trade",
]

T0 = datetime(2026, 3, 11, 14, 40, tzinfo=UTC)
"""The minute of the documented examples (2026-03-11 14:40 UTC)."""

REMOVE = object()
"""A value for :func:`changed` that removes the field."""


def changed(payload: dict[str, Any], **fields: object) -> dict[str, Any]:
    """A deep copy of ``payload`` with ``fields`` set (or removed where the value is ``REMOVE``)."""
    result = copy.deepcopy(payload)
    for key, value in fields.items():
        if value is REMOVE:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def example_trade(
    sequential_id: int,
    timestamp: datetime = T0,
    *,
    market: str = "KRW-BTC",
    ask_bid: Side = Side.ASK,
) -> Trade:
    """A trade at 100.0, up 1.0 from 99.0, of volume 1.0."""
    return Trade(
        market=market,
        sequential_id=sequential_id,
        timestamp=timestamp,
        trade_price=100.0,
        trade_volume=1.0,
        ask_bid=ask_bid,
        prev_closing_price=99.0,
        change_price=1.0,
        signed_change_price=1.0,
        change=Change.RISE,
    )


WS_TICKER: dict[str, Any] = {
    "type": "ticker", "code": "KRW-BTC", "opening_price": 102417000.0,
    "high_price": 103988000.0, "low_price": 101150000.0, "trade_price": 103493000.0,
    "prev_closing_price": 102417000.0, "change": "RISE", "change_price": 1076000.0,
    "signed_change_price": 1076000.0, "change_rate": 0.0105060683,
    "signed_change_rate": 0.0105060683, "trade_volume": 0.00094678,
    "acc_trade_volume": 1024.30599241, "acc_trade_volume_24h": 1587.73606087,
    "acc_trade_price": 104890185475.22821, "acc_trade_price_24h": 162997300132.123,
    "trade_date": "20260311", "trade_time": "144058", "trade_timestamp": 1773240058930,
    "ask_bid": "BID", "acc_ask_volume": 512.1, "acc_bid_volume": 512.2,
    "highest_52_week_price": 179869000.0, "highest_52_week_date": "2025-10-09",
    "lowest_52_week_price": 89000000.0, "lowest_52_week_date": "2026-02-06",
    "market_state": "ACTIVE", "is_trading_suspended": False, "delisting_date": None,
    "market_warning": "NONE", "timestamp": 1773240058973, "stream_type": "REALTIME",
}  # fmt: skip
WS_TRADE: dict[str, Any] = {
    "type": "trade", "code": "KRW-BTC", "trade_price": 103460000.0, "trade_volume": 0.004,
    "ask_bid": "ASK", "prev_closing_price": 102417000.0, "change": "RISE",
    "change_price": 1043000.0, "trade_date": "2026-03-11", "trade_time": "14:40:59",
    "trade_timestamp": 1773240059095, "timestamp": 1773240059120,
    "sequential_id": 17732400590950000, "best_ask_price": 103493000,
    "best_ask_size": 0.04910155, "best_bid_price": 103460000, "best_bid_size": 0.004,
    "stream_type": "REALTIME",
}  # fmt: skip
WS_ORDERBOOK: dict[str, Any] = {
    "type": "orderbook", "code": "KRW-BTC", "timestamp": 1773240059027,
    "total_ask_size": 4.17884094, "total_bid_size": 2.29686376,
    "orderbook_units": [
        {"ask_price": 103493000, "bid_price": 103460000, "ask_size": 0.04910155, "bid_size": 0.004}
    ],
    "level": 0, "stream_type": "SNAPSHOT",
}  # fmt: skip
WS_CANDLE: dict[str, Any] = {
    "type": "candle.1s", "code": "KRW-USDT", "candle_date_time_utc": "2025-04-22T09:50:34",
    "candle_date_time_kst": "2025-04-22T18:50:34", "opening_price": 1438, "high_price": 1438,
    "low_price": 1438, "trade_price": 1438, "candle_acc_trade_volume": 1145.8935,
    "candle_acc_trade_price": 1647794.853, "timestamp": 1745315434125,
    "stream_type": "REALTIME",
}  # fmt: skip

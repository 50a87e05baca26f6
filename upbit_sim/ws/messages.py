"""Upbit WebSocket messages from the engine's records, and their frame payloads.

The ``render_*`` functions turn an engine record into one message with Upbit's
DEFAULT keys and the given ``stream_type``; :func:`snapshot_message` and
:func:`realtime_message` choose the record a subscription gets (the engine's
current state for SNAPSHOT, the market event for REALTIME); :func:`encode`
writes one message as the frame payload of a format (SIMPLE keys and/or a
one-element list, always UTF-8 JSON bytes).
"""

from __future__ import annotations

from typing import Any

import orjson

from quotation.models import CandleInterval
from quotation.websocket.subscription import DataType, WsFormat
from quotation.wire_keys import to_simple_keys
from upbit_sim.engine import MarketEngine
from upbit_sim.records import (
    MarketEvent,
    SimCandle,
    SimOrderbook,
    SimTicker,
    SimTrade,
)
from upbit_sim.wire import KST_OFFSET_MS, datetime_text, utc_text, zero_as_int
from upbit_sim.ws.request import FULL_DEPTH, SubscriptionSpec

__all__ = [
    "encode",
    "realtime_message",
    "render_candle",
    "render_orderbook",
    "render_ticker",
    "render_trade",
    "snapshot_message",
]


def render_trade(trade: SimTrade, stream_type: str) -> dict[str, Any]:
    """A WebSocket ``trade`` message with DEFAULT keys."""
    ts = trade.timestamp
    return {
        "type": "trade",
        "code": trade.market,
        "trade_price": trade.trade_price,
        "trade_volume": trade.trade_volume,
        "ask_bid": trade.ask_bid.value,
        "prev_closing_price": trade.prev_closing_price,
        "change": trade.change.value,
        "change_price": zero_as_int(abs(trade.change_price)),
        "trade_date": utc_text(ts, "%Y-%m-%d"),
        "trade_time": utc_text(ts, "%H:%M:%S"),
        "trade_timestamp": ts,
        "timestamp": ts,
        "sequential_id": trade.sequential_id,
        "best_ask_price": trade.best_ask_price,
        "best_ask_size": trade.best_ask_size,
        "best_bid_price": trade.best_bid_price,
        "best_bid_size": trade.best_bid_size,
        "stream_type": stream_type,
    }


def render_ticker(ticker: SimTicker, stream_type: str) -> dict[str, Any]:
    """A WebSocket ``ticker`` message with DEFAULT keys."""
    ts = ticker.trade_timestamp
    return {
        "type": "ticker",
        "code": ticker.market,
        "opening_price": ticker.opening_price,
        "high_price": ticker.high_price,
        "low_price": ticker.low_price,
        "trade_price": ticker.trade_price,
        "prev_closing_price": ticker.prev_closing_price,
        "change": ticker.change.value,
        "change_price": zero_as_int(ticker.change_price),
        "signed_change_price": zero_as_int(ticker.signed_change_price),
        "change_rate": zero_as_int(ticker.change_rate),
        "signed_change_rate": zero_as_int(ticker.signed_change_rate),
        "trade_volume": ticker.trade_volume,
        "acc_trade_volume": ticker.acc_trade_volume,
        "acc_trade_volume_24h": ticker.acc_trade_volume_24h,
        "acc_trade_price": ticker.acc_trade_price,
        "acc_trade_price_24h": ticker.acc_trade_price_24h,
        "trade_date": utc_text(ts, "%Y%m%d"),
        "trade_time": utc_text(ts, "%H%M%S"),
        "trade_timestamp": ts,
        "ask_bid": ticker.ask_bid.value,
        "acc_ask_volume": ticker.acc_ask_volume,
        "acc_bid_volume": ticker.acc_bid_volume,
        "highest_52_week_price": ticker.highest_52_week_price,
        "highest_52_week_date": ticker.highest_52_week_date,
        "lowest_52_week_price": ticker.lowest_52_week_price,
        "lowest_52_week_date": ticker.lowest_52_week_date,
        "market_state": ticker.market_state,
        "is_trading_suspended": False,
        "delisting_date": None,
        "market_warning": "NONE",
        "timestamp": ticker.timestamp,
        "stream_type": stream_type,
    }


def render_orderbook(book: SimOrderbook, depth: int, stream_type: str) -> dict[str, Any]:
    """A WebSocket ``orderbook`` message with DEFAULT keys, the top ``depth`` rows."""
    return {
        "type": "orderbook",
        "code": book.market,
        "timestamp": book.timestamp,
        "total_ask_size": book.total_ask_size,
        "total_bid_size": book.total_bid_size,
        "orderbook_units": [
            {
                "ask_price": unit.ask_price,
                "bid_price": unit.bid_price,
                "ask_size": unit.ask_size,
                "bid_size": unit.bid_size,
            }
            for unit in book.units[:depth]
        ],
        "level": book.level,
        "stream_type": stream_type,
    }


def render_candle(candle: SimCandle, stream_type: str) -> dict[str, Any]:
    """A WebSocket ``candle.*`` message with DEFAULT keys."""
    start = candle.start
    return {
        "type": candle.interval.ws_type,
        "code": candle.market,
        "candle_date_time_utc": datetime_text(start),
        "candle_date_time_kst": datetime_text(start + KST_OFFSET_MS),
        "opening_price": candle.opening_price,
        "high_price": candle.high_price,
        "low_price": candle.low_price,
        "trade_price": candle.trade_price,
        "candle_acc_trade_volume": candle.candle_acc_trade_volume,
        "candle_acc_trade_price": candle.candle_acc_trade_price,
        "timestamp": candle.timestamp,
        "stream_type": stream_type,
    }


def encode(message: dict[str, Any], fmt: WsFormat) -> bytes:
    """One DEFAULT-key message as the frame payload of ``fmt``."""
    body: Any = to_simple_keys(message) if fmt.simple_keys else message
    if fmt.is_list:
        body = [body]
    return orjson.dumps(body)


def snapshot_message(
    engine: MarketEngine, spec: SubscriptionSpec, code: str, depth: int
) -> dict[str, Any] | None:
    """The SNAPSHOT message of ``spec`` for ``code``; ``None`` if the engine has none."""
    if not engine.has_market(code):
        return None
    if spec.type is DataType.TICKER:
        return render_ticker(engine.ticker(code), "SNAPSHOT")
    if spec.type is DataType.TRADE:
        trade = engine.latest_trade(code)
        return render_trade(trade, "SNAPSHOT") if trade is not None else None
    if spec.type is DataType.ORDERBOOK:
        book = engine.orderbook(code, FULL_DEPTH, spec.level)
        return render_orderbook(book, depth, "SNAPSHOT")
    interval = spec.type.candle_interval
    assert interval is not None  # noqa: S101 - every other type is a candle
    candles = engine.candles(code, interval, 1)
    return render_candle(candles[0], "SNAPSHOT") if candles else None


def realtime_message(
    engine: MarketEngine, event: MarketEvent, spec: SubscriptionSpec, market: str, depth: int
) -> dict[str, Any] | None:
    """The REALTIME message of ``spec`` for ``event``; ``None`` if it carries none."""
    data_type = spec.type
    if data_type is DataType.TRADE:
        return render_trade(event.trade, "REALTIME")
    if data_type is DataType.TICKER:
        return render_ticker(event.ticker, "REALTIME")
    if data_type is DataType.ORDERBOOK:
        book = event.orderbook
        if spec.level > 0:
            book = engine.orderbook(market, FULL_DEPTH, spec.level)
        return render_orderbook(book, depth, "REALTIME")
    interval: CandleInterval | None = data_type.candle_interval
    candle = event.candle(interval) if interval is not None else None
    return render_candle(candle, "REALTIME") if candle is not None else None

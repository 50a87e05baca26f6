"""The simulator's records rendered as Upbit's REST JSON objects: same keys, order and JSON types.

Types follow the recorded real answers: prices, volumes and rates are JSON
doubles (``103460000.0``), timestamps and ``unit`` integers, except that a
ticker's change fields are the integer ``0`` when the price is unchanged; order-book unit
prices are written as integers when they are whole (``103493000``) and as
doubles otherwise, ``level`` likewise; tick sizes and levels of
``orderbook/instruments`` are strings.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from quotation.models import CandleInterval
from upbit_sim.catalogue import CAUTION_KEYS, MarketInfo, format_decimal
from upbit_sim.records import SimCandle, SimOrderbook, SimTicker, SimTrade

__all__ = [
    "KST_OFFSET_MS",
    "candle_json",
    "date_utc",
    "datetime_text",
    "instrument_json",
    "market_json",
    "orderbook_json",
    "ticker_json",
    "trade_json",
    "utc_text",
    "whole_or_float",
    "zero_as_int",
]

KST_OFFSET_MS = 9 * 3_600_000
_PERIOD_INTERVALS = frozenset({CandleInterval.WEEK, CandleInterval.MONTH, CandleInterval.YEAR})


def utc_text(ts_ms: int, pattern: str) -> str:
    """``ts_ms`` (ms since the epoch) in UTC, formatted by ``time.strftime`` ``pattern``."""
    return time.strftime(pattern, time.gmtime(ts_ms // 1000))


def date_utc(ts_ms: int) -> str:
    """``yyyy-MM-dd`` of ``ts_ms`` in UTC."""
    return utc_text(ts_ms, "%Y-%m-%d")


def datetime_text(ts_ms: int) -> str:
    """``yyyy-MM-ddTHH:mm:ss`` without a zone, as candles write their times."""
    return utc_text(ts_ms, "%Y-%m-%dT%H:%M:%S")


def whole_or_float(value: float) -> int | float:
    """``103493000`` for a whole number, the float otherwise (order-book prices, ``level``)."""
    return int(value) if float(value).is_integer() else float(value)


def zero_as_int(value: float) -> int | float:
    """Change fields: Upbit writes an unchanged price as the integer ``0``, never ``0.0``."""
    return 0 if value == 0 else float(value)


def market_json(info: MarketInfo, *, details: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "market": info.market,
        "korean_name": info.korean_name,
        "english_name": info.english_name,
    }
    if details:
        body["market_event"] = {
            "warning": info.warning,
            "caution": {key: key in info.cautions for key in CAUTION_KEYS},
        }
    return body


def ticker_json(ticker: SimTicker) -> dict[str, Any]:
    ts = ticker.trade_timestamp
    return {
        "market": ticker.market,
        "trade_date": utc_text(ts, "%Y%m%d"),
        "trade_time": utc_text(ts, "%H%M%S"),
        "trade_date_kst": utc_text(ts + KST_OFFSET_MS, "%Y%m%d"),
        "trade_time_kst": utc_text(ts + KST_OFFSET_MS, "%H%M%S"),
        "trade_timestamp": ts,
        "opening_price": float(ticker.opening_price),
        "high_price": float(ticker.high_price),
        "low_price": float(ticker.low_price),
        "trade_price": float(ticker.trade_price),
        "prev_closing_price": float(ticker.prev_closing_price),
        "change": ticker.change.value,
        "change_price": zero_as_int(ticker.change_price),
        "change_rate": zero_as_int(ticker.change_rate),
        "signed_change_price": zero_as_int(ticker.signed_change_price),
        "signed_change_rate": zero_as_int(ticker.signed_change_rate),
        "trade_volume": float(ticker.trade_volume),
        "acc_trade_price": float(ticker.acc_trade_price),
        "acc_trade_price_24h": float(ticker.acc_trade_price_24h),
        "acc_trade_volume": round(ticker.acc_trade_volume, 8),
        "acc_trade_volume_24h": round(ticker.acc_trade_volume_24h, 8),
        "highest_52_week_price": float(ticker.highest_52_week_price),
        "highest_52_week_date": ticker.highest_52_week_date,
        "lowest_52_week_price": float(ticker.lowest_52_week_price),
        "lowest_52_week_date": ticker.lowest_52_week_date,
        "timestamp": ticker.timestamp,
    }


def candle_json(candle: SimCandle, *, converted_price: float | None = None) -> dict[str, Any]:
    """A REST candle; ``converted_price`` adds ``converted_trade_price`` (day candles)."""
    body: dict[str, Any] = {
        "market": candle.market,
        "candle_date_time_utc": datetime_text(candle.start),
        "candle_date_time_kst": datetime_text(candle.start + KST_OFFSET_MS),
        "opening_price": float(candle.opening_price),
        "high_price": float(candle.high_price),
        "low_price": float(candle.low_price),
        "trade_price": float(candle.trade_price),
        "timestamp": candle.timestamp,
        "candle_acc_trade_price": float(candle.candle_acc_trade_price),
        "candle_acc_trade_volume": round(candle.candle_acc_trade_volume, 8),
    }
    interval = candle.interval
    unit = interval.minutes
    if unit is not None:
        body["unit"] = unit
    elif interval is CandleInterval.DAY:
        prev = candle.prev_closing_price
        if prev is None:
            prev = candle.opening_price
        change = round(candle.trade_price - prev, 10)
        body["prev_closing_price"] = float(prev)
        body["change_price"] = float(change)
        body["change_rate"] = round(change / prev, 10) if prev else 0.0
        if converted_price is not None:
            body["converted_trade_price"] = float(converted_price)
    elif interval in _PERIOD_INTERVALS:
        body["first_day_of_period"] = date_utc(candle.start)
    return body


def trade_json(trade: SimTrade) -> dict[str, Any]:
    ts = trade.timestamp
    return {
        "market": trade.market,
        "trade_date_utc": utc_text(ts, "%Y-%m-%d"),
        "trade_time_utc": utc_text(ts, "%H:%M:%S"),
        "timestamp": ts,
        "trade_price": float(trade.trade_price),
        "trade_volume": float(trade.trade_volume),
        "prev_closing_price": float(trade.prev_closing_price),
        "change_price": float(trade.change_price),
        "ask_bid": trade.ask_bid.value,
        "sequential_id": trade.sequential_id,
    }


def orderbook_json(book: SimOrderbook) -> dict[str, Any]:
    return {
        "market": book.market,
        "timestamp": book.timestamp,
        "total_ask_size": float(book.total_ask_size),
        "total_bid_size": float(book.total_bid_size),
        "orderbook_units": [
            {
                "bid_price": whole_or_float(unit.bid_price),
                "bid_size": float(unit.bid_size),
                "ask_price": whole_or_float(unit.ask_price),
                "ask_size": float(unit.ask_size),
            }
            for unit in book.units
        ],
        "level": whole_or_float(book.level),
    }


def instrument_json(info: MarketInfo, tick: Decimal, levels: tuple[Decimal, ...]) -> dict[str, Any]:
    return {
        "market": info.market,
        "quote_currency": info.quote,
        "tick_size": format_decimal(tick),
        "supported_levels": [format_decimal(level) for level in levels],
    }

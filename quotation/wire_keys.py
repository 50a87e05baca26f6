"""Upbit's WebSocket key tables: DEFAULT (full) keys and their SIMPLE abbreviations.

Upbit sends each WebSocket data message either with full keys (``"format": "DEFAULT"``)
or with abbreviated ones (``"SIMPLE"``); the values are identical. These tables are
the one place that knows the abbreviations (``../shared/upbit-api.md`` §3.5), for the
parser, for the simulator (which speaks both) and for tests that convert recordings
from one format to the other.

``SIMPLE_KEYS[kind]`` maps a DEFAULT key to its SIMPLE key, where ``kind`` is the
message kind ``ticker``, ``trade``, ``orderbook`` or ``candle`` (every ``candle.*``
type shares one table); ``ORDERBOOK_UNIT_SIMPLE_KEYS`` does the same for the
objects inside ``orderbook_units``. Keys missing from a table (future fields) are
passed through unchanged by the converters.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEFAULT_KEYS",
    "ORDERBOOK_UNIT_DEFAULT_KEYS",
    "ORDERBOOK_UNIT_SIMPLE_KEYS",
    "SIMPLE_KEYS",
    "message_kind",
    "to_default_keys",
    "to_simple_keys",
]

_COMMON = {"type": "ty", "code": "cd", "timestamp": "tms", "stream_type": "st"}

_TICKER = {
    **_COMMON,
    "opening_price": "op",
    "high_price": "hp",
    "low_price": "lp",
    "trade_price": "tp",
    "prev_closing_price": "pcp",
    "change": "c",
    "change_price": "cp",
    "signed_change_price": "scp",
    "change_rate": "cr",
    "signed_change_rate": "scr",
    "trade_volume": "tv",
    "acc_trade_volume": "atv",
    "acc_trade_volume_24h": "atv24h",
    "acc_trade_price": "atp",
    "acc_trade_price_24h": "atp24h",
    "trade_date": "tdt",
    "trade_time": "ttm",
    "trade_timestamp": "ttms",
    "ask_bid": "ab",
    "acc_ask_volume": "aav",
    "acc_bid_volume": "abv",
    "highest_52_week_price": "h52wp",
    "highest_52_week_date": "h52wdt",
    "lowest_52_week_price": "l52wp",
    "lowest_52_week_date": "l52wdt",
    "market_state": "ms",
    "delisting_date": "dd",
    # Deprecated, still seen in older payloads.
    "is_trading_suspended": "its",
    "market_warning": "mw",
    "trade_status": "ts",
    "market_state_for_ios": "msfi",
}

_TRADE = {
    **_COMMON,
    "trade_price": "tp",
    "trade_volume": "tv",
    "ask_bid": "ab",
    "prev_closing_price": "pcp",
    "change": "c",
    "change_price": "cp",
    "trade_date": "td",
    "trade_time": "ttm",
    "trade_timestamp": "ttms",
    "sequential_id": "sid",
    "best_ask_price": "bap",
    "best_ask_size": "bas",
    "best_bid_price": "bbp",
    "best_bid_size": "bbs",
}

_ORDERBOOK = {
    **_COMMON,
    "total_ask_size": "tas",
    "total_bid_size": "tbs",
    "orderbook_units": "obu",
    "level": "lv",
}

_CANDLE = {
    **_COMMON,
    "candle_date_time_utc": "cdttmu",
    "candle_date_time_kst": "cdttmk",
    "opening_price": "op",
    "high_price": "hp",
    "low_price": "lp",
    "trade_price": "tp",
    "candle_acc_trade_volume": "catv",
    "candle_acc_trade_price": "catp",
}

SIMPLE_KEYS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "ticker": MappingProxyType(_TICKER),
        "trade": MappingProxyType(_TRADE),
        "orderbook": MappingProxyType(_ORDERBOOK),
        "candle": MappingProxyType(_CANDLE),
    }
)
"""Per message kind: DEFAULT key → SIMPLE key."""

DEFAULT_KEYS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        kind: MappingProxyType({simple: default for default, simple in table.items()})
        for kind, table in SIMPLE_KEYS.items()
    }
)
"""Per message kind: SIMPLE key → DEFAULT key (the inverse of ``SIMPLE_KEYS``)."""

ORDERBOOK_UNIT_SIMPLE_KEYS: Mapping[str, str] = MappingProxyType(
    {"ask_price": "ap", "bid_price": "bp", "ask_size": "as", "bid_size": "bs"}
)
"""Keys inside ``orderbook_units``: DEFAULT → SIMPLE."""

ORDERBOOK_UNIT_DEFAULT_KEYS: Mapping[str, str] = MappingProxyType(
    {simple: default for default, simple in ORDERBOOK_UNIT_SIMPLE_KEYS.items()}
)
"""Keys inside ``orderbook_units``: SIMPLE → DEFAULT."""


def message_kind(message_type: str) -> str | None:
    """The key-table kind of a message type: ``candle.5m`` → ``candle``; ``None`` if unknown."""
    if message_type.startswith("candle."):
        return "candle"
    return message_type if message_type in SIMPLE_KEYS else None


def to_simple_keys(message: Mapping[str, Any]) -> dict[str, Any]:
    """The same data message with SIMPLE keys; ``message`` must have DEFAULT keys.

    Unknown keys (and the whole message, if its ``type`` is unknown) pass through.
    """
    return _convert(message, "type", SIMPLE_KEYS, ORDERBOOK_UNIT_SIMPLE_KEYS)


def to_default_keys(message: Mapping[str, Any]) -> dict[str, Any]:
    """The same data message with DEFAULT keys; ``message`` must have SIMPLE keys.

    Unknown keys (and the whole message, if its ``ty`` is unknown) pass through.
    """
    return _convert(message, "ty", DEFAULT_KEYS, ORDERBOOK_UNIT_DEFAULT_KEYS)


def _convert(
    message: Mapping[str, Any],
    type_key: str,
    tables: Mapping[str, Mapping[str, str]],
    unit_table: Mapping[str, str],
) -> dict[str, Any]:
    message_type = message.get(type_key)
    kind = message_kind(message_type) if isinstance(message_type, str) else None
    if kind is None:
        return dict(message)
    table = tables[kind]
    converted: dict[str, Any] = {}
    for key, value in message.items():
        new_key = table.get(key, key)
        is_units = new_key in ("orderbook_units", "obu") and isinstance(value, list)
        converted[new_key] = (
            [
                {unit_table.get(k, k): v for k, v in unit.items()}
                if isinstance(unit, Mapping)
                else unit
                for unit in value
            ]
            if kind == "orderbook" and is_units
            else value
        )
    return converted

"""Upbit Quotation API: canonical model, REST and WebSocket clients, rate limiter, simulator."""

from quotation.clock import Clock, SystemClock
from quotation.errors import (
    Banned,
    FormatError,
    InvalidRequest,
    QuotationError,
    RateLimited,
    ServerError,
    SubscriptionError,
    TransportError,
    WebSocketError,
)
from quotation.models import (
    Candle,
    CandleInterval,
    Change,
    Market,
    Orderbook,
    OrderbookInstrument,
    OrderbookLevel,
    Side,
    StreamType,
    Ticker,
    Trade,
)

__all__ = [
    "Banned",
    "Candle",
    "CandleInterval",
    "Change",
    "Clock",
    "FormatError",
    "InvalidRequest",
    "Market",
    "Orderbook",
    "OrderbookInstrument",
    "OrderbookLevel",
    "QuotationError",
    "RateLimited",
    "ServerError",
    "Side",
    "StreamType",
    "SubscriptionError",
    "SystemClock",
    "Ticker",
    "Trade",
    "TransportError",
    "WebSocketError",
]

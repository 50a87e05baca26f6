"""Upbit's Quotation API: the canonical model, the REST and WebSocket clients, the rate limiter.

Upbit's protocol only (it imports nothing else of Lifeline): ``models``, ``errors``,
``clock``, ``backoff``, ``parsing`` and ``wire_keys`` here; the REST client in
``quotation.rest``, the WebSocket client in ``quotation.websocket``.
"""

import logging

from quotation.clock import Clock, SystemClock
from quotation.errors import (
    Banned,
    BodyTooLarge,
    FormatError,
    IncompleteAnswer,
    InvalidRequest,
    InvalidValue,
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
from quotation.rest import RateLimiter, RestClient, RestConfig
from quotation.websocket import WebSocketClient, WebSocketConfig

__all__ = [
    "Banned",
    "BodyTooLarge",
    "Candle",
    "CandleInterval",
    "Change",
    "Clock",
    "FormatError",
    "IncompleteAnswer",
    "InvalidRequest",
    "InvalidValue",
    "Market",
    "Orderbook",
    "OrderbookInstrument",
    "OrderbookLevel",
    "QuotationError",
    "RateLimited",
    "RateLimiter",
    "RestClient",
    "RestConfig",
    "ServerError",
    "Side",
    "StreamType",
    "SubscriptionError",
    "SystemClock",
    "Ticker",
    "Trade",
    "TransportError",
    "WebSocketClient",
    "WebSocketConfig",
    "WebSocketError",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
"""The library never configures logging (only the ``lifeline`` CLI does): without a
handler of the host's, nothing of ours reaches stderr."""

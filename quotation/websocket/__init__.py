"""Upbit's public WebSocket: one client that keeps a subscription alive and its data cached.

Modules: ``client`` (:class:`WebSocketClient`: connect, receive loop, reconnect),
``config``, ``transport`` (websocket-client underneath), ``subscription`` (request
frames), ``status``, ``liveness`` (keepalive and silent-death rules), ``pacing``
(Upbit's connect and message limits), ``ingest`` (frames into records), ``dedup``,
``delivery`` (bounded hand-over to consumers), ``cache`` (latest data with ages),
``gapfill`` and ``gapworker`` (REST fills of trade holes after a reconnect).
"""

from quotation.websocket.cache import Cached, StreamCache, StreamItem
from quotation.websocket.client import WebSocketClient
from quotation.websocket.config import UPBIT_WEBSOCKET_URL, WebSocketConfig
from quotation.websocket.liveness import KeepaliveMode, LivenessConfig
from quotation.websocket.status import CloseReason, ConnectionState, WebSocketStatus
from quotation.websocket.subscription import DataType, Subscription, WsFormat

__all__ = [
    "UPBIT_WEBSOCKET_URL",
    "Cached",
    "CloseReason",
    "ConnectionState",
    "DataType",
    "KeepaliveMode",
    "LivenessConfig",
    "StreamCache",
    "StreamItem",
    "Subscription",
    "WebSocketClient",
    "WebSocketConfig",
    "WebSocketStatus",
    "WsFormat",
]

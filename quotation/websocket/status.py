"""Where a WebSocket client stands: its connection state, why connections ended, its counters.

:class:`WebSocketStatus` is an immutable snapshot (``client.status()``) that a
health probe or an actor can read from any thread; times are on the client's
monotonic clock.

``state=IDLE`` with ``subscriptions=0`` is a client idle *by design* (nothing to
subscribe, so no connection is wanted): a health probe must not read it as down.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CloseReason", "ConnectionState", "WebSocketStatus"]


class ConnectionState(enum.Enum):
    """Where the client's one connection is in its lifecycle."""

    IDLE = "idle"
    """No connection wanted: the client has no subscriptions (idle by design), or is not
    started yet. It connects as soon as it is given a non-empty subscription set."""
    CONNECTING = "connecting"
    SUBSCRIBED = "subscribed"
    """Request sent, no data yet: not counted as recovered."""
    LIVE = "live"
    """Fresh data arrived on this connection."""
    BACKING_OFF = "backing_off"
    REJECTED = "rejected"
    """The server refused the subscription (error frame); the client stopped."""
    STOPPED = "stopped"


class CloseReason(enum.Enum):
    """Why the last connection ended (or an attempt failed)."""

    CONNECT_FAILED = "connect_failed"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    """TCP connect, TLS and the HTTP upgrade together took over ``connect_timeout`` (e.g. a
    server dripping its answer): the socket was shut at the deadline; a failed connect."""
    SERVER_CLOSED = "server_closed"
    CONNECTION_LOST = "connection_lost"
    MISSED_PONG = "missed_pong"
    SILENT = "silent"
    REJECTED = "rejected"
    RECONNECT_REQUESTED = "reconnect_requested"
    FRAME_TOO_LARGE = "frame_too_large"
    """A frame's header declared more than ``max_frame_bytes``: closed (1009) before its
    payload was read, counted as a connection failure (``connect_failures``, backoff)."""
    UNSUBSCRIBED = "unsubscribed"
    """The subscription set was emptied: closed on purpose (close frame 1000), not a
    failure — no backoff, and the next connection is a fresh start, not a recovery."""
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class WebSocketStatus:
    """A snapshot of the client's counters and state (monotonic times)."""

    state: ConnectionState
    subscriptions: int
    """Data type objects currently asked for; 0 means idle by design (no connection wanted)."""
    idle_since: float | None
    """When the client went idle for want of subscriptions; ``None`` while it is not idle."""
    connects: int
    """Successful connection handshakes."""
    connect_failures: int
    """Connection attempts that failed: the handshake (``CONNECT_FAILED``,
    ``HANDSHAKE_TIMEOUT``), or a connection
    closed for an oversized frame (``FRAME_TOO_LARGE``)."""
    recoveries: int
    """Reconnects after a broken connection that delivered fresh data (the first connection,
    and the first after an idle period, are fresh starts, not recoveries)."""
    frames: int
    messages: int
    """Data messages turned into canonical objects."""
    ignored: int
    """``{"status":"UP"}`` and other non-data messages."""
    malformed: int
    """Frames or list items skipped as malformed; a JSON list over ``max_items_per_frame``
    items counts once, as one frame."""
    duplicates: int
    gaps: int
    gap_filled: int
    """Trades recovered from REST after reconnects."""
    gap_fills: int
    """Gap fills finished and merged into the stream."""
    gap_fills_pending: int
    """Gap fills waiting for or running on the gap-fill worker (their markets' trades are held)."""
    gap_fills_abandoned: int
    """Gap fills given up (hold buffer full, or the client stopped); each left a ``TradeGap``."""
    held_trades: int
    """Live trades held back until their market's pending gap fill is merged."""
    last_gap_fill_seconds: float | None
    """How long the last merged gap fill spent in REST (client clock)."""
    dropped: int
    """Items consumers never got because the delivery buffer was full."""
    keepalives_answered: int
    """PONG frames and ``{"status":"UP"}`` answers received."""
    last_close: CloseReason | None
    last_error: str | None
    connected_at: float | None
    live_at: float | None

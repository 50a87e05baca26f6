"""The Upbit Quotation WebSocket client: one connection, kept alive, always resubscribed.

:class:`WebSocketClient` owns one ``websocket-client`` connection (Origin header
suppressed, reads buffered by :mod:`quotation.websocket.transport`) and one receive
thread. This module is the connection's lifecycle: connect, subscribe, watch
liveness, reconnect. What happens to each frame (decode, normalise, de-duplicate,
gap fill, cache, hand-off to a bounded batch dispatcher whose consumers run on
another thread and can never stall the socket) is :mod:`quotation.websocket.ingest`.

Lifecycle of one connection (see :class:`ConnectionState`)::

    IDLE ─(non-empty subscriptions)─► CONNECTING ─► SUBSCRIBED ─(first data)─► LIVE
      ▲                                  ▲              │                         │
      │                                  │              └──(close/error/dead)─────┤
      │                                  └─────────── BACKING_OFF ◄───────────────┘
      └──────(subscriptions emptied: a deliberate close, from any state)──────────┘
    an error frame (WRONG_FORMAT, NO_TICKET, …) ─► REJECTED (no retry: the request is wrong)

Rules:

* A client without subscriptions is IDLE: it does not connect, uses no connect
  slot and its receive thread sleeps on a condition until
  :meth:`~WebSocketClient.set_subscriptions` gives it a non-empty set (or
  :meth:`~WebSocketClient.stop`). This is how the WebSocket fallback stands by.
  Emptying the set of a connected client closes the connection cleanly (close
  frame 1000) at the receive loop's next liveness tick and returns to IDLE: a
  deliberate close (:attr:`CloseReason.UNSUBSCRIBED`), not a failure — no
  backoff, no gap fill, and the next connection is a fresh start, not a recovery.

* Every (re)connect sends the *full* subscription set in one request frame with a
  new ticket. Connects are paced (Upbit: 5/s) and so are sent messages (5/s,
  100/min per connection).
* Between attempts the client waits ``config.backoff.delay(n + 1, random())`` after ``n``
  failures in a row (:class:`~quotation.backoff.Backoff`, by default full jitter up to
  ``min(30, 0.5 * 2 ** n)`` s). The failure count resets only once a connection has
  stayed subscribed with every liveness check passed for ``healthy_after`` seconds
  (30 s, client clock): a server that sends a frame and drops the connection sooner
  is still failing, and the waits keep growing. A reconnect *counts as recovered*
  (``recoveries``) when it delivers fresh data, not when the handshake succeeds.
* The handshake (TCP connect, TLS, HTTP upgrade) has ``connect_timeout`` as a whole
  (:func:`~quotation.websocket.transport.open_connection`): past it the socket is shut
  and the attempt fails (:attr:`CloseReason.HANDSHAKE_TIMEOUT`, a failure), and
  :meth:`~WebSocketClient.stop` cuts a handshake in progress short.
* Liveness (:mod:`quotation.websocket.liveness`): keepalive every ``ping_interval``; an
  unanswered keepalive for ``pong_timeout`` or nothing received for
  ``idle_timeout`` closes the socket and reconnects. Data staleness is the
  cache's business and never closes a connection.
* Malformed frames (bad JSON, bad fields, a JSON list over ``max_items_per_frame``
  items) are counted and skipped; the connection stays up.
* A frame (or fragmented message) whose header declares more than
  ``max_frame_bytes`` is refused before its payload is read
  (:mod:`quotation.websocket.transport`): the connection is closed with status 1009
  and the client reconnects (:attr:`CloseReason.FRAME_TOO_LARGE`), counted as a
  failed connection even if it had gone live, so the backoff grows.
* Every connection's socket is closed when it ends, whoever closed first.
* Trades are de-duplicated by ``sequential_id``. After a reconnect, the first new
  trade of each market starts a REST gap fill (:mod:`quotation.websocket.gapfill`) on
  the gap-fill worker thread (:mod:`quotation.websocket.gapworker`), never on the
  receive thread, which keeps reading the socket (pongs, control frames, other
  markets). That market's trades are held until the fill is merged, so
  consumers see the missed trades first; a hole that could not be filled is
  delivered and cached as a :class:`~quotation.models.TradeGap`. While fills are
  pending the receive loop wakes every ``_MERGE_POLL`` seconds to merge them. At most
  one REST fill per market per ``gap_fill_min_interval`` (10 s): holes found sooner
  wait and are filled together by one fill once it has passed.
* Gaps are holes in a *subscribed* stream. A market dropped from the realtime
  trade subscription (or every market, when the set is emptied) is forgotten:
  no gap is expected for it, and when it is subscribed again it starts fresh
  from its first new trade (what traded while it was unsubscribed is not a hole
  and is not fetched). Trade ids stay remembered, so a trade already delivered
  is never delivered again. Fills still pending when the connection is closed on
  purpose are given up and their holes marked, as on :meth:`~WebSocketClient.stop`.
"""

from __future__ import annotations

import logging
import random as _random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import websocket as _ws

from quotation.clock import Clock, SystemClock
from quotation.errors import SubscriptionError
from quotation.redact import redact_url
from quotation.websocket.cache import StreamCache, StreamItem
from quotation.websocket.config import UPBIT_WEBSOCKET_URL, WebSocketConfig
from quotation.websocket.delivery import BatchConsumer, BatchDispatcher
from quotation.websocket.gapfill import TradeSource
from quotation.websocket.gapworker import GapFillWorker
from quotation.websocket.ingest import FrameIngest
from quotation.websocket.liveness import KeepaliveMode, Verdict, assess
from quotation.websocket.pacing import Pacer
from quotation.websocket.status import CloseReason, ConnectionState, WebSocketStatus
from quotation.websocket.subscription import (
    DataType,
    Subscription,
    build_request,
    new_ticket,
)
from quotation.websocket.transport import (
    MAX_FRAME_BYTES,
    ConnectAttempt,
    ConnectCancelled,
    FrameTooLarge,
    HandshakeTimeout,
    open_connection,
)

__all__ = [
    "UPBIT_WEBSOCKET_URL",
    "CloseReason",
    "ConnectionState",
    "Connector",
    "WebSocketClient",
    "WebSocketConfig",
    "WebSocketLike",
    "WebSocketStatus",
    "default_connector",
]

logger = logging.getLogger(__name__)

_DATA_OPCODES = frozenset({_ws.ABNF.OPCODE_TEXT, _ws.ABNF.OPCODE_BINARY})
_OPCODE_PONG = _ws.ABNF.OPCODE_PONG
_OPCODE_CLOSE = _ws.ABNF.OPCODE_CLOSE
_MAX_PAUSE_SLICE = 0.1
"""Longest single sleep while waiting, so ``stop()`` is never kept waiting long."""
_MERGE_POLL = 0.05
"""Socket read timeout while gap fills are pending (running, or waiting for their interval),
so a finished or due fill is handled soon even when the socket is quiet (otherwise the
receive loop wakes every liveness tick)."""


class WebSocketLike(Protocol):
    """What the client needs of a connection (``websocket.WebSocket`` fits)."""

    def send(self, payload: bytes | str, opcode: int = ...) -> int: ...

    def ping(self, payload: str | bytes = ...) -> None: ...

    def recv_data(self, control_frame: bool = ...) -> tuple[int, Any]: ...

    def settimeout(self, timeout: float | None) -> None: ...

    def abort(self) -> None: ...

    def close(self, status: int = ..., reason: bytes = ..., timeout: int = ...) -> None: ...

    def shutdown(self) -> None:
        """Close the socket at once, whatever state the connection is in."""


Connector = Callable[[str, float], WebSocketLike]
"""Opens a connection to ``url`` within ``timeout`` seconds (raises on failure)."""


def default_connector(
    url: str, timeout: float, *, max_frame_bytes: int = MAX_FRAME_BYTES
) -> WebSocketLike:
    """A buffered ``websocket-client`` connection without an Origin header, frames limited."""
    conn: WebSocketLike = open_connection(url, timeout, max_frame_bytes=max_frame_bytes)
    return conn


class WebSocketClient:
    """One Upbit WebSocket connection, its liveness, recovery and realtime cache.

    With no subscriptions (``config.subscriptions`` empty, or emptied later by
    :meth:`set_subscriptions`) the started client stays IDLE without a
    connection; ``status()`` then shows ``state=IDLE``, ``subscriptions=0`` and
    ``idle_since``, so a health probe can tell "idle by design" from "down".

    ``trade_source`` (e.g. a ``RestClient``) fills missed trades after reconnects;
    without one, holes are only marked. ``clock``, ``random`` and ``connector``
    are injected for tests and never patched.
    """

    def __init__(
        self,
        config: WebSocketConfig,
        *,
        clock: Clock | None = None,
        trade_source: TradeSource | None = None,
        random: Callable[[], float] | None = None,
        connector: Connector | None = None,
        cache: StreamCache | None = None,
        connect_pacer: Pacer | None = None,
    ) -> None:
        self._config = config
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._trade_source = trade_source
        self._random = random if random is not None else _random.random
        self._connector = connector
        """A custom connector, or ``None``: :func:`open_connection`, which ``stop`` can cancel."""
        self._attempt: ConnectAttempt | None = None
        self._cache = (
            cache
            if cache is not None
            else StreamCache(
                max_trades=config.recent_trades, max_candles=config.candles_per_interval
            )
        )
        self._connect_pacer = (
            connect_pacer if connect_pacer is not None else Pacer(config.connect_limits)
        )
        self._message_pacer = Pacer(config.message_limits)
        self._dispatcher: BatchDispatcher[StreamItem] = BatchDispatcher(
            capacity=config.delivery_capacity
        )
        self._subscriptions = config.subscriptions
        self._resubscribe = False
        self._resume = False
        """True while the next connection continues a stream that broke (gaps expected,
        counted as a recovery once live); False for a fresh start (first, or after idle)."""

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws: WebSocketLike | None = None
        self._reconnect_requested = False
        self._error: SubscriptionError | None = None

        self._state = ConnectionState.IDLE
        self._connects = 0
        self._connect_failures = 0
        self._recoveries = 0
        self._frames = 0
        self._answered = 0
        self._last_close: CloseReason | None = None
        self._last_error: str | None = None
        self._connected_at: float | None = None
        self._live_at: float | None = None
        self._idle_since: float | None = None
        self._unanswered_since: float | None = None
        self._last_received = 0.0
        self._last_ping = 0.0
        self._gap_filler = (
            GapFillWorker(
                trade_source,
                clock=self._clock,
                page_size=config.gap_fill_page_size,
                max_pages=config.gap_fill_max_pages,
                capacity=config.gap_fill_queue_capacity,
            )
            if trade_source is not None
            else None
        )
        self._ingest = FrameIngest(
            cache=self._cache,
            dispatcher=self._dispatcher,
            gap_filler=self._gap_filler,
            dedup_capacity=config.dedup_capacity,
            hold_capacity=config.gap_fill_hold_capacity,
            min_fill_interval=config.gap_fill_min_interval,
            max_items_per_frame=config.max_items_per_frame,
            on_keepalive_answer=self._keepalive_answered,
            on_change=self._notify,
            on_fills_pending=self._fills_pending,
        )

    # -- public API ------------------------------------------------------------------------

    @property
    def config(self) -> WebSocketConfig:
        return self._config

    @property
    def cache(self) -> StreamCache:
        """The realtime cache (thread-safe; values carry their receive time)."""
        return self._cache

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def error(self) -> SubscriptionError | None:
        """The error frame that stopped the client, if any."""
        return self._error

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The subscription set asked for (empty: the client is, or is going, idle)."""
        return self._subscriptions

    def add_consumer(self, consumer: BatchConsumer[StreamItem]) -> Callable[[], None]:
        """Receive every item in batches on the delivery thread; returns a remover.

        A consumer must be quick (e.g. one pykka ``tell`` per batch); while it is
        busy, items pile up to ``delivery_capacity`` and beyond that are dropped.
        """
        return self._dispatcher.add_consumer(consumer)

    def start(self) -> None:
        """Start the receive and delivery threads; returns at once (idempotent).

        Without subscriptions the receive thread does not connect: it waits, IDLE,
        for :meth:`set_subscriptions` or :meth:`stop`.
        """
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="ws-receive", daemon=True)
        self._set_state(ConnectionState.IDLE)
        self._dispatcher.start()
        if self._gap_filler is not None:
            self._gap_filler.start()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Close the connection and stop the threads (idempotent); True if they ended in time.

        Each thread is given at most ``timeout`` seconds; an idle client's receive
        thread is woken at once. Gap fills still pending are abandoned (their holes
        marked, held trades delivered); a REST call in flight on the gap-fill worker
        is not waited for beyond that (the thread is a daemon). Returns False if the
        receive thread or the gap-fill worker was still running after its timeout.
        """
        self._stop.set()
        with self._changed:
            ws = self._ws
            attempt = self._attempt
            thread = self._thread
            self._thread = None
            self._changed.notify_all()  # wakes an idle receive thread
        if attempt is not None:
            attempt.cancel()  # a handshake in progress fails at once
        if ws is not None:
            _abort(ws)
        ended = True
        if self._gap_filler is not None:
            # Before joining the receive thread: a fill stops at its next page.
            ended = self._gap_filler.stop(timeout)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            ended = ended and not thread.is_alive()
        self._dispatcher.stop(timeout)
        self._set_state(ConnectionState.STOPPED)
        return ended

    def __enter__(self) -> WebSocketClient:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reconnect(self) -> None:
        """Drop the current connection; the client reconnects as after a failure."""
        with self._lock:
            self._reconnect_requested = True
            ws = self._ws
        if ws is not None:
            _abort(ws)

    def set_subscriptions(self, subscriptions: Sequence[Subscription]) -> None:
        """Replace the whole subscription set (a non-empty set is validated first).

        * non-empty, while connected: sent on the live connection at the receive
          loop's next liveness tick (and on every reconnect);
        * non-empty, while IDLE: the client connects and subscribes (snapshot, then
          realtime);
        * empty: the connection is closed cleanly at the next tick (or the pending
          attempt or backoff is cut short) and the client goes IDLE. A deliberate
          close, not a failure: no backoff, no gap fill for the dropped markets.

        Markets dropped from the realtime trade subscription are forgotten: adding one
        back later is a fresh start for it, not a gap (see the module docstring).
        Raises ``InvalidRequest`` for an invalid non-empty set (nothing changes then).
        """
        subs = tuple(subscriptions)
        if subs:
            build_request(subs, ticket="check", fmt=self._config.format)
        with self._changed:
            self._subscriptions = subs
            self._resubscribe = True
            self._changed.notify_all()  # wakes an idle receive thread

    def status(self) -> WebSocketStatus:
        """The current state and counters."""
        ingest = self._ingest
        return WebSocketStatus(
            state=self._state,
            subscriptions=len(self._subscriptions),
            idle_since=self._idle_since,
            connects=self._connects,
            connect_failures=self._connect_failures,
            recoveries=self._recoveries,
            frames=self._frames,
            messages=ingest.messages,
            ignored=ingest.ignored,
            malformed=ingest.malformed,
            duplicates=ingest.duplicates,
            gaps=ingest.gaps,
            gap_filled=ingest.gap_filled,
            gap_fills=ingest.gap_fills,
            gap_fills_pending=ingest.gap_fills_pending,
            gap_fills_abandoned=ingest.gap_fills_abandoned,
            held_trades=ingest.held_trades,
            last_gap_fill_seconds=ingest.last_gap_fill_seconds,
            dropped=self._dispatcher.dropped,
            keepalives_answered=self._answered,
            last_close=self._last_close,
            last_error=self._last_error or ingest.last_error,
            connected_at=self._connected_at,
            live_at=self._live_at,
        )

    def wait_until(self, predicate: Callable[[WebSocketStatus], bool], timeout: float) -> bool:
        """Block until ``predicate(status())`` holds (checked on every state/counter event)."""
        # A real wait of the calling thread (Condition.wait is real time), so real time here:
        # with a fake clock injected, the deadline must still pass.
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.status()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.05))
        return True

    def wait_live(self, timeout: float) -> bool:
        """Block until the connection delivers data (or the client gives up); True if live.

        An IDLE client does not go live: this waits the whole ``timeout`` and is False.
        """
        self.wait_until(
            lambda s: (
                s.state in (ConnectionState.LIVE, ConnectionState.REJECTED, ConnectionState.STOPPED)
            ),
            timeout,
        )
        return self._state is ConnectionState.LIVE

    def flush(self, timeout: float) -> bool:
        """Wait until every item received so far reached the consumers."""
        return self._dispatcher.flush(timeout)

    # -- the receive thread ------------------------------------------------------------------

    def _set_state(self, state: ConnectionState) -> None:
        with self._changed:
            self._state = state
            self._changed.notify_all()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _pause(self, seconds: float, *, until_unsubscribed: bool = False) -> bool:
        """Sleep on the injected clock in short slices; True once it all passed.

        Runs on the receive thread only: every slice also starts the gap fills now due
        and merges finished ones, so a backoff does not keep held trades waiting.
        False (at once, or as soon as it happens) when the client is stopping and,
        with ``until_unsubscribed`` (backoff, connect pacing), when the subscription
        set is empty.
        """
        remaining = seconds
        while True:
            if self._stop.is_set() or (until_unsubscribed and not self._subscriptions):
                return False
            if remaining <= 0:
                return True
            step = min(remaining, _MAX_PAUSE_SLICE)
            self._clock.sleep(step)
            remaining -= step
            if self._ingest.gap_fills_pending:
                # Between connections too: a fill now due starts, a finished one is merged.
                self._ingest.merge_done(self._clock.monotonic())

    def _run(self) -> None:
        failures = 0
        first = True
        try:
            while not self._stop.is_set():
                if not self._subscriptions:
                    self._idle()
                    failures, first = 0, True  # a fresh start: no backoff
                    continue
                # A pause cut short (stop, or emptied subscriptions) goes back to the top.
                if not first:
                    self._set_state(ConnectionState.BACKING_OFF)
                    # n failures in a row: attempt n + 1 waits up to initial * multiplier**n.
                    delay = self._config.backoff.delay(failures + 1, self._random())
                    if not self._pause(delay, until_unsubscribed=True):
                        continue
                first = False
                delay = self._connect_pacer.reserve(self._clock.monotonic())
                if not self._pause(delay, until_unsubscribed=True):
                    continue
                recovered = self._connect_and_serve()
                if self._last_close is CloseReason.REJECTED:
                    self._set_state(ConnectionState.REJECTED)
                    return
                if self._last_close is CloseReason.UNSUBSCRIBED:
                    failures, first = 0, True  # deliberate: not a failure, no backoff
                    continue
                failures = 0 if recovered else failures + 1
        finally:
            with self._lock:
                self._ws = None
            # No connection will merge them any more: mark the holes, deliver what was held.
            self._ingest.abandon_fills(self._clock.monotonic(), "client stopped before the fill")
            if self._state is not ConnectionState.REJECTED:
                self._set_state(ConnectionState.STOPPED)

    def _idle(self) -> None:
        """No subscriptions: forget the stream and sleep until there are some, or stop.

        Waits on the client's condition (woken by ``set_subscriptions`` and ``stop``):
        no connection, no connect slot, no polling.
        """
        self._end_stream("unsubscribed before the gap fill was merged")
        with self._changed:
            if self._subscriptions or self._stop.is_set():
                return
            self._state = ConnectionState.IDLE
            self._idle_since = self._clock.monotonic()
            self._changed.notify_all()
        logger.info("WebSocket client idle: no subscriptions")
        with self._changed:
            while not self._subscriptions and not self._stop.is_set():
                self._changed.wait()
            self._idle_since = None

    def _end_stream(self, reason: str) -> None:
        """The subscribed stream ended on purpose (receive thread): forget every market.

        No gap is expected and no anchor kept, so the next connection is a fresh
        start; fills still pending are given up (holes marked, held trades delivered).
        """
        self._resume = False
        self._ingest.track_trades(())
        self._ingest.abandon_fills(self._clock.monotonic(), reason)

    def _open_connection(self) -> WebSocketLike:
        """Connect and handshake within ``connect_timeout``; ``stop`` cancels the default one."""
        config = self._config
        if self._connector is not None:
            return self._connector(config.url, config.connect_timeout)
        attempt = ConnectAttempt()
        with self._lock:
            self._attempt = attempt
        try:
            if self._stop.is_set():
                attempt.cancel()
            return open_connection(
                config.url,
                config.connect_timeout,
                max_frame_bytes=config.max_frame_bytes,
                attempt=attempt,
            )
        finally:
            with self._lock:
                self._attempt = None

    def _connect_failed(self, exc: Exception) -> None:
        """Count and report a failed handshake; the URL's credentials are never shown."""
        if isinstance(exc, ConnectCancelled):
            self._last_close = CloseReason.STOPPED  # not a failure: the client is stopping
            self._notify()
            return
        self._connect_failures += 1
        self._last_close = (
            CloseReason.HANDSHAKE_TIMEOUT
            if isinstance(exc, HandshakeTimeout)
            else CloseReason.CONNECT_FAILED
        )
        url = self._config.url
        self._last_error = f"{type(exc).__name__}: {exc}".replace(url, redact_url(url))
        logger.warning("WebSocket connect to %s failed: %s", redact_url(url), self._last_error)
        self._notify()

    def _connect_and_serve(self) -> bool:
        """One connection from handshake to its end; True if it was healthy.

        That is: it stayed subscribed with liveness OK for ``healthy_after`` seconds, and
        did not end on an oversized frame. Only then does the failure count reset.
        """
        self._set_state(ConnectionState.CONNECTING)
        try:
            ws = self._open_connection()
        except (OSError, _ws.WebSocketException) as exc:
            self._connect_failed(exc)
            return False
        with self._lock:
            self._ws = ws
            self._reconnect_requested = False
        if self._stop.is_set():
            _abort(ws)
        reconnect = self._resume
        self._connects += 1
        self._connected_at = self._clock.monotonic()
        self._message_pacer.reset()
        if reconnect:
            self._ingest.expect_gaps()
        healthy = False
        reason = CloseReason.CONNECTION_LOST
        try:
            reason, healthy = self._serve(ws, reconnect)
        except SubscriptionError as exc:
            self._error = exc
            reason = CloseReason.REJECTED
            self._last_error = f"{exc.code}: {exc}"
            logger.error(  # noqa: TRY400 - an answer from the server, not a crash
                "Upbit rejected the subscription: %s %s", exc.code, exc
            )
        finally:
            with self._lock:
                self._ws = None
            _close_after(ws, reason)
        if self._stop.is_set():
            reason = CloseReason.STOPPED
        self._last_close = reason
        if reason is CloseReason.FRAME_TOO_LARGE:
            # A server that sends such frames is failing: back off from it even if it went live.
            self._connect_failures += 1
            healthy = False
            logger.warning("WebSocket closed (1009): %s; reconnecting", self._last_error)
        if reason is CloseReason.UNSUBSCRIBED:
            self._end_stream("unsubscribed before the gap fill was merged")
        else:
            # A broken connection: the next one continues the stream (gaps, recovery).
            self._resume = True
        if reason in (CloseReason.MISSED_PONG, CloseReason.SILENT):
            logger.warning("WebSocket transport dead (%s); reconnecting", reason.value)
        elif reason not in (CloseReason.STOPPED, CloseReason.FRAME_TOO_LARGE):
            logger.info("WebSocket connection ended (%s)", reason.value)
        self._notify()
        return healthy

    def _send_message(self, ws: WebSocketLike, payload: str) -> None:
        self._pause(self._message_pacer.reserve(self._clock.monotonic()))
        ws.send(payload)

    def _subscribe(self, ws: WebSocketLike) -> bool:
        """Send the whole current set; False (nothing sent) if it is empty."""
        with self._lock:
            subs = self._subscriptions
            self._resubscribe = False
        if not subs:
            return False
        # Before the request leaves: trades of dropped markets are no longer tracked,
        # added markets start fresh (their first trade from now on is their anchor).
        self._ingest.track_trades(_realtime_trade_markets(subs))
        self._send_message(ws, build_request(subs, ticket=new_ticket(), fmt=self._config.format))
        return True

    def _keepalive(self, ws: WebSocketLike, now: float) -> None:
        mode = self._config.liveness.keepalive
        if mode is not KeepaliveMode.TEXT:
            ws.ping()
        if mode is not KeepaliveMode.PROTOCOL:
            # A text PING is a message: it must fit the message budget, else it waits a tick.
            if self._message_pacer.delay(now) > 0:
                return
            self._message_pacer.reserve(now)
            ws.send("PING")
        if self._unanswered_since is None:
            self._unanswered_since = now

    def _open(self, ws: WebSocketLike) -> CloseReason | None:
        """Send the subscription on a new connection; why it ends already, else ``None``."""
        try:
            ws.settimeout(self._recv_timeout())
            if not self._subscribe(ws):
                return CloseReason.UNSUBSCRIBED  # emptied while connecting
        except (OSError, _ws.WebSocketException) as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            return CloseReason.CONNECTION_LOST
        return None

    def _serve(self, ws: WebSocketLike, reconnect: bool) -> tuple[CloseReason, bool]:
        """Receive until the connection ends; returns why, and whether it was healthy.

        Healthy: subscribed, with every liveness check passed, for ``healthy_after``
        seconds (client clock). Going live (the first data) is a recovery, not health.
        """
        liveness = self._config.liveness
        monotonic = self._clock.monotonic
        ended = self._open(ws)
        if ended is not None:
            return ended, False
        self._set_state(ConnectionState.SUBSCRIBED)
        now = monotonic()
        self._last_received = self._last_ping = now
        self._unanswered_since = None
        next_check = now + liveness.tick
        healthy_at = now + self._config.healthy_after
        healthy = False
        live = False
        recv = ws.recv_data
        ingest = self._ingest.ingest
        merge = self._ingest.merge_done
        stop = self._stop
        timeout_exc = _ws.WebSocketTimeoutException
        while not stop.is_set():
            try:
                opcode, data = recv(True)
            except timeout_exc:
                now = monotonic()
                merge(now)
            except (OSError, _ws.WebSocketException) as exc:
                return self._broken(exc), healthy
            else:
                now = self._last_received = monotonic()
                if opcode in _DATA_OPCODES:
                    self._frames += 1
                    if ingest(data, now) and not live:
                        live = True
                        self._went_live(now, reconnect)
                elif opcode == _OPCODE_PONG:
                    self._keepalive_answered()
                elif opcode == _OPCODE_CLOSE:
                    return CloseReason.SERVER_CLOSED, healthy
                if now < next_check:
                    continue
            next_check = now + liveness.tick
            ended = self._check(ws, now)
            if ended is not None:
                return ended, healthy
            if now >= healthy_at:
                healthy = True
        return CloseReason.STOPPED, healthy

    def _broken(self, exc: OSError | _ws.WebSocketException) -> CloseReason:
        """Why reading the connection failed with ``exc``."""
        if self._reconnect_requested and not isinstance(exc, FrameTooLarge):
            return CloseReason.RECONNECT_REQUESTED
        self._last_error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, FrameTooLarge):
            return CloseReason.FRAME_TOO_LARGE
        return CloseReason.CONNECTION_LOST

    def _keepalive_answered(self) -> None:
        self._unanswered_since = None
        self._answered += 1
        self._notify()

    def _went_live(self, now: float, reconnect: bool) -> None:
        self._live_at = now
        if reconnect:
            self._recoveries += 1
        self._set_state(ConnectionState.LIVE)

    def _check(self, ws: WebSocketLike, now: float) -> CloseReason | None:
        """The periodic liveness decision, keepalive and pending (un)subscription."""
        verdict = assess(
            now,
            self._config.liveness,
            last_received=self._last_received,
            last_ping_sent=self._last_ping,
            unanswered_since=self._unanswered_since,
        )
        if verdict is Verdict.MISSED_PONG:
            return CloseReason.MISSED_PONG
        if verdict is Verdict.SILENT:
            return CloseReason.SILENT
        try:
            if verdict is Verdict.PING_DUE:
                self._last_ping = now
                self._keepalive(ws, now)
            if self._resubscribe and not self._subscribe(ws):
                return CloseReason.UNSUBSCRIBED
        except (OSError, _ws.WebSocketException) as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            return CloseReason.CONNECTION_LOST
        return None

    def _recv_timeout(self) -> float:
        tick = self._config.liveness.tick
        return min(tick, _MERGE_POLL) if self._ingest.gap_fills_pending else tick

    def _fills_pending(self, pending: bool) -> None:
        """Gap fills started or all merged (receive thread): adjust how often it wakes."""
        ws = self._ws
        if ws is None:
            return
        try:
            ws.settimeout(self._recv_timeout())
        except (OSError, _ws.WebSocketException) as exc:
            logger.debug("settimeout failed: %s", exc)


def _abort(ws: WebSocketLike) -> None:
    try:
        ws.abort()
    except (OSError, _ws.WebSocketException) as exc:
        logger.debug("abort failed: %s", exc)


def _realtime_trade_markets(subscriptions: Sequence[Subscription]) -> tuple[str, ...]:
    """The markets whose realtime trades ``subscriptions`` ask for (their gaps are filled)."""
    for sub in subscriptions:
        if sub.type is DataType.TRADE and not sub.is_only_snapshot:
            return sub.codes
    return ()


def _close_after(ws: WebSocketLike, reason: CloseReason) -> None:
    """Close a connection that ended for ``reason`` with the close frame that fits it."""
    if reason is CloseReason.UNSUBSCRIBED:
        # Deliberate: a close frame 1000, and a moment for the server's answer.
        _close(ws, status=_ws.STATUS_NORMAL, reason=b"unsubscribed", timeout=1)
    elif reason is CloseReason.FRAME_TOO_LARGE:
        # Mid-frame: nothing more can be read, so no waiting for the server's answer.
        _close(ws, status=_ws.STATUS_MESSAGE_TOO_BIG, reason=b"frame too large")
    else:
        _close(ws)


def _close(
    ws: WebSocketLike, *, status: int = _ws.STATUS_NORMAL, reason: bytes = b"", timeout: int = 0
) -> None:
    """Send a close frame if the connection is still open, then close the socket.

    ``websocket-client``'s ``close()`` does nothing once the server's close frame was
    answered (the connection is no longer "connected"), and its socket sits in a
    reference cycle: without the ``shutdown()`` the file descriptor stays open until
    the garbage collector runs.
    """
    try:
        ws.close(status=status, reason=reason, timeout=timeout)
    except (OSError, _ws.WebSocketException) as exc:
        logger.debug("close failed: %s", exc)
    finally:
        try:
            ws.shutdown()
        except (OSError, _ws.WebSocketException) as exc:
            logger.debug("socket close failed: %s", exc)

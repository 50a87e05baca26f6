"""The simulator's ``/websocket/v1``: Upbit's public WebSocket on the REST server's port.

:class:`WebSocketHub` speaks Upbit's wire protocol: one JSON-array request frame
(ticket, data type objects, optional format object), error frames
(``WRONG_FORMAT``, ``NO_TICKET``, ``NO_TYPE``, ``NO_CODES``, ``INVALID_PARAM``),
a SNAPSHOT per subscribed (type, code) and then REALTIME messages, in
DEFAULT/SIMPLE/JSON_LIST/SIMPLE_LIST formats, always as binary UTF-8 JSON frames.
Text ``PING`` is answered with ``{"status":"UP"}``, protocol pings with pongs, and
a connection idle for ``idle_timeout`` seconds (default Upbit's 120 s) is closed.

Every REALTIME trade comes from the engine's listener, so a trade seen on the
socket is the same trade (same ``sequential_id``) that REST ``trades/ticks``
serves. Each connection has a bounded send queue; a client that does not keep
up is disconnected (slow-consumer back-pressure) instead of growing memory.

Fault controls (off by default, switchable while running, thread-safe), as
Python methods on the hub (``sim.ws``) and as HTTP under ``/_sim/ws/``:

================================  ===============================================
``close_all(code)``               close every socket with a close frame
``drop_all()``                    abort every TCP connection (no close frame)
``set_accepting(False)``          refuse new handshakes (HTTP 503)
``set_silent(True)``              stay open but send nothing (no data, pong, UP)
``set_answer_pings(False)``       stop answering protocol pings and text PING
``inject_malformed(n, kind)``     send ``n`` garbage / truncated / bad-field frames
``set_queue_limit(n)``            per-connection send queue size (slow consumers)
``burst(count, rate)``            ``count`` synthetic frames per connection at
                                  ``rate``/s (``None`` = as fast as possible)
``replay(path, speed)``           replay a recorded session (cryptofeed log format)
``reset()``                       every fault off
================================  ===============================================

Burst frames are synthetic (trade ids far above the engine's) and are not in
the engine's trade log; they exist for throughput benchmarks only.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import contextlib
import enum
import itertools
import logging
import math
import random
import re
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from quotation.clock import Clock
from quotation.models import CandleInterval
from quotation.simulator.engine import MarketEngine
from quotation.simulator.records import (
    MarketEvent,
    SimCandle,
    SimOrderbook,
    SimTicker,
    SimTrade,
)
from quotation.wire_keys import to_default_keys, to_simple_keys
from quotation.ws_subscription import ORDERBOOK_DEPTHS, DataType, WsFormat

__all__ = [
    "HubStats",
    "MalformedKind",
    "WebSocketHub",
    "parse_recording",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_KST = timedelta(hours=9)
_UP = b'{"status":"UP"}'
_BURST_SID_BASE = 9_000_000_000_000_000
_FULL_DEPTH = 30
_DEFAULT_QUEUE_LIMIT = 10_000
_BURST_CHUNK = 256
_BURST_HIGH_WATER = 1 << 20
_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?): (b'.*'|b\".*\")\s*$")


class MalformedKind(enum.Enum):
    """What :meth:`WebSocketHub.inject_malformed` sends."""

    GARBAGE = "garbage"
    """Bytes that are not JSON at all."""
    TRUNCATED = "truncated"
    """A real data frame cut in half."""
    BAD_FIELD = "bad_field"
    """Valid JSON of a subscribed type whose price field is a string."""


@dataclass(frozen=True, slots=True)
class HubStats:
    """Counters of the WebSocket side."""

    connections: int
    subscribed: int
    frames_sent: int
    errors_sent: int
    idle_closes: int
    slow_consumer_closes: int
    refused: int


# -- rendering: engine records → Upbit DEFAULT messages ------------------------------------


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _zero_as_int(value: float) -> int | float:
    """Upbit writes a zero change as ``0``, never ``0.0`` (REST recordings, EVEN tickers)."""
    return 0 if value == 0 else float(value)


def render_trade(trade: SimTrade, stream_type: str) -> dict[str, Any]:
    """A WebSocket ``trade`` message with DEFAULT keys."""
    at = _utc(trade.timestamp)
    return {
        "type": "trade",
        "code": trade.market,
        "trade_price": trade.trade_price,
        "trade_volume": trade.trade_volume,
        "ask_bid": trade.ask_bid.value,
        "prev_closing_price": trade.prev_closing_price,
        "change": trade.change.value,
        "change_price": _zero_as_int(abs(trade.change_price)),
        "trade_date": at.strftime("%Y-%m-%d"),
        "trade_time": at.strftime("%H:%M:%S"),
        "trade_timestamp": trade.timestamp,
        "timestamp": trade.timestamp,
        "sequential_id": trade.sequential_id,
        "best_ask_price": trade.best_ask_price,
        "best_ask_size": trade.best_ask_size,
        "best_bid_price": trade.best_bid_price,
        "best_bid_size": trade.best_bid_size,
        "stream_type": stream_type,
    }


def render_ticker(ticker: SimTicker, stream_type: str) -> dict[str, Any]:
    """A WebSocket ``ticker`` message with DEFAULT keys."""
    at = _utc(ticker.trade_timestamp)
    return {
        "type": "ticker",
        "code": ticker.market,
        "opening_price": ticker.opening_price,
        "high_price": ticker.high_price,
        "low_price": ticker.low_price,
        "trade_price": ticker.trade_price,
        "prev_closing_price": ticker.prev_closing_price,
        "change": ticker.change.value,
        "change_price": _zero_as_int(ticker.change_price),
        "signed_change_price": _zero_as_int(ticker.signed_change_price),
        "change_rate": _zero_as_int(ticker.change_rate),
        "signed_change_rate": _zero_as_int(ticker.signed_change_rate),
        "trade_volume": ticker.trade_volume,
        "acc_trade_volume": ticker.acc_trade_volume,
        "acc_trade_volume_24h": ticker.acc_trade_volume_24h,
        "acc_trade_price": ticker.acc_trade_price,
        "acc_trade_price_24h": ticker.acc_trade_price_24h,
        "trade_date": at.strftime("%Y%m%d"),
        "trade_time": at.strftime("%H%M%S"),
        "trade_timestamp": ticker.trade_timestamp,
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
    start = _utc(candle.start)
    return {
        "type": candle.interval.ws_type,
        "code": candle.market,
        "candle_date_time_utc": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "candle_date_time_kst": (start + _KST).strftime("%Y-%m-%dT%H:%M:%S"),
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


def parse_recording(path: str | Path) -> list[tuple[float, bytes]]:
    """The received frames of a recorded session: ``(receive_time, frame)`` in order.

    The format is cryptofeed's: ``<time>: b'<frame>'`` per received frame; the
    connect (``<->``) and sent (``<-``) lines are skipped.
    """
    frames: list[tuple[float, bytes]] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        payload = ast.literal_eval(match.group(2))
        if isinstance(payload, bytes):
            frames.append((float(match.group(1)), payload))
    return frames


# -- the request frame -----------------------------------------------------------------------


class _RequestError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class _Spec:
    """One subscribed data type of a connection."""

    type: DataType
    depths: dict[str, int]
    """Code → orderbook depth (30 for other types)."""
    snapshot: bool
    realtime: bool
    level: float


@dataclass(frozen=True, slots=True)
class _Request:
    ticket: str
    specs: tuple[_Spec, ...]
    fmt: WsFormat | None
    method: str | None


def _flag(obj: dict[str, Any], snake: str, camel: str) -> bool:
    value = obj.get(snake, obj.get(camel, False))
    if not isinstance(value, bool):
        raise _RequestError("INVALID_PARAM", f"{snake} must be a boolean")
    return value


def _parse_spec(obj: dict[str, Any]) -> _Spec:
    try:
        data_type = DataType(obj["type"])
    except (ValueError, TypeError):
        raise _RequestError("INVALID_PARAM", f"unknown type {obj['type']!r}") from None
    codes = obj.get("codes")
    if not codes:
        raise _RequestError("NO_CODES", "codes is required")
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise _RequestError("INVALID_PARAM", "codes must be a list of strings")
    depths: dict[str, int] = {}
    for code in codes:
        market, _, suffix = code.partition(".")
        depth = _FULL_DEPTH
        if suffix:
            if data_type is not DataType.ORDERBOOK or not suffix.isdigit():
                raise _RequestError("INVALID_PARAM", f"invalid code {code!r}")
            depth = int(suffix) if int(suffix) in ORDERBOOK_DEPTHS else _FULL_DEPTH
        depths[market] = depth
    level = obj.get("level", 0)
    if isinstance(level, bool) or not isinstance(level, int | float) or level < 0:
        raise _RequestError("INVALID_PARAM", "level must be a number >= 0")
    only_snapshot = _flag(obj, "is_only_snapshot", "isOnlySnapshot")
    only_realtime = _flag(obj, "is_only_realtime", "isOnlyRealtime")
    return _Spec(
        type=data_type,
        depths=depths,
        snapshot=not only_realtime,
        realtime=not only_snapshot,
        level=float(level),
    )


def _parse_request(text: str | bytes) -> _Request:
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _RequestError("WRONG_FORMAT", "request is not JSON") from None
    if not isinstance(payload, list) or not all(isinstance(o, dict) for o in payload):
        raise _RequestError("WRONG_FORMAT", "request must be a JSON array of objects")
    tickets = [o["ticket"] for o in payload if "ticket" in o]
    if not tickets or not all(isinstance(t, str) and t for t in tickets):
        raise _RequestError("NO_TICKET", "ticket is required")
    fmt: WsFormat | None = None
    method: str | None = None
    specs: list[_Spec] = []
    for obj in payload:
        if "format" in obj:
            try:
                fmt = WsFormat(obj["format"])
            except ValueError:
                raise _RequestError("INVALID_PARAM", f"unknown format {obj['format']!r}") from None
        elif "method" in obj:
            if obj["method"] != "LIST_SUBSCRIPTIONS":
                raise _RequestError("INVALID_PARAM", f"unknown method {obj['method']!r}")
            method = obj["method"]
        elif "type" in obj:
            specs.append(_parse_spec(obj))
    if method is None and not specs:
        raise _RequestError("NO_TYPE", "type is required")
    return _Request(tickets[0], tuple(specs), fmt, method)


# -- one connection ---------------------------------------------------------------------------


class _Session:
    """One client connection: its subscriptions, format and bounded send queue."""

    def __init__(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport, queue_limit: int, now: float
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.fmt = WsFormat.DEFAULT
        self.realtime: dict[DataType, _Spec] = {}
        self.specs: tuple[_Spec, ...] = ()
        self.markets: frozenset[str] = frozenset()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_limit)
        self.last_activity = now
        self.closing = False
        self.tasks: list[asyncio.Task[Any]] = []

    @property
    def subscribed(self) -> bool:
        return bool(self.specs)


class WebSocketHub:
    """The WebSocket side of the simulator (``sim.ws``)."""

    def __init__(
        self,
        engine: MarketEngine,
        *,
        clock: Clock,
        seed: int = 1,
        idle_timeout: float = 120.0,
        queue_limit: int = _DEFAULT_QUEUE_LIMIT,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._random = random.Random(f"websocket/{seed}")
        self.idle_timeout = idle_timeout
        """Seconds without any frame in either direction before the server closes."""
        self._queue_limit = queue_limit
        self._sessions: set[_Session] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._remove_listener: Callable[[], None] | None = None
        self._changed = threading.Condition()
        self._background: set[asyncio.Task[Any]] = set()
        self._burst_sids = itertools.count(_BURST_SID_BASE)
        # faults
        self._accepting = True
        self._silent = False
        self._answer_pings = True
        # counters
        self._frames_sent = 0
        self._errors_sent = 0
        self._idle_closes = 0
        self._slow_closes = 0
        self._refused = 0

    # -- wiring ---------------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        """Add ``/websocket/v1`` and the ``/_sim/ws/...`` controls to ``app``."""
        app.router.add_get("/websocket/v1", self._handle)
        app.router.add_get("/_sim/ws/status", self._http_status)
        for name in (
            "close",
            "drop",
            "accepting",
            "silent",
            "pings",
            "malformed",
            "queue",
            "burst",
            "replay",
            "reset",
        ):
            app.router.add_post(f"/_sim/ws/{name}", self._http_control)
        app.on_startup.append(self._on_startup)
        if self._remove_listener is None:
            self._remove_listener = self._engine.add_listener(self._on_event)

    async def _on_startup(self, app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    async def close(self) -> None:
        """Close every connection and stop bursts/replays (the simulator calls this on stop)."""
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        for task in list(self._background):
            task.cancel()
        for session in list(self._sessions):
            session.closing = True
            session.transport.abort()
            for task in session.tasks:
                task.cancel()
        self._sessions.clear()
        self._notify()

    # -- Python fault controls (any thread but the loop's) -----------------------------------

    def _call(self, factory: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the simulator is not running")
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError("call the hub's async methods from the event loop thread")

        async def run() -> T:
            return await factory()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def close_all(self, code: int = WSCloseCode.GOING_AWAY) -> int:
        """Close every socket with a close frame ``code``; returns how many."""
        return self._call(lambda: self.close_all_async(code))

    def drop_all(self) -> int:
        """Abort every TCP connection without a close frame; returns how many."""
        return self._call(self.drop_all_async)

    def set_accepting(self, accepting: bool) -> None:
        """Refuse (``False``) or accept new WebSocket handshakes."""
        self._accepting = accepting

    def set_silent(self, silent: bool) -> None:
        """Keep sockets open but send nothing at all (data, pong, UP) while ``silent``."""
        self._silent = silent

    def set_answer_pings(self, answer: bool) -> None:
        """Stop (``False``) or resume answering protocol pings and text ``PING``."""
        self._answer_pings = answer

    def set_queue_limit(self, limit: int) -> None:
        """Per-connection send queue size for connections opened from now on."""
        if limit < 1:
            raise ValueError("queue limit must be >= 1")
        self._queue_limit = limit

    def inject_malformed(self, count: int = 1, kind: MalformedKind = MalformedKind.GARBAGE) -> int:
        """Send ``count`` malformed frames to every subscribed socket; returns frames queued."""
        return self._call(lambda: self.inject_malformed_async(count, kind))

    def burst(self, count: int, *, rate: float | None = None) -> concurrent.futures.Future[int]:
        """Send ``count`` synthetic frames to every subscribed socket at ``rate`` frames/s.

        Returns a future of the total frames sent. ``rate=None`` sends as fast as
        the sockets drain.
        """
        loop = self._require_loop()
        return asyncio.run_coroutine_threadsafe(self.burst_async(count, rate=rate), loop)

    def replay(
        self, path: str | Path, *, speed: float | None = 1.0
    ) -> concurrent.futures.Future[int]:
        """Replay a recorded session to every subscribed socket (``speed=None``: no pauses)."""
        frames = parse_recording(path)
        loop = self._require_loop()
        return asyncio.run_coroutine_threadsafe(self.replay_async(frames, speed=speed), loop)

    def reset(self) -> None:
        """Every fault off."""
        self._accepting = True
        self._silent = False
        self._answer_pings = True
        self._queue_limit = _DEFAULT_QUEUE_LIMIT

    def stats(self) -> HubStats:
        """Connection and frame counters."""
        sessions = list(self._sessions)
        return HubStats(
            connections=len(sessions),
            subscribed=sum(1 for s in sessions if s.subscribed),
            frames_sent=self._frames_sent,
            errors_sent=self._errors_sent,
            idle_closes=self._idle_closes,
            slow_consumer_closes=self._slow_closes,
            refused=self._refused,
        )

    def wait_for(self, predicate: Callable[[HubStats], bool], timeout: float) -> bool:
        """Block until ``predicate(stats())`` holds (re-checked on every connection change)."""
        # A real wait of the calling thread (Condition.wait is real time), so real time here:
        # with a fake clock injected, the deadline must still pass.
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.stats()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.05))
        return True

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the simulator is not running")
        return self._loop

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- async fault controls (loop thread) ---------------------------------------------------

    async def close_all_async(self, code: int = WSCloseCode.GOING_AWAY) -> int:
        sessions = list(self._sessions)
        for session in sessions:
            session.closing = True
        await asyncio.gather(
            *(self._close_session(s, code, b"closed by the simulator") for s in sessions)
        )
        return len(sessions)

    async def drop_all_async(self) -> int:
        sessions = list(self._sessions)
        for session in sessions:
            session.closing = True
            session.transport.abort()
        return len(sessions)

    async def inject_malformed_async(self, count: int, kind: MalformedKind) -> int:
        queued = 0
        for session in list(self._sessions):
            if not session.subscribed:
                continue
            for _ in range(count):
                self._push(session, self._malformed_frame(session, kind))
                queued += 1
        return queued

    async def burst_async(self, count: int, *, rate: float | None = None) -> int:
        sessions = [s for s in self._sessions if s.realtime]
        results = await asyncio.gather(*(self._burst_one(s, count, rate) for s in sessions))
        return sum(results)

    async def replay_async(self, frames: list[tuple[float, bytes]], *, speed: float | None) -> int:
        sent = 0
        if not frames:
            return 0
        start_at = frames[0][0]
        started = self._clock.monotonic()
        for at, frame in frames:
            if speed is not None and speed > 0:
                delay = (at - start_at) / speed - (self._clock.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
            try:
                message = orjson.loads(frame)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(message, dict):
                continue
            default = to_default_keys(message) if "ty" in message else message
            for session in list(self._sessions):
                spec = self._spec_for(session, default.get("type"), default.get("code"))
                if spec is not None:
                    self._push(session, encode(default, session.fmt))
                    sent += 1
        return sent

    # -- the endpoint ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self._accepting:
            self._refused += 1
            return web.Response(status=503, text="WebSocket endpoint unavailable (simulated)")
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None  # noqa: S101 - prepared responses have one
        session = _Session(ws, transport, self._queue_limit, self._clock.monotonic())
        self._sessions.add(session)
        session.tasks = [
            asyncio.create_task(self._write_loop(session)),
            asyncio.create_task(self._idle_watch(session)),
        ]
        self._notify()
        try:
            async for msg in ws:
                session.last_activity = self._clock.monotonic()
                if msg.type is WSMsgType.PING:
                    if self._answer_pings and not self._silent:
                        await ws.pong(msg.data)
                elif msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
                    data = msg.data
                    await self._on_request(session, data)
        except ConnectionError as exc:
            logger.debug("WebSocket connection lost: %s", exc)
        finally:
            session.closing = True
            self._sessions.discard(session)
            for task in session.tasks:
                task.cancel()
            self._notify()
        return ws

    async def _on_request(self, session: _Session, data: str | bytes) -> None:
        if data in ("PING", b"PING"):
            if self._answer_pings and not self._silent:
                self._push(session, _UP)
            return
        try:
            request = _parse_request(data)
        except _RequestError as exc:
            self._errors_sent += 1
            self._push(session, orjson.dumps({"error": {"name": exc.code, "message": str(exc)}}))
            return
        if request.fmt is not None:
            session.fmt = request.fmt
        if request.method is not None:
            self._push(session, self._list_subscriptions(session, request.ticket))
            return
        session.specs = request.specs
        session.realtime = {spec.type: spec for spec in request.specs if spec.realtime}
        session.markets = frozenset(
            code for spec in session.realtime.values() for code in spec.depths
        )
        self._notify()
        for spec in request.specs:
            if spec.snapshot:
                for code, depth in spec.depths.items():
                    message = self._snapshot(spec, code, depth)
                    if message is not None:
                        self._push(session, encode(message, session.fmt))

    def _list_subscriptions(self, session: _Session, ticket: str) -> bytes:
        """The ``LIST_SUBSCRIPTIONS`` answer, in SIMPLE keys for the SIMPLE formats."""
        simple = session.fmt.simple_keys
        result = []
        for spec in session.specs:
            entry: dict[str, Any] = {
                "ty" if simple else "type": spec.type.value,
                "cds" if simple else "codes": list(spec.depths),
            }
            if spec.type is DataType.ORDERBOOK:
                entry["lv" if simple else "level"] = spec.level
            result.append(entry)
        if simple:
            body = {"mthd": "LIST_SUBSCRIPTIONS", "rslt": result, "tckt": ticket}
        else:
            body = {"method": "LIST_SUBSCRIPTIONS", "result": result, "ticket": ticket}
        return orjson.dumps(body)

    def _snapshot(self, spec: _Spec, code: str, depth: int) -> dict[str, Any] | None:
        engine = self._engine
        if not engine.has_market(code):
            return None
        if spec.type is DataType.TICKER:
            return render_ticker(engine.ticker(code), "SNAPSHOT")
        if spec.type is DataType.TRADE:
            trade = engine.latest_trade(code)
            return render_trade(trade, "SNAPSHOT") if trade is not None else None
        if spec.type is DataType.ORDERBOOK:
            book = engine.orderbook(code, _FULL_DEPTH, spec.level)
            return render_orderbook(book, depth, "SNAPSHOT")
        interval = spec.type.candle_interval
        assert interval is not None  # noqa: S101 - every other type is a candle
        candles = engine.candles(code, interval, 1)
        return render_candle(candles[0], "SNAPSHOT") if candles else None

    # -- realtime -------------------------------------------------------------------------------

    def _on_event(self, event: MarketEvent) -> None:
        """Engine listener (loop thread): push the new state to every subscriber."""
        if not self._sessions:
            return
        market = event.market
        rendered: dict[tuple[DataType, int, float, WsFormat], bytes] = {}
        for session in list(self._sessions):
            if market not in session.markets or session.closing:
                continue
            for data_type, spec in session.realtime.items():
                depth = spec.depths.get(market)
                if depth is None:
                    continue
                key = (data_type, depth, spec.level, session.fmt)
                frame = rendered.get(key)
                if frame is None:
                    message = self._realtime(event, spec, market, depth)
                    if message is None:
                        continue
                    frame = rendered[key] = encode(message, session.fmt)
                self._push(session, frame)

    def _realtime(
        self, event: MarketEvent, spec: _Spec, market: str, depth: int
    ) -> dict[str, Any] | None:
        data_type = spec.type
        if data_type is DataType.TRADE:
            return render_trade(event.trade, "REALTIME")
        if data_type is DataType.TICKER:
            return render_ticker(event.ticker, "REALTIME")
        if data_type is DataType.ORDERBOOK:
            book = event.orderbook
            if spec.level > 0:
                book = self._engine.orderbook(market, _FULL_DEPTH, spec.level)
            return render_orderbook(book, depth, "REALTIME")
        interval: CandleInterval | None = data_type.candle_interval
        candle = event.candle(interval) if interval is not None else None
        return render_candle(candle, "REALTIME") if candle is not None else None

    def _spec_for(self, session: _Session, data_type: object, code: object) -> _Spec | None:
        if not isinstance(data_type, str) or not isinstance(code, str):
            return None
        try:
            spec = session.realtime.get(DataType(data_type))
        except ValueError:
            return None
        return spec if spec is not None and code in spec.depths else None

    # -- sending --------------------------------------------------------------------------------

    def _push(self, session: _Session, frame: bytes) -> None:
        if session.closing or self._silent:
            return
        try:
            session.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._slow_closes += 1
            session.closing = True
            logger.info(
                "closing a slow WebSocket consumer (%d frames queued)", session.queue.qsize()
            )
            self._spawn(self._close_session(session, WSCloseCode.POLICY_VIOLATION, b"too slow"))

    async def _write_loop(self, session: _Session) -> None:
        queue = session.queue
        ws = session.ws
        with contextlib.suppress(ConnectionError, asyncio.CancelledError, RuntimeError):
            while True:
                frame = await queue.get()
                if self._silent:
                    continue
                await ws.send_bytes(frame)
                self._frames_sent += 1
                session.last_activity = self._clock.monotonic()

    async def _idle_watch(self, session: _Session) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while not session.closing:
                idle = self.idle_timeout
                await asyncio.sleep(max(0.01, min(1.0, idle / 4)))
                if self._clock.monotonic() - session.last_activity >= self.idle_timeout:
                    self._idle_closes += 1
                    session.closing = True
                    await self._close_session(session, WSCloseCode.OK, b"idle timeout")
                    return

    async def _close_session(self, session: _Session, code: int, message: bytes) -> None:
        try:
            await asyncio.wait_for(session.ws.close(code=code, message=message), 2.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            session.transport.abort()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- malformed and burst frames ----------------------------------------------------------

    def _sample_message(self, session: _Session) -> dict[str, Any] | None:
        for spec in session.specs:
            for code, depth in spec.depths.items():
                message = self._snapshot(spec, code, depth)
                if message is not None:
                    message["stream_type"] = "REALTIME"
                    return message
        return None

    def _malformed_frame(self, session: _Session, kind: MalformedKind) -> bytes:
        if kind is MalformedKind.GARBAGE:
            return b"\x00not json {" + bytes([self._random.randrange(256)])
        message = self._sample_message(session)
        if message is None:
            return b"{"
        if kind is MalformedKind.TRUNCATED:
            frame = encode(message, session.fmt)
            return frame[: max(1, len(frame) // 2)]
        field = "trade_price" if "trade_price" in message else "total_ask_size"
        message[field] = "not a number"
        return encode(message, session.fmt)

    def _burst_templates(self, session: _Session) -> list[tuple[bytes, bytes | None]]:
        """Per subscribed (type, code): the frame, split around the trade id for trades."""
        templates: list[tuple[bytes, bytes | None]] = []
        marker = 8_888_888_888_888_888_888
        for spec in session.realtime.values():
            for code, depth in spec.depths.items():
                message = self._snapshot(spec, code, depth)
                if message is None:
                    continue
                message["stream_type"] = "REALTIME"
                if spec.type is DataType.TRADE:
                    message["sequential_id"] = marker
                    head, _, tail = encode(message, session.fmt).partition(str(marker).encode())
                    templates.append((head, tail))
                else:
                    templates.append((encode(message, session.fmt), None))
        return templates

    async def _burst_one(self, session: _Session, count: int, rate: float | None) -> int:
        templates = self._burst_templates(session)
        if not templates or count <= 0:
            return 0
        transport = session.transport
        cycle = itertools.cycle(templates)
        sids = self._burst_sids
        sent = 0
        chunk = _BURST_CHUNK if rate is None else max(1, min(_BURST_CHUNK, math.ceil(rate / 100)))
        started = self._clock.monotonic()
        while sent < count and not session.closing and not transport.is_closing():
            n = min(chunk, count - sent)
            if rate is not None:
                due = int((self._clock.monotonic() - started) * rate) - sent
                if due <= 0:
                    await asyncio.sleep(0.005)
                    continue
                n = min(n, due)
            frames = []
            for _ in range(n):
                head, tail = next(cycle)
                payload = head if tail is None else b"%s%d%s" % (head, next(sids), tail)
                frames.append(_frame_header(len(payload)) + payload)
            # Whole frames in one write: atomic with respect to the queue's writer task.
            transport.write(b"".join(frames))
            sent += n
            self._frames_sent += n
            session.last_activity = self._clock.monotonic()
            while (
                transport.get_write_buffer_size() > _BURST_HIGH_WATER and not transport.is_closing()
            ):
                await asyncio.sleep(0.001)
            if rate is None:
                await asyncio.sleep(0)
        return sent

    # -- HTTP controls --------------------------------------------------------------------------

    async def _http_status(self, request: web.Request) -> web.Response:
        stats = self.stats()
        return web.json_response(
            {
                "connections": stats.connections,
                "subscribed": stats.subscribed,
                "frames_sent": stats.frames_sent,
                "errors_sent": stats.errors_sent,
                "idle_closes": stats.idle_closes,
                "slow_consumer_closes": stats.slow_consumer_closes,
                "refused": stats.refused,
                "accepting": self._accepting,
                "silent": self._silent,
                "answer_pings": self._answer_pings,
                "idle_timeout": self.idle_timeout,
            }
        )

    async def _http_control(self, request: web.Request) -> web.Response:
        name = request.path.rsplit("/", 1)[-1]
        query = request.query
        try:
            result = await self._control(name, query)
        except (ValueError, KeyError, OSError) as exc:
            return web.json_response(
                {"error": {"name": 400, "message": f"{type(exc).__name__}: {exc}"}}, status=400
            )
        return web.json_response({"ok": True, **result})

    async def _control(self, name: str, query: Any) -> dict[str, Any]:
        handlers: dict[str, Callable[[Any], Awaitable[dict[str, Any]]]] = {
            "close": self._ctl_close,
            "drop": self._ctl_drop,
            "accepting": self._ctl_accepting,
            "silent": self._ctl_silent,
            "pings": self._ctl_pings,
            "malformed": self._ctl_malformed,
            "queue": self._ctl_queue,
            "burst": self._ctl_burst,
            "replay": self._ctl_replay,
            "reset": self._ctl_reset,
        }
        return await handlers[name](query)

    async def _ctl_close(self, query: Any) -> dict[str, Any]:
        return {"closed": await self.close_all_async(int(query.get("code", 1001)))}

    async def _ctl_drop(self, query: Any) -> dict[str, Any]:
        return {"dropped": await self.drop_all_async()}

    async def _ctl_accepting(self, query: Any) -> dict[str, Any]:
        self.set_accepting(_truthy(query.get("on", "1")))
        return {}

    async def _ctl_silent(self, query: Any) -> dict[str, Any]:
        self.set_silent(_truthy(query.get("on", "1")))
        return {}

    async def _ctl_pings(self, query: Any) -> dict[str, Any]:
        self.set_answer_pings(_truthy(query.get("answer", "1")))
        return {}

    async def _ctl_malformed(self, query: Any) -> dict[str, Any]:
        kind = MalformedKind(query.get("kind", MalformedKind.GARBAGE.value))
        return {"queued": await self.inject_malformed_async(int(query.get("count", 1)), kind)}

    async def _ctl_queue(self, query: Any) -> dict[str, Any]:
        self.set_queue_limit(int(query["limit"]))
        return {}

    async def _ctl_burst(self, query: Any) -> dict[str, Any]:
        rate = float(query["rate"]) if "rate" in query else None
        self._spawn(self.burst_async(int(query.get("count", 1000)), rate=rate))
        return {"sessions": sum(1 for s in self._sessions if s.realtime)}

    async def _ctl_replay(self, query: Any) -> dict[str, Any]:
        frames = parse_recording(query["path"])
        speed = float(query["speed"]) if "speed" in query else 1.0
        self._spawn(self.replay_async(frames, speed=speed if speed > 0 else None))
        return {"frames": len(frames)}

    async def _ctl_reset(self, query: Any) -> dict[str, Any]:
        self.reset()
        return {}


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def _frame_header(length: int) -> bytes:
    """The header of an unmasked, final, binary WebSocket frame (server → client)."""
    if length < 126:
        return bytes((0x82, length))
    if length < 1 << 16:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)

"""One client connection to the simulator's ``/websocket/v1``.

A :class:`Session` answers its client's frames: text ``PING`` with
``{"status":"UP"}``, protocol pings with pongs, a request frame with an error
frame, the ``LIST_SUBSCRIPTIONS`` answer, or a new set of subscriptions and a
SNAPSHOT per subscribed (type, code). Everything it sends goes through a
bounded queue drained by its writer task; a client that lets the queue fill up
is closed (slow-consumer back-pressure) instead of growing memory. A watcher
task closes the connection after ``idle_timeout`` seconds without a frame in
either direction. The fault switches (silent, answer pings) are read from the
hub's :class:`~upbit_sim.ws.state.HubState` on every send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from quotation.websocket.subscription import DataType, WsFormat
from upbit_sim.engine import MarketEngine
from upbit_sim.ws.messages import encode, snapshot_message
from upbit_sim.ws.request import (
    RequestError,
    SubscriptionSpec,
    list_subscriptions_answer,
    parse_request,
)
from upbit_sim.ws.state import HubState

__all__ = ["Session"]

logger = logging.getLogger(__name__)

_UP = b'{"status":"UP"}'


class Session:
    """One client connection: its subscriptions, format and bounded send queue."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        state: HubState,
        engine: MarketEngine,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.fmt = WsFormat.DEFAULT
        self.realtime: dict[DataType, SubscriptionSpec] = {}
        self.specs: tuple[SubscriptionSpec, ...] = ()
        self.markets: frozenset[str] = frozenset()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=state.queue_limit)
        self.last_activity = state.clock.monotonic()
        self.opened_at = self.last_activity
        self.closing = False
        self.tasks: list[asyncio.Task[Any]] = []
        self._state = state
        self._engine = engine

    @property
    def subscribed(self) -> bool:
        """Whether the client has sent a valid subscription request."""
        return bool(self.specs)

    # -- receiving ------------------------------------------------------------------------------

    async def serve(self) -> None:
        """Register with the hub, answer the client's frames until it goes, unregister."""
        state = self._state
        ws = self.ws
        state.sessions.add(self)
        self.tasks = [
            asyncio.create_task(self._write_loop()),
            asyncio.create_task(self._idle_watch()),
        ]
        state.notify()
        try:
            async for msg in ws:
                self.last_activity = state.clock.monotonic()
                if msg.type is WSMsgType.PING:
                    if state.answer_pings and not state.silent:
                        await ws.pong(msg.data)
                elif msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
                    data = msg.data
                    await self._on_request(data)
        except ConnectionError as exc:
            logger.debug("WebSocket connection lost: %s", exc)
        finally:
            self.closing = True
            state.sessions.discard(self)
            for task in self.tasks:
                task.cancel()
            state.notify()

    async def _on_request(self, data: str | bytes) -> None:
        state = self._state
        if data in ("PING", b"PING"):
            if state.answer_pings and not state.silent:
                self.push(_UP)
            return
        try:
            request = parse_request(data)
        except RequestError as exc:
            state.errors_sent += 1
            self.push(orjson.dumps({"error": {"name": exc.code, "message": str(exc)}}))
            return
        if request.fmt is not None:
            self.fmt = request.fmt
        if request.method is not None:
            self.push(list_subscriptions_answer(self.specs, self.fmt, request.ticket))
            return
        self.specs = request.specs
        self.realtime = {spec.type: spec for spec in request.specs if spec.realtime}
        self.markets = frozenset(code for spec in self.realtime.values() for code in spec.depths)
        state.notify()
        for spec in request.specs:
            if spec.snapshot:
                for code, depth in spec.depths.items():
                    message = snapshot_message(self._engine, spec, code, depth)
                    if message is not None:
                        self.push(encode(message, self.fmt))

    # -- sending --------------------------------------------------------------------------------

    def push(self, frame: bytes) -> None:
        """Queue ``frame``; a full queue closes this slow consumer (nothing while silent)."""
        state = self._state
        if self.closing or state.silent:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            state.slow_closes += 1
            self.closing = True
            logger.info("closing a slow WebSocket consumer (%d frames queued)", self.queue.qsize())
            state.spawn(self.close(WSCloseCode.POLICY_VIOLATION, b"too slow"))

    async def close(self, code: int, message: bytes) -> None:
        """Close with a close frame; abort the TCP connection if that fails or hangs."""
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=message), 2.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            self.transport.abort()

    async def _write_loop(self) -> None:
        state = self._state
        queue = self.queue
        ws = self.ws
        with contextlib.suppress(ConnectionError, asyncio.CancelledError, RuntimeError):
            while True:
                frame = await queue.get()
                if state.silent:
                    continue
                await ws.send_bytes(frame)
                state.frames_sent += 1
                self.last_activity = state.clock.monotonic()

    async def _idle_watch(self) -> None:
        state = self._state
        with contextlib.suppress(asyncio.CancelledError):
            while not self.closing:
                idle = state.idle_timeout
                await asyncio.sleep(max(0.01, min(1.0, idle / 4)))
                if state.clock.monotonic() - self.last_activity >= state.idle_timeout:
                    state.idle_closes += 1
                    self.closing = True
                    await self.close(WSCloseCode.OK, b"idle timeout")
                    return

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
``replay(path, speed)``           replay a recorded session (cryptofeed log format);
                                  over HTTP only a file in ``replay_dir``
``reset()``                       every fault off
================================  ===============================================

Burst frames are synthetic (trade ids far above the engine's) and are not in
the engine's trade log; they exist for throughput benchmarks only.

The hub is the entry point and the REALTIME fan-out; its parts live beside it:
``request`` (the request frame: parsing, validation, ``LIST_SUBSCRIPTIONS``),
``messages`` (engine records → Upbit messages → frame payloads),
``session`` (one connection: receive, send queue, idle watch),
``state`` (sessions, switches and counters the parts share; :class:`HubStats`),
``injection`` (malformed, burst and replayed frames) and ``controls``
(the ``/_sim/ws/`` HTTP routes).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from aiohttp import WSCloseCode, web

from quotation.clock import Clock
from quotation.values import check
from quotation.websocket.subscription import DataType, WsFormat
from upbit_sim.engine import MarketEngine
from upbit_sim.records import MarketEvent
from upbit_sim.ws.controls import HubHttpControls
from upbit_sim.ws.injection import FrameInjector, MalformedKind, parse_recording
from upbit_sim.ws.messages import encode, realtime_message
from upbit_sim.ws.session import Session
from upbit_sim.ws.state import DEFAULT_QUEUE_LIMIT, HubState, HubStats

__all__ = [
    "HubStats",
    "MalformedKind",
    "WebSocketHub",
    "parse_recording",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class WebSocketHub:
    """The WebSocket side of the simulator (``sim.ws``)."""

    def __init__(
        self,
        engine: MarketEngine,
        *,
        clock: Clock,
        seed: int,
        idle_timeout: float = 120.0,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        replay_dir: Path | None = None,
    ) -> None:
        self._engine = engine
        self._replay_dir = replay_dir
        self._state = HubState(clock, idle_timeout=idle_timeout, queue_limit=queue_limit)
        self._injector = FrameInjector(engine, self._state, seed=seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._remove_listener: Callable[[], None] | None = None

    @property
    def idle_timeout(self) -> float:
        """Seconds without any frame in either direction before the server closes."""
        return self._state.idle_timeout

    @idle_timeout.setter
    def idle_timeout(self, seconds: float) -> None:
        self._state.idle_timeout = seconds

    # -- wiring ---------------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        """Add ``/websocket/v1`` and the ``/_sim/ws/...`` controls to ``app``."""
        app.router.add_get("/websocket/v1", self._handle)
        HubHttpControls(self, self._state, replay_dir=self._replay_dir).install(app)
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
        state = self._state
        state.cancel_background()
        for session in list(state.sessions):
            session.closing = True
            session.transport.abort()
            for task in session.tasks:
                task.cancel()
        state.sessions.clear()
        state.notify()

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
        self._state.accepting = accepting

    def set_silent(self, silent: bool) -> None:
        """Keep sockets open but send nothing at all (data, pong, UP) while ``silent``."""
        self._state.silent = silent

    def set_answer_pings(self, answer: bool) -> None:
        """Stop (``False``) or resume answering protocol pings and text ``PING``."""
        self._state.answer_pings = answer

    def set_queue_limit(self, limit: int) -> None:
        """Per-connection send queue size for connections opened from now on."""
        check("queue_limit", limit, at_least=1, integer=True)
        self._state.queue_limit = limit

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
        self._state.reset_switches()

    def stats(self) -> HubStats:
        """Connection and frame counters."""
        return self._state.stats()

    def wait_for(self, predicate: Callable[[HubStats], bool], timeout: float) -> bool:
        """Block until ``predicate(stats())`` holds (re-checked on every connection change)."""
        return self._state.wait_for(predicate, timeout)

    def describe_sessions(self) -> list[str]:
        """One line per open connection: the client's address, how long it has been open,
        what it subscribed (types and markets) and whether it is closing. For diagnostics
        (a test naming the connection that should have gone)."""
        now = self._state.clock.monotonic()
        lines = []
        for session in list(self._state.sessions):
            peer = session.transport.get_extra_info("peername")
            types = ",".join(spec.type.value for spec in session.specs) or "-"
            markets = ",".join(sorted(session.markets)) or "-"
            lines.append(f"{peer} open {now - session.opened_at:.2f}s types {types} "
                         f"markets {markets} closing {session.closing}")
        return sorted(lines)

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the simulator is not running")
        return self._loop

    # -- async fault controls (loop thread) ---------------------------------------------------

    async def close_all_async(self, code: int = WSCloseCode.GOING_AWAY) -> int:
        sessions = list(self._state.sessions)
        for session in sessions:
            session.closing = True
        await asyncio.gather(*(s.close(code, b"closed by the simulator") for s in sessions))
        return len(sessions)

    async def drop_all_async(self) -> int:
        sessions = list(self._state.sessions)
        for session in sessions:
            session.closing = True
            session.transport.abort()
        return len(sessions)

    async def inject_malformed_async(self, count: int, kind: MalformedKind) -> int:
        return self._injector.malformed(count, kind)

    async def burst_async(self, count: int, *, rate: float | None = None) -> int:
        return await self._injector.burst(count, rate)

    async def replay_async(self, frames: list[tuple[float, bytes]], *, speed: float | None) -> int:
        return await self._injector.replay(frames, speed=speed)

    # -- the endpoint ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        state = self._state
        if not state.accepting:
            state.refused += 1
            return web.Response(status=503, text="WebSocket endpoint unavailable (simulated)")
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None  # noqa: S101 - prepared responses have one
        await Session(ws, transport, state, self._engine).serve()
        return ws

    # -- realtime -------------------------------------------------------------------------------

    def _on_event(self, event: MarketEvent) -> None:
        """Engine listener (loop thread): push the new state to every subscriber."""
        sessions = self._state.sessions
        if not sessions:
            return
        market = event.market
        rendered: dict[tuple[DataType, int, float, WsFormat], bytes] = {}
        for session in list(sessions):
            if market not in session.markets or session.closing:
                continue
            for data_type, spec in session.realtime.items():
                depth = spec.depths.get(market)
                if depth is None:
                    continue
                key = (data_type, depth, spec.level, session.fmt)
                frame = rendered.get(key)
                if frame is None:
                    message = realtime_message(self._engine, event, spec, market, depth)
                    if message is None:
                        continue
                    frame = rendered[key] = encode(message, session.fmt)
                session.push(frame)

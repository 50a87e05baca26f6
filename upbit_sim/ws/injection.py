"""Frames the engine did not make: malformed frames, synthetic bursts, replayed recordings.

:class:`FrameInjector` carries out three of the hub's fault controls on the
event loop's thread:

* :meth:`~FrameInjector.malformed` queues garbage, truncated or bad-field
  frames (:class:`MalformedKind`) to every subscribed session;
* :meth:`~FrameInjector.burst` writes ``count`` synthetic REALTIME frames per
  realtime session straight onto its transport, whole frames per write, at a
  given rate or as fast as the socket drains. Trade ids start far above the
  engine's and the frames are not in the engine's trade log: they exist for
  throughput benchmarks only;
* :meth:`~FrameInjector.replay` sends a recorded session (cryptofeed's log
  format, read by :func:`parse_recording`) to the sessions subscribed to each
  frame's (type, code), paced by the recorded times divided by ``speed``.
"""

from __future__ import annotations

import ast
import asyncio
import enum
import itertools
import math
import random
import re
import struct
from pathlib import Path
from typing import Any

import orjson

from quotation.websocket.subscription import DataType
from quotation.wire_keys import to_default_keys
from upbit_sim.engine import MarketEngine
from upbit_sim.ws.messages import encode, snapshot_message
from upbit_sim.ws.request import SubscriptionSpec
from upbit_sim.ws.session import Session
from upbit_sim.ws.state import HubState

__all__ = [
    "FrameInjector",
    "MalformedKind",
    "parse_recording",
]

_BURST_SID_BASE = 9_000_000_000_000_000
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


class FrameInjector:
    """Malformed, burst and replayed frames for the hub's sessions (loop thread only)."""

    def __init__(self, engine: MarketEngine, state: HubState, *, seed: int) -> None:
        self._engine = engine
        self._state = state
        self._random = random.Random(f"websocket/{seed}")
        self._burst_sids = itertools.count(_BURST_SID_BASE)

    # -- malformed ------------------------------------------------------------------------------

    def malformed(self, count: int, kind: MalformedKind) -> int:
        """Queue ``count`` frames of ``kind`` to every subscribed session; returns how many."""
        queued = 0
        for session in list(self._state.sessions):
            if not session.subscribed:
                continue
            for _ in range(count):
                session.push(self._malformed_frame(session, kind))
                queued += 1
        return queued

    def _sample_message(self, session: Session) -> dict[str, Any] | None:
        for spec in session.specs:
            for code, depth in spec.depths.items():
                message = snapshot_message(self._engine, spec, code, depth)
                if message is not None:
                    message["stream_type"] = "REALTIME"
                    return message
        return None

    def _malformed_frame(self, session: Session, kind: MalformedKind) -> bytes:
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

    # -- burst ----------------------------------------------------------------------------------

    async def burst(self, count: int, rate: float | None) -> int:
        """``count`` synthetic frames to every realtime session; returns the total sent."""
        sessions = [s for s in self._state.sessions if s.realtime]
        results = await asyncio.gather(*(self._burst_one(s, count, rate) for s in sessions))
        return sum(results)

    def _burst_templates(self, session: Session) -> list[tuple[bytes, bytes | None]]:
        """Per subscribed (type, code): the frame, split around the trade id for trades."""
        templates: list[tuple[bytes, bytes | None]] = []
        marker = 8_888_888_888_888_888_888
        for spec in session.realtime.values():
            for code, depth in spec.depths.items():
                message = snapshot_message(self._engine, spec, code, depth)
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

    async def _burst_one(self, session: Session, count: int, rate: float | None) -> int:
        templates = self._burst_templates(session)
        if not templates or count <= 0:
            return 0
        state = self._state
        clock = state.clock
        transport = session.transport
        cycle = itertools.cycle(templates)
        sids = self._burst_sids
        sent = 0
        chunk = _BURST_CHUNK if rate is None else max(1, min(_BURST_CHUNK, math.ceil(rate / 100)))
        started = clock.monotonic()
        while sent < count and not session.closing and not transport.is_closing():
            n = min(chunk, count - sent)
            if rate is not None:
                due = int((clock.monotonic() - started) * rate) - sent
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
            state.frames_sent += n
            session.last_activity = clock.monotonic()
            while (
                transport.get_write_buffer_size() > _BURST_HIGH_WATER and not transport.is_closing()
            ):
                await asyncio.sleep(0.001)
            if rate is None:
                await asyncio.sleep(0)
        return sent

    # -- replay ---------------------------------------------------------------------------------

    async def replay(self, frames: list[tuple[float, bytes]], *, speed: float | None) -> int:
        """Send recorded ``frames`` to their subscribers (``speed=None``: no pauses)."""
        sent = 0
        if not frames:
            return 0
        clock = self._state.clock
        start_at = frames[0][0]
        started = clock.monotonic()
        for at, frame in frames:
            if speed is not None and speed > 0:
                delay = (at - start_at) / speed - (clock.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
            try:
                message = orjson.loads(frame)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(message, dict):
                continue
            default = to_default_keys(message) if "ty" in message else message
            for session in list(self._state.sessions):
                spec = _spec_for(session, default.get("type"), default.get("code"))
                if spec is not None:
                    session.push(encode(default, session.fmt))
                    sent += 1
        return sent


def _spec_for(session: Session, data_type: object, code: object) -> SubscriptionSpec | None:
    """The realtime subscription of ``session`` that covers (``data_type``, ``code``)."""
    if not isinstance(data_type, str) or not isinstance(code, str):
        return None
    try:
        spec = session.realtime.get(DataType(data_type))
    except ValueError:
        return None
    return spec if spec is not None and code in spec.depths else None


def _frame_header(length: int) -> bytes:
    """The header of an unmasked, final, binary WebSocket frame (server → client)."""
    if length < 126:
        return bytes((0x82, length))
    if length < 1 << 16:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)

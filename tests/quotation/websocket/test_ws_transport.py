"""Pins what :mod:`quotation.websocket.transport` assumes of websocket-client's internals.

``BufferedWebSocket`` overrides the private ``WebSocket._recv`` and replaces the
``frame_buffer`` with one whose ``recv_length`` refuses oversized frames. These tests
fail loudly if a websocket-client upgrade renames them, changes their signatures, stops
reading frames through them, reads a payload before its length is checked, or starts
reading the handshake through ``_recv``.
"""

from __future__ import annotations

import inspect
import struct
from collections.abc import Callable

import orjson
import pytest
import websocket

from quotation.websocket.subscription import DataType, Subscription, WsFormat, build_request
from quotation.websocket.transport import (
    READ_SIZE,
    BufferedWebSocket,
    FrameTooLarge,
    open_connection,
)
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(20)

WAIT = 10.0
FRAMES = 300


def test_websocket_client_still_has_the_private_recv_we_override() -> None:
    recv = inspect.getattr_static(websocket.WebSocket, "_recv")
    assert inspect.isfunction(recv), "websocket.WebSocket._recv is gone or no longer a method"
    assert list(inspect.signature(recv).parameters) == ["self", "bufsize"]


def test_the_frame_parser_reads_through_the_overridden_recv() -> None:
    conn = BufferedWebSocket()
    # websocket-client builds its frame buffer around ``self._recv``: ours, bound.
    assert conn.frame_buffer.recv == conn._recv
    assert getattr(conn.frame_buffer.recv, "__func__", None) is BufferedWebSocket._recv


def test_a_declared_length_over_the_limit_is_refused_before_any_payload_byte_is_read() -> None:
    header = bytes((0x82, 127)) + struct.pack("!Q", 1 << 40)
    served: list[bytes] = []

    def recv(bufsize: int) -> bytes:
        # A socket holding that header, then a payload that never ends.
        offset = sum(len(chunk) for chunk in served)
        chunk = header[offset : offset + bufsize] or b"\0" * bufsize
        served.append(chunk)
        return chunk

    conn = BufferedWebSocket()
    conn.max_frame_bytes = 1 << 20
    conn.frame_buffer.recv = recv
    with pytest.raises(FrameTooLarge) as caught:
        conn.recv_frame()  # type: ignore[no-untyped-call]
    assert (caught.value.declared, caught.value.limit) == (1 << 40, 1 << 20)
    assert b"".join(served) == header  # the header only: not one payload byte
    assert isinstance(caught.value, websocket.WebSocketException)


def test_frames_are_served_from_the_read_ahead_buffer_and_parse_intact(
    sim_factory: Callable[..., Simulator],
) -> None:
    sim = sim_factory(seed=3, auto_trade=False)
    conn = open_connection(sim.ws_url, WAIT)
    try:
        # The handshake reads the socket directly: nothing was buffered ahead of the upgrade.
        assert conn._rbuf == b""
        subs = (Subscription(DataType.TRADE, ("KRW-BTC",), is_only_realtime=True),)
        conn.send(build_request(subs, ticket="pin", fmt=WsFormat.DEFAULT))
        assert sim.ws.wait_for(lambda st: st.subscribed >= 1, WAIT)
        assert sim.ws.burst(FRAMES).result(WAIT) == FRAMES
        served_from_buffer = 0
        ids = []
        for _ in range(FRAMES):
            opcode, data = conn.recv_data()
            assert opcode == websocket.ABNF.OPCODE_BINARY
            message = orjson.loads(data)
            assert message["type"] == "trade"
            ids.append(message["sequential_id"])
            if conn._rpos < len(conn._rbuf):
                served_from_buffer += 1  # bytes of later frames were read ahead
        assert len(set(ids)) == FRAMES
        assert 0 < len(conn._rbuf) <= READ_SIZE
        assert served_from_buffer > 0, "no frame was ever read ahead: _recv is bypassed"
    finally:
        conn.close(timeout=0)

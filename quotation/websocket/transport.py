"""The socket under the WebSocket client: ``websocket-client`` with buffered reads.

``websocket-client`` reads each frame with two or three ``recv`` system calls
(header, extended length, payload), each preceded by a ``poll`` when the socket
has a timeout. At tens of thousands of small frames per second those calls cost
more than decoding the JSON. :class:`BufferedWebSocket` overrides the one read
primitive the frame parser uses (``WebSocket._recv``) so a single ``recv`` of up
to ``READ_SIZE`` bytes serves many frames. The handshake does not go through it
(it reads the socket byte by byte), so nothing is read ahead of the upgrade.

:func:`open_connection` opens one the way Upbit wants it: no ``Origin`` header
(Upbit limits requests carrying one to 1 per 10 s), UTF-8 validation skipped
(the JSON decoder validates).

Frames are size-limited before their payload is read. ``websocket-client`` learns a
frame's length from its header (``frame_buffer.recv_length``) and then reads that
many bytes into memory, so a header claiming 1 TiB would be read for as long as the
server sends. :class:`BufferedWebSocket` swaps in a frame buffer that checks the
declared length right after the header and raises :class:`FrameTooLarge` instead; a
fragmented message counts its fragments' total. The payload is never read: the
connection must then be closed (status 1009, ``STATUS_MESSAGE_TOO_BIG``), as the
stream is no longer at a frame boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import websocket as _ws

from quotation.errors import WebSocketError

__all__ = [
    "MAX_FRAME_BYTES",
    "READ_SIZE",
    "BufferedWebSocket",
    "FrameTooLarge",
    "open_connection",
]

READ_SIZE = 1 << 16
"""Bytes asked of the socket per read."""

MAX_FRAME_BYTES = 1 << 20
"""The default limit of one frame (or fragmented message), 1 MiB.

Upbit's largest frames are orderbooks: a 30-level DEFAULT orderbook is about 4 KB, a
``JSON_LIST`` frame a few of those. 1 MiB is over 200 times that, so no real frame comes
near it, while a hostile or broken server can make the client hold at most 1 MiB per
connection (plus one ``READ_SIZE`` read-ahead)."""


class FrameTooLarge(WebSocketError, _ws.WebSocketPayloadException):
    """A frame, or a fragmented message so far, declared over ``limit`` bytes (``declared``).

    Raised from the frame header, before the payload is read; the connection cannot go on
    (it is mid-frame) and is closed with status 1009. Also a ``websocket``
    ``WebSocketPayloadException``, so code that catches websocket-client's errors sees it.
    """

    def __init__(self, *, declared: int, limit: int) -> None:
        super().__init__(f"frame of {declared} bytes is over the limit of {limit} bytes")
        self.declared = declared
        self.limit = limit


_OPCODE_INDEX = 4
"""Where ``frame_buffer.header`` (fin, rsv1, rsv2, rsv3, opcode, mask, length bits) keeps
the opcode."""


class _LimitedFrameBuffer(_ws.frame_buffer):
    """websocket-client's frame parser, refusing a frame by its declared length."""

    def __init__(
        self, recv_fn: Callable[[int], bytes], skip_utf8_validation: bool, limit: int
    ) -> None:
        super().__init__(recv_fn, skip_utf8_validation)
        self.limit = limit
        self._message_bytes = 0
        """Payload bytes of the data message being received (fragments so far)."""

    def recv_length(self) -> None:
        super().recv_length()
        length = self.length
        header = self.header
        if length is None or header is None:
            return  # websocket-client raises its own protocol error next
        opcode = header[_OPCODE_INDEX]
        if opcode == _ws.ABNF.OPCODE_CONT:
            total = self._message_bytes + length
        elif opcode in (_ws.ABNF.OPCODE_TEXT, _ws.ABNF.OPCODE_BINARY):
            total = length  # a new message
        else:
            total = length  # a control frame, possibly between fragments: its own size
        if total > self.limit:
            raise FrameTooLarge(declared=total, limit=self.limit)
        if opcode < _ws.ABNF.OPCODE_CLOSE:
            self._message_bytes = total


class BufferedWebSocket(_ws.WebSocket):
    """A ``websocket.WebSocket`` whose frame reads come from a read-ahead buffer.

    Frames (and fragmented messages) longer than :attr:`max_frame_bytes` raise
    :class:`FrameTooLarge` from their header.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self.frame_buffer = _LimitedFrameBuffer(
            self._recv, self.frame_buffer.skip_utf8_validation, MAX_FRAME_BYTES
        )

    @property
    def max_frame_bytes(self) -> int:
        """The largest frame or fragmented message accepted, in payload bytes."""
        return self._limited_buffer().limit

    @max_frame_bytes.setter
    def max_frame_bytes(self, limit: int) -> None:
        self._limited_buffer().limit = limit

    def _limited_buffer(self) -> _LimitedFrameBuffer:
        buffer = self.frame_buffer
        assert isinstance(buffer, _LimitedFrameBuffer)  # noqa: S101 - set in __init__
        return buffer

    def _recv(self, bufsize: int) -> bytes:
        buf: bytes = self._rbuf
        pos = self._rpos
        if pos >= len(buf):
            buf = super()._recv(READ_SIZE)  # type: ignore[no-untyped-call]
            if not buf:
                return buf
            self._rbuf = buf
            pos = 0
        end = pos + bufsize
        self._rpos = end
        if pos == 0 and end >= len(buf):
            return buf
        return buf[pos:end]


def open_connection(
    url: str, timeout: float, *, max_frame_bytes: int = MAX_FRAME_BYTES
) -> BufferedWebSocket:
    """Connect to ``url`` within ``timeout`` seconds, Origin suppressed, frames limited."""
    conn = _ws.create_connection(
        url,
        timeout=timeout,
        class_=BufferedWebSocket,
        suppress_origin=True,
        skip_utf8_validation=True,
    )
    assert isinstance(conn, BufferedWebSocket)  # noqa: S101 - class_ above guarantees it
    conn.max_frame_bytes = max_frame_bytes  # no frame was read yet: the handshake bypasses it
    return conn

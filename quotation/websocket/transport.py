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
"""

from __future__ import annotations

from typing import Any

import websocket as _ws

__all__ = ["READ_SIZE", "BufferedWebSocket", "open_connection"]

READ_SIZE = 1 << 16
"""Bytes asked of the socket per read."""


class BufferedWebSocket(_ws.WebSocket):
    """A ``websocket.WebSocket`` whose frame reads come from a read-ahead buffer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0

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


def open_connection(url: str, timeout: float) -> BufferedWebSocket:
    """Connect to ``url`` within ``timeout`` seconds, Origin suppressed."""
    conn = _ws.create_connection(
        url,
        timeout=timeout,
        class_=BufferedWebSocket,
        suppress_origin=True,
        skip_utf8_validation=True,
    )
    assert isinstance(conn, BufferedWebSocket)  # noqa: S101 - class_ above guarantees it
    return conn

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

The handshake has one deadline as a whole. ``websocket-client``'s ``timeout`` bounds
each ``recv``, so a server dripping its ``101`` answer a byte at a time would keep the
handshake going for ever. :func:`open_connection` opens the TCP socket itself (then TLS
for ``wss://``) and hands it to ``websocket-client`` with ``socket=``; a
:class:`ConnectAttempt` holds that socket from the moment it exists, and a timer shuts it
down at the deadline, so the blocked ``recv`` fails at once (:class:`HandshakeTimeout`).
:meth:`ConnectAttempt.cancel` does the same from another thread (the client's ``stop``),
raising :class:`ConnectCancelled`. Only name resolution is outside the deadline (it
cannot be interrupted); no proxy is used (Upbit is reached directly).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import websocket as _ws
from websocket._url import parse_url

from quotation.errors import WebSocketError

__all__ = [
    "MAX_FRAME_BYTES",
    "READ_SIZE",
    "BufferedWebSocket",
    "ConnectAttempt",
    "ConnectCancelled",
    "FrameTooLarge",
    "HandshakeTimeout",
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


class HandshakeTimeout(WebSocketError, _ws.WebSocketTimeoutException):
    """TCP connect, TLS and the HTTP upgrade together took longer than ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"handshake timed out after {timeout:g} s")
        self.timeout = timeout


class ConnectCancelled(WebSocketError, _ws.WebSocketException):
    """:meth:`ConnectAttempt.cancel` ended the attempt (the client is stopping)."""


_TIMED_OUT = "timed out"
_CANCELLED = "cancelled"


class ConnectAttempt:
    """One connection being opened; :meth:`cancel` shuts its socket at once, from any thread.

    :func:`open_connection` hands it each socket as soon as the socket exists and takes it
    back when the handshake is done; a cancel before the socket exists shuts it as it
    arrives. After the handshake it does nothing (the connection is the caller's then).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._ended_by: str | None = None
        self._done = False

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called before the handshake ended."""
        return self._ended_by == _CANCELLED

    def cancel(self) -> None:
        """End the attempt: its socket is shut down, the handshake fails at once."""
        self._end(_CANCELLED)

    def _end(self, why: str) -> None:
        with self._lock:
            if self._done or self._ended_by is not None:
                return
            self._ended_by = why
            sock = self._sock
        if sock is not None:
            _shut(sock)

    def _hold(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            ended = self._ended_by is not None
        if ended:
            _shut(sock)

    def _finish(self) -> str | None:
        """The handshake is over: let go of the socket; why it was ended, if it was."""
        with self._lock:
            self._done = True
            self._sock = None
            return self._ended_by


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for a TLS socket: the fd is shut under whatever
    # call is blocked on it. Not connected yet, or closed: nothing to do (a connect in
    # progress ends by its own timeout, and the socket is shut when it is held again).
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


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
    url: str,
    timeout: float,
    *,
    max_frame_bytes: int = MAX_FRAME_BYTES,
    attempt: ConnectAttempt | None = None,
) -> BufferedWebSocket:
    """Connect to ``url``, handshake included, within ``timeout`` seconds as a whole.

    Origin suppressed, frames limited. Raises :class:`HandshakeTimeout` past the
    deadline, :class:`ConnectCancelled` if ``attempt`` was cancelled, else what the
    socket or ``websocket-client`` raised.
    """
    attempt = attempt if attempt is not None else ConnectAttempt()
    timer = threading.Timer(timeout, attempt._end, (_TIMED_OUT,))
    timer.daemon = True
    timer.start()
    sock: socket.socket | None = None
    try:
        hostname, port, _resource, is_secure = parse_url(url)
        sock = _open_socket(hostname, port, timeout, attempt)
        if is_secure:
            context = ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=hostname)
            attempt._hold(sock)
        conn = BufferedWebSocket(skip_utf8_validation=True)
        conn.connect(  # type: ignore[no-untyped-call]
            url, timeout=timeout, socket=sock, suppress_origin=True
        )
    except (OSError, _ws.WebSocketException) as exc:
        ended_by = attempt._finish()
        if sock is not None:
            sock.close()
        if ended_by == _TIMED_OUT:
            raise HandshakeTimeout(timeout) from exc
        if ended_by == _CANCELLED:
            raise ConnectCancelled("connect cancelled") from exc
        raise
    finally:
        timer.cancel()
    if attempt._finish() is not None:  # ended right as the handshake completed
        conn.shutdown()  # type: ignore[no-untyped-call]
        if attempt.cancelled:
            raise ConnectCancelled("connect cancelled")
        raise HandshakeTimeout(timeout)
    conn.max_frame_bytes = max_frame_bytes  # no frame was read yet: the handshake bypasses it
    return conn


def _open_socket(
    hostname: str, port: int, timeout: float, attempt: ConnectAttempt
) -> socket.socket:
    """A TCP connection to the first address that answers, held by ``attempt`` throughout."""
    error: OSError | None = None
    for family, kind, proto, _name, address in socket.getaddrinfo(
        hostname, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP
    ):
        sock = socket.socket(family, kind, proto)
        attempt._hold(sock)
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        attempt._hold(sock)  # shut now if the deadline passed while connecting
        return sock
    raise error if error is not None else OSError(f"no address for {hostname}:{port}")

"""A ``requests`` transport adapter whose every socket read keeps to one exchange's deadline.

``requests`` (urllib3, ``http.client``) applies the read timeout to each ``recv`` alone: a
server that drips its status line and headers one byte per ``read_timeout - ε`` is never
silent long enough to time out, and the wait for the headers has no end. This adapter puts
the exchange's deadline under every read, the status line and headers included::

    guard = ExchangeGuard(clock, deadline=clock.monotonic() + 15.0, read_timeout=5.0)
    with guard.active():                       # the reads of this thread's exchange
        response = session.get(url, timeout=(3.05, 5.0), stream=True)
    guard.cut_short                            # a timeout then means the deadline passed

Before each ``recv`` the socket's timeout is set to ``read_timeout`` or the time left,
whichever is less, and a read asked for once the deadline has passed fails at once with a
``TimeoutError`` (urllib3 and ``requests`` report both as a read timeout). The guard follows
the response it was active for: its body reads keep to the same deadline. No thread, no
timer: the wait is the socket's own. A request made while no guard is active reads as
``requests`` always does.

The guard reaches the connection through a context variable set by :meth:`ExchangeGuard.active`
on the calling thread (``requests`` sends on the caller's thread), and the connection pools of
:class:`DeadlineAdapter` build every answer with it.
"""

from __future__ import annotations

import io
import socket
from contextvars import ContextVar
from http.client import HTTPResponse
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from quotation.clock import Clock

__all__ = ["DeadlineAdapter", "ExchangeGuard"]


class ExchangeGuard:
    """The deadline (on ``clock``) of one HTTP exchange, seen by every socket read made for it.

    ``cut_short`` turns true once a read was given less than ``read_timeout`` (or refused)
    because of the deadline: a timeout after that is the deadline passing, not a silence.
    """

    def __init__(self, clock: Clock, *, deadline: float, read_timeout: float) -> None:
        self.clock = clock
        self.deadline = deadline
        self.read_timeout = read_timeout
        self.cut_short = False

    def next_read_timeout(self) -> float:
        """The socket timeout for the next read; ``TimeoutError`` if the deadline has passed."""
        left = self.deadline - self.clock.monotonic()
        if left <= 0:
            self.cut_short = True
            raise TimeoutError("the exchange's total timeout passed")
        if left < self.read_timeout:
            self.cut_short = True
            return left
        return self.read_timeout

    def active(self) -> _Activation:
        """Answers received on this thread (context) inside the block keep to this guard."""
        return _Activation(self)


class _Activation:
    """``with guard.active():`` — a plain context manager (a generator-based one cost 1 µs
    more on every exchange)."""

    __slots__ = ("_guard", "_token")

    def __init__(self, guard: ExchangeGuard) -> None:
        self._guard = guard

    def __enter__(self) -> ExchangeGuard:
        self._token = _current.set(self._guard)
        return self._guard

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)


_current: ContextVar[ExchangeGuard | None] = ContextVar("quotation_rest_guard", default=None)


class _GuardedSocketReader(io.RawIOBase):
    """The socket's raw reader, its timeout set from the guard before every ``recv``."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, guard: ExchangeGuard) -> None:
        super().__init__()
        self._raw = raw
        self._sock = sock
        self._guard = guard

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(self._guard.next_read_timeout())
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()  # gives the socket's file reference back (it closes when unused)
        super().close()


class _GuardedResponse(HTTPResponse):
    """``http.client``'s answer, reading through the active guard (if any) from the first byte."""

    def __init__(
        self,
        sock: socket.socket,
        debuglevel: int = 0,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(sock, debuglevel, method, url)
        guard = _current.get()
        if guard is not None:
            # Nothing has been read yet: the buffered reader's socket file is taken over whole.
            raw = self.fp.detach()
            self.fp = io.BufferedReader(_GuardedSocketReader(raw, sock, guard))


class _GuardedHTTPConnection(HTTPConnection):
    response_class = _GuardedResponse


class _GuardedHTTPSConnection(HTTPSConnection):
    response_class = _GuardedResponse


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections read through the active :class:`ExchangeGuard`."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }

    def close(self) -> None:
        """Close every pooled connection now, then drop the pools.

        urllib3 2's ``PoolManager.clear()`` only drops its pools: their connections close when
        a pool is garbage-collected, and a pool still referenced (from a reference cycle an
        error's traceback makes, for one) kept its sockets open after ``Session.close()``
        until the next ``gc`` pass — seen after a hostile answer was given up on."""
        managers = [self.poolmanager, *self.proxy_manager.values()]
        for manager in managers:
            for key in list(manager.pools.keys()):
                pool = manager.pools.get(key)
                if pool is not None:
                    pool.close()
        super().close()

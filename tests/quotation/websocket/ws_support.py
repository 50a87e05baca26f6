"""Shared helpers for the WebSocket client tests: a collecting consumer, a client factory, the
wire pieces a raw-socket test server needs (the handshake answer, server frames), and what
this process holds (threads, file descriptors, resident memory) for the hostile-server tests."""

from __future__ import annotations

import base64
import contextlib
import gc
import hashlib
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from quotation.backoff import Backoff, Jitter
from quotation.models import Trade
from quotation.websocket.cache import StreamItem
from quotation.websocket.client import WebSocketClient, WebSocketConfig
from quotation.websocket.subscription import Subscription
from upbit_sim import Simulator

__all__ = [
    "FAST_BACKOFF",
    "WAIT",
    "Collector",
    "Held",
    "MakeClient",
    "drop_and_trade_meanwhile",
    "frame",
    "handshake_answer",
    "header",
    "making_clients",
    "rss_bytes",
    "sids",
]

WAIT = 10.0
FAST_BACKOFF = Backoff(initial=0.05, multiplier=2.0, cap=0.2, jitter=Jitter.FULL)
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def handshake_answer(request: bytes) -> bytes:
    """The ``101`` answer to a client's handshake ``request`` (its head, without the blank
    line), with the RFC 6455 accept key for its ``Sec-WebSocket-Key``."""
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def frame(payload: bytes, *, opcode: int = 0x2, fin: bool = True) -> bytes:
    """One unmasked server frame."""
    return header(len(payload), opcode=opcode, fin=fin) + payload


def header(length: int, *, opcode: int = 0x2, fin: bool = True) -> bytes:
    """A server frame header declaring ``length`` payload bytes (the payload not included)."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return bytes((first, 126)) + struct.pack("!H", length)
    return bytes((first, 127)) + struct.pack("!Q", length)


class Collector:
    """A consumer that records every item and wakes waiters."""

    def __init__(self) -> None:
        self.items: list[StreamItem] = []
        self._cond = threading.Condition()

    def __call__(self, batch: tuple[StreamItem, ...]) -> None:
        with self._cond:
            self.items.extend(batch)
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[list[StreamItem]], bool], timeout: float = WAIT
    ) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.items), timeout)

    def snapshot(self) -> list[StreamItem]:
        with self._cond:
            return list(self.items)

    def trades(self) -> list[Trade]:
        with self._cond:
            return [i for i in self.items if isinstance(i, Trade)]


def rss_bytes() -> int:
    """This process's resident memory now (``/proc/self/statm``), in bytes."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class Held:
    """The threads and open file descriptors of this process at one moment."""

    threads: frozenset[threading.Thread]
    fds: frozenset[str]

    @classmethod
    def now(cls) -> Held:
        return cls(frozenset(threading.enumerate()), frozenset(os.listdir("/proc/self/fd")))

    def left_since(self, before: Held) -> list[str]:
        """What is held now and was not ``before``: live threads by name, extra fds by target.

        Empty when everything a test started has ended. The fd side compares counts (a
        number may be reused) and names the new numbers' targets.
        """
        left = [f"thread {t.name}" for t in self.threads - before.threads if t.is_alive()]
        extra = len(self.fds) - len(before.fds)
        if extra > 0:
            targets = []
            for fd in sorted(self.fds - before.fds):
                with contextlib.suppress(OSError):  # the listing's own fd, closed since
                    targets.append(os.readlink(f"/proc/self/fd/{fd}"))
            left.append(f"{extra} more fds ({', '.join(targets)})")
        return left

    @classmethod
    def left_after(cls, before: Held, timeout: float = 5.0) -> list[str]:
        """:meth:`left_since` once it is empty, or as it stands after ``timeout`` seconds.

        The simulator serves from this process: the server's side of a connection the
        client closed is released by its event loop a moment later (under load, after the
        client's ``stop()`` returned), so a leak is what is still held after the wait. The
        garbage collector is off while it waits: a socket only a collection would close is
        still counted."""
        end = time.monotonic() + timeout
        enabled = gc.isenabled()
        gc.disable()
        try:
            while True:
                left = cls.now().left_since(before)
                if not left or time.monotonic() >= end:
                    return left
                time.sleep(0.02)
        finally:
            if enabled:
                gc.enable()


MakeClient = Callable[..., tuple[WebSocketClient, Collector]]
"""``make(sim, subscriptions=..., trade_source=..., connector=..., clock=..., random=...,
**config)``."""


def making_clients(default_subscriptions: tuple[Subscription, ...]) -> Iterator[MakeClient]:
    """Body of a ``make_client`` fixture: started clients, every one stopped afterwards."""
    clients: list[WebSocketClient] = []

    def make(
        sim: Simulator,
        subscriptions: tuple[Subscription, ...] = default_subscriptions,
        **kwargs: Any,
    ) -> tuple[WebSocketClient, Collector]:
        extra = {
            key: kwargs.pop(key)
            for key in ("trade_source", "connector", "clock", "random")
            if key in kwargs
        }
        kwargs.setdefault("backoff", FAST_BACKOFF)
        config = WebSocketConfig(subscriptions=subscriptions, url=sim.ws_url, **kwargs)
        client = WebSocketClient(config, **extra)
        collector = Collector()
        client.add_consumer(collector)
        clients.append(client)
        client.start()
        return client, collector

    yield make
    for client in clients:
        client.stop()


def sids(items: list[StreamItem]) -> set[int]:
    """The sequential ids of the trades among ``items``."""
    return {i.sequential_id for i in items if isinstance(i, Trade)}


def drop_and_trade_meanwhile(
    sim: Simulator, client: WebSocketClient, got: Collector, market: str, missed: int
) -> tuple[list[int], list[int]]:
    """Trade, drop the socket, trade ``missed`` times while away, let the client back in.

    Returns the ids delivered before the drop and the ids traded while away.
    """
    assert client.wait_live(WAIT)
    before = sim.engine.step_market(market, 5)
    assert got.wait_for(lambda items: before[-1].sequential_id in sids(items))
    sim.ws.set_accepting(False)
    assert sim.ws.drop_all() == 1
    assert client.wait_until(lambda s: s.connect_failures >= 1, WAIT)
    away = sim.engine.step_market(market, missed)
    sim.ws.set_accepting(True)
    return [t.sequential_id for t in got.trades()], [t.sequential_id for t in away]

"""Bounded, batched hand-off from the receive thread to consumers.

The receive thread must never wait for a consumer. :meth:`BatchDispatcher.offer`
appends an item to a pending list under a short lock and returns; a dispatcher
thread takes *everything* pending in one swap and hands it to each consumer as
one tuple. Batches therefore grow on their own while consumers are busy (one
pykka ``tell`` per batch instead of per frame) and shrink to single items when
the stream is quiet (no added latency). The pending list is bounded: beyond
``capacity`` items, new items are dropped and counted (:attr:`dropped`), never
queued without limit. A consumer that raises is logged and counted; it does not
stop delivery to the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from quotation.values import check

__all__ = ["BatchConsumer", "BatchDispatcher"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

BatchConsumer = Callable[[tuple[T, ...]], None]
"""Called on the dispatcher thread with one batch, oldest item first."""


class BatchDispatcher(Generic[T]):
    """Delivers offered items to consumers in batches on its own thread."""

    def __init__(self, *, capacity: int = 100_000, name: str = "ws-delivery") -> None:
        check("capacity", capacity, at_least=1, integer=True)
        self._capacity = capacity
        self._name = name
        lock = threading.Lock()
        self._cond = threading.Condition(lock)
        """Signalled when work arrives or on stop (the dispatcher waits on it)."""
        self._idle = threading.Condition(lock)
        """Signalled when a batch was delivered (``flush`` waits on it)."""
        self._pending: list[T] = []
        self._consumers: tuple[BatchConsumer[T], ...] = ()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.dropped = 0
        """Items dropped because ``capacity`` items were already pending."""
        self.delivered = 0
        """Items handed to consumers (counted once per item, not per consumer)."""
        self.consumer_errors = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def add_consumer(self, consumer: BatchConsumer[T]) -> Callable[[], None]:
        """Register ``consumer``; returns a function that removes it."""
        with self._cond:
            self._consumers = (*self._consumers, consumer)

        def remove() -> None:
            with self._cond:
                self._consumers = tuple(c for c in self._consumers if c is not consumer)

        return remove

    def offer(self, item: T) -> bool:
        """Queue ``item`` for delivery; False if it was dropped (full, or nobody listens)."""
        if not self._consumers:
            return False
        with self._cond:
            pending = self._pending
            if len(pending) >= self._capacity:
                self.dropped += 1
                return False
            pending.append(item)
            if len(pending) == 1:
                self._cond.notify()
        return True

    def start(self) -> None:
        """Start the dispatcher thread (idempotent)."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is pending, then stop the thread (idempotent)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
            self._thread = None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def pending(self) -> int:
        """Items waiting for delivery."""
        with self._cond:
            return len(self._pending)

    def flush(self, timeout: float) -> bool:
        """Wait until everything offered so far was delivered; False on timeout."""
        with self._cond:
            return self._idle.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                self._busy = False
                self._idle.notify_all()
                while not self._pending and not self._stopping:
                    cond.wait()
                if not self._pending and self._stopping:
                    self._idle.notify_all()
                    return
                batch = tuple(self._pending)
                self._pending = []
                self._busy = True
                consumers = self._consumers
            for consumer in consumers:
                try:
                    consumer(batch)
                except Exception:
                    self.consumer_errors += 1
                    logger.exception("WebSocket consumer %r failed on a batch", consumer)
            self.delivered += len(batch)

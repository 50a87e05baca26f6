"""What the WebSocket hub's parts share: live sessions, fault switches, counters, tasks.

One :class:`HubState` per hub. The event loop's thread owns it: sessions
register and unregister, count frames and closes, and read the switches on
every send. The hub's Python fault controls flip the switches from other
threads (single attribute writes); :meth:`HubState.stats` snapshots the
counters as a frozen :class:`HubStats` for any thread, and
:meth:`HubState.wait_for` blocks a thread until a connection change makes a
predicate on them true.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quotation.clock import Clock

if TYPE_CHECKING:
    from upbit_sim.ws.session import Session

__all__ = [
    "DEFAULT_QUEUE_LIMIT",
    "HubState",
    "HubStats",
]

DEFAULT_QUEUE_LIMIT = 10_000
"""Frames queued per connection before the client counts as a slow consumer."""


@dataclass(frozen=True, slots=True)
class HubStats:
    """Counters of the WebSocket side."""

    connections: int
    subscribed: int
    frames_sent: int
    errors_sent: int
    idle_closes: int
    slow_consumer_closes: int
    refused: int


class HubState:
    """The hub's sessions, fault switches, counters and background tasks."""

    def __init__(self, clock: Clock, *, idle_timeout: float, queue_limit: int) -> None:
        self.clock = clock
        self.sessions: set[Session] = set()
        # fault switches
        self.accepting = True
        self.silent = False
        self.answer_pings = True
        self.queue_limit = queue_limit
        """Send queue size of connections opened from now on."""
        self.idle_timeout = idle_timeout
        """Seconds without any frame in either direction before the server closes."""
        # counters
        self.frames_sent = 0
        self.errors_sent = 0
        self.idle_closes = 0
        self.slow_closes = 0
        self.refused = 0
        self._changed = threading.Condition()
        self._background: set[asyncio.Task[Any]] = set()

    def reset_switches(self) -> None:
        """Every fault off (the idle timeout is a setting, not a fault: it stays)."""
        self.accepting = True
        self.silent = False
        self.answer_pings = True
        self.queue_limit = DEFAULT_QUEUE_LIMIT

    def stats(self) -> HubStats:
        """Connection and frame counters."""
        sessions = list(self.sessions)
        return HubStats(
            connections=len(sessions),
            subscribed=sum(1 for s in sessions if s.subscribed),
            frames_sent=self.frames_sent,
            errors_sent=self.errors_sent,
            idle_closes=self.idle_closes,
            slow_consumer_closes=self.slow_closes,
            refused=self.refused,
        )

    def notify(self) -> None:
        """Wake :meth:`wait_for` callers: a connection or subscription changed."""
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[HubStats], bool], timeout: float) -> bool:
        """Block until ``predicate(stats())`` holds (re-checked on every connection change)."""
        # A real wait of the calling thread (Condition.wait is real time), so real time here:
        # with a fake clock injected, the deadline must still pass.
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.stats()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.05))
        return True

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` on the loop as a background task that :meth:`cancel_background` ends."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def cancel_background(self) -> None:
        """Cancel every background task (bursts, replays, slow-consumer closes)."""
        for task in list(self._background):
            task.cancel()

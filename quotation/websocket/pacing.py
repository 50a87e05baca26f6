"""Sliding-window pacing for Upbit's WebSocket limits (5 connects/s; 5 messages/s and 100/min).

A :class:`RateWindow` is one limit (``max_events`` in ``window`` seconds);
:func:`pacing_delay` is the pure decision — given the times of past events and
``now``, how long to wait before one more event keeps every window within its
limit. :class:`Pacer` keeps the recent event times for one budget (one
connection's messages, or a process's connects when shared). It is thread-safe
and only decides; the caller sleeps on its injected clock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from quotation.values import check

__all__ = [
    "UPBIT_CONNECT_LIMITS",
    "UPBIT_MESSAGE_LIMITS",
    "Pacer",
    "RateWindow",
    "pacing_delay",
]


@dataclass(frozen=True, slots=True)
class RateWindow:
    """At most ``max_events`` events in any ``window`` seconds."""

    max_events: int
    window: float

    def __post_init__(self) -> None:
        check("max_events", self.max_events, at_least=1, integer=True)
        check("window", self.window, above=0)


UPBIT_CONNECT_LIMITS: tuple[RateWindow, ...] = (RateWindow(5, 1.0),)
"""Upbit: 5 new connections per second per IP."""
UPBIT_MESSAGE_LIMITS: tuple[RateWindow, ...] = (RateWindow(5, 1.0), RateWindow(100, 60.0))
"""Upbit: 5 messages per second and 100 per minute per connection."""


def pacing_delay(now: float, past: Sequence[float], limits: Iterable[RateWindow]) -> float:
    """Seconds to wait after ``now`` so one more event stays within every limit.

    ``past`` holds the times of earlier events, oldest first. An event at time
    ``t`` occupies the window ``[t, t + window)``.
    """
    delay = 0.0
    for limit in limits:
        if len(past) >= limit.max_events:
            # The event that must leave the window before ours may enter.
            blocking = past[len(past) - limit.max_events]
            delay = max(delay, blocking + limit.window - now)
    return delay


class Pacer:
    """The recent event times of one budget; thread-safe."""

    def __init__(self, limits: Sequence[RateWindow]) -> None:
        self._limits = tuple(limits)
        self._keep = max((limit.max_events for limit in self._limits), default=0)
        self._events: deque[float] = deque(maxlen=max(self._keep, 1))
        self._lock = threading.Lock()

    @property
    def limits(self) -> tuple[RateWindow, ...]:
        return self._limits

    def delay(self, now: float) -> float:
        """How long to wait before the next event (0 when it may go now)."""
        with self._lock:
            return pacing_delay(now, self._events, self._limits)

    def reserve(self, now: float) -> float:
        """Book the next event at ``now + delay`` and return that delay."""
        with self._lock:
            delay = pacing_delay(now, self._events, self._limits)
            self._events.append(now + delay)
            return delay

    def reset(self) -> None:
        """Forget every event (a new connection starts a new message budget)."""
        with self._lock:
            self._events.clear()

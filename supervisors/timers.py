"""The supervisor's timers, each a small daemon thread sleeping on the injected clock.

The supervisor actor never sleeps: a timer sleeps on ``clock.sleep`` and then *tells* the
supervisor, which decides what is due using ``clock.monotonic()``. ``tell_after`` waits a
delay (restart backoff), ``tell_at`` until a moment on the clock (a liveness ping's deadline),
``Ticker`` repeats (liveness pings).
"""

from __future__ import annotations

import threading
from typing import Any

import pykka

from supervisors.clock import MonotonicClock

__all__ = ["Ticker", "tell_after", "tell_at"]


def _tell(ref: pykka.ActorRef[Any], message: Any) -> bool:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return False
    return True


def tell_after(
    clock: MonotonicClock, delay: float, ref: pykka.ActorRef[Any], message: Any, *, name: str
) -> threading.Thread:
    """Tell ``message`` to ``ref`` after ``clock.sleep(delay)``, from a daemon thread."""

    def run() -> None:
        clock.sleep(delay)
        _tell(ref, message)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def tell_at(
    clock: MonotonicClock, at: float, ref: pykka.ActorRef[Any], message: Any, *, name: str
) -> threading.Thread:
    """Tell ``message`` to ``ref`` once ``clock.monotonic() >= at``, from a daemon thread.

    The moment is fixed when this is called, not when the thread first runs, and the thread
    sleeps again if a sleep returns early: the receiver, reading the clock, finds ``at``
    reached.
    """

    def run() -> None:
        while (left := at - clock.monotonic()) > 0:
            clock.sleep(left)
        _tell(ref, message)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


class Ticker:
    """Tells ``message`` to ``ref`` every ``interval`` seconds until stopped."""

    def __init__(
        self, clock: MonotonicClock, interval: float, ref: pykka.ActorRef[Any], message: Any,
        *, name: str,
    ) -> None:
        self._clock = clock
        self._interval = interval
        self._ref = ref
        self._message = message
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start ticking."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current sleep (the thread is a daemon: it never blocks exit)."""
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._clock.sleep(self._interval)
            if self._stopped.is_set() or not _tell(self._ref, self._message):
                return

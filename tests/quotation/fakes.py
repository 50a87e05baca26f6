"""Small fakes implementing real interfaces, shared by the quotation tests."""

from __future__ import annotations

import threading

__all__ = ["NOON_2026_03_11", "ManualClock"]

NOON_2026_03_11 = 1_773_230_400.0
"""2026-03-11 12:00 UTC, the day of the real recordings."""


class ManualClock:
    """A ``quotation.clock.Clock`` that only moves when told to: every reading is reproducible.

    ``advance`` moves both readings; so does ``sleep``, which returns at once and
    records what was asked in ``sleeps``, so tests assert exact waits. A sleep of
    zero or less moves nothing, as with the real clock. Thread-safe: the code
    under test may sleep on its own thread while the test reads the clock.
    """

    def __init__(self, wall: float = NOON_2026_03_11, *, mono: float = 1_000.0) -> None:
        self._lock = threading.Lock()
        self._wall = wall
        self._mono = mono
        self._sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def time(self) -> float:
        with self._lock:
            return self._wall

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._sleeps.append(seconds)
            self._move(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._move(seconds)

    @property
    def sleeps(self) -> list[float]:
        """Every ``sleep`` asked for so far, oldest first (a copy)."""
        with self._lock:
            return list(self._sleeps)

    def _move(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += seconds

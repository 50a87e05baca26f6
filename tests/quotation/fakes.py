"""Small fakes implementing real interfaces, shared by the quotation tests."""

from __future__ import annotations

__all__ = ["ManualClock"]

NOON_2026_03_11 = 1_773_230_400.0
"""2026-03-11 12:00 UTC, the day of the real recordings."""


class ManualClock:
    """A ``quotation.clock.Clock`` that only moves when told to: every reading is reproducible."""

    def __init__(self, wall: float = NOON_2026_03_11) -> None:
        self.wall = wall
        self.mono = 1_000.0

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds

"""The clock a supervisor is given: a monotonic reading and a sleep.

Structurally a subset of ``quotation.clock.Clock``, so the same object serves both, while
the generic supervisor imports nothing of the market-data packages.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["MonotonicClock", "SystemMonotonicClock"]


@runtime_checkable
class MonotonicClock(Protocol):
    """What supervision needs of time: ``monotonic()`` for windows, ``sleep()`` for backoff."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...


class SystemMonotonicClock:
    """The real clock: ``time.monotonic`` and ``time.sleep``."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

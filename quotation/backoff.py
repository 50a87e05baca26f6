"""Capped exponential backoff: how long to pause after the n-th failure in a row.

A pure policy (no clock, no state): the rate limiter counts consecutive 429s
per group and asks :meth:`Backoff.delay` for the pause; a success resets the
count. Tests assert the exact waits with plain numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Backoff", "capped_exponential"]


def capped_exponential(first: float, multiplier: float, cap: float, steps: int) -> float:
    """``min(cap, first * multiplier ** steps)``, without overflow however large ``steps`` is.

    The one capped-exponential rule of the package: the REST 429 pauses
    (:class:`Backoff`) and the WebSocket reconnect ceilings
    (:func:`quotation.websocket.backoff.backoff_ceiling`) both use it.
    """
    # Compare exponents first so huge step counts cannot overflow.
    if multiplier > 1 and steps > math.log(cap / first, multiplier):
        return cap
    return min(cap, first * multiplier**steps)


@dataclass(frozen=True, slots=True)
class Backoff:
    """``base * factor ** (n - 1)`` seconds after the n-th failure, never above ``cap``.

    The defaults pause 1 s, 2 s, 4 s, … up to 30 s: Upbit asks callers to stop a
    group for at least a second after a 429, and repeated 429s lead to a ban.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 30.0

    def __post_init__(self) -> None:
        if not self.base > 0:
            raise ValueError(f"Backoff.base must be > 0, got {self.base!r}")
        if not self.factor >= 1:
            raise ValueError(f"Backoff.factor must be >= 1, got {self.factor!r}")
        if not self.cap >= self.base:
            raise ValueError(f"Backoff.cap must be >= base, got {self.cap!r}")

    def delay(self, failures: int) -> float:
        """The pause after ``failures`` consecutive failures (0 failures → no pause)."""
        if failures <= 0:
            return 0.0
        return capped_exponential(self.base, self.factor, self.cap, failures - 1)

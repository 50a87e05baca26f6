"""Capped exponential backoff: how long to pause after the n-th failure in a row.

A pure policy (no clock, no state): the rate limiter counts consecutive 429s
per group and asks :meth:`Backoff.delay` for the pause; a success resets the
count. Tests assert the exact waits with plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Backoff"]


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
        # Stop growing once past the cap: no float overflow after many failures.
        delay = self.base
        for _ in range(failures - 1):
            delay *= self.factor
            if delay >= self.cap:
                return self.cap
        return min(delay, self.cap)

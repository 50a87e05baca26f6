"""How long to wait before the next connection attempt: exponential backoff, full jitter, cap.

The decision is a pure function: ``backoff_delay(policy, attempt, random)``
returns ``random() * min(cap, initial * multiplier ** attempt)`` (the "full
jitter" of the AWS architecture blog), so a fleet of clients that lost the same
server spreads its reconnects over the whole window instead of storming it.
``random`` is injected (``random.random`` in production, a scripted sequence in
tests), so tests assert exact delays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from quotation.backoff import capped_exponential
from quotation.errors import InvalidRequest

__all__ = ["BackoffPolicy", "backoff_ceiling", "backoff_delay"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff: attempt ``n`` waits up to ``min(cap, initial * multiplier**n)``."""

    initial: float = 0.5
    """Ceiling of the first retry's delay, seconds."""
    multiplier: float = 2.0
    cap: float = 30.0
    """No delay is ever longer than this, seconds."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial) and self.initial > 0):
            raise InvalidRequest("initial must be > 0", parameter="initial", value=self.initial)
        if not (math.isfinite(self.multiplier) and self.multiplier >= 1):
            raise InvalidRequest(
                "multiplier must be >= 1", parameter="multiplier", value=self.multiplier
            )
        if not (math.isfinite(self.cap) and self.cap >= self.initial):
            raise InvalidRequest("cap must be >= initial", parameter="cap", value=self.cap)


def backoff_ceiling(policy: BackoffPolicy, attempt: int) -> float:
    """The largest delay attempt ``attempt`` (0-based) may wait."""
    if attempt < 0:
        raise InvalidRequest("attempt must be >= 0", parameter="attempt", value=attempt)
    return capped_exponential(policy.initial, policy.multiplier, policy.cap, attempt)


def backoff_delay(policy: BackoffPolicy, attempt: int, random: Callable[[], float]) -> float:
    """Full-jitter delay for attempt ``attempt``: uniform in ``[0, backoff_ceiling)``.

    ``random`` returns floats in ``[0, 1)``; values outside are clamped.
    """
    fraction = min(max(random(), 0.0), 1.0)
    return fraction * backoff_ceiling(policy, attempt)

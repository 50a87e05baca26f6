"""The one backoff policy: how long to wait before attempt n, capped, with a jitter mode.

A pure policy (no clock, no state, no random source of its own)::

    ceiling(n) = min(cap, initial * multiplier ** (n - 1))     for n >= 1; 0 for n <= 0
    delay(n, draw)                                              draw in [0, 1)
        Jitter.NONE    ceiling(n)                               (draw unused)
        Jitter.FULL    draw * ceiling(n)                        uniform in [0, ceiling)
        Jitter.SPREAD  ceiling(n) * (1 + spread * (2*draw - 1)) within [0, cap]

``n`` counts the failures in a row (1 = the first). ``draw`` is injected by the caller:
``random.random()`` in production, plain numbers in tests, so tests assert exact waits.
A draw outside [0, 1] is clamped to it.

Its callers, each owning its default (stated once, next to the caller):

* the REST 429 pause, :data:`quotation.rest.ratelimit.RATE_LIMIT_BACKOFF`
  (1 s doubling to 30 s, no jitter);
* the WebSocket reconnect, :data:`quotation.websocket.config.RECONNECT_BACKOFF`
  (0.5 s doubling to 30 s, full jitter);
* the supervisor's restart delay: ``supervisors`` knows no ``quotation``, so a
  :class:`~supervisors.spec.ChildSpec` takes any object with ``delay(attempt, draw)``
  (:class:`supervisors.spec.RestartBackoff`); :data:`RESTART_BACKOFF` is the one to pass
  (0.1 s doubling to 30 s, ±10 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from quotation.errors import InvalidValue
from quotation.values import check

__all__ = ["RESTART_BACKOFF", "Backoff", "Jitter"]


class Jitter(Enum):
    """How a delay is drawn below or around the ceiling."""

    NONE = "none"
    """Exactly the ceiling: the same waits every time."""
    FULL = "full"
    """Uniform in [0, ceiling) (AWS "full jitter"): clients that failed together spread
    their retries over the whole window instead of storming the server at once."""
    SPREAD = "spread"
    """The ceiling ± ``spread`` of it, kept within [0, cap]."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Wait up to ``min(cap, initial * multiplier ** (n - 1))`` seconds before attempt ``n``.

    ``jitter`` picks how the wait is drawn from the ceiling; ``spread`` is the ± fraction
    of :attr:`Jitter.SPREAD` (in [0, 1]) and must stay 0 for the other modes. An impossible
    value raises :class:`~quotation.errors.InvalidValue` naming the field.
    """

    initial: float
    """The first ceiling, seconds (> 0)."""
    multiplier: float = 2.0
    """Growth per attempt (>= 1; 1 keeps every ceiling at ``initial``)."""
    cap: float
    """No wait is ever longer, seconds (>= ``initial``)."""
    jitter: Jitter = Jitter.NONE
    spread: float = 0.0
    """The ± fraction of the ceiling for ``Jitter.SPREAD``."""

    def __post_init__(self) -> None:
        check("initial", self.initial, above=0)
        check("multiplier", self.multiplier, at_least=1)
        check("cap", self.cap)
        if not self.cap >= self.initial:
            raise InvalidValue(f"cap must be >= initial ({self.initial!r}), got {self.cap!r}",
                               field="cap", value=self.cap)
        if not isinstance(self.jitter, Jitter):
            raise InvalidValue(f"jitter must be a Jitter, got {self.jitter!r}",
                               field="jitter", value=self.jitter)
        check("spread", self.spread, at_least=0, at_most=1)
        if self.spread and self.jitter is not Jitter.SPREAD:
            raise InvalidValue(f"spread applies only to jitter=spread, got {self.spread!r}",
                               field="spread", value=self.spread)

    def ceiling(self, attempt: int) -> float:
        """The longest wait before attempt ``attempt`` (1-based; 0 or less: no wait)."""
        if attempt <= 0:
            return 0.0
        steps = attempt - 1
        # Compare exponents first so a huge attempt count cannot overflow.
        if self.multiplier > 1 and steps > math.log(self.cap / self.initial, self.multiplier):
            return self.cap
        return min(self.cap, self.initial * self.multiplier**steps)

    def delay(self, attempt: int, draw: float = 0.5) -> float:
        """The wait before attempt ``attempt``, drawn by the jitter mode from ``draw``.

        ``draw`` is a number in [0, 1) (clamped to [0, 1]); 0.5 is the middle (no spread).
        """
        ceiling = self.ceiling(attempt)
        fraction = min(max(draw, 0.0), 1.0)
        if self.jitter is Jitter.FULL:
            return fraction * ceiling
        if self.jitter is Jitter.SPREAD:
            spread = ceiling * self.spread * (2.0 * fraction - 1.0)
            return min(self.cap, max(0.0, ceiling + spread))
        return ceiling


RESTART_BACKOFF = Backoff(initial=0.1, cap=30.0, jitter=Jitter.SPREAD, spread=0.1)
"""The restart delay for a supervised child (``ChildSpec(backoff=RESTART_BACKOFF)``):
0.1 s doubling per restart within the supervisor's period, up to 30 s, ±10 % so children
that died together do not restart in lockstep. It lives here, not in ``supervisors``,
because ``supervisors`` may not import ``quotation``; the supervisor only calls ``delay``."""

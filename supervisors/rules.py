"""The pure decisions of supervision: restart intensity, who restarts, backoff, hang.

The supervisor actor only carries these out; each takes ``now`` (or an attempt number and a
random draw) as an argument, so it is tested with plain numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from supervisors.events import ExitReason
from supervisors.spec import Backoff, Restart, Strategy

__all__ = [
    "IntensityCheck",
    "add_restart",
    "backoff_delay",
    "is_hung",
    "restart_group",
    "should_restart",
]


class IntensityCheck(NamedTuple):
    """The restart history after adding one restart, and whether intensity was exceeded."""

    restarts: tuple[float, ...]
    exceeded: bool


def add_restart(
    restarts: tuple[float, ...], now: float, *, intensity: int, period: float
) -> IntensityCheck:
    """Add a restart at ``now`` to the history, as OTP's ``supervisor:add_restart/1``.

    Restarts older than ``now - period`` fall out of the window (one exactly ``period`` ago
    still counts, as in OTP); the supervisor must give up when the window then holds more
    than ``intensity`` restarts. ``restarts`` is oldest first.
    """
    threshold = now - period
    kept = tuple(at for at in restarts if at >= threshold)
    window = (*kept, now)
    return IntensityCheck(window, len(window) > intensity)


def should_restart(restart: Restart, reason: ExitReason) -> bool:
    """Permanent: always; transient: only after an abnormal exit; temporary: never."""
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return reason.abnormal
    return False


def restart_group(strategy: Strategy, ids: Sequence[str], failed: str) -> tuple[str, ...]:
    """The children restarted, in start order, when ``failed`` dies under ``strategy``.

    ``ids`` are the supervisor's children in start order.
    """
    if strategy is Strategy.ONE_FOR_ONE:
        return (failed,)
    if strategy is Strategy.ONE_FOR_ALL:
        return tuple(ids)
    return tuple(ids[list(ids).index(failed):])


def backoff_delay(backoff: Backoff, attempt: int, draw: float) -> float:
    """Seconds to wait before restart ``attempt`` (1 = first restart in the window).

    ``min * 2**(attempt-1)`` capped at ``max``, then spread by ``±jitter`` using ``draw`` in
    [0, 1) (0.5 means no spread), and kept within [0, ``max``].
    """
    exponent = min(max(attempt, 1) - 1, 64)
    base = min(backoff.max, backoff.min * 2.0**exponent)
    spread = base * backoff.jitter * (2.0 * draw - 1.0)
    return min(backoff.max, max(0.0, base + spread))


def is_hung(ping_sent_at: float, now: float, deadline: float) -> bool:
    """A ping unanswered for more than ``deadline`` seconds means the child is hung."""
    return now - ping_sent_at > deadline

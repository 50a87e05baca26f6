"""The pure decisions of supervision: restart intensity, who restarts, hang.

The supervisor actor only carries these out; each takes ``now`` as an argument, so it is
tested with plain numbers. The restart delay is the child spec's own
``backoff.delay(attempt, draw)`` (:class:`~supervisors.spec.RestartBackoff`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from supervisors.events import ExitReason
from supervisors.spec import Restart, Strategy

__all__ = [
    "IntensityCheck",
    "add_restart",
    "hung_at",
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


def hung_at(ping_sent_at: float, deadline: float) -> float:
    """The moment a liveness ping sent at ``ping_sent_at`` makes its child hung if unanswered.

    The answer must come before ``deadline`` seconds have passed, as an Erlang ``receive``
    ``after`` its timeout: at that moment, still unanswered means hung.
    """
    return ping_sent_at + deadline


def is_hung(ping_sent_at: float, now: float, deadline: float) -> bool:
    """Whether a ping still unanswered at ``now`` means its child is hung (``hung_at`` reached)."""
    return now >= hung_at(ping_sent_at, deadline)

"""Messages a supervisor receives: reports from its children, its own timers, and queries.

All frozen, slotted dataclasses; children's reports carry the ``instance`` they speak for, so
a late report from an instance already replaced is recognised and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from supervisors.events import ExitReason, Listener, SupervisionEvent
from supervisors.spec import ChildType

__all__ = [
    "LIVENESS_PING",
    "CheckLiveness",
    "ChildCounts",
    "ChildDown",
    "ChildInfo",
    "ChildState",
    "ChildUp",
    "CountChildren",
    "GiveUp",
    "GroupStopped",
    "LivenessPing",
    "NestedEvent",
    "PingExpired",
    "RestartDue",
    "Subscribe",
    "WhichChildren",
]


class ChildState(Enum):
    """Where a child stands, as ``which_children`` shows it."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    RESTARTING = "restarting"  # dead, waiting for its restart (or its backoff)
    STOPPED = "stopped"        # not running and not going to be restarted


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """One row of ``which_children`` (OTP: ``{Id, Child, Type, Modules}``)."""

    id: str
    state: ChildState
    instance: int | None
    type: ChildType
    actor_class: str


@dataclass(frozen=True, slots=True)
class ChildCounts:
    """``count_children``: specs, actively running, and how many are supervisors / workers."""

    specs: int
    active: int
    supervisors: int
    workers: int


@dataclass(frozen=True, slots=True)
class LivenessPing:
    """Asked of a child by its supervisor; the generated subclass answers it."""


LIVENESS_PING = LivenessPing()


@dataclass(frozen=True, slots=True)
class ChildUp:
    """Child ``child_id``'s ``instance`` finished starting."""

    child_id: str
    instance: int


@dataclass(frozen=True, slots=True)
class ChildDown:
    """Child ``child_id``'s ``instance`` stopped (or failed to start) with ``reason``."""

    child_id: str
    instance: int
    reason: ExitReason


@dataclass(frozen=True, slots=True)
class RestartDue:
    """The backoff ``token`` for ``child_id`` has waited its delay."""

    child_id: str
    token: int


@dataclass(frozen=True, slots=True)
class GroupStopped:
    """Stop operation ``op`` finished; ``killed`` lists ``(child_id, instance)`` abandoned."""

    op: int
    killed: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Sent to itself: raise ``SupervisorGaveUp`` now, from a ``tell``, so the actor dies."""


@dataclass(frozen=True, slots=True)
class NestedEvent:
    """An event from a supervisor below, passed up to this one's listeners."""

    event: SupervisionEvent


@dataclass(frozen=True, slots=True)
class CheckLiveness:
    """Ping every child with a deadline whose previous ping was answered (or that has none)."""


@dataclass(frozen=True, slots=True)
class PingExpired:
    """The deadline of liveness ping ``token`` to ``child_id`` has come: hung if unanswered."""

    child_id: str
    token: int


@dataclass(frozen=True, slots=True)
class WhichChildren:
    """Ask for a ``tuple[ChildInfo, ...]`` in start order."""


@dataclass(frozen=True, slots=True)
class CountChildren:
    """Ask for ``ChildCounts``."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Add ``listener`` to the supervisor's event listeners."""

    listener: Listener

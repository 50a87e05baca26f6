"""Exit reasons and the stream of supervision events listeners subscribe to.

Events are frozen, slotted dataclasses; every one names its ``supervisor`` and carries
``at``, the supervisor clock's ``monotonic()`` reading when it happened. Later layers turn
them into failure levels, metrics and alerts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "ChildExited",
    "ChildRestarted",
    "ChildStarted",
    "Escalated",
    "EscalationTarget",
    "ExitKind",
    "ExitReason",
    "IntensityReached",
    "Listener",
    "SupervisionEvent",
    "SupervisorStopped",
]


class ExitKind(Enum):
    """Why a child stopped being the running instance."""

    NORMAL = "normal"              # it stopped itself
    SHUTDOWN = "shutdown"          # its supervisor stopped it
    CRASHED = "crashed"            # unhandled exception (on_failure), or on_stop raised
    START_FAILED = "start_failed"  # __init__ or on_start raised
    HUNG = "hung"                  # a liveness ping went unanswered past the deadline
    KILLED = "killed"              # did not stop within its shutdown time; abandoned

    @property
    def abnormal(self) -> bool:
        """OTP's distinction: ``normal`` and ``shutdown`` are not failures."""
        return self not in (ExitKind.NORMAL, ExitKind.SHUTDOWN)


@dataclass(frozen=True, slots=True)
class ExitReason:
    """``kind`` of exit, with the exception (``error``) when there was one."""

    kind: ExitKind
    error: BaseException | None = None

    @property
    def abnormal(self) -> bool:
        """Whether a transient child is restarted after this exit."""
        return self.kind.abnormal

    def __str__(self) -> str:
        return self.kind.value if self.error is None else f"{self.kind.value}: {self.error!r}"


class EscalationTarget(Enum):
    """Where a supervisor that gave up sends its failure."""

    PARENT = "parent"  # its supervisor sees it exit abnormally
    HOST = "host"      # root: the host's callback; the host process is never killed


@dataclass(frozen=True, slots=True)
class ChildStarted:
    """A child's first instance finished ``on_start``."""

    supervisor: str
    child_id: str
    instance: int
    at: float


@dataclass(frozen=True, slots=True)
class ChildRestarted:
    """A replacement instance finished ``on_start``: one started after its child crashed, or
    after a failed start that was counted as a restart (``StartFailure.RESTART``)."""

    supervisor: str
    child_id: str
    instance: int
    at: float


@dataclass(frozen=True, slots=True)
class ChildExited:
    """A child's instance stopped, with the reason."""

    supervisor: str
    child_id: str
    instance: int
    reason: ExitReason
    at: float


@dataclass(frozen=True, slots=True)
class IntensityReached:
    """More than ``intensity`` restarts fell within ``period`` seconds."""

    supervisor: str
    intensity: int
    period: float
    child_id: str
    at: float


@dataclass(frozen=True, slots=True)
class Escalated:
    """The supervisor gave up and hands its failure to its parent or the host."""

    supervisor: str
    target: EscalationTarget
    reason: ExitReason
    at: float


@dataclass(frozen=True, slots=True)
class SupervisorStopped:
    """The supervisor stopped all its children (in reverse order) and shut down."""

    supervisor: str
    reason: ExitReason
    at: float


SupervisionEvent = (
    ChildStarted | ChildRestarted | ChildExited | IntensityReached | Escalated | SupervisorStopped
)
"""Any supervision event."""

Listener = Callable[[SupervisionEvent], None]
"""Called on the supervisor's thread for every event; must be quick and must not block."""

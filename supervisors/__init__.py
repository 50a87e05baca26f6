"""Erlang/OTP-style supervision on pykka (generic: it knows no market data).

A supervised child is a plain pykka ``ThreadingActor``; a ``Supervisor`` starts it from a
``ChildSpec`` and applies OTP's rules from outside: restart strategies (``Strategy``),
restart types (``Restart``), restart intensity, escalation, reverse-order shutdown, plus a
liveness deadline for hung children, an optional restart delay (``RestartBackoff``:
anything with ``delay(attempt, draw)``) and stable addressing by id (``ChildHandle``).

Names and defaults follow OTP's ``supervisor`` module; see ``supervisors.spec``.
"""

import logging

from supervisors.addressing import ChildHandle
from supervisors.clock import MonotonicClock, SystemMonotonicClock
from supervisors.errors import (
    ChildAborted,
    ChildNotRunning,
    ChildRestarting,
    ChildUnavailable,
    SpecError,
    SupervisorError,
    SupervisorGaveUp,
    UnknownChild,
)
from supervisors.events import (
    ChildExited,
    ChildRestarted,
    ChildStarted,
    Escalated,
    EscalationTarget,
    ExitKind,
    ExitReason,
    IntensityReached,
    Listener,
    SupervisionEvent,
    SupervisorStopped,
)
from supervisors.handle import SupervisorHandle
from supervisors.messages import ChildCounts, ChildInfo, ChildState
from supervisors.spec import (
    ChildSpec,
    ChildType,
    Restart,
    RestartBackoff,
    StartFailure,
    Strategy,
    SupervisorFlags,
)
from supervisors.supervisor import Supervisor, supervisor_child

__all__ = [
    "ChildAborted",
    "ChildCounts",
    "ChildExited",
    "ChildHandle",
    "ChildInfo",
    "ChildNotRunning",
    "ChildRestarted",
    "ChildRestarting",
    "ChildSpec",
    "ChildStarted",
    "ChildState",
    "ChildType",
    "ChildUnavailable",
    "Escalated",
    "EscalationTarget",
    "ExitKind",
    "ExitReason",
    "IntensityReached",
    "Listener",
    "MonotonicClock",
    "Restart",
    "RestartBackoff",
    "SpecError",
    "StartFailure",
    "Strategy",
    "SupervisionEvent",
    "Supervisor",
    "SupervisorError",
    "SupervisorFlags",
    "SupervisorGaveUp",
    "SupervisorHandle",
    "SupervisorStopped",
    "SystemMonotonicClock",
    "UnknownChild",
    "supervisor_child",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
"""The library never configures logging (only the ``lifeline`` CLI does): without a
handler of the host's, nothing of ours reaches stderr."""

"""Child specs and supervisor flags, with OTP's names and defaults, validated on creation.

Defaults (each stated once, here):

==================  ====================  ===========================================
field               default               OTP
==================  ====================  ===========================================
``strategy``        ``ONE_FOR_ONE``       ``strategy => one_for_one``
``intensity``       ``1``                 ``intensity => 1``
``period``          ``5.0`` seconds       ``period => 5``
``restart``         ``PERMANENT``         ``restart => permanent``
``shutdown``        ``5.0`` s (worker),   ``shutdown => 5000`` (worker),
                    ``math.inf`` (sup.)   ``infinity`` (supervisor); ``0`` = brutal_kill
``type``            ``WORKER``            ``type => worker``
``deadline``        ``None`` (no check)   (none: OTP has no liveness check)
``backoff``         ``None`` (immediate)  (none: OTP restarts at once)
``start_failure``   ``ABORT``             a failed start in ``init`` fails the supervisor
==================  ====================  ===========================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import pykka

from supervisors.errors import SpecError

__all__ = [
    "DEFAULT_INTENSITY",
    "DEFAULT_PERIOD",
    "DEFAULT_SUPERVISOR_SHUTDOWN",
    "DEFAULT_WORKER_SHUTDOWN",
    "ChildSpec",
    "ChildType",
    "Restart",
    "RestartBackoff",
    "StartFailure",
    "Strategy",
    "SupervisorFlags",
    "check_number",
    "validate_children",
]

DEFAULT_INTENSITY = 1
DEFAULT_PERIOD = 5.0
DEFAULT_WORKER_SHUTDOWN = 5.0
DEFAULT_SUPERVISOR_SHUTDOWN = math.inf


class Strategy(Enum):
    """Which children are restarted when one dies (OTP's restart strategies)."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class Restart(Enum):
    """When a child that exited is restarted (OTP's restart types)."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class StartFailure(Enum):
    """What a child failing its *first* start (while its supervisor starts) does.

    ``ABORT`` is OTP: the supervisor's ``init`` fails (``start_error``), it stops the children
    already started and gives up. ``RESTART`` (a deviation, only under ``one_for_one``): the
    failed start is treated like a crash of a running child -- counted against ``intensity``,
    restarted after the child's ``backoff``, the supervisor giving up and escalating as usual
    once intensity is exceeded -- and the children after it start without waiting for it.
    A failed *re*start is always treated this way, as in OTP.
    """

    ABORT = "abort"
    RESTART = "restart"


class ChildType(Enum):
    """Whether the child is a worker or a supervisor of its own children."""

    WORKER = "worker"
    SUPERVISOR = "supervisor"


def _enum(enum: type[Any], value: object, name: str, reason: str) -> Any:
    if isinstance(value, enum):
        return value
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in enum)
        raise SpecError(
            f"must be one of {allowed}", field=name, value=value, reason=reason
        ) from None


def check_number(
    value: object, name: str, reason: str, *, minimum: float, strict: bool
) -> float:
    """``value`` as a float, or ``SpecError(reason)`` naming ``name`` unless it is a number
    ``> minimum`` (``strict``) or ``>= minimum``: supervision's own range check (it may not
    import ``quotation.values``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise SpecError("must be a number", field=name, value=value, reason=reason)
    if value < minimum or (strict and value == minimum):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise SpecError(f"must be {bound}", field=name, value=value, reason=reason)
    return float(value)


@dataclass(frozen=True, slots=True)
class SupervisorFlags:
    """How a supervisor restarts: ``strategy``, and at most ``intensity`` restarts within
    any ``period`` seconds before it gives up and escalates."""

    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: int = DEFAULT_INTENSITY
    period: float = DEFAULT_PERIOD

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "strategy", _enum(Strategy, self.strategy, "strategy", "invalid_strategy")
        )
        if isinstance(self.intensity, bool) or not isinstance(self.intensity, int):
            raise SpecError(
                "must be an integer", field="intensity", value=self.intensity,
                reason="invalid_intensity",
            )
        if self.intensity < 0:
            raise SpecError(
                "must be >= 0", field="intensity", value=self.intensity,
                reason="invalid_intensity",
            )
        period = check_number(self.period, "period", "invalid_period", minimum=0.0, strict=True)
        if math.isinf(period):
            raise SpecError("must be finite", field="period", value=self.period,
                            reason="invalid_period")
        object.__setattr__(self, "period", period)


@runtime_checkable
class RestartBackoff(Protocol):
    """How long to wait before restarting a child: anything with this ``delay``.

    ``attempt`` counts the child's restarts within the supervisor's ``period`` (1 = the
    first); ``draw`` is a random number in [0, 1) from the supervisor's injected ``draw``.
    The application passes ``quotation.backoff.Backoff`` (this package imports nothing of
    Lifeline's, so it states only the shape it calls).
    """

    def delay(self, attempt: int, draw: float) -> float:
        """Seconds to wait before restart ``attempt`` (0 or less: restart at once)."""
        ...


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One supervised child.

    ``start`` is the plain pykka ``ThreadingActor`` class, started as
    ``start.start(*args, **kwargs)`` (OTP's ``{M, F, A}``); the supervisor starts it through a
    generated subclass that reports its start, exit and crash back. ``shutdown`` is how many
    seconds the child gets to stop before it is abandoned (``math.inf``: wait forever,
    ``0``: abandon at once). ``deadline``: a liveness ping still unanswered ``deadline`` seconds
    after it was sent means the child is hung: it is abandoned and replaced (``None``: no
    liveness check). Pings go out every ``liveness_interval`` of the supervisor, one at a time,
    so a child that stops answering is found hung at least ``deadline`` and at most
    ``deadline + liveness_interval`` seconds after it last answered a ping or was started; one
    that answers every ping within ``deadline`` never is. ``backoff``: delay
    restarts of this child by ``backoff.delay(restarts within the period, draw)`` seconds
    (``None``: restart at once, as OTP). ``start_failure``: whether a failed first start
    fails the supervisor (``ABORT``, OTP) or is restarted like a crash (``RESTART``, see
    :class:`StartFailure`).
    """

    id: str
    start: type[pykka.ThreadingActor]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    restart: Restart = Restart.PERMANENT
    shutdown: float | None = None
    type: ChildType = ChildType.WORKER
    deadline: float | None = None
    backoff: RestartBackoff | None = None
    start_failure: StartFailure = StartFailure.ABORT

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise SpecError("must be a non-empty string", field="id", value=self.id,
                            reason="invalid_child_id")
        if not (isinstance(self.start, type) and issubclass(self.start, pykka.ThreadingActor)):
            raise SpecError("must be a pykka.ThreadingActor subclass", field="start",
                            value=self.start, reason="invalid_start")
        if not isinstance(self.args, tuple):
            raise SpecError("must be a tuple", field="args", value=self.args,
                            reason="invalid_start")
        if not isinstance(self.kwargs, Mapping):
            raise SpecError("must be a mapping", field="kwargs", value=self.kwargs,
                            reason="invalid_start")
        object.__setattr__(self, "kwargs", MappingProxyType(dict(self.kwargs)))
        object.__setattr__(self, "restart", _enum(Restart, self.restart, "restart",
                                                  "invalid_restart_type"))
        child_type = _enum(ChildType, self.type, "type", "invalid_child_type")
        object.__setattr__(self, "type", child_type)
        if self.shutdown is None:
            default = (DEFAULT_SUPERVISOR_SHUTDOWN if child_type is ChildType.SUPERVISOR
                       else DEFAULT_WORKER_SHUTDOWN)
            object.__setattr__(self, "shutdown", default)
        else:
            object.__setattr__(self, "shutdown", check_number(
                self.shutdown, "shutdown", "invalid_shutdown", minimum=0.0, strict=False))
        if self.deadline is not None:
            object.__setattr__(self, "deadline", check_number(
                self.deadline, "deadline", "invalid_deadline", minimum=0.0, strict=True))
        if self.backoff is not None and not isinstance(self.backoff, RestartBackoff):
            raise SpecError("must have delay(attempt, draw) (a RestartBackoff)",
                            field="backoff", value=self.backoff, reason="invalid_backoff")
        object.__setattr__(self, "start_failure", _enum(
            StartFailure, self.start_failure, "start_failure", "invalid_start_failure"))


def validate_children(
    children: Sequence[ChildSpec], strategy: Strategy = Strategy.ONE_FOR_ONE
) -> tuple[ChildSpec, ...]:
    """Check a supervisor's children: all ``ChildSpec``, ids unique (``duplicate_child_id``),
    ``StartFailure.RESTART`` only under ``one_for_one`` (``invalid_start_failure``: under
    the other strategies the children after it depend on it, so they may not start without
    it)."""
    if not isinstance(children, list | tuple):
        raise SpecError("must be a list or tuple of ChildSpec", field="children", value=children,
                        reason="invalid_child_spec")
    seen: set[str] = set()
    for index, spec in enumerate(children):
        if not isinstance(spec, ChildSpec):
            raise SpecError("must be a ChildSpec", field=f"children[{index}]", value=spec,
                            reason="invalid_child_spec")
        if spec.id in seen:
            raise SpecError("duplicate id", field=f"children[{index}].id", value=spec.id,
                            reason="duplicate_child_id")
        seen.add(spec.id)
        if spec.start_failure is StartFailure.RESTART and strategy is not Strategy.ONE_FOR_ONE:
            raise SpecError(f"restart needs strategy one_for_one, not {strategy.value}",
                            field=f"children[{index}].start_failure", value=spec.start_failure,
                            reason="invalid_start_failure")
    return tuple(children)

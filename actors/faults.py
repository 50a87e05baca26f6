"""Actor fault injection: which actor fails, at which point, how, and for how long.

The four data-plane actors consult one :class:`FaultBoard` at their *fault points*; a drill
or a test switches faults on through :meth:`FaultBoard.inject` (the application exposes it as
``system.faults`` only when ``faults.enabled`` is true; nothing here is reachable from the
network). A board built with ``enabled=False`` (the default) is inert: :meth:`~FaultBoard.check`
answers ``None`` after one attribute read and :meth:`~FaultBoard.inject` raises
:class:`FaultsDisabled`.

Fault points, and the points each actor has (:data:`ACTOR_POINTS`)::

    point       where                                           actors
    start       first thing in on_start                         all four
    request     on receiving a request (an ask)                 smart_router, rest_fallback,
                                                                ws_fallback
    normalize   raw decoded payload → canonical model           smart_router, rest_fallback,
                                                                ws_fallback
    ws_message  one decoded WebSocket message, before ingest    smart_router, ws_fallback
    probe       one health probe                                health_probe

Kinds (:data:`KIND_POINTS` says where each applies; ``point=None`` means every point of the
actor where the kind applies, and never another actor's)::

    kind           at the point                                    the actor must
    raise          raises InjectedFault                            let it reach the caller of
                                                                   the ask (pykka hands it over;
                                                                   the actor lives on); at a
                                                                   tell point (probe,
                                                                   ws_message) catch it and
                                                                   count that unit as failed
    crash          raises InjectedCrash                            die: see "crash" below
    hang           blocks the actor's thread until the injection   nothing (it is stuck)
                   ends (clear, clear_all, duration), then returns
    delay          clock.sleep(seconds), then returns              nothing
    corrupt        returns the payload spoiled (every key of an    go on with what it got back,
                   object dropped, text cut in half)               so its parsing raises
                                                                   FormatError
    fail_start     raises InjectedStartFailure                     let it escape on_start
    memory_growth  allocates memory_chunk_bytes, held by the       nothing (RSS grows)
                   board until the injection ends

Lifecycle: ``count`` faults then off; ``duration`` seconds on the board's clock then it
*ends*; ``clear()``/``clear_all()`` end it at once. An injection whose count is used up stops
firing but has not ended: hangs it caused stay blocked and memory it grew stays held until it
ends. Ending releases both. When several live injections match one point, the newest fires
(only it consumes a count): a fresh ``count=1`` crash is not shadowed by an older open-ended
delay.

The actor's side, at each fault point (``payload`` only at ``normalize``/``ws_message``)::

    raw = self.faults.at(ActorName.SMART_ROUTER, FaultPoint.NORMALIZE, raw)

:meth:`FaultBoard.at` is :meth:`~FaultBoard.check` then :meth:`~FaultBoard.apply`; the two
are public for an actor that must do something between them.

**crash.** pykka stops an actor (and calls ``on_failure``, which is how its supervisor learns
of the death) only for an exception that escapes a message *told* to it; one raised while
answering an *ask* goes back to the caller and the actor lives on. So: at a tell point let
:class:`InjectedCrash` escape. At an ask point (``request``, ``normalize`` inside a request)
tell yourself :class:`CrashNow` and re-raise, and have ``on_receive`` raise what
:meth:`CrashNow.error` returns::

    try:
        self.faults.at(ActorName.SMART_ROUTER, FaultPoint.REQUEST)
    except InjectedCrash as crash:
        self.actor_ref.tell(CrashNow.of(crash))   # dies when it reaches this message
        raise                                     # the caller of the ask sees the crash

    def on_receive(self, message):
        if isinstance(message, CrashNow):
            raise message.error()                 # a tell: on_failure, the actor stops

Messages already queued before ``CrashNow`` are handled first. (``CrashNow`` is the one
message defined here; it belongs in the actors' messages module once that exists.) A hang
with a ``duration`` re-reads the clock every :data:`HANG_POLL_SECONDS` of real time; one
without returns only on ``clear()``/``clear_all()``. Never catch the
:class:`InjectedError` family with a broad ``except Exception`` that hides it.

Errors::

    FaultError                    base of everything raised here
    ├── InvalidFault              a bad inject() argument (``field``, ``value``); a ValueError
    ├── FaultsDisabled            inject() on a disabled board (faults.enabled is false)
    └── InjectedError             raised at a fault point (``actor``, ``point``, ``kind``)
        ├── InjectedFault         kind raise: this request fails, the actor lives on
        ├── InjectedCrash         kind crash: the actor must die
        └── InjectedStartFailure  kind fail_start: on_start fails

Logging (logger ``actors.faults``): INFO when an injection is made or ends, DEBUG each time
one fires.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar, cast, overload

from quotation.clock import Clock, SystemClock
from quotation.errors import InvalidValue
from quotation.values import check as check_value

__all__ = [
    "ACTOR_POINTS",
    "DEFAULT_MEMORY_CHUNK_BYTES",
    "HANG_POLL_SECONDS",
    "KIND_POINTS",
    "ActiveFault",
    "ActorName",
    "CrashNow",
    "FaultAction",
    "FaultBoard",
    "FaultError",
    "FaultKind",
    "FaultPoint",
    "FaultsDisabled",
    "InjectedCrash",
    "InjectedError",
    "InjectedFault",
    "InjectedStartFailure",
    "Injection",
    "InvalidFault",
    "corrupt",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

DEFAULT_MEMORY_CHUNK_BYTES = 1 << 20
"""What one ``memory_growth`` hit allocates unless the board is told otherwise (1 MiB)."""

HANG_POLL_SECONDS = 0.05
"""How often (real seconds) a hang with a ``duration`` re-reads the board's clock."""


class ActorName(enum.Enum):
    """The four data-plane actors, by the id their supervisor knows them by."""

    SMART_ROUTER = "smart_router"
    REST_FALLBACK = "rest_fallback"
    WS_FALLBACK = "ws_fallback"
    HEALTH_PROBE = "health_probe"


class FaultKind(enum.Enum):
    """What goes wrong at a fault point (the module docstring says what each does)."""

    RAISE = "raise"
    CRASH = "crash"
    HANG = "hang"
    DELAY = "delay"
    CORRUPT = "corrupt"
    FAIL_START = "fail_start"
    MEMORY_GROWTH = "memory_growth"


class FaultPoint(enum.Enum):
    """Where in an actor a fault can strike."""

    START = "start"
    REQUEST = "request"
    NORMALIZE = "normalize"
    PROBE = "probe"
    WS_MESSAGE = "ws_message"


_P = FaultPoint
ACTOR_POINTS: Mapping[ActorName, frozenset[FaultPoint]] = MappingProxyType({
    ActorName.SMART_ROUTER: frozenset({_P.START, _P.REQUEST, _P.NORMALIZE, _P.WS_MESSAGE}),
    ActorName.REST_FALLBACK: frozenset({_P.START, _P.REQUEST, _P.NORMALIZE}),
    ActorName.WS_FALLBACK: frozenset({_P.START, _P.REQUEST, _P.NORMALIZE, _P.WS_MESSAGE}),
    ActorName.HEALTH_PROBE: frozenset({_P.START, _P.PROBE}),
})
"""The fault points each actor consults; an injection elsewhere could never fire."""

_WORK = frozenset({_P.REQUEST, _P.NORMALIZE, _P.PROBE, _P.WS_MESSAGE})
KIND_POINTS: Mapping[FaultKind, frozenset[FaultPoint]] = MappingProxyType({
    FaultKind.RAISE: _WORK,  # a failing start is fail_start's, so "raise" never blocks a restart
    FaultKind.CRASH: _WORK,
    FaultKind.HANG: frozenset(FaultPoint),
    FaultKind.DELAY: frozenset(FaultPoint),
    FaultKind.CORRUPT: frozenset({_P.NORMALIZE, _P.WS_MESSAGE}),  # where a payload passes
    FaultKind.FAIL_START: frozenset({_P.START}),
    FaultKind.MEMORY_GROWTH: _WORK,
})
"""The points where each kind applies."""


class FaultError(Exception):
    """Base class of everything raised by this module."""


class InvalidFault(FaultError, ValueError):
    """A bad :meth:`FaultBoard.inject` argument: ``field`` names it, ``value`` is what was given."""

    def __init__(self, message: str, *, field: str, value: object) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class FaultsDisabled(FaultError):
    """Fault injection is off for this board (``faults.enabled`` is false)."""

    def __init__(
        self, message: str = "actor fault injection is off: set faults.enabled: true"
    ) -> None:
        super().__init__(message)


class InjectedError(FaultError):
    """Raised at a fault point on purpose: ``actor``, ``point``, ``kind``, ``injection_id``."""

    def __init__(
        self, actor: ActorName, point: FaultPoint, kind: FaultKind, injection_id: int
    ) -> None:
        super().__init__(
            f"injected {kind.value} at {actor.value}.{point.value} (injection {injection_id})"
        )
        self.actor = actor
        self.point = point
        self.kind = kind
        self.injection_id = injection_id


class InjectedFault(InjectedError):
    """Kind ``raise``: this request fails; the actor lets it reach the caller and lives on."""


class InjectedCrash(InjectedError):
    """Kind ``crash``: the actor must die (module docstring, "crash")."""


class InjectedStartFailure(InjectedError):
    """Kind ``fail_start``: ``on_start`` lets it escape, so the actor never starts."""


@dataclass(frozen=True, slots=True)
class CrashNow:
    """Told by an actor to itself to die of an injected crash raised inside an ask."""

    actor: ActorName
    point: FaultPoint
    injection_id: int

    @classmethod
    def of(cls, crash: InjectedCrash) -> CrashNow:
        return cls(crash.actor, crash.point, crash.injection_id)

    def error(self) -> InjectedCrash:
        """A fresh :class:`InjectedCrash` for ``on_receive`` to raise."""
        return InjectedCrash(self.actor, self.point, FaultKind.CRASH, self.injection_id)


@dataclass(frozen=True, slots=True)
class ActiveFault:
    """One live injection as it was when :meth:`FaultBoard.active` was called."""

    id: int
    actor: ActorName
    kind: FaultKind
    point: FaultPoint | None
    seconds: float | None
    remaining: int | None
    """Faults left before it stops firing (``None``: no count)."""
    ends_at: float | None
    """When it ends on the board's monotonic clock (``None``: no duration)."""
    fired: int


@dataclass(frozen=True, slots=True)
class FaultAction:
    """What :meth:`FaultBoard.check` found: what the actor must do at this point, and why."""

    kind: FaultKind
    actor: ActorName
    point: FaultPoint
    injection: Injection
    seconds: float | None = None


class Injection:
    """The handle of one injection: ``clear()`` ends it; ``active``, ``fired``, ``held_bytes``.

    Its state is guarded by its board's lock.
    """

    __slots__ = (
        "_board", "_chunks", "_ended", "_fired", "_hanging", "_released", "_remaining",
        "actor", "ends_at", "id", "kind", "point", "points", "seconds",
    )

    def __init__(
        self, board: FaultBoard, *, id: int, actor: ActorName, kind: FaultKind,
        point: FaultPoint | None, points: frozenset[FaultPoint], count: int | None,
        ends_at: float | None, seconds: float | None,
    ) -> None:
        self._board = board
        self.id = id
        self.actor = actor
        self.kind = kind
        self.point = point
        """The point asked for (``None``: every point of the actor where the kind applies)."""
        self.points = points
        """The points it matches."""
        self.seconds = seconds
        self.ends_at = ends_at
        self._remaining = count
        self._fired = 0
        self._ended = False
        self._hanging = 0
        self._chunks: list[bytearray] = []
        self._released = threading.Event()

    def clear(self) -> None:
        """End it now: it fires no more, its hangs return, its memory is let go. Idempotent."""
        self._board._end(self)

    @property
    def active(self) -> bool:
        """Whether it will still fire (not ended, count not used up, duration not over)."""
        return self._board._is_live(self)

    @property
    def fired(self) -> int:
        """How many times it has fired."""
        with self._board._lock:
            return self._fired

    @property
    def held_bytes(self) -> int:
        """Memory its ``memory_growth`` hits hold now."""
        with self._board._lock:
            return sum(len(chunk) for chunk in self._chunks)

    def __repr__(self) -> str:
        where = self.point.value if self.point else "*"
        return f"<Injection {self.id} {self.kind.value} at {self.actor.value}.{where}>"


class FaultBoard:
    """The thread-safe registry of actor faults; see the module docstring.

    ``clock`` times durations and delays; ``memory_chunk_bytes`` is what one ``memory_growth``
    hit allocates.
    """

    def __init__(
        self,
        *,
        enabled: bool = False,
        clock: Clock | None = None,
        memory_chunk_bytes: int = DEFAULT_MEMORY_CHUNK_BYTES,
    ) -> None:
        _checked("memory_chunk_bytes", memory_chunk_bytes, at_least=1, integer=True)
        self._enabled = enabled
        self._clock: Clock = clock or SystemClock()
        self._chunk_bytes = memory_chunk_bytes
        self._lock = threading.Lock()
        self._hangs_changed = threading.Condition(self._lock)
        self._live: list[Injection] = []  # not ended, oldest first; always empty when disabled
        self._next_id = 1
        self._apply: dict[FaultKind, Callable[[FaultAction, Any], Any]] = {
            FaultKind.RAISE: _raise,
            FaultKind.CRASH: _crash,
            FaultKind.FAIL_START: _fail_start,
            FaultKind.HANG: self._hang,
            FaultKind.DELAY: self._delay,
            FaultKind.CORRUPT: lambda action, payload: corrupt(payload),
            FaultKind.MEMORY_GROWTH: self._grow,
        }

    @property
    def enabled(self) -> bool:
        return self._enabled

    # -- the drill's side ----------------------------------------------------------------

    def inject(
        self,
        actor: ActorName | str,
        kind: FaultKind | str,
        *,
        point: FaultPoint | str | None = None,
        count: int | None = None,
        duration: float | None = None,
        seconds: float | None = None,
    ) -> Injection:
        """Switch a fault on; raise :class:`InvalidFault` naming the bad argument, or
        :class:`FaultsDisabled`."""
        if not self._enabled:
            raise FaultsDisabled
        name = _member(ActorName, actor, "actor")
        what = _member(FaultKind, kind, "kind")
        where = None if point is None else _member(FaultPoint, point, "point")
        points = _points(name, what, where)
        if count is not None:
            _checked("count", count, at_least=1, integer=True)
        if duration is not None:
            _checked("duration", duration, above=0)
        if what is FaultKind.DELAY:
            if seconds is None:
                raise InvalidFault("seconds: a delay needs seconds > 0",
                                   field="seconds", value=None)
            _checked("seconds", seconds, above=0)
        elif seconds is not None:
            raise InvalidFault(f"seconds {seconds!r}: applies only to delay, not {what.value}",
                               field="seconds", value=seconds)
        with self._lock:
            ends_at = None if duration is None else self._clock.monotonic() + duration
            injection = Injection(self, id=self._next_id, actor=name, kind=what, point=where,
                                  points=points, count=count, ends_at=ends_at, seconds=seconds)
            self._next_id += 1
            self._live.append(injection)
        logger.info("fault injected: %r (count=%s, duration=%s, seconds=%s)",
                    injection, count, duration, seconds)
        return injection

    def clear_all(self) -> None:
        """End every injection now (hangs return, memory is let go)."""
        with self._lock:
            for injection in list(self._live):
                self._end_locked(injection, "cleared")

    def active(self) -> tuple[ActiveFault, ...]:
        """The injections that will still fire, oldest first (a snapshot)."""
        with self._lock:
            self._expire(self._clock.monotonic())
            return tuple(
                ActiveFault(i.id, i.actor, i.kind, i.point, i.seconds, i._remaining, i.ends_at,
                            i._fired)
                for i in self._live if i._remaining != 0
            )

    @property
    def held_bytes(self) -> int:
        """Memory every ``memory_growth`` injection holds now."""
        with self._lock:
            return sum(len(chunk) for i in self._live for chunk in i._chunks)

    @property
    def hanging(self) -> int:
        """Threads blocked in a hang now."""
        with self._lock:
            return sum(i._hanging for i in self._live)

    def wait_hanging(self, threads: int, timeout: float) -> bool:
        """Wait up to ``timeout`` real seconds until ``threads`` threads are blocked in hangs."""
        with self._hangs_changed:
            return self._hangs_changed.wait_for(
                lambda: sum(i._hanging for i in self._live) >= threads, timeout)

    # -- the actors' side ----------------------------------------------------------------

    def check(self, actor: ActorName, point: FaultPoint) -> FaultAction | None:
        """The fault ``actor`` must suffer at ``point`` now, if any; consumes one count."""
        if not self._live:  # disabled, or nothing injected: one read, no lock
            return None
        with self._lock:
            self._expire(self._clock.monotonic())
            for injection in reversed(self._live):
                if (injection.actor is actor and point in injection.points
                        and injection._remaining != 0):
                    if injection._remaining is not None:
                        injection._remaining -= 1
                    injection._fired += 1
                    break
            else:
                return None
        logger.debug("fault fires: %r at %s", injection, point.value)
        return FaultAction(injection.kind, actor, point, injection, injection.seconds)

    def apply(self, action: FaultAction, payload: T) -> T:
        """Carry ``action`` out: raise, block, sleep, grow, or return ``payload`` spoiled
        (``corrupt``) or as it was."""
        result: T = self._apply[action.kind](action, payload)
        return result

    @overload
    def at(self, actor: ActorName, point: FaultPoint) -> None: ...
    @overload
    def at(self, actor: ActorName, point: FaultPoint, payload: T) -> T: ...
    def at(self, actor: ActorName, point: FaultPoint, payload: object = None) -> object:
        """The one call at a fault point: :meth:`check`, then :meth:`apply` if a fault fires."""
        action = self.check(actor, point)
        return payload if action is None else self.apply(action, payload)

    # -- one function per kind (raise, crash and fail_start are below the class) -----------

    def _hang(self, action: FaultAction, payload: T) -> T:
        injection = action.injection
        with self._hangs_changed:
            injection._hanging += 1
            self._hangs_changed.notify_all()
        try:
            if injection.ends_at is None:
                injection._released.wait()  # a real hang: only clear() or clear_all() ends it
            else:
                while not injection._released.wait(HANG_POLL_SECONDS):
                    with self._lock:
                        self._expire(self._clock.monotonic())
        finally:
            with self._hangs_changed:
                injection._hanging -= 1
                self._hangs_changed.notify_all()
        return payload

    def _delay(self, action: FaultAction, payload: T) -> T:
        self._clock.sleep(cast(float, action.seconds))  # inject() requires it for a delay
        return payload

    def _grow(self, action: FaultAction, payload: T) -> T:
        chunk = bytearray(b"\xa5") * self._chunk_bytes  # written, so it is resident
        with self._lock:
            if not action.injection._ended:
                action.injection._chunks.append(chunk)
        return payload

    # -- bookkeeping (under self._lock unless said) ----------------------------------------

    def _expire(self, now: float) -> None:
        for injection in [i for i in self._live if i.ends_at is not None and now >= i.ends_at]:
            self._end_locked(injection, "duration over")

    def _end(self, injection: Injection) -> None:
        with self._lock:
            self._end_locked(injection, "cleared")

    def _end_locked(self, injection: Injection, why: str) -> None:
        if injection._ended:
            return
        injection._ended = True
        injection._chunks.clear()
        injection._released.set()
        self._live.remove(injection)
        logger.info("fault ended (%s): %r after %d hits", why, injection, injection._fired)

    def _is_live(self, injection: Injection) -> bool:
        with self._lock:
            self._expire(self._clock.monotonic())
            return not injection._ended and injection._remaining != 0


def corrupt(payload: T) -> T:
    """``payload`` spoiled so that parsing it fails: an object loses every key (so a required
    field is missing), a list has each item spoiled (an empty one gains an empty object),
    text or bytes keep only their first half (broken JSON)."""
    spoiled: object
    if isinstance(payload, Mapping):
        spoiled = {}
    elif isinstance(payload, list):
        spoiled = [corrupt(item) for item in payload] or [{}]
    elif isinstance(payload, str | bytes):
        spoiled = payload[: len(payload) // 2]
    else:
        raise TypeError(f"corrupt takes a decoded payload (object, list, text or bytes), "
                        f"got {type(payload).__name__}")
    result: T = spoiled  # type: ignore[assignment]
    return result


def _raise(action: FaultAction, payload: object) -> Any:
    raise InjectedFault(action.actor, action.point, action.kind, action.injection.id)


def _crash(action: FaultAction, payload: object) -> Any:
    raise InjectedCrash(action.actor, action.point, action.kind, action.injection.id)


def _fail_start(action: FaultAction, payload: object) -> Any:
    raise InjectedStartFailure(action.actor, action.point, action.kind, action.injection.id)


def _member(enum_type: type[E], value: object, field: str) -> E:
    """``value`` as a member of ``enum_type`` (a member or its string value)."""
    if isinstance(value, enum_type):
        return value
    for member in enum_type:
        if isinstance(value, str) and member.value == value:
            return member
    expected = ", ".join(str(member.value) for member in enum_type)
    raise InvalidFault(f"unknown {field} {value!r}: expected one of {expected}",
                       field=field, value=value)


def _points(
    actor: ActorName, kind: FaultKind, point: FaultPoint | None
) -> frozenset[FaultPoint]:
    """The points an injection matches, or :class:`InvalidFault` if it could never fire."""
    has, applies = ACTOR_POINTS[actor], KIND_POINTS[kind]
    if point is not None and point not in has:
        raise InvalidFault(
            f"point {point.value!r}: {actor.value} has no such fault point "
            f"(its points: {_names(has)})",
            field="point", value=point.value)
    if point is not None and point not in applies:
        raise InvalidFault(
            f"point {point.value!r}: {kind.value} applies only at {_names(applies)}",
            field="point", value=point.value)
    points = has & applies if point is None else frozenset({point})
    if not points:
        raise InvalidFault(
            f"kind {kind.value!r}: applies at no point of {actor.value} "
            f"({kind.value}: {_names(applies)}; {actor.value}: {_names(has)})",
            field="kind", value=kind.value)
    return points


def _names(points: frozenset[FaultPoint]) -> str:
    return ", ".join(p.value for p in FaultPoint if p in points)


def _checked(field: str, value: object, **bounds: Any) -> None:
    """:func:`quotation.values.check`, raising :class:`InvalidFault` instead."""
    try:
        check_value(field, value, **bounds)
    except InvalidValue as error:
        raise InvalidFault(str(error), field=error.field, value=error.value) from None
